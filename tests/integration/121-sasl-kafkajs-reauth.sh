#!/usr/bin/env bash
# kafkajs 2.2.4 over SASL_PLAINTEXT (issue #16): a producer and a consumer group with
# SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN; a wrong password refused; and KIP-368 with
# connections.max.reauth.ms=1500: kafkajs reads the session lifetime from
# SaslAuthenticate v1 and re-authenticates on its connection, which keeps working; a raw
# client that does not re-authenticate has its connection closed at the first request
# after the session ends, while one before it is served.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd node python3 curl
[ -d tests/interop/node_modules/kafkajs ] || tl_skip "kafkajs is not installed (make deps runs npm ci in tests/interop)"

PW='carol-pw-5150'
tl_start_broker --override listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT \
	--override sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512 \
	--override connections.max.reauth.ms=1500 --override group.initial.rebalance.delay.ms=0 \
	--override metrics.listener=http://127.0.0.1:0 \
	--add-scram "SCRAM-SHA-512=[name=carol,password=$PW]" \
	--add-scram "SCRAM-SHA-256=[name=carol,password=$PW]"
js=tests/interop/kafkajs_sasl.js
export KAFKAJS_NO_PARTITIONER_WARNING=1 COUNT=200

for mech in SCRAM-SHA-512 SCRAM-SHA-256 PLAIN; do
	TOPIC=kjs-$mech timeout 60 node "$js" "$TL_BROKER" roundtrip "$mech" carol "$PW" ||
		tl_fail "kafkajs roundtrip with $mech failed"
done
timeout 30 node "$js" "$TL_BROKER" wrong SCRAM-SHA-512 carol not-the-password ||
	tl_fail "kafkajs with a wrong password was not refused"

# KIP-368: kafkajs re-authenticates on the same connection before its session ends.
TOPIC=kjs-reauth SECONDS=3 timeout 60 node "$js" "$TL_BROKER" reauth SCRAM-SHA-512 carol "$PW" ||
	tl_fail "kafkajs producing across session expiries failed"
tl_grep_log 'SASL re-authenticated principal=User:carol mechanism=SCRAM-SHA-512' ||
	tl_fail "kafkajs never re-authenticated (no 'SASL re-authenticated' line)"

# A raw PLAIN client: SaslAuthenticate v1 tells it the lifetime; a request inside it is
# answered, one after it closes the connection.
cat >"$TL_TMP/reauth.py" <<'PY'
import socket, struct, sys, time
host, port, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
s = socket.create_connection((host, port), timeout=10)
corr = [0]
def call(key, version, body):
    corr[0] += 1
    head = struct.pack(">hhih", key, version, corr[0], 3) + b"raw"
    s.sendall(struct.pack(">i", len(head) + len(body)) + head + body)
    size = s.recv(4, socket.MSG_WAITALL)
    if len(size) < 4:
        return None
    n = struct.unpack(">i", size)[0]
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data[4:]
mech = b"PLAIN"
r = call(17, 1, struct.pack(">h", len(mech)) + mech)
assert r is not None and struct.unpack(">h", r[:2])[0] == 0, "handshake failed"
token = b"\0carol\0" + pw
r = call(36, 1, struct.pack(">i", len(token)) + token)
assert r is not None, "authenticate: closed"
err = struct.unpack(">h", r[:2])[0]
msg_len = struct.unpack(">h", r[2:4])[0]
at = 4 + max(msg_len, 0)
blen = struct.unpack(">i", r[at:at + 4])[0]
at += 4 + max(blen, 0)
lifetime = struct.unpack(">q", r[at:at + 8])[0]
assert err == 0, "authenticate error %d" % err
assert lifetime == 1500, "session_lifetime_ms %d, want 1500" % lifetime
meta = struct.pack(">i", 0)  # Metadata v1: no topics
assert call(3, 1, meta) is not None, "Metadata inside the session was not answered"
time.sleep(1.8)
assert call(3, 1, meta) is None, "Metadata after the session ended was answered"
print("ok")
PY
out=$(timeout 20 python3 "$TL_TMP/reauth.py" 127.0.0.1 "$TL_PORT" "$PW" 2>&1) || tl_fail "raw session-expiry client: $out"
tl_grep_log 'SASL session expired, closing connection principal=User:carol' ||
	tl_fail "no 'SASL session expired' line"
tl_metrics_port
killed=$(tl_metric tally_expired_connections_killed_total)
[ "${killed:-0}" -ge 1 ] ||
	tl_fail "tally_expired_connections_killed_total is '$killed' after the raw client's expired session, want >= 1"
tl_stop_broker
tl_log "ok"
