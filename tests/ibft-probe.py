#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# A stub's view of takeover = iscsi (tests/t-ibft.sh): ATTACH, the handoff word, ND_OP_IBFT with
# made-up NIC facts, and an iBFT reader of its own (the layout Linux's iscsi_ibft reads), so the
# server's builder is checked by code that shares nothing with it.
import ipaddress, socket, struct, sys

MAGIC, HDR, ATTACH, IBFT = 0x4E44534B, 48, 1, 7

def hdr(op, token=b"\0" * 16, req_id=1, data=b""):
    return struct.pack(">IBBBBIHH16sQII", MAGIC, 1, op, 0, 0, req_id, 0, len(data), token, 0, 0, 0) + data

def attach(s, server, mac, image):
    req = mac + bytes([1, 0]) + struct.pack(">HHII", 1472, 16, 6, 0x1234) + b"\0" * 4
    s.sendto(hdr(ATTACH, data=req + image.ljust(64, b"\0") + b"\0" * 40), server)
    r = s.recv(70000)
    st = struct.unpack(">H", r[12:14])[0]
    handoff = struct.unpack(">I", r[48 + 40:48 + 44])[0] if st == 0 else 0
    return st, r[16:32], handoff

def ip16(b):
    """An iBFT address: ::ffff:a.b.c.d is IPv4, all zeros none."""
    if b == b"\0" * 16:
        return "none"
    if b[:12] == b"\0" * 10 + b"\xff\xff":
        return str(ipaddress.IPv4Address(b[12:]))
    return str(ipaddress.IPv6Address(b))

def string(t, length, off, table_len):
    if not length:
        return ""
    assert off + length < table_len and t[off + length] == 0, "string %d+%d not NUL-terminated in the table" % (off, length)
    return t[off:off + length].decode()

def parse(t):
    """Check the table as a kernel would and print its fields as KEY VALUE lines."""
    out = []
    sig, length, rev, csum = struct.unpack_from("<4sIBB", t, 0)
    assert sig == b"iBFT" and length == len(t), "signature %r length %d of %d" % (sig, length, len(t))
    assert sum(t) % 256 == 0, "checksum: bytes sum to %d" % (sum(t) % 256)
    out += [("revision", rev), ("oem-id", t[10:16].decode()), ("oem-table-id", t[16:24].decode())]
    cid, cver, clen, cidx, cfl, ext, ini, nic0, tgt0, nic1, tgt1 = struct.unpack_from("<BBHBBHHHHHH", t, 48)
    assert (cid, cver, clen, cidx) == (1, 1, 18, 0), "control header %r" % ((cid, cver, clen, cidx),)
    for name, off, sid, size in (("initiator", ini, 2, 74), ("nic0", nic0, 3, 102), ("target0", tgt0, 4, 54)):
        assert off and off % 8 == 0 and off + size <= length, "%s at %d" % (name, off)
        i, v, l, idx, fl = struct.unpack_from("<BBHBB", t, off)
        assert (i, v, l, idx) == (sid, 1, size, 0), "%s header %r" % (name, (i, v, l, idx))
        out.append((name + "-flags", fl))
    assert nic1 == 0 and tgt1 == 0
    nlen, noff = struct.unpack_from("<HH", t, ini + 6 + 64)
    out.append(("initiator-name", string(t, nlen, noff, length)))
    n = nic0 + 6
    out += [("nic-ip", ip16(t[n:n + 16])), ("nic-prefix", t[n + 16]), ("nic-origin", t[n + 17]),
            ("nic-gateway", ip16(t[n + 18:n + 34])), ("nic-dns", ip16(t[n + 34:n + 50])),
            ("nic-dns2", ip16(t[n + 50:n + 66])), ("nic-dhcp", ip16(t[n + 66:n + 82]))]
    vlan, = struct.unpack_from("<H", t, n + 82)
    mac = t[n + 84:n + 90]
    bdf, hlen, hoff = struct.unpack_from("<HHH", t, n + 90)
    out += [("nic-vlan", vlan), ("nic-mac", ":".join("%02x" % b for b in mac)),
            ("nic-pci", "%02x:%02x.%x" % (bdf >> 8, bdf >> 3 & 31, bdf & 7)),
            ("nic-hostname", string(t, hlen, hoff, length) or "none")]
    g = tgt0 + 6
    port, = struct.unpack_from("<H", t, g + 16)
    lun = t[g + 18:g + 26]
    chap_type, nic_assoc = t[g + 26], t[g + 27]
    f = struct.unpack_from("<10H", t, g + 28)
    out += [("target-ip", ip16(t[g:g + 16])), ("target-port", port), ("target-lun", lun.hex()),
            ("target-chap-type", chap_type), ("target-nic", nic_assoc),
            ("target-name", string(t, f[0], f[1], length)),
            ("target-chap-name", string(t, f[2], f[3], length) or "none"),
            ("target-chap-secret", string(t, f[4], f[5], length) or "none"),
            ("target-rchap-name", string(t, f[6], f[7], length) or "none"),
            ("target-rchap-secret", string(t, f[8], f[9], length) or "none")]
    for k, v in out:
        print("%s %s" % (k, v))

def main():
    # ibft-probe.py PORT MAC IMAGE: attach, then ask the iBFT with fixed NIC facts
    # (10.0.2.15/24 via 10.0.2.2, DNS 10.0.2.3, DHCP 10.0.2.2, server 10.0.2.2, PCI 00:03.0).
    # ibft-probe.py --file TABLE: only parse TABLE (the guest's copy, or a corrupted one).
    if sys.argv[1] == "--file":
        parse(open(sys.argv[2], "rb").read())
        return
    port, mac, image = int(sys.argv[1]), bytes.fromhex(sys.argv[2].replace(":", "")), sys.argv[3].encode()
    server = ("127.0.0.1", port)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    st, tok, handoff = attach(s, server, mac, image)
    print("attach-status %d" % st)
    print("handoff-iscsi %d" % (handoff >> 1 & 1))
    print("token %s" % tok.hex())
    facts = bytes([10, 0, 2, 15, 10, 0, 2, 2, 255, 255, 255, 0, 10, 0, 2, 2, 10, 0, 2, 2, 10, 0, 2, 3])
    s.sendto(hdr(IBFT, tok, 2, facts + mac + struct.pack(">H", 0x0018)), server)
    r = s.recv(70000)
    st = struct.unpack(">H", r[12:14])[0]
    print("ibft-status %d" % st)
    if st == 0:
        table = r[HDR:]
        if len(sys.argv) > 4:
            open(sys.argv[4], "wb").write(table)
        parse(table)

main()
