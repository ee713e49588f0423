#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A hostile listener on the LAN for tests/t-mcast.sh: it joins a netdisk
multicast group, learns the stream id from one real group datagram, then
floods the group with forged datagrams until killed: some with the server's
address and port as their source (raw IPv4, so the client's source check
passes and its datagram checks must catch them) and some from its own.

  mcast-forge.py LOCAL_IP GROUP PORT SERVER_IP SERVER_PORT READY_FILE [RATE]

Forgeries: bad magic, protocol version 2, truncated (data_len larger than
the datagram), another stream, the right stream with an LBA past any image,
and a block crossing its block boundary.  READY_FILE is written once the
stream is known; counts go to stderr at exit."""
import os
import random
import signal
import socket
import struct
import sys
import time

MAGIC = 0x4E44534B
OP_READ, REPLY, MCAST = 4, 1, 2


def header(version, flags, data_len, stream, lba, count, magic=MAGIC):
    token = stream + b"\0" * 8
    return struct.pack(">IBBBBIHH16sQII", magic, version, OP_READ, flags, 0,
                       random.getrandbits(32), 0, data_len, token, lba, count, 0)


def forgeries(stream):
    data = bytes(random.getrandbits(8) for _ in range(1024))
    good = REPLY | MCAST
    yield header(1, good, 1024, stream, 64, 2, magic=0x12345678) + data
    yield header(2, good, 1024, stream, 64, 2) + data
    yield header(1, good, 1024, stream, 64, 2) + data[:600]
    yield header(1, good, 1024, os.urandom(8), 64, 2) + data
    yield header(1, good, 1024, stream, 1 << 40, 2) + data
    yield header(1, good, 1024, stream, 65, 2) + data


def ip_udp(src, sport, dst, dport, payload):
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), random.getrandbits(16), 0, 1,
                     socket.IPPROTO_UDP, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return ip + udp


def main():
    local, group, port, server, sport, ready = sys.argv[1:7]
    rate = int(sys.argv[7]) if len(sys.argv) > 7 else 4000
    port, sport = int(port), int(sport)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.bind((group, port))
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton(group) + socket.inet_aton(local))
    rx.settimeout(60)
    while True:
        d, src = rx.recvfrom(65536)
        if len(d) >= 48 and struct.unpack(">I", d[:4])[0] == MAGIC and d[6] == REPLY | MCAST:
            stream = d[16:24]
            break
    with open(ready, "w") as f:
        f.write(stream.hex() + "\n")
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
    own = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    own.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
    sent = {"spoofed": 0, "own": 0}

    def stop(*_):
        print(f"mcast-forge: {sent['spoofed']} spoofed, {sent['own']} from itself", file=sys.stderr)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    batch = list(forgeries(stream))
    while True:
        t = time.monotonic()
        for i in range(rate // 10):
            d = batch[i % len(batch)]
            if i % 8 == 7:
                own.sendto(d, (group, port))
                sent["own"] += 1
            else:
                raw.sendto(ip_udp(server, sport, group, port, d), (group, 0))
                sent["spoofed"] += 1
        time.sleep(max(0, 0.1 - (time.monotonic() - t)))


if __name__ == "__main__":
    main()
