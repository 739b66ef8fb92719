#!/usr/bin/env bash
# libtally consumer groups (tests/progs/tally_group.c): two members subscribe to one
# 4-partition topic and must split it (disjoint, non-empty, covering every partition);
# together they read 20,000 records exactly once, each from its own partitions, commit
# and leave; a third member then reads exactly the 20,000 records produced after the
# commit, starting from the committed offsets.
# Then static membership (-S): a second consumer joining with the first one's
# group.instance.id fences it (FENCED_INSTANCE_ID), which is fatal for the first: it stops
# rejoining, its polls and commits return the error, and the second keeps the partitions.
# Then the rebalance callback (-R): A alone is told ASSIGNED every partition and reads
# half of 20,000 records; B joins. A is told REVOKED before its partitions go and
# commits there (in its generation); B must start exactly there: A and B read each
# record once, each only from partitions it was told it owns. A then stops polling past
# its 5 s session: B is told every partition, A is told LOST (not REVOKED) and rejoins.
# Destroy tells REVOKED; a third member reads exactly the records produced after.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_prog tally_group

tl_start_broker --override group.initial.rebalance.delay.ms=0 \
	--override group.min.session.timeout.ms=1000
timeout 120 "$TL_PROGS/tally_group" -b "$TL_BROKER" -t libtally-group -n 20000 -p 4 >&2 ||
	tl_fail "libtally group members did not share the topic exactly once"
tl_grep_log 'group: stable group=group-libtally-group generation=[0-9]+ members=2' ||
	tl_fail "tallyd never saw a stable generation with both members"
timeout 120 "$TL_PROGS/tally_group" -b "$TL_BROKER" -t libtally-static -p 2 -S same >&2 ||
	tl_fail "a libtally member fenced by its group.instance.id did not stop"
timeout 120 "$TL_PROGS/tally_group" -b "$TL_BROKER" -t libtally-handover -n 20000 -p 4 -R >&2 ||
	tl_fail "libtally members did not hand partitions over through the rebalance callback"
tl_stop_broker
tl_log "ok"
