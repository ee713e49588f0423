#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# A machine on the LAN that is not the victim (tests/t-access.sh): raw ATTACHes from an address
# of its choosing, unkeyed or signed with a site key (docs/protocol.md, "Site key"), and replays.
import hashlib, hmac, socket, struct, sys

MAGIC, HDR, ATTACH, READ = 0x4E44534B, 48, 1, 4
AUTH_MAGIC = 0x4E44414B

def hdr(op, token=b"\0" * 16, req_id=1, lba=0, count=0, data=b""):
    return struct.pack(">IBBBBIHH16sQII", MAGIC, 1, op, 0, 0, req_id, 0, len(data), token,
                       lba, count, 0) + data

def attach_dgram(mac, nonce, image, challenge=b"\0" * 16, key=None, req_id=1):
    req = mac + bytes([4, 0]) + struct.pack(">HHII", 1472, 16, 0, nonce) + b"\0" * 4
    req += image.ljust(64, b"\0")
    if key is None:
        return hdr(ATTACH, challenge, req_id, data=req + b"\0" * 40)
    kid = hashlib.sha256(key).digest()[:4]
    d = hdr(ATTACH, challenge, req_id, data=req + struct.pack(">I", AUTH_MAGIC) + kid + b"\0" * 32)
    return d[:48 + 96] + hmac.new(key, d[:48 + 96], hashlib.sha256).digest()

def exchange(s, server, d):
    s.sendto(d, server)
    s.settimeout(2)
    r = s.recv(70000)
    return struct.unpack(">H", r[12:14])[0], r[16:32]

def main():
    # access-probe.py PORT FROM MAC NONCE IMAGE [KEYFILE [REPLAY_FROM]]
    port, src, mac, nonce, image = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    key = bytes.fromhex(open(sys.argv[6]).read().strip()) if len(sys.argv) > 6 else None
    server, macb = ("127.0.0.1", port), bytes.fromhex(mac.replace(":", ""))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    d = attach_dgram(macb, nonce, image.encode(), key=key)
    st, tok = exchange(s, server, d)
    if st == 12 and key is not None:   # AUTH: sign again with the challenge
        d = attach_dgram(macb, nonce, image.encode(), tok, key, 2)
        st, tok = exchange(s, server, d)
    print("attach-status %d" % st)
    if st == 0:
        # What the session shows: sector 0's first 16 bytes, as hex.
        s.sendto(hdr(READ, tok, 9, 0, 1), server)
        r = s.recv(70000)
        print("sector0 %s" % r[48:64].hex())
    if len(sys.argv) > 7:
        # The signed datagram that worked, sent again from elsewhere (a replay).
        r2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r2.bind((sys.argv[7], 0))
        print("replay-status %d" % exchange(r2, server, d)[0])

main()
