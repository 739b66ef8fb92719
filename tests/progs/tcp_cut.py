#!/usr/bin/env python3
"""tcp_cut.py - a TCP forwarder whose link a test can cut and heal.

    tcp_cut.py TARGET_PORT CONTROL LISTEN_PORT...

Forwards every LISTEN_PORT on 127.0.0.1 to TARGET_PORT on 127.0.0.1. While the file
CONTROL.<LISTEN_PORT> exists that port is cut: its open connections are closed and new
ones are closed as soon as they are accepted, so a client sees its requests fail at
once. Cluster tests put one in front of etcd per broker, to cut one broker off the
metadata store while clients and the other brokers still reach it (the isolation in
which a broker's lease runs out behind its back).
"""
import os
import selectors
import socket
import sys
import time


def main():
    target = int(sys.argv[1])
    control = sys.argv[2]
    ports = [int(p) for p in sys.argv[3:]]
    sel = selectors.DefaultSelector()
    listeners = {}
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        s.setblocking(False)
        listeners[s] = port
        sel.register(s, selectors.EVENT_READ, ("listen", port))
    peers = {}  # socket -> (other socket, listen port)

    def close_pair(a):
        b, _ = peers.pop(a, (None, None))
        for s in (a, b):
            if s is None:
                continue
            peers.pop(s, None)
            try:
                sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def is_cut(port):
        return os.path.exists("%s.%d" % (control, port))

    next_check = 0.0
    while True:
        for key, _ in sel.select(timeout=0.05):
            kind = key.data[0]
            sock = key.fileobj
            if kind == "listen":
                port = key.data[1]
                try:
                    client, _ = sock.accept()
                except OSError:  # EAGAIN, ECONNABORTED, EMFILE: the client retries
                    continue
                if is_cut(port):
                    client.close()
                    continue
                upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    upstream.connect(("127.0.0.1", target))
                except OSError:
                    client.close()
                    upstream.close()
                    continue
                for s in (client, upstream):
                    s.setblocking(False)
                peers[client] = (upstream, port)
                peers[upstream] = (client, port)
                sel.register(client, selectors.EVENT_READ, ("data", port))
                sel.register(upstream, selectors.EVENT_READ, ("data", port))
            elif sock in peers:
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    close_pair(sock)
                    continue
                other = peers[sock][0]
                try:
                    other.setblocking(True)
                    other.sendall(data)
                    other.setblocking(False)
                except OSError:
                    close_pair(sock)
        now = time.monotonic()
        if now >= next_check:
            next_check = now + 0.05
            for s, (_, port) in list(peers.items()):
                if s in peers and is_cut(port):
                    close_pair(s)


if __name__ == "__main__":
    main()
