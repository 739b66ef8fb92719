#!/usr/bin/env bash
# The -o offset grammar of tally tail (acceptance 3), one check per form, on one partition
# of records v0..v19 with timestamps T0 + i seconds (and two records in the last hour):
#   beginning, end, N, -N, +N, N:M (stop exclusive), :end, N:+M, -N:end, @TIME as RFC 3339
#   (UTC and with an offset), a date, epoch ms, -1h, @T1:@T2, and -e.
# A malformed spec exits 2 with a message before any connection: against an address
# where nothing listens it must answer at once, never with 5.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }

tl_log "malformed specs: exit 2, no connection"
for spec in bogus 5:x 10:5 '@2024-13-01' '@yesterday' '5:' '-x' '+' '@-1y' '1:beginning' '@2024-05-01T25:00:00Z'; do
	rc=0
	start=$(date +%s%N)
	"$TL_BIN/tally" -b 127.0.0.1:1 --timeout 20s tail t -o "$spec" >"$TL_TMP/out" 2>&1 || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	[ $rc = 2 ] || tl_fail "-o '$spec' exited $rc, want 2: $(cat "$TL_TMP/out")"
	[ $ms -lt 2000 ] || tl_fail "-o '$spec' took $ms ms: it must not try to connect"
	grep -qi 'offset\|time\|position\|stop' "$TL_TMP/out" || tl_fail "-o '$spec': no message: $(cat "$TL_TMP/out")"
done

tl_start_broker --override num.partitions=1
t0=1714564800000 # 2024-05-01T12:00:00Z
for i in $(seq 0 19); do
	printf '{"value":"v%d","timestamp":%d}\n' "$i" $((t0 + i * 1000))
done | tally produce g --json
now=$(date +%s%3N)
printf '{"value":"recent-1","timestamp":%d}\n{"value":"recent-2","timestamp":%d}\n' \
	$((now - 1800000)) $((now - 60000)) | tally produce g --json

# Runs tail with @1 and wants the values @2... (space-separated).
want()
{
	local spec=$1 got
	shift
	got=$(tally tail g -o "$spec" -e | tr '\n' ' ' | sed 's/ $//')
	[ "$got" = "$*" ] || tl_fail "-o '$spec': got \"$got\", want \"$*\""
}
all="v0 v1 v2 v3 v4 v5 v6 v7 v8 v9 v10 v11 v12 v13 v14 v15 v16 v17 v18 v19 recent-1 recent-2"
want beginning "$all"
want end ""
want 18 "v18 v19 recent-1 recent-2"
want -3 "v19 recent-1 recent-2"
want +20 "recent-1 recent-2"
want 3:6 "v3 v4 v5"
want :end "$all"
want 5:+2 "v5 v6"
want -4:-2 "v18 v19"
want @2024-05-01T12:00:17Z "v17 v18 v19 recent-1 recent-2"
want @2024-05-01T14:00:18+02:00 "v18 v19 recent-1 recent-2"
want @2024-05-01T12:00:16.500Z "v17 v18 v19 recent-1 recent-2"
want @$((t0 + 19000)) "v19 recent-1 recent-2"
want @-1h "recent-1 recent-2"
want @-10m "recent-2"
want @2024-05-01T12:00:02Z:@2024-05-01T12:00:05Z "v2 v3 v4"
# A date is local midnight: records of 2024-05-01 come after the 1st, none after the 2nd.
if [ "$(date -d '2024-05-01 00:00' +%s)000" -le $t0 ]; then
	want @2024-05-01 "$all"
fi
want @2024-05-02:end "recent-1 recent-2"
# Without -e a bounded range ends by itself.
got=$(tally tail g -o 0:2 | tr '\n' ' ')
[ "$got" = "v0 v1 " ] || tl_fail "-o 0:2 without -e: \"$got\""
# -e alone reads from the beginning to the end as of start.
[ "$(tally tail g -e | wc -l)" = 22 ] || tl_fail "-e alone did not read the whole topic"
tl_stop_broker
tl_log "ok"
