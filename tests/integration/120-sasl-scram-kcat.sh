#!/usr/bin/env bash
# SASL on a SASL_PLAINTEXT listener (issue #16), with kcat/librdkafka and the tally CLI:
#  - users made with tallyd --add-scram (SCRAM-SHA-512 alice, SCRAM-SHA-256 bob); kcat
#    produces and consumes with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN (PLAIN checks the
#    password against the SCRAM credential); tally with SCRAM-SHA-512;
#  - tally user create/list/delete: the new user logs in, and no longer once deleted;
#  - a wrong password: SASL_AUTHENTICATION_FAILED, a diag line naming User:alice, and
#    the password nowhere in the log;
#  - an unauthenticated Produce, a 2 GB SASL frame, a failed authentication and a
#    mechanism not enabled (once answered), a re-authentication (KIP-368) with another
#    mechanism, and a request between a re-authentication's handshake and its end each
#    close the connection, as Kafka's, and the broker still serves;
#  - the loop stays responsive while PLAIN logins run PBKDF2 (on worker threads): 50
#    parallel PLAIN logins at 16384 SHA-256 iterations, and Metadata round trips on
#    another connection meanwhile stay short next to the whole storm; of 200 at once,
#    those past the 128 being checked are refused at once, as busy;
#  - the credentials file holds no password, and the users survive a restart (without
#    --add-scram).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd kcat python3

A_PW='alice-Secret-77'
B_PW='bob,pw=9'
C_PW='carol-slow-16384'
sasl_args=(--override listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT
	--override sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512)
tl_start_broker "${sasl_args[@]}" \
	--add-scram "SCRAM-SHA-512=[name=alice,password=$A_PW]" \
	--add-scram "SCRAM-SHA-256=[name=bob,iterations=8192,password=$B_PW]" \
	--add-scram "SCRAM-SHA-256=[name=carol,iterations=16384,password=$C_PW]"

kc()
{
	local mech=$1 user=$2 pw=$3
	shift 3
	timeout 20 kcat -b "$TL_BROKER" -X security.protocol=sasl_plaintext \
		-X sasl.mechanisms="$mech" -X sasl.username="$user" -X sasl.password="$pw" "$@"
}

i=0
for cred in "SCRAM-SHA-512 alice $A_PW" "SCRAM-SHA-256 bob $B_PW" "PLAIN alice $A_PW" "PLAIN bob $B_PW"; do
	read -r mech user pw <<<"$cred"
	i=$((i + 1))
	printf 'v%d-%s\n' "$i" "$mech" | kc "$mech" "$user" "$pw" -P -t sasl -X acks=all 2>"$TL_TMP/p.err" ||
		{ cat "$TL_TMP/p.err" >&2; tl_fail "kcat produce with $mech as $user failed"; }
done
got=$(kc SCRAM-SHA-512 alice "$A_PW" -C -q -t sasl -o beginning -e) || tl_fail "kcat consume failed"
want=$'v1-SCRAM-SHA-512\nv2-SCRAM-SHA-256\nv3-PLAIN\nv4-PLAIN'
[ "$got" = "$want" ] || tl_fail "consumed \"$got\", want \"$want\""
tl_grep_log 'SASL authenticated principal=User:bob mechanism=SCRAM-SHA-256' ||
	tl_fail "no authentication line for User:bob"

tally_sasl=(build/bin/tally -b "$TL_BROKER" --timeout 5s -X security.protocol=sasl_plaintext
	-X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=alice -X sasl.password="$A_PW")
echo from-tally | "${tally_sasl[@]}" produce sasl || tl_fail "tally produce over SCRAM-SHA-512 failed"
out=$("${tally_sasl[@]}" tail -o -1 -e sasl) || tl_fail "tally tail over SCRAM failed"
[ "$out" = from-tally ] || tl_fail "tally tail read \"$out\", want from-tally"

# tally user create/list/delete over SCRAM, as alice: a new user logs in, then not.
"${tally_sasl[@]}" user create dave --mechanism SCRAM-SHA-256 --iterations 4096 --password dave-pw >/dev/null 2>&1 ||
	tl_fail "tally user create failed"
"${tally_sasl[@]}" user list | grep -Eq '^dave[[:space:]]+SCRAM-SHA-256[[:space:]]+4096$' ||
	tl_fail "tally user list does not show dave: $("${tally_sasl[@]}" user list 2>&1)"
kc SCRAM-SHA-256 dave dave-pw -L -m 5 >/dev/null 2>&1 || tl_fail "dave cannot log in after user create"
"${tally_sasl[@]}" user delete dave >/dev/null 2>&1 || tl_fail "tally user delete failed"
kc SCRAM-SHA-256 dave dave-pw -L -m 1 >/dev/null 2>&1 && tl_fail "dave still logs in after user delete"
# A name the credentials file would read back as a comment is refused, not lost at the
# next restart.
out=$("${tally_sasl[@]}" user create '#hash' --mechanism SCRAM-SHA-256 --password p 2>&1) &&
	tl_fail "tally user create '#hash' succeeded"
grep -q "starts with '#'" <<<"$out" || tl_fail "user create '#hash': $out"

# Wrong password: refused with SASL_AUTHENTICATION_FAILED; the log names the principal,
# never the password.
BAD_PW='Wr0ng-pa55word-xyz'
out=$(kc SCRAM-SHA-512 alice "$BAD_PW" -L -m 1 2>&1) && tl_fail "kcat -L with a wrong password succeeded"
grep -q 'Authentication failed during authentication due to invalid credentials' <<<"$out" ||
	tl_fail "kcat did not see SASL_AUTHENTICATION_FAILED: $out"
out=$(kc PLAIN alice "$BAD_PW" -L -m 1 2>&1) && tl_fail "PLAIN with a wrong password succeeded"
tl_grep_log 'SASL authentication failed principal=User:alice mechanism=SCRAM-SHA-512 .*reason="wrong password"' ||
	tl_fail "no failure line naming User:alice"
tl_grep_log 'SASL authentication failed principal=User:alice mechanism=PLAIN' ||
	tl_fail "no PLAIN failure line naming User:alice"
# (lib.sh's "=== tl_start_broker ... args=" lines show the --add-scram arguments.)
# (Not a pipe: under pipefail, grep -v killed by SIGPIPE when grep -q stops at a password
# would fail the pipeline, and the ! turn that into a pass.)
for pw in "$BAD_PW" "$A_PW" "$B_PW" "$C_PW"; do
	! grep -qF -- "$pw" <(grep -v '^=== ' "$TL_TMP/tallyd.log") || tl_fail "a password appears in tallyd.log"
done
"${tally_sasl[@]/$A_PW/$BAD_PW}" topic list >"$TL_TMP/t.out" 2>&1 && tl_fail "tally with a wrong password succeeded"
grep -q 'SASL authentication failed for user alice' "$TL_TMP/t.out" || tl_fail "tally did not say why: $(cat "$TL_TMP/t.out")"

# Raw sockets: an unauthenticated Produce, and a 2 GB frame, each close the connection.
cat >"$TL_TMP/raw.py" <<'PY'
import socket, struct, sys
host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pw = sys.argv[4].encode() if len(sys.argv) > 4 else b""
s = socket.create_connection((host, port), timeout=10)
def frame(key, version, corr, body):
    head = struct.pack(">hhih", key, version, corr, 3) + b"raw"
    return struct.pack(">i", len(head) + len(body)) + head + body
def response():
    size = s.recv(4, socket.MSG_WAITALL)
    n = struct.unpack(">i", size)[0]
    return s.recv(n, socket.MSG_WAITALL)
if what == "wrongplain":
    # PLAIN with a wrong password: SASL_AUTHENTICATION_FAILED (58) comes back, then the
    # broker closes the connection.
    s.sendall(frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
    response()
    token = b"\0alice\0nope"
    s.sendall(frame(36, 1, 2, struct.pack(">i", len(token)) + token))
    r = response()
    code = struct.unpack(">h", r[4:6])[0]
    if code != 58:
        print("error code %d, want 58" % code)
        sys.exit(0)
elif what == "badmech":
    # A mechanism not enabled: UNSUPPORTED_SASL_MECHANISM (33), then closed.
    s.sendall(frame(17, 1, 1, struct.pack(">h", 6) + b"GSSAPI"))
    code = struct.unpack(">h", response()[4:6])[0]
    if code != 33:
        print("error code %d, want 33" % code)
        sys.exit(0)
elif what in ("reauthmech", "reauthrequest"):
    # Logged in with PLAIN; re-authenticating (KIP-368) with another mechanism is 33,
    # then closed; a Metadata between a re-authentication's handshake and its
    # SaslAuthenticate closes the connection (Kafka's SaslServerAuthenticator).
    s.sendall(frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
    response()
    token = b"\0alice\0" + pw
    s.sendall(frame(36, 1, 2, struct.pack(">i", len(token)) + token))
    code = struct.unpack(">h", response()[4:6])[0]
    if code != 0:
        print("login error code %d" % code)
        sys.exit(0)
    mech = b"SCRAM-SHA-512" if what == "reauthmech" else b"PLAIN"
    s.sendall(frame(17, 1, 3, struct.pack(">h", len(mech)) + mech))
    code = struct.unpack(">h", response()[4:6])[0]
    if code != (33 if what == "reauthmech" else 0):
        print("re-authentication handshake error code %d" % code)
        sys.exit(0)
    if what == "reauthrequest":
        s.sendall(frame(3, 1, 4, struct.pack(">i", 0)))
elif what == "produce":
    # Produce v3: header (key 0, v3, correlation 1, client "raw"), null transactional
    # id, acks 1, timeout 1000, no topics.
    body = struct.pack(">hhih", 0, 3, 1, 3) + b"raw" + struct.pack(">hhii", -1, 1, 1000, 0)
    s.sendall(struct.pack(">i", len(body)) + body)
else:
    s.sendall(struct.pack(">I", 0x7FFFFFF0) + b"\0" * 4096)
try:
    data = s.recv(100)
except ConnectionResetError:
    data = b""
print("closed" if data == b"" else "answered %r" % data)
PY
for what in produce bigframe wrongplain badmech reauthmech reauthrequest; do
	out=$(timeout 15 python3 "$TL_TMP/raw.py" 127.0.0.1 "$TL_PORT" "$what" "$A_PW") || tl_fail "raw $what client failed"
	[ "$out" = closed ] || tl_fail "$what: $out, want the connection closed"
done
tl_grep_log 'SASL mechanism differs from the session.s \(re-authentication\), closing' ||
	tl_fail "no diag line for the re-authentication with another mechanism"
tl_grep_log 'request during SASL re-authentication, closing connection principal=User:alice .*api=Metadata' ||
	tl_fail "no diag line for the Metadata during a re-authentication"
tl_grep_log 'request before SASL authentication, closing connection .*api=Produce' ||
	tl_fail "no diag line for the unauthenticated Produce"
tl_grep_log 'frame size 2147483632 outside \[8, 524288\]' || tl_fail "no diag line for the 2 GB frame"
tl_broker_alive || tl_fail "tallyd died"
kc SCRAM-SHA-512 alice "$A_PW" -L -m 5 >/dev/null 2>&1 || tl_fail "broker unusable after the raw clients"

# PLAIN logins check the password with PBKDF2 off the event loop: while 50 logins at
# 16384 SHA-256 iterations (~11 ms of CPU each) are checked, Metadata round trips on an
# authenticated connection keep coming back quickly. Were the PBKDF2 on the loop, a
# Metadata request would wait behind every login already read (about the whole storm).
cat >"$TL_TMP/storm.py" <<'PY'
import selectors, socket, statistics, struct, sys, time
host, port, a_pw, c_pw = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4].encode()
N = 50
def frame(key, version, corr, body):
    head = struct.pack(">hhih", key, version, corr, 3) + b"raw"
    return struct.pack(">i", len(head) + len(body)) + head + body
def response(s):
    n = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    return s.recv(n, socket.MSG_WAITALL)
def code(r):
    return struct.unpack(">h", r[4:6])[0]
def connect_plain():
    s = socket.create_connection((host, port), timeout=60)
    s.sendall(frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
    assert code(response(s)) == 0, "SaslHandshake PLAIN refused"
    return s
def plain(user, pw):
    token = b"\0" + user + b"\0" + pw
    return frame(36, 1, 2, struct.pack(">i", len(token)) + token)
probe = connect_plain()
probe.sendall(plain(b"alice", a_pw))
assert code(response(probe)) == 0, "probe login failed"
storm = [connect_plain() for _ in range(N)]
sel = selectors.DefaultSelector()
for s in storm:
    sel.register(s, selectors.EVENT_READ)
start = time.monotonic()
for s in storm:
    s.sendall(plain(b"carol", c_pw))
pending, rtts, corr, last = N, [], 100, start
while pending:
    corr += 1
    sent = time.monotonic()
    probe.sendall(frame(3, 1, corr, struct.pack(">i", 0)))  # Metadata v1, no topics
    response(probe)
    now = time.monotonic()
    for key, _ in sel.select(0):
        r = response(key.fileobj)
        assert code(r) == 0, "a storm login failed: error %d" % code(r)
        sel.unregister(key.fileobj)
        pending, last = pending - 1, now
    if pending:
        rtts.append(now - sent)
storm_s = last - start
print("storm_ms=%.1f metadata_round_trips=%d p50_ms=%.2f max_ms=%.2f" % (
    storm_s * 1e3, len(rtts), statistics.median(rtts) * 1e3 if rtts else -1,
    max(rtts) * 1e3 if rtts else -1))
# Loop stalled: a few round trips, each about as long as the storm. Not the max: a
# loaded machine may deschedule the loop for a while.
ok = len(rtts) >= 10 and statistics.median(rtts) < storm_s / 10
print("responsive" if ok else "stalled")
# A burst past the 128 logins the broker checks at once: the rest are refused at once
# (SASL_AUTHENTICATION_FAILED saying so), never queued without bound.
burst = [connect_plain() for _ in range(200)]
for s in burst:
    s.sendall(plain(b"carol", c_pw))
accepted = refused = 0
for s in burst:
    r = response(s)
    if code(r) == 0:
        accepted += 1
    elif code(r) == 58 and b"too many PLAIN logins" in r:
        refused += 1
print("burst accepted=%d refused=%d" % (accepted, refused))
# Clients that hang up while their login is being checked (after the burst, so as not to
# hold its slots): the broker answers nobody, and shuts down cleanly below.
for s in [connect_plain() for _ in range(10)]:
    s.sendall(plain(b"carol", c_pw))
    s.close()
PY
out=$(timeout 60 python3 "$TL_TMP/storm.py" 127.0.0.1 "$TL_PORT" "$A_PW" "$C_PW") || tl_fail "PLAIN storm client failed: $out"
tl_log "PLAIN storm: $out"
grep -q '^responsive$' <<<"$out" || tl_fail "Metadata stalled behind PLAIN logins: $out"
read -r accepted refused < <(sed -n 's/^burst accepted=\([0-9]*\) refused=\([0-9]*\)$/\1 \2/p' <<<"$out")
[ "${accepted:-0}" -ge 128 ] && [ "${refused:-0}" -ge 1 ] && [ $((accepted + refused)) -eq 200 ] ||
	tl_fail "200 PLAIN logins at once: want >= 128 accepted and the rest refused as busy: $out"
tl_grep_log 'SASL authentication failed principal=User:carol mechanism=PLAIN .*reason="too many PLAIN logins being checked"' ||
	tl_fail "no diag line for a PLAIN login refused as busy"

# At rest: salted keys only, mode 0600; users come back after a restart.
cred=$TL_DATA/.tally-meta/scram-credentials
[ -f "$cred" ] || tl_fail "no credentials file at $cred"
[ "$(stat -c %a "$cred")" = 600 ] || tl_fail "credentials file mode $(stat -c %a "$cred"), want 600"
for pw in "$A_PW" "$B_PW" "$C_PW"; do
	! grep -qF -- "$pw" "$cred" || tl_fail "a clear password is in $cred"
done
grep -Eq '^bob SCRAM-SHA-256 8192 ' "$cred" || tl_fail "bob's iterations=8192 not kept: $(cat "$cred")"
tl_stop_broker
tl_start_broker "${sasl_args[@]}"
got=$(kc SCRAM-SHA-256 bob "$B_PW" -C -q -t sasl -o beginning -e | wc -l) || tl_fail "bob cannot consume after restart"
[ "$got" -eq 5 ] || tl_fail "after restart bob read $got records, want 5"
tl_stop_broker
tl_log "ok"
