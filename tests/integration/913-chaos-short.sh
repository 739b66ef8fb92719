#!/usr/bin/env bash
# The default suite's Jepsen-style run (tests/chaos/chaos.sh, seed 913, 150 s of mixed
# nemeses: kill -9 of brokers and leaders, SIGSTOP of a leader, kill -9 of etcd, fsync
# failure, full disks, clock jumps) against the 3-broker cluster while two idempotent
# producers, a transactional writer, a committing consumer group, the raw-protocol
# producer that re-sends identical batches (raw_resend) and the transactional copier
# (rdk_chaos copy, judged by copy-once) run; after healing, a read_committed reader reads
# everything and tests/chaos/check.py must find no lost, duplicated, reordered, phantom
# or aborted record, no torn transaction, no offset going back and no copy skipped or
# doubled. About 3 minutes, as issue 15 asks (tests run two at once, so it overlaps
# others; it was 25 s while the suite ran one test at a time; CHAOS_TIME=25 for the
# short form). The kafkajs workloads are left out here (CHAOS_KAFKAJS=0) and run in
# 915, 916 and make chaos.
# tally-test: slow
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHAOS_KAFKAJS=${CHAOS_KAFKAJS:-0} CHAOS_OUT=${CHAOS_OUT:-$root/build/chaos/test-913} exec "$root/tests/chaos/chaos.sh" 913 "${CHAOS_TIME:-150}" mixed
