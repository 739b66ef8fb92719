#!/usr/bin/env bash
# tally-test: long-only
# The long chaos runs: five minutes of mixed nemeses (seed 914), a minute of fsync
# failures (seed 5: before the fetcher fix, a follower with a failed log fetched and
# refused the same batch tens of thousands of times), then the dedupe-off
# scenario, in which brokers append producer retries again (test.fault.dedupe.off)
# while leaders are paused past the producer's request timeout, and the checker must
# report the duplicates: proof that the harness can fail.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHAOS_OUT=$root/build/chaos/test-914 "$root/tests/chaos/chaos.sh" 914 300 mixed
CHAOS_OUT=$root/build/chaos/test-914-fsync "$root/tests/chaos/chaos.sh" 5 60 fsync
CHAOS_OUT=$root/build/chaos/test-914-dedupe-off "$root/tests/chaos/chaos.sh" 915 40 dedupe-off
