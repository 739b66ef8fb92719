#!/usr/bin/env bash
# libtally re-authenticates (KIP-368): with connections.max.reauth.ms=1500 the broker closes
# a connection whose SASL session has ended at its next request. A tally producer sending
# a record every 75 ms for 6 s and a tally tail following the topic meanwhile (each one
# connection, four lifetimes long) drain their connection and re-authenticate on it
# before each session ends: every record arrives once and in order, the broker logs
# re-authentications of User:dave, and never a session that expired.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
now_ms() { date +%s%3N; }

PW='dave-pw-368'
tl_start_broker --override listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT \
	--override sasl.enabled.mechanisms=SCRAM-SHA-512 \
	--override connections.max.reauth.ms=1500 \
	--add-scram "SCRAM-SHA-512=[name=dave,password=$PW]"
X=(-X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-512
	-X sasl.username=dave -X "sasl.password=$PW")
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "${X[@]}" "$@"; }

tally topic create reauth -p 1
"$TL_BIN/tally" -b "$TL_BROKER" "${X[@]}" tail reauth >"$TL_TMP/out" 2>"$TL_TMP/err" &
tail_pid=$!
sleep 1 # let it resolve its start (the end) before producing

for i in $(seq 1 80); do
	echo "r-$i"
	sleep 0.075
done | tally produce reauth || tl_fail "tally produce across session lifetimes failed"

deadline=$(($(now_ms) + 10000))
while [ "$(wc -l <"$TL_TMP/out")" -lt 80 ]; do
	[ "$(now_ms)" -lt "$deadline" ] ||
		tl_fail "tail shows $(wc -l <"$TL_TMP/out") of 80 records 10 s on: $(cat "$TL_TMP/err")"
	sleep 0.05
done
kill -INT "$tail_pid"
wait "$tail_pid" || true
diff <(seq 1 80 | sed 's/^/r-/') "$TL_TMP/out" >/dev/null ||
	tl_fail "tail did not show r-1..r-80 once each and in order: $(head -c 400 "$TL_TMP/out")"

n=$(tl_log_text "$TL_TMP/tallyd.log" | grep -c 'SASL re-authenticated principal=User:dave' || true)
tl_log "re-authentications: $n"
# Two connections of about 7 s at 85-95 % of 1.5 s: at least 4 each.
[ "$n" -ge 8 ] || tl_fail "only $n re-authentications of User:dave (want >= 8)"
if tl_grep_log 'SASL session expired'; then
	tl_fail "the broker closed a libtally connection whose session expired: $(tl_log_text "$TL_TMP/tallyd.log" | grep 'session expired' | head -3)"
fi
tl_stop_broker
