#!/usr/bin/env python3
"""sasl_probe.py - SASL exchanges on the wire (SaslHandshake v1, SaslAuthenticate v1).

    sasl_probe.py check PORT            test 142: unknown users look like wrong passwords
    sasl_probe.py salt PORT MECH USER   prints the salt a SCRAM first message gets

check: a SCRAM client-first message naming an unknown user (or a user without a
credential for that mechanism) gets a server-first message like a real user's (a
32-byte salt, the same on a second try, 4096 iterations), and the login fails only at
the proof, as a known user's wrong password does; PLAIN answers both alike. Prints
"salt MECH USER SALT" for each made-up credential. Exit status: 0 when all holds.
The broker on PORT must have alice (SCRAM-SHA-512) and bob (SCRAM-SHA-256) only.
"""
import base64, socket, struct, sys

port = int(sys.argv[2])


def call(sock, key, body, corr=[0]):
    corr[0] += 1
    head = struct.pack(">hhih", key, 1, corr[0], 4) + b"prob"
    frame = head + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", recv(sock, 4))[0]
    data = recv(sock, size)
    assert struct.unpack(">i", data[:4])[0] == corr[0]
    return data[4:]


def recv(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed")
        out += chunk
    return out


def string(s):
    return struct.pack(">h", len(s)) + s


def authenticate(sock, token):
    r = call(sock, 36, struct.pack(">i", len(token)) + token)
    err = struct.unpack(">h", r[:2])[0]
    n = struct.unpack(">h", r[2:4])[0]
    msg = r[4:4 + n].decode() if n >= 0 else None
    rest = r[4 + max(n, 0):]
    blen = struct.unpack(">i", rest[:4])[0]
    return err, msg, rest[4:4 + max(blen, 0)]


def login(mech, token):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    r = call(sock, 17, string(mech.encode()))
    assert struct.unpack(">h", r[:2])[0] == 0, r
    return sock, authenticate(sock, token)


def scram(mech, user, key_len):
    sock, (err, msg, first) = login(mech, b"n,,n=" + user.encode() + b",r=clientnonce")
    assert err == 0, (mech, user, err, msg)
    attrs = dict(a.split("=", 1) for a in first.decode().split(","))
    final = "c=biws,r=%s,p=%s" % (attrs["r"], base64.b64encode(bytes(key_len)).decode())
    err2, msg2, _ = authenticate(sock, final.encode())
    sock.close()
    return attrs, (err2, msg2)


def check():
    # A known user's wrong password, per mechanism: what the others must look like.
    known_end = {"SCRAM-SHA-512": scram("SCRAM-SHA-512", "alice", 64)[1],
                 "SCRAM-SHA-256": scram("SCRAM-SHA-256", "bob", 32)[1]}
    for user, mech, key_len in (("mallory", "SCRAM-SHA-512", 64), ("bob", "SCRAM-SHA-512", 64),
                                ("mallory", "SCRAM-SHA-256", 32)):
        attrs, end = scram(mech, user, key_len)
        assert attrs["i"] == "4096", (user, mech, attrs)
        assert len(base64.b64decode(attrs["s"])) == 32, (user, mech, attrs)
        again, _ = scram(mech, user, key_len)
        assert again["s"] == attrs["s"], ("the made-up salt changed", user, mech)
        assert end == known_end[mech], ("the refusal differs", user, mech, end, known_end[mech])
        print("salt", mech, user, attrs["s"])
        print("scram", mech, user, "refused at the proof like a wrong password:", end[0])
    assert all(e[0] == 58 for e in known_end.values()), known_end

    plain = {}
    for user, pw in (("alice", "wrong"), ("mallory", "whatever")):
        sock, res = login("PLAIN", b"\0" + user.encode() + b"\0" + pw.encode())
        sock.close()
        plain[user] = res[:2]
    assert plain["alice"] == plain["mallory"] and plain["alice"][0] == 58, plain
    print("plain refusals alike:", plain["alice"])


if sys.argv[1] == "check":
    check()
elif sys.argv[1] == "salt":
    attrs, _ = scram(sys.argv[3], sys.argv[4], 64 if sys.argv[3].endswith("512") else 32)
    print(attrs["s"])
else:
    sys.exit("usage: sasl_probe.py check PORT | salt PORT MECH USER")
