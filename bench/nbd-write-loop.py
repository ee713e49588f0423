#!/usr/bin/env python3
"""Load for bench/contention.sh: one NBD client looping a 32 MiB WRITE and a FLUSH
(the whole export if it is smaller).

usage: nbd-write-loop.py PORT EXPORT SECONDS -- prints the rounds done.
"""
import os
import socket
import struct
import sys
import time

port, export, seconds = int(sys.argv[1]), sys.argv[2].encode(), float(sys.argv[3])
SIZE = 32 << 20


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("server closed the connection")
        buf += chunk
    return bytes(buf)


def reply(s, handle):
    magic, error, got = struct.unpack(">IIQ", recv_exact(s, 16))
    assert magic == 0x67446698 and error == 0 and got == handle, (magic, error, got)


s = socket.create_connection(("127.0.0.1", port), timeout=60)
recv_exact(s, 18)
s.sendall(struct.pack(">IQII", 3, 0x49484156454F5054, 1, len(export)) + export)
size = struct.unpack(">QH", recv_exact(s, 10))[0]
SIZE = min(SIZE, size)
data = os.urandom(SIZE)
rounds, end = 0, time.time() + seconds
while time.time() < end:
    off = (rounds * SIZE) % (size - SIZE + 1)
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 1, off, SIZE) + data)
    reply(s, 1)
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 3, 2, 0, 0))
    reply(s, 2)
    rounds += 1
print("rounds", rounds)
