#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Logs every IGMP message seen on an interface (tests/t-lab-mcast.sh: the
stubs' joins and leaves on the lab's bridge), one line each:
"SRC-MAC TYPE GROUP", TYPE 0x16 a v2 report, 0x17 a leave.

  igmp-sniff.py IFACE OUT-FILE"""
import socket
import sys

ETH_P_ALL = 3


def main():
    iface, out = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    with open(out, "a", buffering=1) as f:
        while True:
            frame = s.recv(2048)
            if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            hlen = (ip[0] & 15) * 4
            if ip[9] != 2 or len(ip) < hlen + 8:
                continue
            igmp = ip[hlen:]
            mac = ":".join(f"{b:02x}" for b in frame[6:12])
            f.write(f"{mac} 0x{igmp[0]:02x} {socket.inet_ntoa(igmp[4:8])}\n")


if __name__ == "__main__":
    main()
