#!/usr/bin/env bash
# kafkajs 2.2.4: transactional send + commit and send + abort; its read_committed
# consumer sees only the committed records. See tests/interop/kafkajs_txn.js.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd node kcat
[ -d tests/interop/node_modules/kafkajs ] || tl_skip "kafkajs is not installed (make deps runs npm ci in tests/interop)"
tl_start_broker
KAFKAJS_NO_PARTITIONER_WARNING=1 node tests/interop/kafkajs_txn.js "$TL_BROKER" kjs-txn || tl_fail "kafkajs transactions failed"
n=$(kcat -C -q -b "$TL_BROKER" -t kjs-txn -e -X isolation.level=read_uncommitted -f '%s\n' | wc -l)
[ "$n" = 8 ] || tl_fail "read_uncommitted should see all 8 records (aborted ones too), saw $n"
tl_stop_broker
