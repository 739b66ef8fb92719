#!/usr/bin/env bash
# tally-test: long-only
# Wall-clock jumps (tests/chaos/chaos.sh, scenario clock, seed 31, 60 s): brokers run
# under libfaketime (Debian faketime) and the nemesis steps one broker's clock, or
# every broker's, by +-10 min, +-1 h or +-25 h (past producer.id.expiration.ms), half
# the time killing and restarting the broker while its clock is off. Seed 31 found a
# transaction coordinator that, restarted just after writing PrepareCommit, completed
# the commit without writing a single marker (the data topic was not attached yet and
# counted as deleted): a committed transaction's record was aborted by the next one's
# ABORT (non-atomic). librdkafka and kafkajs clients.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHAOS_OUT=$root/build/chaos/test-916 exec "$root/tests/chaos/chaos.sh" 31 60 clock
