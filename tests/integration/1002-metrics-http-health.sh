#!/usr/bin/env bash
# The metrics port under abuse, `tally top` on a terminal, and /health when a partition
# log fails (issue #18).
#   1. A request line that is not HTTP, a head larger than 4 KiB, and bytes with a NUL
#      each get 400; POST gets 405, an unknown path 404; tally_metrics_bad_requests_total
#      counts 3. Meanwhile `tally top` runs in tmux: it draws, then redraws.
#   2. Eight connections that send nothing hold every slot: Kafka clients are served
#      meanwhile, and the slots free after 5 s. During that wait, writes past the
#      file-size limit (ulimit -f, so the kernel answers EFBIG) take a partition
#      offline: /health, answering once the slots free, is 503 naming
#      failed_partitions=1; tally_up is 0, tally_replica_offline_partitions 1.
#   3. A restart without the limit recovers the log and /health is 200 again.
# The broker runs without log.format: its lines are logfmt, the default.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat curl python3
check=$TL_ROOT/tests/progs/prom_check.py
# Python starts slowly on a loaded machine: the system one if there is one (not a
# version manager's shim), without site packages (only the standard library is used).
py_bin=python3
[ -x /usr/bin/python3 ] && py_bin=/usr/bin/python3
py() { "$py_bin" -I -S "$@"; }

# Inherited by tallyd: an ignored SIGXFSZ makes a write past the limit fail with EFBIG
# instead of killing the process. Soft limit only, so the restart can lift it. Small
# index files: they are preallocated, and must fit under the limit.
trap '' XFSZ
ulimit -S -f 4096 # KiB
tl_start_broker --override metrics.listener=http://127.0.0.1:0 \
	--override log.index.size.max.bytes=4096
tl_metrics_port
url=http://127.0.0.1:$TL_MPORT
grep -Eq '^ts=[0-9TZ:.-]+ level=info msg="broker: listening on 127\.0\.0\.1:[0-9]+" ' \
	"$TL_TMP/tallyd.log" ||
	tl_fail "the default log.format is not logfmt: $(grep -m1 'listening on' "$TL_TMP/tallyd.log")"
# get_health [TIMEOUT_S]: the body and the status, "status=ok 200".
get_health()
{
	curl -s --max-time "${1:-5}" -w ' %{http_code}' "$url/health" | tr -d '\n' || true
}

health=$(get_health)
[ "$health" = "status=ok 200" ] || tl_fail "/health answered '$health', want 'status=ok 200'"

# ---- tally top on a terminal, started first: it paints while the checks below run ----
sock=$TL_TMP/tmux.sock
tmux_up=0
if command -v tmux >/dev/null 2>&1; then
	tmux -S "$sock" -f /dev/null new-session -d -x 120 -y 40 \
		"env TERM=xterm $TL_BIN/tally top -m 127.0.0.1:$TL_MPORT -i 300ms"
	trap 'st=$?; tmux -S "$sock" kill-server 2>/dev/null || true; (exit $st); tl_on_exit' EXIT
	tmux_up=1
else
	tl_log "tmux is not installed: tally top's terminal view is not checked"
fi
# pane FILE: waits (5 s at most) for the view to be drawn, then captures it.
pane()
{
	for _ in $(seq 1 50); do
		tmux -S "$sock" capture-pane -p >"$1" 2>/dev/null || true
		grep -q '^REQUEST' "$1" && return 0
		sleep 0.1
	done
	tl_fail "tally top drew nothing in tmux: $(cat "$1")"
}

# ---- 1. bad requests ----
py - "$TL_MPORT" <<'EOF' || tl_fail "the metrics port mishandled a bad request"
import socket, sys
port = int(sys.argv[1])

def ask(data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    return got.split(b"\r\n", 1)[0].decode()

cases = [
    (b"GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    (b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 8192 + b"\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    (b"GET /me\x00trics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
    (b"GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
    (b"GET /health HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK"),
]
for data, want in cases:
    got = ask(data)
    if got != want:
        print(f"sent {data[:40]!r}...: got {got!r}, want {want!r}", file=sys.stderr)
        sys.exit(1)
EOF
tl_log "400 for garbage, an 8 KiB head and a NUL; 405, 404 and 200 where due"
if [ "$tmux_up" = 1 ]; then
	pane "$TL_TMP/pane1"
	# The header's clock has whole seconds: wait for the next one to be drawn (a loaded
	# machine may delay a 0.3 s redraw; 5 s is a redraw that never comes).
	deadline=$(($(date +%s) + 5))
	while :; do
		sleep 0.3
		pane "$TL_TMP/pane2"
		cmp -s <(head -1 "$TL_TMP/pane1") <(head -1 "$TL_TMP/pane2") || break
		[ "$(date +%s)" -lt "$deadline" ] || break
	done
	tmux -S "$sock" kill-server 2>/dev/null || true
	trap tl_on_exit EXIT
	[ "$(grep -c '^tally top - ' "$TL_TMP/pane2")" = 1 ] ||
		tl_fail "tally top did not clear the screen between redraws: $(cat "$TL_TMP/pane2")"
	cmp -s <(head -1 "$TL_TMP/pane1") <(head -1 "$TL_TMP/pane2") &&
		tl_fail "tally top's header did not change in 5 s: $(head -1 "$TL_TMP/pane1")"
	tl_log "tally top in tmux: '$(head -1 "$TL_TMP/pane1")' then '$(head -1 "$TL_TMP/pane2")'"
fi

# ---- 2. silent connections hold every slot; meanwhile a log fails ----
# Eight silent connections take every slot (bash's /dev/tcp: held open, never written).
for i in 3 4 5 6 7 8 9 10; do
	eval "exec $i<>/dev/tcp/127.0.0.1/$TL_MPORT"
done
start=$(date +%s%N)
seq 1 100 | kcat -P -q -b "$TL_BROKER" -t alive -X acks=all ||
	tl_fail "produce failed while the metrics slots were held"
tl_log "writing past the 4 MiB file-size limit"
head -c 3300000 /dev/urandom | base64 -w 1000 |
	kcat -P -q -b "$TL_BROKER" -t doomed -X message.timeout.ms=1000 2>/dev/null || true
tl_grep_log 'partition offline after an I/O error.*EFBIG' || tl_fail "no log went offline on EFBIG"
health=$(get_health 15)
waited=$((($(date +%s%N) - start) / 1000000))
for i in 3 4 5 6 7 8 9 10; do
	eval "exec $i>&-"
done
case "$health" in
*"failed_partitions=1 503") ;;
*) tl_fail "/health with a failed log answered '$health', want 503 failed_partitions=1" ;;
esac
tl_log "Kafka served while 8 silent connections held the slots; /health answered after ${waited} ms: $health"
curl -sf --max-time 5 "$url/metrics" >"$TL_TMP/m2.txt" || tl_fail "GET /metrics failed"
mapfile -t v < <(py "$check" "$TL_TMP/m2.txt" tally_up tally_replica_offline_partitions \
	'tally_errors_total{error="KAFKA_STORAGE_ERROR",code="56"}' tally_metrics_bad_requests_total)
[ "${#v[@]}" = 4 ] || tl_fail "/metrics does not parse: $(py "$check" "$TL_TMP/m2.txt" 2>&1)"
[ "${v[3]}" = 3 ] || tl_fail "tally_metrics_bad_requests_total = ${v[3]}, want 3"
[ "${v[0]:-}" = 0 ] || tl_fail "tally_up = ${v[0]:-?} with a failed log, want 0"
[ "${v[1]:-}" = 1 ] || tl_fail "offline partitions = ${v[1]:-?}, want 1"
[ "${v[2]:-absent}" != absent ] || tl_fail "KAFKA_STORAGE_ERROR answers were not counted"
tl_log "storage errors answered: ${v[2]}"

tl_stop_broker
ulimit -S -f unlimited

# ---- 3. a restart without the limit recovers the log ----
tl_start_broker
tl_metrics_port
url=http://127.0.0.1:$TL_MPORT
health=$(get_health)
[ "$health" = "status=ok 200" ] || tl_fail "/health after the restart answered '$health'"
tl_stop_broker
