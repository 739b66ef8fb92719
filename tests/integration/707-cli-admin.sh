#!/usr/bin/env bash
# tally topic, txn, cluster, help, man pages and bash completion:
#   topic create/list/describe/delete with their errors (exists: 1, missing: 3, bad
#   name: 2), add-partitions (8 partitions after it, 8 is refused again as no
#   increase); produce --txn-id --txn-every: the records visible read_committed,
#   one COMMIT marker per transaction with --show-control, txn list/describe/producers/
#   find-hanging, abort by transactional id (fences), abort by partition (an ABORT marker
#   through WriteTxnMarkers, seen with --show-control); cluster info; help texts and exit codes;
#   every man page renders; the completion script completes nouns and verbs.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }
command -v python3 >/dev/null || tl_skip "python3 is not installed"

# Runs tally with @3... and wants exit status @1 and stderr matching ERE @2.
expect()
{
	local want_rc=$1 want_msg=$2 rc=0
	shift 2
	"$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@" >"$TL_TMP/out" 2>"$TL_TMP/err" </dev/null || rc=$?
	[ $rc = "$want_rc" ] || tl_fail "tally $* exited $rc, want $want_rc: $(cat "$TL_TMP/err")"
	grep -Eq -- "$want_msg" "$TL_TMP/err" || tl_fail "tally $*: stderr lacks /$want_msg/: $(cat "$TL_TMP/err")"
}

tl_start_broker
tl_log "topics"
tally topic create orders -p 4 -c retention.ms=3600000 2>/dev/null
expect 1 'already exists' topic create orders
tally topic create orders -p 4 --if-not-exists
expect 2 'not a valid topic name' topic create 'bad name!'
printf 'orders\t4\t1\n' >"$TL_TMP/want"
tally topic list | grep '^orders' | diff - "$TL_TMP/want" >&2 || tl_fail "topic list: $(tally topic list)"
tally topic list | head -n 1 | grep -q $'^TOPIC\tPARTITIONS\tREPLICATION$' || tl_fail "no header when piped"
tally topic describe orders --format json | python3 -c '
import json, sys
t = json.load(sys.stdin)[0]
assert t["name"] == "orders" and len(t["partitions"]) == 4, t
assert all(p["leader"] >= 0 and p["start_offset"] == 0 for p in t["partitions"]), t' ||
	tl_fail "topic describe --format json"
tally topic describe orders --format yaml | grep -q '^- name: orders$' || tl_fail "topic describe --format yaml"
tally topic add-partitions orders -p 8 2>/dev/null || tl_fail "topic add-partitions orders -p 8 failed"
[ "$(tally topic list | grep '^orders' | cut -f2)" = 8 ] || tl_fail "add-partitions: $(tally topic list)"
expect 1 'already has 8 partitions' topic add-partitions orders -p 8
expect 3 'does not exist' topic describe orders missing-one
tally topic delete orders 2>/dev/null
expect 3 'does not exist' topic delete orders
tally topic delete orders --if-exists

tl_log "transactions"
tally topic create tx -p 1 2>/dev/null
seq 1 10 | tally produce tx --txn-id cli-txn --txn-every 4
[ "$(tally tail tx -o 0:end | tr '\n' ' ')" = "1 2 3 4 5 6 7 8 9 10 " ] || tl_fail "transactional records not visible"
[ "$(tally tail tx -o 0:end --show-control | grep -c '^\[COMMIT marker')" = 3 ] ||
	tl_fail "want 3 COMMIT markers: $(tally tail tx -o 0:end --show-control)"
tally tail tx -o 0:end --show-control --json | grep -q '"control":"COMMIT"' || tl_fail "--json lacks control"
tally tail tx -o 0:end -f '%x %I %E %Q\n' | head -n 1 | grep -Eq '^txn [0-9]+ 0 0$' || tl_fail "producer verbs"
tally txn list | grep -Eq $'^cli-txn\t[0-9]+\tComplete' || tl_fail "txn list: $(tally txn list)"
tally txn describe cli-txn | grep -q 'state: *Complete' || tl_fail "txn describe: $(tally txn describe cli-txn)"
expect 3 'not known' txn describe no-such-txn
tally txn producers tx | grep -Eq $'^tx\t0\t[0-9]+\t0\t9\t' || tl_fail "txn producers: $(tally txn producers tx)"
tally txn find-hanging tx --older-than 0 --format json | grep -qx '\[\]' || tl_fail "a hanging transaction found"
pid=$(tally txn producers tx --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["producer_id"])')
expect 0 'wrote an ABORT marker' txn abort --topic tx --partition 0 --producer-id "$pid" --producer-epoch 0
tally tail tx -o 0:end --show-control | grep -q '^\[ABORT marker' ||
	tl_fail "no ABORT marker after txn abort by partition: $(tally tail tx -o 0:end --show-control)"
expect 0 'fenced cli-txn' txn abort --transactional-id cli-txn
seq 11 12 | tally produce tx --txn-id cli-txn
[ "$(tally tail tx -o 0:end | wc -l)" = 12 ] || tl_fail "the fenced id could not start again"

tl_log "an interrupted transactional produce aborts"
tally topic create ab -p 1 2>/dev/null
mkfifo "$TL_TMP/fifo"
"$TL_BIN/tally" -b "$TL_BROKER" produce ab --txn-id abort-me <"$TL_TMP/fifo" 2>"$TL_TMP/ab.err" &
producer=$!
exec 3>"$TL_TMP/fifo" # stdin stays open: the transaction stays open
seq 1 5 >&3
deadline=$(($(date +%s) + 10))
until tally tail ab -o 0:end --read-uncommitted | grep -q 5; do
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "the transactional records never reached the broker"
	sleep 0.05
done
kill -INT "$producer"
rc=0
wait "$producer" || rc=$?
exec 3>&-
[ $rc = 130 ] || tl_fail "interrupted produce exited $rc, want 130: $(cat "$TL_TMP/ab.err")"
[ -z "$(tally tail ab -o 0:end)" ] || tl_fail "records of an aborted transaction shown read_committed"
[ "$(tally tail ab -o 0:end --read-uncommitted | wc -l)" = 5 ] || tl_fail "--read-uncommitted lacks the aborted records"
tally tail ab -o 0:end --read-uncommitted --show-control | grep -q '^\[ABORT marker: producer [0-9]* epoch 0, ab \[0\] offset 5\]$' ||
	tl_fail "no ABORT marker: $(tally tail ab -o 0:end --read-uncommitted --show-control)"

tl_log "cluster info"
tally cluster info | grep -Eq $'^1\t127\\.0\\.0\\.1:'"$TL_PORT"$'\t-\tcontroller\treachable$' || tl_fail "cluster info: $(tally cluster info)"
tally cluster info --format json | python3 -c '
import json, sys
c = json.load(sys.stdin)
assert c["controller_id"] == 1 and c["brokers"][0]["reachable"], c' || tl_fail "cluster info --format json"
tl_stop_broker

tl_log "help, usage errors, man pages, completion"
"$TL_BIN/tally" help | grep -q '130 interrupted' || tl_fail "tally help lacks the exit codes"
"$TL_BIN/tally" tail -h | grep -q '@TIME' || tl_fail "tally tail -h"
for noun in topic produce tail group txn cluster log; do
	"$TL_BIN/tally" help $noun >/dev/null || tl_fail "tally help $noun"
	[ -f "man/tally-$noun.1" ] || tl_fail "man/tally-$noun.1 is missing"
done
rc=0; "$TL_BIN/tally" 2>/dev/null || rc=$?
[ $rc = 2 ] || tl_fail "tally without a command exited $rc, want 2"
expect 2 'unknown command "bogus"' bogus
expect 2 'unknown option' tail t --bogus
expect 2 'timeout' --timeout never topic list
if command -v man >/dev/null; then
	for page in man/*.1; do
		out=$(MANWIDTH=80 man -l "$page" 2>&1 >/dev/null) || tl_fail "man -l $page failed"
		[ -z "$out" ] || tl_fail "man -l $page warns: $out"
	done
fi
# shellcheck disable=SC1091
. tools/tally-completion.bash
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _tally; echo "${COMPREPLY[*]}"; }
[ "$(complete_words tally gr)" = group ] || tl_fail "completion of 'gr': $(complete_words tally gr)"
[ "$(complete_words tally topic de)" = "describe delete delete-records" ] || tl_fail "completion of 'topic de': $(complete_words tally topic de)"
complete_words tally tail t --sh | grep -q -- --show-control || tl_fail "completion of tail options"
[ "$(complete_words tally --format y)" = yaml ] || tl_fail "completion of --format"
tl_log "ok"
