#!/usr/bin/env bash
# A leader with an unreplicated tail loses leadership: both followers are killed, the
# leader appends records they never fetch (acks=1 is not answered: it waits for the
# ISR), then the leader is killed and the followers restart. (Paused followers would
# not do: a fetch the leader answered while they were stopped waits in their sockets
# and replicates the tail when they resume.) One of them is elected at
# epoch 1 and takes new writes. When the old leader restarts it follows, learns from
# its first fetch that its log diverged after epoch 0's end (KIP-595 truncation on
# fetch) and cuts its tail before catching up.
# Checks: the restarted broker logged the truncation; its log passes tally log check
# (leader-epoch checkpoint included) and holds the same batches as the others; a
# consumer sees exactly the acknowledged records, none of the unreplicated tail.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat
tl_require_prog rawproto

topic=diverge
tl_cluster_start 3 --override min.insync.replicas=2
"$TL_TALLY" topic create "$topic" --partitions 1 --replication-factor 3 -b "$TL_BOOTSTRAP" ||
	tl_fail "topic create failed"
tl_cluster_wait_isr "$topic" 1 3

seq 1 100 | sed 's/^/first-/' | timeout 60 kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -p 0 -X acks=all ||
	tl_fail "first produce failed"
leader=$(tl_cluster_leader "$topic" 0)
[ -n "$leader" ] && [ "$leader" -ge 1 ] || tl_fail "no leader for $topic-0"
followers=$(for b in 1 2 3; do if [ "$b" != "$leader" ]; then echo "$b"; fi; done)
tl_log "leader $leader; killing followers $(echo $followers)"
for b in $followers; do tl_cbroker_kill9 "$b"; done

# Appended by the leader, never replicated, never acknowledged.
seq 1 50 | sed 's/^/tail-/' | timeout 20 kcat -P -b "127.0.0.1:${TL_CPORT[$leader]}" -t "$topic" -p 0 \
	-X acks=1 -X message.timeout.ms=1500 -X topic.metadata.refresh.interval.ms=100000 \
	2>"$TL_TMP/tail.err" || true
tl_cbroker_kill9 "$leader"
"$TL_TALLY" log dump "$TL_TMP/b$leader/$topic-0" | grep -c baseOffset >"$TL_TMP/batches" || true
tl_log "old leader killed with $(cat "$TL_TMP/batches") batches on disk"
for b in $followers; do tl_cbroker_start "$b"; done

deadline=$(($(date +%s) + 30))
while :; do
	new=$(tl_cluster_leader "$topic" 0)
	[ -n "$new" ] && [ "$new" != "$leader" ] && [ "$new" -ge 1 ] && break
	[ "$(date +%s)" -lt "$deadline" ] || tl_fail "no new leader 30 s after the kill"
	sleep 0.2
done
tl_log "new leader $new"
seq 1 100 | sed 's/^/second-/' | timeout 60 kcat -P -b "$TL_BOOTSTRAP" -t "$topic" -p 0 -X acks=all ||
	tl_fail "second produce failed"

tl_cbroker_start "$leader"
tl_cluster_wait_isr "$topic" 1 3 60
tl_cgrep "$leader" 'fetcher: truncating a diverged log topic=diverge' ||
	tl_fail "broker $leader never truncated its unreplicated tail"

timeout 30 kcat -C -q -b "$TL_BOOTSTRAP" -t "$topic" -o beginning -e -f '%s\n' >"$TL_TMP/got"
grep -c '^first-' "$TL_TMP/got" | grep -qx 100 || tl_fail "not all first records were read"
grep -c '^second-' "$TL_TMP/got" | grep -qx 100 || tl_fail "not all second records were read"
grep -q '^tail-' "$TL_TMP/got" && tl_fail "an unacknowledged, unreplicated record was served"

# KIP-320 fencing on the wire: the new leader serves its own epoch, fences an older one
# and does not know a newer one; the old leader, a follower now, refuses Produce and a
# consumer's Fetch with NOT_LEADER_OR_FOLLOWER.
epoch=$(tl_cluster_epoch "$topic" 0)
[ -n "$epoch" ] && [ "$epoch" -ge 1 ] || tl_fail "leader epoch of $topic-0 is '$epoch', want >= 1 after the failover"
timeout 30 "$TL_PROGS/rawproto" "127.0.0.1:${TL_CPORT[$new]}" leader-epoch "$topic" "$epoch" >&2 ||
	tl_fail "the new leader does not check the client's leader epoch"
timeout 30 "$TL_PROGS/rawproto" "127.0.0.1:${TL_CPORT[$leader]}" not-leader "$topic" >&2 ||
	tl_fail "the old leader does not refuse Produce and Fetch"

for b in 1 2 3; do tl_cbroker_stop "$b"; done
for b in 1 2 3; do
	"$TL_TALLY" log dump "$TL_TMP/b$b/$topic-0" | grep -Eo 'baseOffset [0-9]+|crc 0x[0-9a-f]+|leaderEpoch [0-9]+' >"$TL_TMP/d$b"
done
cmp -s "$TL_TMP/d$leader" "$TL_TMP/d$new" || tl_fail "the old leader's log differs from the new leader's"
"$TL_TALLY" log check "$TL_TMP/b$leader/$topic-0" >"$TL_TMP/check" 2>&1 || { cat "$TL_TMP/check" >&2; tl_fail "tally log check failed"; }
cat "$TL_TMP/check" >&2
tl_log "ok"
