#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""NBD clients for tests (hostile ones for tests/t-server-limits.sh), each
bounded in count and time.

usage: nbd-abuse.py PORT SCENARIO [ARGS]
  idle-flood SRC N READYFILE     N connections from SRC that never start the
                                 handshake; READYFILE appears once they are up;
                                 then wait (20 s at most) for the server to
                                 close them all and print how long it took
  partial-writes SRC N HOLD READYFILE
                                 N connections from SRC, each sending a 31 MiB
                                 WRITE of which only 30 MiB arrive; held HOLD s
  idle-after-handshake           connect, choose export "base", send nothing:
                                 print the seconds until the server closes (20 at most)
  hold EXPORT SECONDS READYFILE [SRC]
                                 from address SRC (default 127.0.0.1), choose EXPORT (e.g. session:TOKEN), read its
                                 first 64 KiB, create READYFILE, keep the
                                 connection open SECONDS, then close it
                                 (tests/t-status.sh: a client in the OS phase)
  budget-refusal                 one connection holds a half-sent 31 MiB WRITE (a
                                 byte every 0.5 s), a second sends a whole one:
                                 print its reply's error
"""
import os
import socket
import struct
import sys
import threading
import time

OPT_MAGIC = 0x49484156454F5054
REQUEST, REPLY = 0x25609513, 0x67446698
BIG = 31 << 20
port, scenario, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]


def connect(src="127.0.0.1", timeout=10):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def handshake(s, export=b"base"):
    recv_exact(s, 18)
    s.sendall(struct.pack(">IQII", 3, OPT_MAGIC, 1, len(export)) + export)
    recv_exact(s, 10)


def wait_closed(socks, limit):
    """Seconds until every socket reads end-of-stream, or None past limit."""
    start = time.time()
    for s in socks:
        while True:
            left = limit - (time.time() - start)
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                if not s.recv(4096):
                    break
            except socket.timeout:
                return None
            except OSError:
                break
    return time.time() - start


def partial_write(s, size, send):
    """A WRITE of size bytes of which only `send` go out (or fewer, if the server stops reading)."""
    s.sendall(struct.pack(">IHHQQI", REQUEST, 0, 1, 1, 0, size))
    chunk = b"\xaa" * (1 << 20)
    s.settimeout(5)
    sent = 0
    try:
        while sent < send:
            s.sendall(chunk[:min(len(chunk), send - sent)])
            sent += min(len(chunk), send - sent)
    except (socket.timeout, OSError):
        pass
    return sent


if scenario == "idle-flood":
    src, n, ready = args[0], int(args[1]), args[2]
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(src))
        except OSError:
            pass
    open(ready, "w").close()
    took = wait_closed(socks, 20)
    print("closed" if took is not None else "still open", "%.1f" % (took or 20), len(socks))
elif scenario == "partial-writes":
    src, n, hold, ready = args[0], int(args[1]), float(args[2]), args[3]
    socks = [connect(src) for _ in range(n)]
    for s in socks:
        handshake(s)
    threads = [threading.Thread(target=partial_write, args=(s, BIG, 30 << 20)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    open(ready, "w").close()
    time.sleep(hold)
    print("held", len(socks))
elif scenario == "idle-after-handshake":
    s = connect()
    handshake(s)
    took = wait_closed([s], 20)
    print("closed %.1f" % took if took is not None else "still open")
elif scenario == "budget-refusal":
    a = connect()
    handshake(a)
    partial_write(a, BIG, 16 << 20)
    done = threading.Event()

    def trickle():  # a byte now and then: slow, but never stalled long enough to be dropped
        for _ in range(40):
            if done.wait(0.5):
                return
            a.sendall(b"\xaa")

    threading.Thread(target=trickle, daemon=True).start()
    b = connect()
    handshake(b)
    b.settimeout(30)
    b.sendall(struct.pack(">IHHQQI", REQUEST, 0, 1, 7, 0, BIG) + b"\x55" * BIG)
    magic, error, handle = struct.unpack(">IIQ", recv_exact(b, 16))
    assert magic == REPLY and handle == 7, (magic, handle)
    done.set()
    print("error", error)
elif scenario == "hold":
    export, hold, ready = args[0].encode(), float(args[1]), args[2]
    s = connect(args[3] if len(args) > 3 else "127.0.0.1")
    handshake(s, export)
    s.sendall(struct.pack(">IHHQQI", REQUEST, 0, 0, 1, 0, 65536))
    magic, error, handle = struct.unpack(">IIQ", recv_exact(s, 16))
    assert magic == REPLY and handle == 1 and error == 0, (magic, error, handle)
    recv_exact(s, 65536)
    open(ready, "w").close()
    time.sleep(min(hold, 60))
    s.close()
else:
    sys.exit("unknown scenario " + scenario)
