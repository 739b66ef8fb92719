#!/usr/bin/env bash
# unclean.leader.election.enable=true, and a follower whose log starts above the end of
# the replica elected uncleanly. Per topic: the two followers are killed, the leader
# takes records alone and DeleteRecords removes them all; one follower (C) restarts,
# finds its log below the leader's start and starts it afresh there (no leader epochs
# left in it). Then the leader and C are killed and the other follower (X), which never
# had those records, is elected uncleanly and takes new writes. C restarts with a log
# that starts past X's end:
#   stuck - C has no epochs: its fetch is past X's end and was answered
#           OFFSET_OUT_OF_RANGE with nothing to act on, forever;
#   spin  - C took records after the fresh start, so it has an epoch: X answers with
#           a divergence at its end, below C's log start, and a truncation that stopped
#           at the log start diverged again at once (a fetch loop at full speed).
# Checks: C starts afresh at X's end, rejoins the ISR, and holds X's batches; a consumer
# reads the records X took (the uncleanly lost ones are gone, as Kafka's would be).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../cluster.sh"
tl_require_cmd kcat

tl_cluster_start 3 --override unclean.leader.election.enable=true
others() { for b in 1 2 3; do [ "$b" = "$1" ] || echo "$b"; done; }
produce() # TOPIC PREFIX COUNT ACKS
{
	seq 1 "$3" | sed "s/^/$2-/" | timeout 60 kcat -P -b "$TL_BOOTSTRAP" -t "$1" -p 0 \
		-X acks="$4" -X message.timeout.ms=30000 || tl_fail "produce $2 to $1 failed"
}

phase()
{
	local topic=$1 variant=$2 leader x c new got
	for b in 1 2 3; do tl_cbroker_alive "$b" || tl_cbroker_start "$b"; done
	"$TL_TALLY" topic create "$topic" -p 1 -r 3 -b "$TL_BOOTSTRAP" || tl_fail "create $topic"
	tl_cluster_wait_isr "$topic" 1 3 60
	leader=$(tl_cluster_leader "$topic" 0)
	[ -n "$leader" ] && [ "$leader" -ge 1 ] || tl_fail "no leader for $topic-0"
	read -r x c < <(others "$leader" | xargs)
	tl_log "$topic: leader $leader, X $x, C $c"
	tl_cbroker_kill9 "$x"
	tl_cbroker_kill9 "$c"
	produce "$topic" old 100 1 # answered once the ISR shrinks to the leader
	"$TL_TALLY" topic delete-records "$topic" 0 end -b "127.0.0.1:${TL_CPORT[$leader]}" >/dev/null ||
		tl_fail "$topic: delete-records failed"

	tl_cbroker_start "$c"
	tl_cluster_wait_isr "$topic" 1 2 60
	tl_cwait_log "$c" "log: truncated fully dir=.*/$topic-0 start=100" 10
	[ "$variant" = spin ] && produce "$topic" after 10 all

	tl_cbroker_kill9 "$leader"
	tl_cbroker_kill9 "$c"
	tl_cbroker_start "$x"
	tl_cluster_wait_leader "$topic" 0 "$x" 30 "$topic: broker $x was not elected uncleanly"
	produce "$topic" new 20 all
	tl_cbroker_start "$c"
	tl_cluster_wait_isr "$topic" 1 2 30
	tl_cgrep "$c" "log: truncated fully dir=.*/$topic-0 start=0" ||
		tl_fail "$topic: broker $c did not start its log afresh at $x's end"
	got=$(tl_cgrep "$c" "fetcher: truncating a diverged log topic=$topic " && echo yes || echo no)
	[ "$got" = yes ] || tl_fail "$topic: broker $c logged no divergence"
	n=$(grep -c "fetcher: truncating a diverged log topic=$topic " <(tl_log_text "$TL_TMP/tallyd-$c.log"))
	[ "$n" -le 3 ] || tl_fail "$topic: broker $c truncated $n times (a divergence loop)"

	timeout 30 kcat -C -q -b "$TL_BOOTSTRAP" -t "$topic" -o beginning -e -f '%s\n' >"$TL_TMP/$topic.got"
	[ "$(grep -c '^new-' "$TL_TMP/$topic.got")" = 20 ] || tl_fail "$topic: not every new record read"
	[ "$(wc -l <"$TL_TMP/$topic.got")" = 20 ] || tl_fail "$topic: records besides the new ones read"
	for b in "$x" "$c"; do
		"$TL_TALLY" log dump "$TL_TMP/b$b/$topic-0" |
			grep -Eo 'baseOffset [0-9]+|crc 0x[0-9a-f]+' >"$TL_TMP/$topic.d$b"
	done
	cmp -s "$TL_TMP/$topic.d$x" "$TL_TMP/$topic.d$c" || tl_fail "$topic: C's batches differ from X's"
	[ -s "$TL_TMP/$topic.d$c" ] || tl_fail "$topic: C holds no batch"
}

phase stuck stuck
phase spin spin
for b in 1 2 3; do tl_cbroker_alive "$b" && tl_cbroker_stop "$b"; done
tl_log "ok"
