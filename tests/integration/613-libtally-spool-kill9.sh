#!/usr/bin/env bash
# The producer's durable spool (spool.dir) against kill -9: a service
# (tests/progs/tally_spool_service.c) produces 100,000 records with the spool on and is
# kill -9'd at random points, up to 12 times, then left to finish. Each run scans the
# spool for the last record the previous one persisted and goes on after it; the
# producer resends what the broker had not stored, with the same producer id and
# sequences. The topic must then hold each record exactly once, and some run must have
# resent records (otherwise the kills proved nothing).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat
tl_require_prog tally_spool_service
count=100000
max_kills=12
tl_start_broker --override num.partitions=3
spool=$TL_TMP/spool

kills=0
finished=0
deadline=$((SECONDS + 45))
while [ "$SECONDS" -lt "$deadline" ]; do
	"$TL_PROGS/tally_spool_service" "$TL_BROKER" spooled "$spool" "$count" 25000 \
		2>>"$TL_TMP/service.log" &
	service=$!
	if [ "$kills" -lt "$max_kills" ]; then
		sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.05 + (r % 500) / 1000 }')"
		if tl_pid_alive "$service"; then
			kill -9 "$service"
			wait "$service" 2>/dev/null || true
			kills=$((kills + 1))
			continue
		fi
	fi
	if wait "$service"; then
		finished=1
		break
	fi
	tl_fail "the service failed: $(tail -3 "$TL_TMP/service.log")"
done
[ "$finished" = 1 ] || tl_fail "the service did not finish in time: $(tail -3 "$TL_TMP/service.log")"
tl_log "service finished after $kills kill -9s: $(grep 'service: done' "$TL_TMP/service.log")"
resent=$(grep -c 'a resent record was delivered' "$TL_TMP/service.log" || true)
[ "$kills" -lt 3 ] || [ "$resent" -gt 0 ] ||
	tl_fail "no run resent a spooled record although the service was killed $kills times"

timeout 30 kcat -C -q -b "$TL_BROKER" -t spooled -e -f '%s\n' | sort >"$TL_TMP/topic.txt"
dups=$(uniq -d "$TL_TMP/topic.txt" | wc -l)
[ "$dups" = 0 ] ||
	tl_fail "the topic holds $dups records more than once, e.g. $(uniq -d "$TL_TMP/topic.txt" | head -3 | tr '\n' ' ')"
seq -f 'r-%07g' 0 $((count - 1)) | diff -q - "$TL_TMP/topic.txt" >/dev/null ||
	tl_fail "the topic is not each record exactly once ($(wc -l <"$TL_TMP/topic.txt") lines; missing e.g. $(seq -f 'r-%07g' 0 $((count - 1)) | comm -23 - "$TL_TMP/topic.txt" | head -3 | tr '\n' ' '))"
tl_log "topic: $count records, each once; $resent of $kills restarts resent spooled records"
tl_stop_broker
