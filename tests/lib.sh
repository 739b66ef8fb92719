# lib.sh - shared helpers of the integration tests; source it first:
#   . "$(dirname "$0")/../lib.sh"
# It changes to the repository root and sets:
#   TL_ROOT    the repository root
#   TL_BIN     build/bin (tallyd, tally, tally-bench), or $TL_BIN_DIR if set
#   TL_TALLYD  the tallyd binary the tests start: $TALLYD if set (e.g. build/asan/tallyd
#              to run a suite under ASan+UBSan), else $TL_BIN/tallyd
#   TL_PROGS   build/release/tests/progs (tests/progs/*.c, built by `make release`), or
#              $TL_PROGS_DIR if set (make test-asan-clients: the clients under ASan)
#   TL_NAME    the test's name (script name without .sh)
#   TL_TMP     a fresh per-test temp dir; removed on exit unless the test failed
#   TL_LONG    1 under `make test-long` (TALLY_TEST_LONG=1), else 0: scale up with it
# and, once tl_start_broker ran:
#   TL_DATA    the broker's log.dirs (under TL_TMP; kept across restarts)
#   TL_PORT    its port, fixed for the test so restarts keep it
#   TL_BROKER  127.0.0.1:$TL_PORT, for -b / bootstrap.servers
#   TL_PID     the running tallyd's pid
#
# Functions:
#   tl_start_broker [tallyd args...]  start (or restart) tallyd; waits for "listening on"
#   tl_pick_two_ports                 TL_PORT, TL_BROKER and TL_PORT2 (a second listener's)
#   tl_stop_broker                    SIGTERM, wait; fails unless tallyd exits 0
#   tl_kill9_broker                   kill -9 and reap; fails unless tallyd was running and
#                                     died of that SIGKILL
#   tl_broker_alive                   true while tallyd runs
#   tl_pid_alive PID                  true while PID runs (a zombie counts as stopped)
#   tl_log MSG / tl_fail MSG / tl_skip MSG
#   tl_require_cmd CMD...             skip unless each command is installed
#   tl_require_prog NAME...           fail unless $TL_PROGS/NAME was built
#   tl_grep_log ERE                   true when tallyd.log has a line matching ERE (in the
#                                     text layout, see tl_log_text)
#   tl_log_text FILE...               tallyd log lines in the text layout, whatever
#                                     log.format wrote (logfmt, the default, is turned
#                                     back: "TS LEVEL message key=value ...")
#   tl_metrics_port [LOG]             sets TL_MPORT to the metrics port the newest start
#                                     logged in LOG (tallyd.log); fails when none was
#                                     (start with metrics.listener=http://127.0.0.1:0)
#   tl_metric SERIES [PORT]           prints SERIES' value from /metrics on PORT
#                                     ($TL_MPORT), nothing when absent; false when the
#                                     scrape fails
#
# On exit a trap kills the broker and any background job of the test, then removes
# TL_TMP; when the test failed it keeps TL_TMP and prints the tail of tallyd.log.
# Exit status convention (tests/run.sh): 0 pass, 77 skip, anything else fail.

TL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TL_ROOT" || exit 1
TL_BIN=${TL_BIN_DIR:-$TL_ROOT/build/bin}
TL_TALLYD=${TALLYD:-$TL_BIN/tallyd}
TL_PROGS=${TL_PROGS_DIR:-$TL_ROOT/build/release/tests/progs}
TL_NAME=$(basename "$0" .sh)
case "${TALLY_TEST_LONG:-0}" in
1 | yes | true) TL_LONG=1 ;;
*) TL_LONG=0 ;;
esac
TL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tally-$TL_NAME.XXXXXX") || exit 1
TL_START_TIMEOUT_S=${TL_START_TIMEOUT_S:-10}
TL_STOP_TIMEOUT_S=${TL_STOP_TIMEOUT_S:-30}
export TL_ROOT TL_BIN TL_PROGS TL_NAME TL_LONG TL_TMP

TL_PID=
TL_MPORT=
TL_DATA=
TL_PORT=
TL_BROKER=
TL_BROKER_ARGS=()
TL_FAILED=0

tl_log()
{
	printf '%s [%s] %s\n' "$(date +%H:%M:%S.%3N)" "$TL_NAME" "$*" >&2
}

tl_fail()
{
	TL_FAILED=1
	printf '%s [%s] FAIL: %s\n' "$(date +%H:%M:%S.%3N)" "$TL_NAME" "$*" >&2
	exit 1
}

tl_skip()
{
	printf '%s [%s] SKIP: %s\n' "$(date +%H:%M:%S.%3N)" "$TL_NAME" "$*" >&2
	exit 77
}

tl_require_cmd()
{
	local cmd
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 || tl_skip "$cmd is not installed (make deps)"
	done
}

tl_require_prog()
{
	local prog
	for prog in "$@"; do
		[ -x "$TL_PROGS/$prog" ] || tl_fail "$TL_PROGS/$prog is missing (make release)"
	done
}

# logfmt's ts=, level= and msg="..." become "TS LEVEL message" (its \" and \\ unescaped),
# so a pattern that follows a message with its key=value pairs matches either format.
tl_log_text()
{
	sed -E 's/^ts=([^ ]+) level=([a-z]+) msg="(([^"\\]|\\.)*)"/\1 \2 \3/; T; s/\\(["\\])/\1/g' "$@"
}

tl_grep_log()
{
	# Not a pipe: under pipefail, sed killed by grep -q's early exit would fail it.
	grep -Eq -- "$1" <(tl_log_text "$TL_TMP/tallyd.log" 2>/dev/null)
}

tl_metrics_port()
{
	local log=${1:-$TL_TMP/tallyd.log}
	TL_MPORT=$(tl_log_text "$log" | grep -oE 'metrics: listening on http://127\.0\.0\.1:[0-9]+' |
		tail -1 | grep -oE '[0-9]+$') || tl_fail "tallyd did not log its metrics port in $log"
}

tl_metric()
{
	local out
	out=$(curl -sf --max-time 5 "http://127.0.0.1:${2:-$TL_MPORT}/metrics") || return 1
	awk -v n="$1" '$1 == n { print $2 }' <<<"$out"
}

# True while the process runs (a zombie, not yet reaped, counts as stopped).
tl_pid_alive()
{
	local state
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

tl_broker_alive()
{
	tl_pid_alive "$TL_PID"
}

# A port below the kernel's ephemeral range (32768 and up by default, so a client's
# outgoing connection cannot take it while the broker is down for a restart) that no
# socket uses now.
tl_pick_port()
{
	local port i
	for i in $(seq 1 50); do
		port=$((20000 + (RANDOM % 12000)))
		if ! ss -Htan "sport = :$port" 2>/dev/null | grep -c . >/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

# Starts tallyd once; returns 0 when it listens, 2 when the port was taken, 1 otherwise.
# Fixes TL_PORT and TL_BROKER (exported) before tl_start_broker, for a test whose broker
# listens twice, and sets TL_PORT2 to a second free port for the other listener.
tl_pick_two_ports()
{
	TL_PORT=$(tl_pick_port) || tl_fail "no free port"
	TL_PORT2=$(tl_pick_port) || tl_fail "no free port"
	[ "$TL_PORT2" != "$TL_PORT" ] || TL_PORT2=$((TL_PORT + 1))
	TL_BROKER=127.0.0.1:$TL_PORT
	export TL_PORT TL_BROKER TL_PORT2
}

tl_start_once()
{
	local log=$TL_TMP/tallyd.log from deadline
	printf '=== %s tl_start_broker port=%s args=%s\n' "$(date +%H:%M:%S.%3N)" "$TL_PORT" \
		"${TL_BROKER_ARGS[*]}" >>"$log"
	from=$(($(stat -c %s "$log") + 1))
	"$TL_TALLYD" --override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT" \
		--override "log.dirs=$TL_DATA" "${TL_BROKER_ARGS[@]}" >>"$log" 2>&1 &
	TL_PID=$!
	export TL_PID
	deadline=$(($(date +%s%N) + TL_START_TIMEOUT_S * 1000000000))
	while [ "$(date +%s%N)" -lt "$deadline" ]; do
		# grep -c reads all its input: no SIGPIPE for tail to fail the pipeline with.
		if tail -c "+$from" "$log" | grep -c 'broker: listening on ' >/dev/null; then
			return 0
		fi
		if ! tl_broker_alive; then
			wait "$TL_PID" 2>/dev/null
			TL_PID=
			if tail -c "+$from" "$log" | grep -c 'cannot listen.*EADDRINUSE' >/dev/null; then
				return 2
			fi
			return 1
		fi
		sleep 0.02
	done
	tl_log "tallyd did not log 'listening on' within ${TL_START_TIMEOUT_S}s"
	kill -9 "$TL_PID" 2>/dev/null
	wait "$TL_PID" 2>/dev/null
	TL_PID=
	return 1
}

tl_start_broker()
{
	local rc tries=0
	[ -x "$TL_TALLYD" ] || tl_fail "$TL_TALLYD is missing (make release)"
	if tl_broker_alive; then
		tl_fail "tl_start_broker: tallyd is already running pid=$TL_PID"
	fi
	if [ $# -gt 0 ] || [ -z "$TL_PORT" ]; then
		TL_BROKER_ARGS=("$@")
	fi
	if [ -z "$TL_DATA" ]; then
		TL_DATA=$TL_TMP/data
		mkdir -p "$TL_DATA"
		export TL_DATA
	fi
	if [ -z "$TL_PORT" ]; then
		while :; do
			TL_PORT=$(tl_pick_port) || tl_fail "no free port found"
			TL_BROKER=127.0.0.1:$TL_PORT
			export TL_PORT TL_BROKER
			rc=0
			tl_start_once || rc=$?
			tries=$((tries + 1))
			[ $rc -eq 2 ] && [ $tries -lt 5 ] && continue
			break
		done
	else
		rc=0
		tl_start_once || rc=$?
	fi
	[ $rc -eq 0 ] || tl_fail "tallyd did not start (see $TL_TMP/tallyd.log)"
}

tl_stop_broker()
{
	local pid=$TL_PID rc=0 deadline
	[ -n "$pid" ] || tl_fail "tl_stop_broker: no broker running"
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$(($(date +%s%N) + TL_STOP_TIMEOUT_S * 1000000000))
	while tl_pid_alive "$pid"; do
		if [ "$(date +%s%N)" -ge "$deadline" ]; then
			kill -9 "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			TL_PID=
			tl_fail "tallyd did not exit within ${TL_STOP_TIMEOUT_S}s of SIGTERM"
		fi
		sleep 0.02
	done
	wait "$pid" 2>/dev/null || rc=$?
	TL_PID=
	[ $rc -eq 0 ] || tl_fail "tallyd exited with status $rc after SIGTERM (want 0)"
}

# The planned crash. Fails when tallyd was already gone (it crashed on its own, which the
# kill would otherwise hide) or when it died of anything but this SIGKILL.
tl_kill9_broker()
{
	local pid=$TL_PID rc=0
	[ -n "$pid" ] || tl_fail "tl_kill9_broker: no broker running"
	if ! tl_pid_alive "$pid"; then
		wait "$pid" 2>/dev/null || rc=$?
		TL_PID=
		tl_fail "tallyd exited on its own with status $rc before the planned kill -9"
	fi
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || rc=$?
	TL_PID=
	[ $rc -eq 137 ] || tl_fail "tallyd exited with status $rc around the kill -9 (want 137, SIGKILL)"
}

tl_on_exit()
{
	local rc=$? pid
	set +e
	trap - EXIT
	if [ -n "$TL_PID" ]; then
		kill -9 "$TL_PID" 2>/dev/null
		wait "$TL_PID" 2>/dev/null
	fi
	for pid in $(jobs -p); do
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] || [ $TL_FAILED -ne 0 ]; then
		if [ -s "$TL_TMP/tallyd.log" ]; then
			echo "--- last 40 lines of $TL_TMP/tallyd.log (config lines left out)" >&2
			tl_log_text "$TL_TMP/tallyd.log" | grep -v ' info config: ' | tail -n 40 >&2
			echo "---" >&2
		fi
		echo "[$TL_NAME] kept $TL_TMP" >&2
	else
		rm -rf "$TL_TMP"
	fi
	exit $rc
}

trap tl_on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
