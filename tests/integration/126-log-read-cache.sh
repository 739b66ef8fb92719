#!/usr/bin/env bash
# The log's read cache (issue 22, log.cache.bytes): with direct I/O a consumer that keeps
# up is served from memory, not from the disk:
#   (1) cache on (the default): a tailing consumer reads every record, byte for byte,
#       while /metrics counts its fetch reads as cache hits and none as misses, and
#       tallyd's read_bytes (/proc/PID/io) does not grow by the data's size;
#   (2) log.cache.bytes=0, same run, as a control: no hits, every fetch read is an
#       O_DIRECT read into memory (tally_log_direct_reads_total; none in (1)), and tallyd
#       reads the data back from storage (read_bytes grows by about its size; not checked
#       where the test directory is tmpfs, which takes O_DIRECT since Linux 6.6 but has
#       no disk).
#   (3) in (2), the records read again from the start by a consumer whose fetches may
#       wait 20 s: each cold read's fetch is answered when its chunk's read completes
#       (the log wakes it), so all of it takes well under 15 s.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat curl

if ! dd if=/dev/zero of="$TL_TMP/dio-probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
	tl_skip "$TL_TMP does not take O_DIRECT"
fi
count=20000 # 100-byte values: ~2.3 MB on disk, within the 4 MiB cache
read_bytes()
{
	awk '$1 == "read_bytes:" { print $2 }' "/proc/$TL_PID/io"
}

# run NAME CACHE_BYTES: a tailing consumer while a producer writes; sets hits, misses
# (fetch reads from the cache and, with the cache on, from the file), read (bytes tallyd
# read from storage meanwhile).
run()
{
	local name=$1 topic=cache-$1
	tl_start_broker --override num.partitions=1 --override log.cache.bytes="$2" \
		--override metrics.listener=http://127.0.0.1:0
	tl_metrics_port
	echo start | timeout 30 kcat -P -q -b "$TL_BROKER" -t "$topic" || tl_fail "kcat -P failed"
	local before
	before=$(read_bytes)
	timeout 60 kcat -C -q -u -b "$TL_BROKER" -t "$topic" -o beginning -c $((count + 1)) \
		-f '%o %s\n' >"$TL_TMP/got-$name" &
	local consumer=$!
	# The consumer is at the end (it read "start") before the producer begins.
	local deadline=$((SECONDS + 30))
	until [ -s "$TL_TMP/got-$name" ]; do
		[ $SECONDS -lt $deadline ] || tl_fail "consumer did not start"
		sleep 0.05
	done
	awk -v n=$count 'BEGIN { v = sprintf("%090d", 0); for (i = 1; i <= n; i++) printf "r%08d-%s\n", i, v }' |
		timeout 60 kcat -P -q -b "$TL_BROKER" -t "$topic" -X acks=all -X linger.ms=5 \
			-X batch.num.messages=200 || tl_fail "kcat -P failed"
	wait "$consumer" || tl_fail "kcat -C failed ($name)"
	read=$(($(read_bytes) - before))
	if [ "$2" = 0 ]; then
		# (3) A fetch of cold data waits for its chunk's read and is answered when that
		# read completes, not at its max wait (20 s here; kcat gets 15 s for it all).
		timeout 15 kcat -C -q -u -b "$TL_BROKER" -t "$topic" -o beginning -c $((count + 1)) \
			-X fetch.wait.max.ms=20000 -f '%o %s\n' >"$TL_TMP/again-$name" ||
			tl_fail "a cold read again from the start did not finish in 15 s (fetch.wait.max.ms=20000)"
		cmp -s "$TL_TMP/got-$name" "$TL_TMP/again-$name" || tl_fail "records differ when read again"
	fi
	hits=$(tl_metric tally_log_cache_hits_total)
	misses=$(tl_metric tally_log_cache_misses_total)
	direct=$(tl_metric tally_log_direct_reads_total)
	tl_stop_broker
	{
		echo "0 start"
		awk -v n=$count 'BEGIN { v = sprintf("%090d", 0); for (i = 1; i <= n; i++) printf "%d r%08d-%s\n", i, i, v }'
	} >"$TL_TMP/want"
	cmp -s "$TL_TMP/want" "$TL_TMP/got-$name" || tl_fail "records differ ($name)"
	tl_log "$name: hits=$hits misses=$misses direct_reads=$direct read_bytes=$read"
}

# (1)
run on 4194304
[ "${hits:-0}" -gt 0 ] || tl_fail "no cache hits with the cache on"
[ "${misses:-x}" = 0 ] || tl_fail "$misses fetch reads went to the file with the cache on"
[ "$read" -lt 1048576 ] || tl_fail "tallyd read $read bytes from storage with the cache on"
[ "${direct:-x}" = 0 ] || tl_fail "$direct O_DIRECT reads with the cache on"

# (2)
run off 0
[ "${hits:-x}" = 0 ] || tl_fail "$hits cache hits with log.cache.bytes=0"
[ "${direct:-0}" -gt 0 ] || tl_fail "no O_DIRECT reads with log.cache.bytes=0 (direct_reads=${direct:-none})"
if [ "$(stat -f -c %T "$TL_TMP")" = tmpfs ]; then
	tl_log "tmpfs: read_bytes of the control not checked"
else
	[ "$read" -ge 1048576 ] || tl_fail "control: only $read bytes read from storage with log.cache.bytes=0"
fi
tl_log "cache on: no storage reads, records identical; off: the data read back from storage"
