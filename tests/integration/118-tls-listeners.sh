#!/usr/bin/env bash
# TLS and several listeners (issue #16), with a CA and certificates made by openssl here.
# One tallyd serves PLAINTEXT and SSL (ssl.client.auth=requested, encrypted key):
# (1) Metadata on each listener names that listener's address, as Kafka answers;
# (2) kcat produces over SSL without a client certificate and reads back over mutual
#     TLS, byte-exact; the principal is the certificate's subject in RFC 2253 form,
#     whole (144 bytes); a subject longer than a principal may be is refused;
# (3) the tally CLI produces and tails over mutual TLS;
# (4) a client certificate from another CA is refused at the handshake (kcat and tally);
# (5) plaintext Kafka bytes and a truncated ClientHello on the TLS port, a silent
#     connection (ssl.handshake.timeout.ms) and a frame never finished
#     (socket.request.read.timeout.ms) are closed, and the broker still serves;
# (6) max.connections.per.ip holds.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$TL_ROOT/tests/certs.sh"
tl_require_cmd kcat openssl python3
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"

certs=$TL_TMP/certs
tl_make_certs "$certs" || tl_fail "cannot make test certificates"

tl_pick_two_ports
ssl_port=$TL_PORT2
tls_broker=localhost:$ssl_port
tl_start_broker --override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT,SSL://127.0.0.1:$ssl_port" \
	--override "advertised.listeners=SSL://localhost:$ssl_port" \
	--override "ssl.keystore.location=$certs/broker-enc.pem" --override ssl.key.password=brokerpw \
	--override "ssl.truststore.location=$certs/ca.pem" --override ssl.client.auth=requested \
	--override ssl.handshake.timeout.ms=1000 --override socket.request.read.timeout.ms=1500 \
	--override max.connections.per.ip=40
tl_grep_log "listening on 127.0.0.1:$ssl_port advertised=localhost:$ssl_port listener=SSL security.protocol=SSL" ||
	tl_fail "the SSL listener is not served"

ssl=(-X security.protocol=ssl -X "ssl.ca.location=$certs/ca.pem")
mtls=("${ssl[@]}" -X "ssl.certificate.location=$certs/client.crt" -X "ssl.key.location=$certs/client.key")
rogue=("${ssl[@]}" -X "ssl.certificate.location=$certs/rogue.crt" -X "ssl.key.location=$certs/rogue.key")

tl_log "(1)"
# (1) Each listener's Metadata names itself.
timeout 20 kcat -L -b "$TL_BROKER" >"$TL_TMP/meta.plain" 2>&1 || tl_fail "kcat -L over PLAINTEXT failed"
grep -q "broker 1 at 127.0.0.1:$TL_PORT" "$TL_TMP/meta.plain" || { cat "$TL_TMP/meta.plain" >&2; tl_fail "PLAINTEXT Metadata does not name the PLAINTEXT listener"; }
timeout 20 kcat -L -b "$tls_broker" "${ssl[@]}" >"$TL_TMP/meta.ssl" 2>&1 || { cat "$TL_TMP/meta.ssl" >&2; tl_fail "kcat -L over SSL failed"; }
grep -q "broker 1 at localhost:$ssl_port" "$TL_TMP/meta.ssl" || { cat "$TL_TMP/meta.ssl" >&2; tl_fail "SSL Metadata does not name the SSL listener's advertised address"; }

tl_log "(2)"
# (2) kcat over SSL, then mutual TLS; records of 1..3000 bytes.
awk 'BEGIN { srand(11); for (i = 0; i < 3000; i++) { n = 1 + int(rand() * 3000); s = ""; while (length(s) < n) s = s sprintf("%d-", i); print substr(s, 1, n) } }' >"$TL_TMP/sent"
timeout 60 kcat -P -b "$tls_broker" "${ssl[@]}" -t tls-topic -X acks=all -l "$TL_TMP/sent" 2>"$TL_TMP/produce.err" ||
	{ cat "$TL_TMP/produce.err" >&2; tl_fail "kcat -P over SSL failed"; }
grep -q ERROR "$TL_TMP/produce.err" && { cat "$TL_TMP/produce.err" >&2; tl_fail "kcat -P over SSL reported errors"; }
kill -USR1 "$TL_PID" # debug on: the handshake line names the principal
timeout 60 kcat -C -q -b "$tls_broker" "${mtls[@]}" -t tls-topic -o beginning -e >"$TL_TMP/got" ||
	tl_fail "kcat -C over mutual TLS failed"
kill -USR1 "$TL_PID"
cmp -s "$TL_TMP/sent" "$TL_TMP/got" || tl_fail "records read over mutual TLS differ from those sent ($(wc -l <"$TL_TMP/got") lines)"
tl_grep_log 'TLS handshake done .*principal="User:CN=app1,OU=eng,O=Tally"' ||
	tl_fail "the mutual TLS connection's principal is not User:CN=app1,OU=eng,O=Tally"
# A subject longer than the old 128-byte principal is the principal whole; one longer
# than a principal may be (1024 bytes, as an ACL's) is refused: never User:ANONYMOUS,
# which would skip every DENY on the real name.
long_dn=$(openssl x509 -in "$certs/long.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
kill -USR1 "$TL_PID"
timeout 20 kcat -L -b "$tls_broker" "${ssl[@]}" -X "ssl.certificate.location=$certs/long.crt" \
	-X "ssl.key.location=$certs/long.key" -m 5 >/dev/null 2>&1 || tl_fail "kcat -L with a long subject failed"
if timeout 20 kcat -L -b "$tls_broker" "${ssl[@]}" -X "ssl.certificate.location=$certs/huge.crt" \
	-X "ssl.key.location=$certs/huge.key" -m 2 >"$TL_TMP/huge.out" 2>&1; then
	tl_fail "kcat with a 1247-byte subject got metadata"
fi
kill -USR1 "$TL_PID"
tl_grep_log "TLS handshake done .*principal=\"User:${long_dn}\"" ||
	tl_fail "the principal of a ${#long_dn}-byte subject is not User:<subject>"
tl_grep_log 'TLS client certificate refused: its subject is longer than a principal may be' ||
	tl_fail "no refusal logged for the 1247-byte subject"
tl_grep_log 'TLS handshake done .*principal="User:ANONYMOUS"' &&
	tl_fail "a client certificate's connection became User:ANONYMOUS"
tl_grep_log 'TLS on listener=SSL sendfile=' || tl_fail "tallyd did not say which TLS send path is on"
tl_log "$(tl_log_text "$TL_TMP/tallyd.log" | grep -o 'TLS on listener=SSL sendfile=[a-z-]*' | head -n 1)"

tl_log "(3)"
# (3) The CLI over mutual TLS.
seq 1 50 | timeout 30 "$TL_BIN/tally" -b "$tls_broker" "${mtls[@]}" produce cli-topic ||
	tl_fail "tally produce over mutual TLS failed"
got=$(timeout 30 "$TL_BIN/tally" -b "$tls_broker" "${mtls[@]}" tail cli-topic -o beginning -e | wc -l) ||
	tl_fail "tally tail over mutual TLS failed"
[ "$got" = 50 ] || tl_fail "tally tail over mutual TLS read $got records, want 50"
timeout 30 "$TL_BIN/tally" -b "$tls_broker" "${mtls[@]}" topic list | grep -q cli-topic ||
	tl_fail "tally topic list over mutual TLS does not list cli-topic"

tl_log "(4)"
# (4) Another CA's client certificate: refused at the handshake.
before=$(grep -c 'TLS handshake failed' "$TL_TMP/tallyd.log" || true)
if timeout 20 kcat -L -b "$tls_broker" "${rogue[@]}" -m 1 >"$TL_TMP/rogue.out" 2>&1; then
	tl_fail "kcat with a certificate from another CA got metadata"
fi
if timeout 20 "$TL_BIN/tally" -b "$tls_broker" "${rogue[@]}" --timeout 1s topic list >"$TL_TMP/rogue.cli" 2>&1; then
	tl_fail "tally with a certificate from another CA listed topics"
fi
after=$(grep -c 'TLS handshake failed.*certificate verify failed' "$TL_TMP/tallyd.log" || true)
[ "$after" -gt "$before" ] || tl_fail "tallyd did not log the refused certificate"

tl_log "(5)"
# (5) Hostile and stalled peers; each must see the connection closed.
python3 - "$ssl_port" "$TL_PORT" <<'EOF' || tl_fail "a hostile or stalled connection was not closed"
import socket, sys, time
ssl_port, plain_port = int(sys.argv[1]), int(sys.argv[2])
def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
# All at once, so the timeouts run side by side: Kafka bytes (an ApiVersions request)
# to the TLS port; a ClientHello cut short, then silence; nothing at all (both ended by
# ssl.handshake.timeout.ms=1000); a frame begun and never finished on PLAINTEXT
# (socket.request.read.timeout.ms=1500).
cases = []
s = socket.create_connection(("127.0.0.1", ssl_port))
s.sendall(bytes.fromhex("0000001600120003000000010008746573742d636c69000000"))
cases.append(("plaintext bytes to the TLS port", s))
s = socket.create_connection(("127.0.0.1", ssl_port))
s.sendall(bytes.fromhex("160301020001000200fc0303") + bytes(20))
cases.append(("truncated handshake", s))
cases.append(("silent TLS connection", socket.create_connection(("127.0.0.1", ssl_port))))
s = socket.create_connection(("127.0.0.1", plain_port))
s.sendall(bytes.fromhex("00000100001200030000"))
cases.append(("unfinished frame", s))
t = time.time()
for what, s in cases:
    assert closed_within(s, max(0.1, t + 10 - time.time())), what + ": not closed"
    print("%s: closed after %.1fs" % (what, time.time() - t))
EOF
tl_grep_log 'TLS handshake timed out' || tl_fail "no log line for the handshake timeout"
tl_grep_log 'request frame not finished in time' || tl_fail "no log line for the frame timeout"
timeout 20 kcat -L -b "$tls_broker" "${ssl[@]}" -t tls-topic >/dev/null 2>&1 || tl_fail "the broker no longer serves TLS"

tl_log "(6)"
# (6) max.connections.per.ip=40: of 50 connections, 40 stay. (All on PLAINTEXT: silent
# ones on the TLS port would meet the 1 s handshake timeout.)
python3 - "$ssl_port" "$TL_PORT" <<'EOF' || tl_fail "max.connections.per.ip did not hold"
import select, socket, sys, time
ports = [int(sys.argv[1]), int(sys.argv[2])]
socks = [socket.create_connection(("127.0.0.1", ports[1])) for i in range(50)]
deadline = time.time() + 5
closed = set()
while time.time() < deadline and len(closed) < 10:
    r, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.2)
    for s in r:
        try:
            if not s.recv(1):
                closed.add(s)
        except ConnectionResetError:
            closed.add(s)
time.sleep(0.5)
r, _, _ = select.select([s for s in socks if s not in closed], [], [], 0)
assert len(closed) == 10 and not r, "closed %d of 50 (and %d more pending), want 10" % (len(closed), len(r))
EOF
tl_grep_log 'max.connections.per.ip reached' || tl_fail "no log line for max.connections.per.ip"
timeout 20 kcat -L -b "$TL_BROKER" -t tls-topic >/dev/null 2>&1 || tl_fail "the broker no longer serves after the per-IP limit"
tl_stop_broker
tl_log "ok"
