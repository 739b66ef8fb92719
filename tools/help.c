/* help.c - `tally help [TOPIC]` and `-h`. The man pages in man/ say the same at length. */
#include <string.h>

#include "cli.h"

static const char overview[] =
	"usage: tally [global options] <command> [<verb>] [options]\n"
	"\n"
	"A command-line client for Kafka-compatible brokers (tallyd, Apache Kafka).\n"
	"\n"
	"Commands:\n"
	"  topic create|list|describe|delete|add-partitions|alter|delete-records\n"
	"                                   manage topics\n"
	"  produce TOPIC                  send lines (or JSON envelopes) from stdin\n"
	"  tail TOPIC...                  print records; follows live by default\n"
	"  group list|describe|seek|delete   consumer groups, members and lag\n"
	"  txn list|describe|producers|find-hanging|abort   transactions\n"
	"  cluster info|log-dirs          brokers, controller, cluster id; partition sizes\n"
	"  quota set|list|delete          client quotas (produce/fetch byte rates)\n"
	"  acl add|list|remove            access control lists (who may do what)\n"
	"  user create|delete|list       SCRAM users (SASL credentials, salted)\n"
	"  log dump|check PATH            inspect a (stopped) broker's data files offline\n"
	"  top [-m URL]...                live throughput, latency and lag from /metrics\n"
	"  help [COMMAND]                 this text, or a command's\n"
	"\n"
	"Global options (before the command or after it):\n"
	"  -b, --brokers HOST:PORT[,...]  bootstrap brokers (env TALLY_BROKERS; default\n"
	"                                 localhost:9092)\n"
	"  -X KEY=VALUE                   a libtally client setting (producer, consumer or\n"
	"                                 admin keys, e.g. -X linger.ms=20; TLS as librdkafka:\n"
	"                                 -X security.protocol=ssl -X ssl.ca.location=ca.pem)\n"
	"  --format text|json|yaml        output format (default text)\n"
	"  --color auto|always|never      colors (auto: on a terminal, unless NO_COLOR is set)\n"
	"  --timeout DURATION             bound on connecting and on each request (default 10s;\n"
	"                                 1500ms, 5s, 2m)\n"
	"  -q, --quiet / -v, --verbose    less / more on stderr\n"
	"  -h, --help, --version\n"
	"\n"
	"Exit codes:\n"
	"  0 ok   1 runtime error   2 usage error   3 not found (topic, group, transaction)\n"
	"  4 authentication, authorization or TLS   5 unreachable or timed out\n"
	"  6 partial failure (some records or items failed)   130 interrupted\n"
	"\n"
	"See `tally help COMMAND` and man tally(1), tally-COMMAND(1).\n";

static const char topic_help[] =
	"usage: tally topic create TOPIC [-p PARTITIONS] [-r REPLICATION] [-c KEY=VALUE]...\n"
	"       tally topic list [--internal]\n"
	"       tally topic describe TOPIC...\n"
	"       tally topic delete TOPIC... [--if-exists]\n"
	"       tally topic add-partitions TOPIC -p TOTAL\n"
	"       tally topic alter TOPIC [-c KEY=VALUE]... [--delete-config KEY]...\n"
	"       tally topic delete-records TOPIC PARTITION OFFSET|end\n"
	"\n"
	"  create            -p/--partitions N (default: the broker's num.partitions),\n"
	"                    -r/--replication-factor N, -c/--config key=value (repeatable),\n"
	"                    --if-not-exists\n"
	"  list              one row per topic: name, partitions, replication\n"
	"  describe          partitions with leader, replicas, ISR, start and end offsets\n"
	"  delete            --if-exists: a missing topic is not an error\n"
	"  add-partitions    raise the partition count to TOTAL (CreatePartitions)\n"
	"  alter             set (-c) or reset to the broker default (--delete-config) topic\n"
	"                    configs; the others keep their settings (IncrementalAlterConfigs)\n"
	"  delete-records    delete the records of PARTITION below OFFSET (end: all that are\n"
	"                    committed); prints the new start offset (DeleteRecords)\n"
	"\n"
	"Tables are aligned on a terminal and tab-separated otherwise; --format json|yaml\n"
	"prints documents.\n";

static const char produce_help[] =
	"usage: tally produce TOPIC [options] < input\n"
	"\n"
	"Sends one record per input line (newline removed). Idempotent by default (the\n"
	"broker drops retried duplicates), acks=all.\n"
	"\n"
	"  -k, --key KEY              the same key for every record\n"
	"  -K, --key-delimiter DELIM  split each line at the first DELIM: key DELIM value\n"
	"  -H, --header KEY=VALUE     a header on every record (repeatable)\n"
	"  -p, --partition N          send to partition N (default: by key, like Java)\n"
	"  -D, --delimiter CHAR       record delimiter instead of newline (\\0 for NUL)\n"
	"  --json                     each line is a JSON envelope as `tally tail --json`\n"
	"                             prints: {\"key\",\"value\",\"headers\",\"timestamp\",\n"
	"                             \"partition\"}; binary parts as key_b64/value_b64\n"
	"  --ignore-partition         with --json: let the partitioner choose\n"
	"  --acks all|1|0             (default all; 1 or 0 turn idempotence off)\n"
	"  -z, --compression none|gzip|snappy|lz4|zstd\n"
	"  --no-idempotence           plain retries, no producer id\n"
	"  --txn-id ID                send inside transactions of transactional.id ID\n"
	"  --txn-every N              commit every N records (default: one transaction)\n"
	"  --rate                     a live rate line on stderr (default on a terminal)\n"
	"\n"
	"Prints a summary on stderr: records sent, failed, time. Exit 6 when some records\n"
	"failed and others were stored, 1 (or 3, 5) when none were.\n";

static const char tail_help[] =
	"usage: tally tail TOPIC... [options]\n"
	"\n"
	"Prints records, following new ones as they arrive (like tail -f).\n"
	"\n"
	"  -o, --offset SPEC          where to start (and stop); default end (only new)\n"
	"        beginning | end       the log start | only records produced from now on\n"
	"        N | -N | +N           offset N | N before the end | N after the start\n"
	"        @TIME                 first record at or after TIME: RFC 3339\n"
	"                              (2024-05-01T12:00:00Z), a date (2024-05-01, local),\n"
	"                              epoch ms, or back from now (-1h, -30m, -2d)\n"
	"        START:STOP | :STOP    stop before STOP (exclusive) and exit; STOP is end\n"
	"                              (as of now), N, -N, +N (N records per partition) or\n"
	"                              @TIME. `0:end` reads what is there, with a progress bar\n"
	"  -e, --exit                 exit at the end (as of start), like START:end\n"
	"  -n, --count N              exit after N records\n"
	"  -p, --partitions LIST      only these partitions (0,2,5-7)\n"
	"  -g, --group GROUP          consume as a member of GROUP (commits offsets); -o is\n"
	"                             then beginning or end: where a new group starts\n"
	"  -f, --fmt FORMAT           per-record format (see below); default \"%v\\n\"\n"
	"  -K, --key-delimiter DELIM  print key DELIM value\n"
	"  --json                     one JSON envelope per line (see tally produce --json)\n"
	"  -E, --encoding raw|hex|base64|escape   how keys, values and headers are printed\n"
	"  --read-uncommitted         include records of open and aborted transactions\n"
	"  --show-control             print transaction markers too (as COMMIT/ABORT)\n"
	"  --rate / --no-rate         the live rate line on stderr (default on a terminal)\n"
	"\n"
	"Format verbs: %t topic, %p partition, %o offset, %k key, %v (or %s) value,\n"
	"  %h headers (k=v,k=v), %K key length, %V value length, %T timestamp (ms),\n"
	"  %d timestamp (RFC 3339, UTC), %I producer id, %E producer epoch, %Q sequence,\n"
	"  %C control type, %x transactional flag, %%; escapes \\n \\t \\0 \\\\.\n";

static const char group_help[] =
	"usage: tally group list\n"
	"       tally group describe GROUP\n"
	"       tally group seek GROUP -o SPEC [-t TOPIC[:PARTITIONS]]... [--execute]\n"
	"       tally group delete GROUP\n"
	"\n"
	"  list       groups with protocol type and state\n"
	"  describe   state, members (client id, host, assignment) and, per partition, the\n"
	"             committed offset, the end offset and the lag (end - committed)\n"
	"  seek       move committed offsets: SPEC is beginning, end, N, -N, +N or @TIME\n"
	"             (per partition). Shows the plan; changes it only with --execute, and\n"
	"             only while the group has no members. -t limits it to topics (default:\n"
	"             the topics the group has offsets for)\n"
	"  delete     the group and its offsets (it must have no members)\n";

static const char txn_help[] =
	"usage: tally txn list\n"
	"       tally txn describe TRANSACTIONAL-ID\n"
	"       tally txn producers TOPIC [-p PARTITIONS]\n"
	"       tally txn find-hanging TOPIC... [--older-than DURATION]\n"
	"       tally txn abort --transactional-id ID\n"
	"       tally txn abort --topic T --partition P --producer-id ID --producer-epoch E\n"
	"                       [--coordinator-epoch C]\n"
	"\n"
	"  list          transactional ids, producer ids and states (ListTransactions)\n"
	"  describe      state, timeout, start time, producer id/epoch, partitions\n"
	"  producers     active producers of partitions (DescribeProducers): id, epoch,\n"
	"                last sequence, last timestamp, open transaction start offset\n"
	"  find-hanging  open transactions in partitions that no coordinator knows about or\n"
	"                that are older than --older-than (default: 15m)\n"
	"  abort         --transactional-id: fence the id (InitProducerId bumps the epoch,\n"
	"                which aborts its open transaction); --topic...: write an ABORT marker\n"
	"                into one partition (WriteTxnMarkers at its leader)\n";

static const char cluster_help[] =
	"usage: tally cluster info\n"
	"       tally cluster log-dirs\n"
	"\n"
	"info: cluster id, controller, and each broker with its advertised address and\n"
	"whether it answers from here. log-dirs: each broker's log directory and the size of\n"
	"every partition replica in it (DescribeLogDirs).\n";

static const char user_help[] =
	"usage: tally user create NAME [--mechanism SCRAM-SHA-512|SCRAM-SHA-256]\n"
	"                              [--iterations N] [--password P]\n"
	"       tally user delete NAME [--mechanism M]\n"
	"       tally user list\n"
	"\n"
	"SCRAM credentials (AlterUserScramCredentials / DescribeUserScramCredentials, as\n"
	"Kafka's kafka-configs --entity-type users). create salts the password here (a random\n"
	"salt, --iterations rounds, 4096 to 16384, default 4096) and sends only the salted\n"
	"password; the broker keeps StoredKey and ServerKey. The password comes from\n"
	"--password, else TALLY_USER_PASSWORD, else the first line of stdin. delete without\n"
	"--mechanism removes both. Against a SASL listener, authenticate with\n"
	"-X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-512\n"
	"-X sasl.username=... -X sasl.password=...; the first user of a SASL-only broker\n"
	"comes from tallyd --add-scram 'SCRAM-SHA-512=[name=N,password=P]'.\n";

static const char quota_help[] =
	"usage: tally quota set ENTITY KEY=VALUE...\n"
	"       tally quota list\n"
	"       tally quota delete ENTITY [KEY...]\n"
	"\n"
	"Client quotas (AlterClientQuotas / DescribeClientQuotas, as Kafka's kafka-configs\n"
	"--entity-type users/clients). ENTITY is one or both of:\n"
	"  --user NAME | --user-default             a user (\"ANONYMOUS\" until security\n"
	"                                           exists), or every user without its own\n"
	"  --client-id NAME | --client-id-default   a client.id, or every one without its own\n"
	"KEYs: producer_byte_rate and consumer_byte_rate (bytes per second, enforced: a\n"
	"client over it gets throttle_time_ms and its connection is muted that long),\n"
	"request_percentage and controller_mutation_rate (stored, not enforced yet).\n"
	"delete without KEYs removes every key of the entity. The most specific entity wins:\n"
	"user+client-id, user+default client, user, default user+client-id, default\n"
	"user+default client, default user, client-id, default client-id.\n";

static const char acl_help[] =
	"usage: tally acl add RESOURCE... PRINCIPAL... [--operation OP]... [HOST...]\n"
	"       tally acl list [RESOURCE...] [--principal P]... [--resource-pattern-type T]\n"
	"       tally acl remove RESOURCE... [PRINCIPAL...] [--operation OP]...\n"
	"\n"
	"ACLs (CreateAcls / DescribeAcls / DeleteAcls, as Kafka's kafka-acls.sh). The broker\n"
	"needs authorizer.class.name set; the caller needs Alter (add, remove) or Describe\n"
	"(list) on the cluster, or to be in super.users.\n"
	"  RESOURCE   --topic NAME, --group NAME, --transactional-id ID, --cluster\n"
	"  --resource-pattern-type literal|prefixed (add; default literal), also any|match\n"
	"             (list, remove; list without a resource shows every pattern)\n"
	"  PRINCIPAL  --allow-principal User:NAME, --deny-principal User:NAME (User:* is\n"
	"             everyone)\n"
	"  HOST       --allow-host ADDR, --deny-host ADDR (default *: any host)\n"
	"  --operation All, Read, Write, Create, Delete, Alter, Describe, ClusterAction,\n"
	"             DescribeConfigs, AlterConfigs, IdempotentWrite (add: default All)\n"
	"remove without principals or operations removes every ACL of the resource; it\n"
	"exits 3 when none matched. DENY wins over ALLOW; Read, Write, Delete and Alter\n"
	"imply Describe, AlterConfigs implies DescribeConfigs.\n";

static const char log_help[] =
	"usage: tally log dump PATH [--records] [--json]\n"
	"       tally log check PATH\n"
	"\n"
	"Reads a broker's data files directly; run it on a stopped broker (a running one may\n"
	"be mid-write). PATH is a log.dirs directory, a partition directory (topic-N) or one\n"
	"file: .log segment, .index, .timeindex, .txnindex or .snapshot.\n"
	"\n"
	"  dump     batch headers (offset, length, CRC, producer id/epoch/base sequence,\n"
	"           transactional/control flags, timestamps), --records for records too;\n"
	"           index entries, aborted transactions, producer snapshots\n"
	"  check    verifies every batch (framing, magic, CRC-32C, offsets that follow each\n"
	"           other), index entries against the log, snapshot CRCs; prints each problem\n"
	"           with file, offset and position; exit 0 when clean, 1 otherwise\n"
	"  --json   one JSON document (dump) or a JSON report (check)\n";

static const char top_help[] =
	"usage: tally top [-m URL]... [-i INTERVAL] [--once] [--format text|json]\n"
	"\n"
	"A live view of brokers, refreshed every INTERVAL (default 2s), read from each\n"
	"broker's /metrics (its metrics.listener; docs/metrics.md): records and bytes in\n"
	"and out per topic, requests per second with p50/p99/p99.9 latency, fdatasync\n"
	"latency, connections, leaders, under-replicated and offline partitions, and\n"
	"consumer group lag. Rates cover the last interval. Ctrl-C exits.\n"
	"\n"
	"  -m, --metrics URL   a broker's metrics address (http://host:port or host:port),\n"
	"                      repeatable for a cluster; default http://127.0.0.1:9644\n"
	"  -i, --interval DUR  time between scrapes (at least 100ms)\n"
	"  --once              scrape twice, an interval apart, print one report, exit\n"
	"  --format json       one JSON document per report, for scripts\n";

struct help_topic {
	const char *name;
	const char *text;
};

static const struct help_topic topics[] = {
	{"topic", topic_help},  {"topics", topic_help}, {"produce", produce_help},
	{"tail", tail_help},    {"consume", tail_help}, {"group", group_help},
	{"groups", group_help}, {"txn", txn_help},      {"cluster", cluster_help},
	{"log", log_help},      {"top", top_help},      {"quota", quota_help},
	{"quotas", quota_help}, {"acl", acl_help},      {"acls", acl_help},
	{"user", user_help},    {"users", user_help},
};

bool cli_help(FILE *out, const char *topic)
{
	if (!topic) {
		fputs(overview, out);
		return true;
	}
	char noun[64];
	snprintf(noun, sizeof(noun), "%s", topic);
	char *space = strchr(noun, ' ');
	if (space)
		*space = '\0';
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		if (strcmp(topics[i].name, noun) == 0) {
			fputs(topics[i].text, out);
			return true;
		}
	}
	return false;
}
