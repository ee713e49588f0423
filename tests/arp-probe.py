#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""arp-probe.py IFACE TARGET-IP SENDER-IP SECONDS: ask who has TARGET-IP; print the MAC that answers, exit 1 if none did in time."""
import socket
import struct
import sys
import time

iface, target, sender, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((iface, 0))
s.settimeout(0.2)
mine = s.getsockname()[4]
request = (b"\xff" * 6 + mine + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mine +
           socket.inet_aton(sender) + b"\x00" * 6 + socket.inet_aton(target)).ljust(60, b"\x00")
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        s.send(request)
    except OSError:  # no carrier until the stack opens the TAP device
        time.sleep(0.1)
        continue
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        try:
            frame = s.recv(2048)
        except socket.timeout:
            continue
        op, sha, spa = struct.unpack("!H", frame[20:22])[0], frame[22:28], frame[28:32]
        if op == 2 and spa == socket.inet_aton(target):
            print(":".join("%02x" % b for b in sha))
            sys.exit(0)
sys.exit(1)
