#!/usr/bin/env bash
# Errors that name the fix (acceptance 6 and the issue's list):
#   the broker killed: tail, produce, topic list, group list and cluster info exit 5
#   within --timeout (plus start-up slack), naming the address;
#   advertised.listeners pointing at a port nobody listens on: exit 5 with a message
#   naming the advertised address and advertised.listeners;
#   an unknown topic with auto-create off: produce and tail exit 3 and name
#   `tally topic create`; with auto-create on, produce creates it;
#   a bad -X key exits 2 naming the key.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }

# Runs tally with @3... and wants exit status @1 and stderr matching ERE @2; echoes ms.
expect()
{
	local want_rc=$1 want_msg=$2 rc=0 start ms
	shift 2
	start=$(date +%s%N)
	"$TL_BIN/tally" "$@" </dev/null >"$TL_TMP/out" 2>"$TL_TMP/err" || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	[ $rc = "$want_rc" ] || tl_fail "tally $* exited $rc, want $want_rc: $(cat "$TL_TMP/err")"
	grep -Eq -- "$want_msg" "$TL_TMP/err" || tl_fail "tally $*: stderr lacks /$want_msg/: $(cat "$TL_TMP/err")"
	echo $ms
}

tl_start_broker --override auto.create.topics.enable=false
tally topic create there -p 1
echo x | tally produce there

tl_log "unknown topic, auto-create off"
expect 3 'topic "nope" does not exist.*auto.create.topics.enable=false.*tally topic create nope' \
	-b "$TL_BROKER" produce nope >/dev/null
expect 3 'topic "nope" does not exist.*tally topic create nope' -b "$TL_BROKER" tail nope -e >/dev/null
expect 3 'does not exist' -b "$TL_BROKER" topic describe nope >/dev/null
expect 2 'linger.msec.*did you mean .linger.ms.' -b "$TL_BROKER" -X linger.msec=5 produce there >/dev/null
tl_stop_broker

tl_log "auto-create on"
tl_start_broker --override auto.create.topics.enable=true
echo y | tally produce made-on-use
[ "$(tally tail made-on-use -e)" = y ] || tl_fail "produce did not auto-create made-on-use"

tl_log "broker killed"
tl_kill9_broker
for cmd in "tail there -e" "topic list" "group list" "cluster info" "produce there"; do
	# shellcheck disable=SC2086
	ms=$(expect 5 "127\.0\.0\.1:$TL_PORT.*(refused|answer)" -b "$TL_BROKER" --timeout 1s $cmd)
	[ "$ms" -lt 3000 ] || tl_fail "tally $cmd took $ms ms with --timeout 1s"
	tl_log "tally $cmd: exit 5 after $ms ms"
done

tl_log "advertised.listeners unreachable"
dead_port=$(tl_pick_port)
tl_start_broker --override "advertised.listeners=PLAINTEXT://127.0.0.1:$dead_port"
ms=$(expect 5 "advertises itself as 127\.0\.0\.1:$dead_port.*advertised.listeners" \
	-b "$TL_BROKER" --timeout 2s tail there -e)
[ "$ms" -lt 6000 ] || tl_fail "the advertised-listener check took $ms ms"
expect 5 "advertised.listeners" -b "$TL_BROKER" --timeout 1s produce there >/dev/null
expect 5 "127\.0\.0\.1:$dead_port" -b "$TL_BROKER" --timeout 1s cluster info >/dev/null
grep -q UNREACHABLE "$TL_TMP/out" || tl_fail "cluster info does not mark the broker unreachable"
tl_stop_broker
tl_log "ok"
