#!/usr/bin/env bash
# Fencing: a second producer with the same transactional.id fences the first, whose
# next call fails fatally; the first's open transaction is aborted (a read_uncommitted
# reader sees its record, a read_committed one does not), and the new instance commits.
# InitProducerId naming the instance (KIP-360) bumps its epoch, answers a retry of that
# bump with the same epoch, and fences an older one (rawproto txn-bump). Transactional
# records need their own transactional_id in the Produce request: none is refused
# (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka even without an authorizer), another
# id's is INVALID_PRODUCER_ID_MAPPING, so nobody writes into another's transaction
# (rawproto txn-ids).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog rdk_txn_copier rawproto
tl_start_broker
timeout 60 "$TL_PROGS/rdk_txn_copier" fence "$TL_BROKER" fenced txn-fence 2>"$TL_TMP/fence.log" ||
	tl_fail "the zombie was not fenced, or the new instance failed: $(tail -3 "$TL_TMP/fence.log")"
read_all() { kcat -C -q -b "$TL_BROKER" -t fenced -e -X isolation.level="$1" -f '%s\n'; }
[ "$(read_all read_committed)" = fresh ] || tl_fail "read_committed saw: $(read_all read_committed | tr '\n' ' ')"
[ "$(read_all read_uncommitted | sort | tr '\n' ' ')" = "fresh zombie " ] ||
	tl_fail "read_uncommitted saw: $(read_all read_uncommitted | tr '\n' ' ')"
tl_grep_log 'txn: aborting id=txn-fence .*newer instance' || tl_fail "no abort of the fenced transaction in the log"
# KIP-360 on the wire: a running instance's bump, its retry (the same epoch back, no
# second bump), an older epoch fenced, a producer id without an epoch refused.
"$TL_PROGS/rawproto" "$TL_BROKER" txn-bump txn-bump >&2 || tl_fail "rawproto txn-bump failed"
"$TL_PROGS/rawproto" "$TL_BROKER" txn-ids txn-ids txn-ids >&2 || tl_fail "rawproto txn-ids failed"
tl_stop_broker
