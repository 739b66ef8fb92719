#!/usr/bin/env bash
# tally-test: long-only
# Full disks and fsync failures (tests/chaos/chaos.sh, scenario disk, seed 22, 60 s):
# each broker's log.dirs is a tmpfs of its own which the nemesis fills with a ballast
# file, so its writes fail with ENOSPC (and, one draw in three, a broker restarts with
# failing fdatasyncs), half the time restarting the broker on the full disk. The
# brokers must acknowledge nothing they could not write or sync (the checker: no lost,
# duplicated or torn record), start on a full disk, and come back when there is space;
# a replica whose log failed hands its leadership away or leaves the ISR, and a
# follower whose leader-epoch checkpoint cannot be written does not refetch the same
# batch at once (chaos.sh fails a run with 2,000 refused replica batches or more).
# librdkafka and kafkajs clients. Needs root (tmpfs mounts).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "[915-chaos-disk] SKIP: needs root for the tmpfs mounts" >&2; exit 77; }
CHAOS_OUT=$root/build/chaos/test-915 exec "$root/tests/chaos/chaos.sh" 22 60 disk
