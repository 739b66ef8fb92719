# Tally build. `make` builds release binaries into build/bin/. See README.md.
# Each mode builds into build/<mode>/; sources are discovered by wildcard so adding a
# file to a module needs no edit here.

VERSION := $(shell cat VERSION)

# Every build uses all the cores unless the caller chose (-jN on the command line wins):
# `make test` in CI is called bare, and a serial build of the release, ASan and fuzz
# trees took minutes of its 20. Set at the top level only: sub-makes share its jobserver
# (make 4.3 shows no -j in MAKEFLAGS while parsing, so that cannot be the test).
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(shell nproc)
endif
CC      ?= cc
CLANG   ?= clang

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Wundef -Wdate-time -Wpointer-arith -Wcast-qual \
            -Wimplicit-fallthrough -Wconversion -Wsign-conversion
BASE     := -std=gnu11 -fPIE $(WARN) -ffile-prefix-map=$(CURDIR)=. -MMD -MP \
            -I. -Iinclude -DTL_VERSION='"$(VERSION)"' -D_GNU_SOURCE
RELEASE  := -O2 -g -fno-omit-frame-pointer -D_FORTIFY_SOURCE=2 -fstack-protector-strong
DEBUG    := -O0 -g3 -DTL_DEBUG
SANITIZE := -O1 -g -fno-omit-frame-pointer -DTL_DEBUG -fsanitize=address,undefined \
            -fno-sanitize-recover=all
LDBASE   := -pie -Wl,-z,relro,-z,now -Wl,--as-needed
ARFLAGS  := rcsD

# zlib, lz4 and snappy: the broker decompresses produced batches to validate them
# (protocol/validate.c); Debian's libsnappy-dev ships no pkg-config file.
PKGS     := liburing libzstd libcurl zlib liblz4 openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lsnappy -lpthread -lm
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

MODE ?= release
ifeq ($(MODE),release)
  MODE_CFLAGS := $(RELEASE)
  MODE_LDFLAGS :=
else ifeq ($(MODE),debug)
  MODE_CFLAGS := $(DEBUG)
  MODE_LDFLAGS :=
else ifeq ($(MODE),asan)
  MODE_CFLAGS := $(SANITIZE)
  MODE_LDFLAGS := -fsanitize=address,undefined
endif

B := build/$(MODE)
CFLAGS_ALL := $(BASE) $(MODE_CFLAGS) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(LDBASE) $(MODE_LDFLAGS) $(LDFLAGS)

# Module libraries, in link order (dependents first).
MODULES := broker replication log protocol common
src_of = $(sort $(wildcard $(1)/*.c))
obj_of = $(patsubst %.c,$(B)/obj/%.o,$(call src_of,$(1)))
LIB_broker      := $(B)/libtl_broker.a
LIB_replication := $(B)/libtl_replication.a
LIB_log         := $(B)/libtl_log.a
LIB_protocol    := $(B)/libtl_protocol.a
LIB_common      := $(B)/libtl_common.a
# broker/main.c holds main(); it is linked only into tallyd.
BROKER_OBJS := $(filter-out $(B)/obj/broker/main.o,$(call obj_of,broker))
SERVER_LIBS := $(LIB_broker) $(LIB_replication) $(LIB_log) $(LIB_protocol) $(LIB_common)

UNIT_SRCS  := $(sort $(wildcard common/tests/*_test.c protocol/tests/*_test.c log/tests/*_test.c \
                 replication/tests/*_test.c broker/tests/*_test.c \
                 client/tests/*_test.c producer/tests/*_test.c consumer/tests/*_test.c \
                 admin/tests/*_test.c))
UNIT_BINS  := $(patsubst %.c,$(B)/%,$(UNIT_SRCS))
TEST_PROGS := $(patsubst %.c,$(B)/%,$(sort $(wildcard tests/progs/*.c)))
BENCH_PROGS := $(patsubst %.c,$(B)/%,$(sort $(wildcard bench/*.c)))

.PHONY: all release debug asan bins unit-bins test-progs test test-unit test-fuzz-build test-integration \
        test-long test-asan test-asan-clients test-asan-smoke mutation-check chaos model fuzz format format-check check-deps \
        deps deps-long run cluster clean gen analyze repro-check

all: release

release:
	@$(MAKE) --no-print-directory MODE=release bins
	@mkdir -p build/bin
	@cp -f build/release/tallyd build/bin/tallyd
	@cp -f build/release/tally-bench build/bin/tally-bench
	@cp -f build/release/tally build/bin/tally
	@mkdir -p build/lib
	@cp -fP build/release/lib/libtally.a build/release/lib/libtally.so* build/lib/

debug:
	@$(MAKE) --no-print-directory MODE=debug bins
asan:
	@$(MAKE) --no-print-directory MODE=asan bins unit-bins

bins: $(B)/tallyd $(B)/tally libtally examples test-progs $(B)/tally-bench
unit-bins: $(UNIT_BINS)
test-progs: $(TEST_PROGS) $(BENCH_PROGS)

# V=1 shows the full command lines.
Q := $(if $(V),,@)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(if $(V),,@echo "  CC [$(MODE)] $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LIB_common): $(call obj_of,common)
$(LIB_protocol): $(call obj_of,protocol)
$(LIB_log): $(call obj_of,log)
$(LIB_replication): $(call obj_of,replication)
$(LIB_broker): $(BROKER_OBJS)
$(B)/libtl_%.a: | $(B)/empty.o
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) $(ARFLAGS) $@ $^ $(if $^,,$(B)/empty.o)

$(B)/empty.o:
	@mkdir -p $(@D)
	echo 'static int tl_empty_unit __attribute__((unused));' | $(CC) -x c -c - -o $@

$(B)/tallyd: $(B)/obj/broker/main.o $(SERVER_LIBS)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# Unit tests: one check binary per *_test.c, linked against every module library.
$(B)/%_test: $(B)/obj/%_test.o $(SERVER_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS)

# Test programs (clients built on librdkafka, fault injectors).
$(B)/tests/progs/%: $(B)/obj/tests/progs/%.o $(SERVER_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(shell pkg-config --libs rdkafka 2>/dev/null) $(PKG_LIBS)

# Load generators driving tallyd through librdkafka (bench/*.c).
$(B)/bench/%: $(B)/obj/bench/%.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(shell pkg-config --libs rdkafka 2>/dev/null)

# ---- libtally's ABI version (docs/libtally.md, "ABI promise") ----
# Not the release VERSION: MAJOR changes when an export is removed or changed (the soname
# libtally.so.MAJOR changes with it), MINOR when one is added (a new node in the map).
LIBTALLY_ABI_MAJOR := 1
LIBTALLY_ABI       := $(LIBTALLY_ABI_MAJOR).4.0

# ---- libtally: the client library (client/, producer/, consumer/, admin/ and what they
# use) ----
# client/ is the core the other three build on (connections, metadata, configuration,
# the request table). Its objects are built apart (position-independent,
# -fvisibility=hidden). libtally.so exports only what TL_EXPORT marks plus tl_err_*
# (common/error.c keeps default visibility), as producer/libtally.map lists. libtally.a
# is one relocatable object whose hidden symbols are made local, so it exposes the same
# API.
LIBTALLY_SRCS := $(call src_of,client) $(call src_of,producer) $(call src_of,consumer) \
                 $(call src_of,admin) common/base64.c common/buf.c common/crc32c.c common/diag.c \
                 common/error.c common/scram.c common/tls.c \
                 protocol/batch.c protocol/messages.c protocol/records.c protocol/sasl_client.c \
                 protocol/validate.c
LIBTALLY_OBJS := $(patsubst %.c,$(B)/pic/%.o,$(LIBTALLY_SRCS))
LIBTALLY_MAP  := producer/libtally.map
# The codecs of Kafka's batches: zstd, gzip (zlib), lz4 and snappy, both ways.
LIBTALLY_LIBS := $(shell pkg-config --libs libzstd zlib liblz4 openssl 2>/dev/null) -lsnappy -lpthread
EXAMPLES      := $(patsubst %.c,$(B)/%,$(sort $(wildcard examples/*.c)))

.PHONY: libtally examples
libtally: $(B)/lib/libtally.a $(B)/lib/libtally.so
examples: $(EXAMPLES)

$(B)/pic/common/error.o: PIC_VISIBILITY := -fvisibility=default
$(B)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -fPIC $(or $(PIC_VISIBILITY),-fvisibility=hidden) -c $< -o $@

# libtally.so -> libtally.so.1 (the soname) -> libtally.so.1.4.0, as installed.
$(B)/lib/libtally.so: $(B)/lib/libtally.so.$(LIBTALLY_ABI)
	ln -sfn libtally.so.$(LIBTALLY_ABI) $(B)/lib/libtally.so.$(LIBTALLY_ABI_MAJOR)
	ln -sfn libtally.so.$(LIBTALLY_ABI_MAJOR) $@

$(B)/lib/libtally.so.$(LIBTALLY_ABI): $(LIBTALLY_OBJS) $(LIBTALLY_MAP)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libtally.so.$(LIBTALLY_ABI_MAJOR) \
	  -Wl,--version-script=$(LIBTALLY_MAP) -Wl,-z,relro,-z,now -Wl,--as-needed \
	  -Wl,--no-undefined $(MODE_LDFLAGS) $(LDFLAGS) -o $@ $(LIBTALLY_OBJS) $(LIBTALLY_LIBS)

$(B)/lib/libtally.a: $(LIBTALLY_OBJS)
	@mkdir -p $(@D)
	@rm -f $@ $(B)/lib/libtally.o
	$(LD) -r -o $(B)/lib/libtally.o $(LIBTALLY_OBJS)
	objcopy --localize-hidden $(B)/lib/libtally.o
	$(AR) $(ARFLAGS) $@ $(B)/lib/libtally.o

# Examples link the shared library, as a user's program would.
$(B)/examples/%: $(B)/obj/examples/%.o $(B)/lib/libtally.so
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $< -L$(B)/lib -ltally -Wl,-rpath,'$$ORIGIN/../lib'

# Unit tests of the clients link the library's objects (internals included).
CLIENT_TEST_LINK = $(CC) $(LDFLAGS_ALL) -o $@ $^ $(CHECK_LIBS) \
	$(shell pkg-config --libs rdkafka 2>/dev/null) $(LIBTALLY_LIBS) -lm
CLIENT_TEST_BINS = $(filter $(foreach m,client producer consumer admin,$(B)/$(m)/tests/%), \
                     $(UNIT_BINS))
$(CLIENT_TEST_BINS): $(B)/%: $(B)/obj/%.o $(LIBTALLY_OBJS)
	@mkdir -p $(@D)
	$(CLIENT_TEST_LINK)

# Test programs on libtally (tests/progs/tally_*.c); librdkafka too, for interop.
$(B)/tests/progs/tally_%: $(B)/obj/tests/progs/tally_%.o $(B)/lib/libtally.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(shell pkg-config --libs rdkafka 2>/dev/null) \
	  $(LIBTALLY_LIBS) -lm

# ---- tally: the command-line client (tools/*.c) on libtally.a, plus log/ for offline
# inspection of data directories (libtally.a's internal symbols are local, so the
# module libraries link beside it without clashes).
TOOLS_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(call src_of,tools))
$(B)/tally: $(TOOLS_OBJS) $(B)/lib/libtally.a $(LIB_log) $(LIB_protocol) $(LIB_common)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# tally-bench (bench/tally-bench/*.c): the benchmark tool, on libtally; see docs/bench.md.
TALLY_BENCH_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(sort $(wildcard bench/tally-bench/*.c)))
$(B)/tally-bench: $(TALLY_BENCH_OBJS) $(B)/lib/libtally.a
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBTALLY_LIBS) -lm

# ---- set-up ----

deps:
	@./tools/install-deps.sh

deps-long:
	@./tools/install-deps.sh --long

run: deps release
	@mkdir -p tally-data
	./build/bin/tallyd --config config/server.properties

# etcd and three replicating brokers on loopback (ports 9092-9094), data in
# ./tally-cluster; Ctrl-C stops them.
cluster: deps release
	@./tools/cluster.sh

# ---- tests ----

test: deps
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory release
	@$(MAKE) --no-print-directory test-asan-smoke
	@$(MAKE) --no-print-directory test-fuzz-build
	@$(MAKE) --no-print-directory test-integration

# The fuzz targets 305 runs, built with every core before the suite starts rather than
# inside 305's time limit (serially there: 83 s on a quiet machine, over 300 s beside
# other tests). Without clang's libFuzzer this builds nothing and 305 says why it skips.
test-fuzz-build:
	@if command -v $(CLANG) >/dev/null; then $(MAKE) --no-print-directory fuzz >build/fuzz-build.log 2>&1 || \
	  { tail -n 20 build/fuzz-build.log; echo "fuzz targets did not build (build/fuzz-build.log); 305 will fail"; }; fi

test-unit:
	@$(MAKE) --no-print-directory MODE=asan unit-bins
	@./tests/run-unit.sh build/asan

test-integration:
	@./tests/run.sh

# The integration suite against a tallyd built with ASan+UBSan (part of test-long).
test-asan: release
	@$(MAKE) --no-print-directory MODE=asan build/asan/tallyd
	@TALLYD=build/asan/tallyd ./tests/run.sh

# A few integration tests against a tallyd built with ASan+UBSan, real clients on the
# other end (part of make test; about a minute): produce and fetch (101), idempotent
# dedupe and recovery (301), hostile frames (302), group commits across restarts (402),
# a transaction's timeout abort and fencing (505), retries under dropped responses
# (603). The sanitized module libraries are those test-unit built, so this links only
# tallyd.
ASAN_SMOKE_TESTS := 101 301 302 402 505 603
# The clients under ASan+UBSan: the libtally and CLI tests with the tally CLI and the
# test programs built with them, against the release tallyd, and the tests whose CLI
# calls cover the admin, quota, ACL and SCRAM verbs, and tally-bench's smoke (801)
# (part of test-long; about 2 min).
test-asan-clients: release
	@$(MAKE) --no-print-directory MODE=asan bins
	@TL_BIN_DIR=$(CURDIR)/build/asan TL_PROGS_DIR=$(CURDIR)/build/asan/tests/progs \
	  TALLYD=$(CURDIR)/build/bin/tallyd ./tests/run.sh libtally cli- 132- 107- 111- 113- 116- 120- 122- 801-

test-asan-smoke:
	@$(MAKE) --no-print-directory MODE=asan build/asan/tallyd
	@TALLYD=build/asan/tallyd ./tests/run.sh $(ASAN_SMOKE_TESTS)

test-long: deps-long release
	@TALLY_TEST_LONG=1 ./tests/run.sh
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-asan-clients
	@$(MAKE) --no-print-directory fuzz
	@./tests/fuzz/run.sh 120
	@$(MAKE) --no-print-directory mutation-check

# Jepsen-style fault runs (tests/chaos/): `make chaos` runs the fixed-seed set (long),
# `make chaos SEED=n TIME=s [SCENARIO=name]` one run. Results under build/chaos/.
CHAOS_SET := 1:120:mixed 2:120:kill 3:120:pause 4:90:etcd 5:90:fsync 11:90:partition \
             6:60:dedupe-off 7:300:mixed 22:90:disk 31:90:clock
chaos: release
ifdef SEED
	@./tests/chaos/chaos.sh $(SEED) $(or $(TIME),60) $(or $(SCENARIO),mixed)
else
	@fail=0; for run in $(CHAOS_SET); do \
	  set -- $$(echo $$run | tr : ' '); \
	  ./tests/chaos/chaos.sh $$1 $$2 $$3 || fail=1; \
	done; exit $$fail
endif

# The Promela model of replication and idempotence (replication/model/): spin must
# prove the correct protocol and find the KIP-101 counterexample in the broken one.
model:
	@./replication/model/check.sh

# Plants each bug of tests/mutations/list in a scratch copy and fails if its test still
# passes (see docs/testing.md).
mutation-check: release
	@./tests/mutations/run.sh

# libFuzzer targets: the module sources are compiled once (instrumented) and linked into
# every target, so adding a target or changing one file rebuilds only what changed. The
# broker's sources (all but main.c) and libtally's are among them, so a target can drive
# their decoders and handlers without a hook in their code.
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/*.c))
FUZZ_LIB_SRCS := $(call src_of,common) $(call src_of,protocol) $(call src_of,log) \
                 $(call src_of,replication) $(filter-out broker/main.c,$(call src_of,broker)) \
                 $(call src_of,client) $(call src_of,producer) $(call src_of,consumer) \
                 $(call src_of,admin)
FUZZ_CFLAGS := -std=gnu11 -g -O1 -I. -Iinclude -D_GNU_SOURCE -DTL_VERSION='"$(VERSION)"' -DTL_DEBUG -DTL_FUZZ -MMD -MP \
               $(PKG_CFLAGS)
FUZZ_OBJS := $(patsubst %.c,build/fuzz/obj/%.o,$(FUZZ_LIB_SRCS))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))

fuzz: $(FUZZ_BINS)

$(FUZZ_OBJS): build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(if $(V),,@echo "  CC [fuzz] $<")
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(FUZZ_BINS): build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(@D)
	@echo "  FUZZ $@"
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $< $(FUZZ_OBJS) -o $@ \
	  $(PKG_LIBS)

# ---- code health ----

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' | grep -v '^protocol/messages\.[ch]$$')
format:
	clang-format -i $(FORMAT_SRCS)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRCS)

check-deps:
	@./tools/check-deps.sh

gen:
	python3 protocol/gen/gen_messages.py protocol/spec protocol

analyze:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem -I. -Iinclude common protocol log replication broker client admin

repro-check:
	@./tools/repro-check.sh

# ---- install (GNU conventions) ----
# `make install DESTDIR=/tmp/x PREFIX=/usr` installs under /tmp/x/usr (and /tmp/x$(SYSCONFDIR))
# and writes nothing outside $(DESTDIR); `make uninstall` with the same variables removes
# it all again. The Debian build sets LIBDIR to the multiarch path (debian/rules). It does
# not create the tally user or /var/lib/tally: the Debian package does (debian/tally.postinst).
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
LIBDIR         ?= $(PREFIX)/lib
INCLUDEDIR     ?= $(PREFIX)/include
DATADIR        ?= $(PREFIX)/share
MANDIR         ?= $(DATADIR)/man
SYSCONFDIR     ?= $(PREFIX)/etc
BASHCOMPDIR    ?= $(DATADIR)/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL        ?= install

INSTALL_BINS    := tallyd tally tally-bench
INSTALL_HEADERS := $(sort $(wildcard include/tally/*.h))
INSTALL_MAN1    := $(sort $(wildcard man/*.1))
INSTALL_MAN8    := $(sort $(wildcard man/*.8))
INSTALL_CONFIG  := $(DESTDIR)$(SYSCONFDIR)/tally/server.properties
# @NAME@ in tally.pc.in and dist/tallyd.service.in.
INSTALL_SUBST   := sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
                       -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
                       -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

.PHONY: installable install uninstall
installable: $(addprefix $(B)/,$(INSTALL_BINS)) $(B)/lib/libtally.a $(B)/lib/libtally.so

install: installable
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	  $(DESTDIR)$(INCLUDEDIR)/tally $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSCONFDIR)/tally $(DESTDIR)$(SYSTEMDUNITDIR)
	$(INSTALL) -m 755 $(addprefix $(B)/,$(INSTALL_BINS)) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 644 $(B)/lib/libtally.so.$(LIBTALLY_ABI) $(B)/lib/libtally.a $(DESTDIR)$(LIBDIR)/
	ln -sfn libtally.so.$(LIBTALLY_ABI) $(DESTDIR)$(LIBDIR)/libtally.so.$(LIBTALLY_ABI_MAJOR)
	ln -sfn libtally.so.$(LIBTALLY_ABI_MAJOR) $(DESTDIR)$(LIBDIR)/libtally.so
	$(INSTALL_SUBST) tally.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/tally.pc
	$(INSTALL) -m 644 $(INSTALL_HEADERS) $(DESTDIR)$(INCLUDEDIR)/tally/
	$(INSTALL) -m 644 $(INSTALL_MAN1) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 644 $(INSTALL_MAN8) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 644 tools/tally-completion.bash $(DESTDIR)$(BASHCOMPDIR)/tally
	$(INSTALL_SUBST) dist/tallyd.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/tallyd.service
	@# An existing configuration is the operator's: never overwrite it.
	@if [ -e $(INSTALL_CONFIG) ]; then echo "kept existing $(INSTALL_CONFIG)"; \
	else echo "$(INSTALL) -m 644 dist/server.properties $(INSTALL_CONFIG)"; \
	  $(INSTALL) -m 644 dist/server.properties $(INSTALL_CONFIG); fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALL_BINS)) \
	  $(DESTDIR)$(LIBDIR)/libtally.so.$(LIBTALLY_ABI) \
	  $(DESTDIR)$(LIBDIR)/libtally.so.$(LIBTALLY_ABI_MAJOR) $(DESTDIR)$(LIBDIR)/libtally.so \
	  $(DESTDIR)$(LIBDIR)/libtally.a $(DESTDIR)$(LIBDIR)/pkgconfig/tally.pc \
	  $(addprefix $(DESTDIR)$(INCLUDEDIR)/tally/,$(notdir $(INSTALL_HEADERS))) \
	  $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(INSTALL_MAN1))) \
	  $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(INSTALL_MAN8))) \
	  $(DESTDIR)$(BASHCOMPDIR)/tally $(DESTDIR)$(SYSTEMDUNITDIR)/tallyd.service
	@# The configuration goes only as it was installed; a changed one is kept.
	@if cmp -s dist/server.properties $(INSTALL_CONFIG); then \
	  echo "rm -f $(INSTALL_CONFIG)"; rm -f $(INSTALL_CONFIG); \
	elif [ -e $(INSTALL_CONFIG) ]; then echo "kept changed $(INSTALL_CONFIG)"; fi
	@for dir in $(DESTDIR)$(INCLUDEDIR)/tally $(DESTDIR)$(SYSCONFDIR)/tally; do \
	  [ ! -d $$dir ] || rmdir --ignore-fail-on-non-empty $$dir; done

# ---- Debian packages ----
# Builds tally, libtally1 and libtally-dev (debian/) with dpkg-buildpackage in a copy of
# the tree's files under build/deb/ (dh_auto_clean runs `make clean`, which would remove
# this tree's build/), leaves the .deb files in build/deb/, then runs lintian on them.
# Needs debhelper, dpkg-dev, fakeroot and lintian; tests/integration/804-deb.sh runs it
# under `make test-long`.
DEB_DIR  := build/deb
DEB_JOBS ?= 2
.PHONY: deb
deb:
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/tally-$(VERSION)
	git ls-files -z -co --exclude-standard | grep -zv '^build/' | tar --null -T - -cf - | \
	  tar -C $(DEB_DIR)/tally-$(VERSION) -xf -
	cd $(DEB_DIR)/tally-$(VERSION) && dpkg-buildpackage -us -uc -b -J$(DEB_JOBS)
	lintian --fail-on error,warning --info $(DEB_DIR)/tally_*.changes
	@ls $(DEB_DIR)/*.deb

# ---- libtally's ABI check ----
# Fails when producer/libtally.map, the objects' TL_EXPORT marks and libtally.so's dynamic
# symbols name different functions (tests/integration/802-export-check.sh runs it).
.PHONY: export-check
export-check: $(B)/lib/libtally.so
	@SYMBOLS=debian/libtally1.symbols ABI=$(LIBTALLY_ABI) ./tools/check-exports.sh $(LIBTALLY_MAP) $(B)/lib/libtally.so \
	  $(LIBTALLY_OBJS)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
