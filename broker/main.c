/* main.c - the tallyd program: arguments, configuration, run.
 *   tallyd [--config FILE] [--override key=value ...] [--add-scram SPEC ...]
 *          [--print-config] [--version]
 * Like kafka-server-start: the file first, then each override in order. --add-scram
 * (kafka-storage's form, SCRAM-SHA-512=[name=alice,password=secret]) stores a SCRAM
 * credential before serving: how the first user of a SASL-only broker is made. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/notify.h"
#include "common/diag.h"
#include "log/log.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: tallyd [--config FILE] [--override key=value ...] [--print-config]\n"
		     "              [--add-scram 'SCRAM-SHA-512=[name=N,password=P]' ...] "
		     "[--version]\n"
		     "Starts a Tally broker. Configuration keys are Kafka's server.properties "
		     "keys;\nsee config/server.properties for the common ones. --add-scram "
		     "stores a SCRAM credential\n(salted; the password is not kept) before "
		     "serving.\n");
}

static enum tl_diag_level level_of(const char *name)
{
	if (strcmp(name, "crit") == 0)
		return TL_DIAG_CRIT;
	if (strcmp(name, "warn") == 0)
		return TL_DIAG_WARN;
	if (strcmp(name, "debug") == 0)
		return TL_DIAG_DEBUG;
	return TL_DIAG_INFO;
}

static const char *add_scram[16];
static int add_scram_count;

static int config_from_args(int argc, char **argv, struct tl_config *config, bool *print_only)
{
	char why[512];
	tl_config_defaults(config);
	*print_only = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--config") == 0 && i + 1 < argc) {
			if (tl_config_load_file(config, argv[++i], why, sizeof(why)) != TL_OK)
				goto bad;
		} else if (strcmp(arg, "--override") == 0 && i + 1 < argc) {
			char kv[1024];
			snprintf(kv, sizeof(kv), "%s", argv[++i]);
			char *eq = strchr(kv, '=');
			if (!eq) {
				snprintf(why, sizeof(why),
					 "--override wants key=value, got \"%.400s\"", kv);
				goto bad;
			}
			*eq = '\0';
			if (tl_config_set(config, kv, eq + 1, why, sizeof(why)) != TL_OK)
				goto bad;
		} else if (strcmp(arg, "--add-scram") == 0 && i + 1 < argc) {
			if (add_scram_count == (int)(sizeof(add_scram) / sizeof(add_scram[0]))) {
				snprintf(why, sizeof(why), "--add-scram: at most 16");
				goto bad;
			}
			add_scram[add_scram_count++] = argv[++i];
		} else if (strcmp(arg, "--print-config") == 0) {
			*print_only = true;
		} else if (strcmp(arg, "--version") == 0) {
			printf("tallyd %s\n", TL_VERSION);
			exit(0);
		} else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else {
			fprintf(stderr, "tallyd: unknown argument \"%s\"\n", arg);
			usage(stderr);
			return 2;
		}
	}
	if (tl_config_finish(config, why, sizeof(why)) != TL_OK)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "tallyd: %s\n", why);
	return 2;
}

/* Each Produce request's frame is one malloc of its size (about 1 MiB from libtally's
 * defaults), held until its batches are durable, then freed. glibc's defaults hand such
 * blocks back to the kernel (munmap above the dynamic mmap threshold, or a heap trim
 * once 2x that is free at the top), so the next frame is fresh memory and the recv()
 * into it takes a page fault per 4 KiB: 30 % of tallyd's CPU samples in a slow run
 * (5.2 CPU-s per GB), 3 % with these settings (0.9 CPU-s per GB); whether a run fell into
 * it depended on where the dynamic threshold had settled (issue 22's "slow mode").
 * Fixed thresholds keep up to TRIM_THRESHOLD_BYTES of freed memory for reuse. A GLIBC_TUNABLES
 * naming malloc settings is left to rule. */
#define MMAP_THRESHOLD_BYTES (32 << 20)
#define TRIM_THRESHOLD_BYTES (256 << 20)

static void malloc_setup(void)
{
	const char *tunables = getenv("GLIBC_TUNABLES");
	if (tunables && strstr(tunables, "malloc."))
		return;
	if (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1 ||
	    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) != 1)
		tl_warn("broker: mallopt refused the malloc thresholds");
}

int main(int argc, char **argv)
{
	malloc_setup();
	struct tl_config config;
	bool print_only;
	int rc = config_from_args(argc, argv, &config, &print_only);
	if (rc != 0)
		return rc;
	if (print_only) {
		tl_config_print(&config, stdout);
		return 0;
	}
	tl_diag_set_level(level_of(config.log_level));
	tl_diag_set_format(strcmp(config.log_format, "json") == 0     ? TL_DIAG_FORMAT_JSON
			   : strcmp(config.log_format, "logfmt") == 0 ? TL_DIAG_FORMAT_LOGFMT
								      : TL_DIAG_FORMAT_TEXT);
	/* Test-only: every compaction swap dies at this point, as a kill -9 would there
	 * (tests/integration/114). Refused without TALLY_TEST_FAULTS=1. */
	const char *crash = getenv("TALLY_TEST_CLEANER_CRASH_POINT");
	const char *faults = getenv("TALLY_TEST_FAULTS");
	if (crash && faults && strcmp(faults, "1") == 0) {
		tl_warn("broker: test fault switch on: compaction swaps exit at point=%s", crash);
		tl_log_cleaner_fault_set(atoi(crash), true);
	}
	tl_info("broker: starting tallyd version=%s", TL_VERSION);
	tl_config_report(&config);
	static struct tl_broker broker; /* large: keep it off the stack */
	tl_err err = tl_broker_init(&broker, &config);
	if (err != TL_OK) {
		tl_crit("broker: start-up failed err=%s", tl_err_name(err));
		tl_broker_deinit(&broker);
		return 1;
	}
	char why[512];
	for (int i = 0; i < add_scram_count; i++) {
		if (tl_sasl_add_scram(&broker, add_scram[i], why, sizeof(why)) != TL_OK) {
			tl_crit("broker: %s", why);
			tl_broker_deinit(&broker);
			return 2;
		}
	}
	char *text = NULL;
	size_t text_len = 0;
	FILE *mem = open_memstream(&text, &text_len);
	if (mem) {
		tl_config_print(&broker.config, mem);
		fclose(mem);
		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
			tl_info("config: %s", line);
		free(text);
	}
	/* Listening now: a service manager waiting on Type=notify may start what needs us. */
	if (tl_broker_notify("READY=1", why, sizeof(why)) != TL_OK)
		tl_warn("broker: readiness notification failed %s", why);
	err = tl_broker_run(&broker);
	tl_broker_deinit(&broker);
	tl_info("broker: stopped err=%s", tl_err_name(err));
	return err == TL_OK ? 0 : 1;
}
