#!/usr/bin/env bash
# ListOffsets by timestamp finds the first record at or after the time, inside a batch
# too (tests/interop/kafkajs_offsets_by_time.js), as Kafka does.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd node
[ -d tests/interop/node_modules/kafkajs ] || tl_skip "kafkajs is not installed (make deps runs npm ci in tests/interop)"
tl_start_broker
KAFKAJS_NO_PARTITIONER_WARNING=1 node tests/interop/kafkajs_offsets_by_time.js "$TL_BROKER" by-time ||
	tl_fail "ListOffsets by timestamp is not record-exact"
tl_stop_broker
