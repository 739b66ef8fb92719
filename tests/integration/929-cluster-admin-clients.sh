#!/usr/bin/env bash
# Issue #20's admin calls against a 3-broker cluster, from other clients:
#  (1) CreatePartitions with a manual assignment (librdkafka 2.0.2, tests/progs/rdk_admin):
#      an rf=2 topic from 1 to 3 partitions with replicas "3,1;2,3": etcd's topic key has
#      exactly those rows, the new partitions are led by their first replica (the
#      preferred leader) with both replicas in the ISR; an assignment naming an unknown
#      broker, or the wrong number of rows, is refused and changes nothing.
#  (2) kafkajs 2.2.4 (tests/interop/kafkajs_admin.js, as 111 runs it on one node):
#      createPartitions, alterConfigs, deleteTopicRecords, describeCluster through the
#      three brokers (exits 77 after (1) when kafkajs is not installed).
# Planted: `cluster-assignment-ignored` (tests/mutations/list; the controller's
# CreatePartitions assigns the new partitions itself, ignoring the request's rows)
# fails (1).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd etcdctl
tl_require_prog rdk_admin

tl_cluster_start 3
admin() { timeout 30 "$TL_PROGS/rdk_admin" "$TL_BOOTSTRAP" "$@"; }
topic_key() { ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get "/tally/topics/$1" --print-value-only | head -1; }
"$TL_TALLY" topic create manual --partitions 1 --replication-factor 2 -b "$TL_BOOTSTRAP" ||
	tl_fail "tally topic create failed"
tl_cluster_wait_isr manual 1 2
first=$(topic_key manual | sed -n 's/.* replicas=\([0-9,]*\).*/\1/p')
[ -n "$first" ] || tl_fail "topic key: $(topic_key manual)"

tl_log "(1) CreatePartitions 1 -> 3 with replicas 3,1;2,3"
out=$(admin create-partitions manual 3 '3,9;2,3')
grep -q '^error ' <<<"$out" || tl_fail "an assignment naming broker 9: $out"
out=$(admin create-partitions manual 3 '3,1')
grep -q '^error ' <<<"$out" || tl_fail "one row for two new partitions: $out"
value=$(topic_key manual)
grep -q ' partitions=1 ' <<<"$value" || tl_fail "a refused CreatePartitions changed the topic key: $value"
out=$(admin create-partitions manual 3 '3,1;2,3')
[ "$out" = ok ] || tl_fail "create-partitions manual 3 '3,1;2,3': $out"
value=$(topic_key manual)
grep -q " partitions=3 replicas=$first;3,1;2,3\$" <<<"$value" ||
	tl_fail "the topic key after CreatePartitions: '$value', want replicas=$first;3,1;2,3"
tl_cluster_wait_isr manual 3 2 15
deadline=$((SECONDS + 10))
until [ "$(tl_cluster_leader manual 1)" = 3 ] && [ "$(tl_cluster_leader manual 2)" = 2 ]; do
	[ $SECONDS -lt $deadline ] || tl_fail "leaders of partitions 1 and 2: $(tl_cluster_leader manual 1) $(tl_cluster_leader manual 2), want 3 and 2"
	sleep 0.2
done
for b in 1 3; do [ -d "$TL_TMP/b$b/manual-1" ] || tl_fail "broker $b has no log of partition 1"; done
[ -d "$TL_TMP/b2/manual-1" ] && tl_fail "broker 2, not a replica, has a log of partition 1"

command -v node >/dev/null && [ -d tests/interop/node_modules/kafkajs ] ||
	tl_skip "kafkajs is not installed (make deps runs npm ci in tests/interop); the librdkafka part passed"
tl_log "(2) kafkajs admin through 3 brokers"
KAFKAJS_NO_PARTITIONER_WARNING=1 timeout 120 node tests/interop/kafkajs_admin.js "$TL_BOOTSTRAP" kjs-admin 3 ||
	tl_fail "kafkajs admin against the cluster"
tl_log "ok: a manual assignment is kept as asked; kafkajs's admin calls work across the cluster"
