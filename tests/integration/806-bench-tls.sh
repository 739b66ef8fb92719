#!/usr/bin/env bash
# tally-test: long-only
# TLS at scale (issue #16): (1) bench/tls.sh runs end to end (consume over kTLS-enabled
# TLS, user-space TLS and plaintext; produce over TLS and plaintext; 5 runs each) and
# prints every row; (2) 10,000 idle connections: with max.connections=10000, 10,000
# plaintext connections plus 500 finished TLS handshakes are held (the 500 beyond the
# limit are refused), tallyd's resident memory grows by less than 16 KiB a connection,
# and it still serves; connections.max.idle.ms then closes them all.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$TL_ROOT/tests/certs.sh"
tl_require_cmd kcat openssl python3
[ "$(ulimit -n)" -ge 12000 ] || ulimit -n 12000 2>/dev/null || tl_skip "needs 12000 open files (ulimit -n is $(ulimit -n))"

tl_log "(1) bench/tls.sh"
bench/tls.sh -n 5 --fill 32m --produce-time 2s >"$TL_TMP/bench.out" 2>"$TL_TMP/bench.err" ||
	{ cat "$TL_TMP/bench.err" >&2; tl_fail "bench/tls.sh failed"; }
for row in "consume, plaintext" "consume, SSL, ssl.ktls.enable=true" \
	"consume, SSL, ssl.ktls.enable=false" "produce, plaintext" "produce, SSL"; do
	grep -q "^| $row | .* | [0-9]* \[[0-9]*-[0-9]*\] | [0-9.]*x |$" "$TL_TMP/bench.out" ||
		{ cat "$TL_TMP/bench.out" >&2; tl_fail "bench/tls.sh printed no row for \"$row\""; }
done
cat "$TL_TMP/bench.out" >&2

tl_log "(2) 10,000 idle connections"
certs=$TL_TMP/certs
tl_make_certs "$certs" || tl_fail "cannot make test certificates"
tl_pick_two_ports
ssl_port=$TL_PORT2
tl_start_broker --override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT,SSL://127.0.0.1:$ssl_port" \
	--override "ssl.keystore.location=$certs/broker.pem" --override max.connections=10000 \
	--override connections.max.idle.ms=60000
python3 - "$TL_PID" "$TL_PORT" "$ssl_port" "$certs/ca.pem" <<'EOF' || tl_fail "10,000 idle connections: limits or memory did not hold"
import select, socket, ssl, subprocess, sys, time
pid, port, ssl_port, ca = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def rss_kb():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
base = rss_kb()
ctx = ssl.create_default_context(cafile=ca)
tls = []
for i in range(500):
    raw = socket.create_connection(("127.0.0.1", ssl_port))
    tls.append(ctx.wrap_socket(raw, server_hostname="localhost"))
plain = [socket.create_connection(("127.0.0.1", port)) for i in range(10000)]
time.sleep(2)
def gone(s):
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return False  # nothing to read (a TLS session ticket is not application data)
    except (ConnectionResetError, ssl.SSLError, OSError):
        return True
refused = sum(gone(s) for s in plain + tls)
held = len(plain) + len(tls) - refused
grown = rss_kb() - base
per_conn = grown * 1024 / max(held, 1)
print("held %d, refused %d, RSS +%d KiB (%.0f bytes a connection)" % (held, refused, grown, per_conn))
assert held == 10000, "held %d connections, want 10000 (max.connections)" % held
assert refused == 500, "refused %d, want 500" % refused
assert per_conn < 16 * 1024, "%.0f bytes a connection" % per_conn
# Full; freeing 100 slots lets a client in again.
for s in plain[:100]:
    s.close()
time.sleep(1)
out = subprocess.run(["kcat", "-L", "-b", "127.0.0.1:%d" % port, "-m", "10"], capture_output=True)
assert out.returncode == 0, "kcat -L after freeing 100 slots: " + out.stderr.decode()[-300:]
EOF
tl_grep_log 'max.connections reached' || tl_fail "no log line for max.connections"
tl_stop_broker
tl_log "ok"
