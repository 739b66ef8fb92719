#!/usr/bin/env bash
# libtally re-authenticates (KIP-368): with connections.max.reauth.ms=1500 the broker closes
# a connection whose SASL session has ended at its next request. Over SASL_PLAINTEXT and
# over SASL_SSL (TLS kept, SCRAM again on it), a tally producer sending a record every
# 75 ms for 6 s and a tally tail following the topic meanwhile drain their connections
# and re-authenticate on them before each session ends: every record arrives once and
# in order, the broker logs re-authentications of User:dave, and never a session that
# expired; /metrics counts as many re-authentications and no expired connection. A
# group tail paused for two lifetimes (stdout blocked) logs in again before it sends.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$TL_ROOT/tests/certs.sh"
tl_require_cmd openssl curl
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
now_ms() { date +%s%3N; }

certs=$TL_TMP/certs
tl_make_certs "$certs" || tl_fail "cannot make test certificates"
PW='dave-pw-368'
tl_pick_two_ports
ssl_port=$TL_PORT2
tl_start_broker --override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT,SASL_SSL://127.0.0.1:$ssl_port" \
	--override "advertised.listeners=PLAINTEXT://127.0.0.1:$TL_PORT,SASL_SSL://localhost:$ssl_port" \
	--override listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL \
	--override "ssl.keystore.location=$certs/broker.pem" \
	--override sasl.enabled.mechanisms=SCRAM-SHA-512 \
	--override connections.max.reauth.ms=1500 --override metrics.listener=http://127.0.0.1:0 \
	--add-scram "SCRAM-SHA-512=[name=dave,password=$PW]"

tl_metrics_port

reauths() { tl_log_text "$TL_TMP/tallyd.log" | grep -c 'SASL re-authenticated principal=User:dave' || true; }

# round NAME BROKER KEY=VALUE...: a producer and a tail across four session lifetimes.
round()
{
	local name=$1 broker=$2 x=() kv before n deadline tail_pid
	shift 2
	for kv in "$@"; do x+=(-X "$kv"); done
	before=$(reauths)
	"$TL_BIN/tally" -b "$broker" --timeout 10s "${x[@]}" topic create "$name" -p 1
	"$TL_BIN/tally" -b "$broker" "${x[@]}" tail "$name" >"$TL_TMP/$name.out" 2>"$TL_TMP/$name.err" &
	tail_pid=$!
	sleep 1 # let it resolve its start (the end) before producing
	for i in $(seq 1 80); do
		echo "r-$i"
		sleep 0.075
	done | "$TL_BIN/tally" -b "$broker" --timeout 10s "${x[@]}" produce "$name" ||
		tl_fail "$name: tally produce across session lifetimes failed"
	deadline=$(($(now_ms) + 10000))
	while [ "$(wc -l <"$TL_TMP/$name.out")" -lt 80 ]; do
		[ "$(now_ms)" -lt "$deadline" ] ||
			tl_fail "$name: tail shows $(wc -l <"$TL_TMP/$name.out") of 80 records 10 s on: $(cat "$TL_TMP/$name.err")"
		sleep 0.05
	done
	kill -INT "$tail_pid"
	wait "$tail_pid" || true
	diff <(seq 1 80 | sed 's/^/r-/') "$TL_TMP/$name.out" >/dev/null ||
		tl_fail "$name: tail did not show r-1..r-80 once each and in order: $(head -c 400 "$TL_TMP/$name.out")"
	n=$(($(reauths) - before))
	tl_log "$name: re-authentications: $n"
	# Two connections of about 7 s at 85-95 % of 1.5 s: at least 4 each.
	[ "$n" -ge 8 ] || tl_fail "$name: only $n re-authentications of User:dave (want >= 8)"
	if tl_grep_log 'SASL session expired'; then
		tl_fail "$name: the broker closed a libtally connection whose session expired: $(tl_log_text "$TL_TMP/tallyd.log" | grep 'session expired' | head -3)"
	fi
}

round plain "$TL_BROKER" security.protocol=sasl_plaintext sasl.mechanisms=SCRAM-SHA-512 \
	sasl.username=dave "sasl.password=$PW"
round tls "localhost:$ssl_port" security.protocol=sasl_ssl "ssl.ca.location=$certs/ca.pem" \
	sasl.mechanisms=SCRAM-SHA-512 sasl.username=dave "sasl.password=$PW"
# A consumer that stops polling past its re-authentication time (its stdout blocked on
# a full pipe) must log in again before its next request, not send it on the session
# that ended; as a group member it then commits where it stopped.
x=(-X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=dave
	-X "sasl.password=$PW")
"$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "${x[@]}" topic create slow -p 1
head -c 1000 /dev/zero | tr '\0' s >"$TL_TMP/rec"
for i in $(seq 1 300); do echo "$i $(cat "$TL_TMP/rec")"; done |
	"$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "${x[@]}" produce slow
"$TL_BIN/tally" -b "$TL_BROKER" --timeout 20s "${x[@]}" tail slow -g slow-readers -o beginning -n 300 |
	(sleep 3; cat) >"$TL_TMP/slow.out" || tl_fail "the paused group tail failed"
[ "$(wc -l <"$TL_TMP/slow.out")" = 300 ] || tl_fail "the paused tail printed $(wc -l <"$TL_TMP/slow.out") of 300"
rest=$("$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "${x[@]}" tail slow -g slow-readers -e | wc -l)
[ "$rest" = 0 ] || tl_fail "the group resumed $rest records before its end (its commit was lost)"

# /metrics counts them too, and no connection closed for an ended session.
logged=$(reauths)
counted=$(tl_metric tally_successful_reauthentication_total)
[ "$counted" = "$logged" ] ||
	tl_fail "tally_successful_reauthentication_total is '$counted', the log has $logged"
[ "$(tl_metric tally_expired_connections_killed_total)" = 0 ] ||
	tl_fail "tally_expired_connections_killed_total is '$(tl_metric tally_expired_connections_killed_total)', want 0"
[ "$(tl_metric tally_successful_authentication_total)" -ge 4 ] ||
	tl_fail "tally_successful_authentication_total is '$(tl_metric tally_successful_authentication_total)', want >= 4"
tl_stop_broker
