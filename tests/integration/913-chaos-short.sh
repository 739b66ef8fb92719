#!/usr/bin/env bash
# One short Jepsen-style run (tests/chaos/chaos.sh, seed 913, 25 s, mixed nemeses:
# kill -9 of brokers and leaders, SIGSTOP of a leader, kill -9 of etcd, fsync failure)
# against the 3-broker cluster while two idempotent producers and a transactional
# writer run; after healing, a read_committed reader reads everything and
# tests/chaos/check.py must find no lost, duplicated, reordered, phantom or aborted
# record and no torn transaction. The issue asked for about 3 minutes; the default
# suite's budget on 2 cores allows well under one (make chaos runs the long set).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHAOS_OUT=${CHAOS_OUT:-$root/build/chaos/test-913} exec "$root/tests/chaos/chaos.sh" 913 25 mixed
