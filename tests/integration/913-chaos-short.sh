#!/usr/bin/env bash
# One short Jepsen-style run (tests/chaos/chaos.sh, seed 913, 25 s, mixed nemeses:
# kill -9 of brokers and leaders, SIGSTOP of a leader, kill -9 of etcd, fsync failure)
# against the 3-broker cluster while two idempotent producers and a transactional
# writer run; after healing, a read_committed reader reads everything and
# tests/chaos/check.py must find no lost, duplicated, reordered, phantom or aborted
# record and no torn transaction; with them the raw-protocol producer that re-sends
# identical batches (raw_resend) and the transactional copier (rdk_chaos copy, judged
# by copy-once) run, as in every chaos.sh scenario. The issue asked for about 3 minutes; the default
# suite's budget on 2 cores allows well under one (make chaos runs the long set).
# The mixed draws include full disks and clock jumps; the kafkajs workloads are left
# out here (CHAOS_KAFKAJS=0: with them 913 took 30.6-35.6 s and once 62.7 s, without
# them 30.6-35.5 s; it may take 35 s) and run in 915, 916 and make chaos.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHAOS_KAFKAJS=${CHAOS_KAFKAJS:-0} CHAOS_OUT=${CHAOS_OUT:-$root/build/chaos/test-913} exec "$root/tests/chaos/chaos.sh" 913 25 mixed
