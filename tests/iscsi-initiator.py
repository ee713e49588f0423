#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A small iSCSI initiator for t-iscsi.sh: what libiscsi's tools cannot do
here (read a whole disk to a file, write a file, data digests, mutual CHAP
with a wrong target secret), written from RFC 7143 as a second, independent
implementation of the protocol.

usage: iscsi-initiator.py HOST:PORT TARGET [options] OP [ARGS]
  OP: read OFFSET LENGTH FILE | write OFFSET FILE | sync | capacity | login |
      hold SECONDS | cdb HEX LENGTH | nop BYTES | datasn-error OFFSET FILE |
      discover (TARGET ignored)
options: --initiator IQN  --chap USER:SECRET  --mutual USER:SECRET
         --digests (CRC32C on headers and data)  --no-immediate  --burst N
         --step N (bytes a READ or WRITE command moves; default 1 MiB)
Exit 0 on success; 2 on a SCSI error (prints "sense KEY/ASC/ASCQ"); 3 when
the login is refused (prints "login status 0xCCDD"); 1 otherwise.
"""
import hashlib
import io
import os
import socket
import struct
import sys

CRC_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    CRC_TABLE.append(c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class LoginRefused(Exception):
    pass


class ScsiError(Exception):
    pass


def pad4(n):
    return (4 - n % 4) % 4


class Initiator:
    def __init__(self, addr, target, iqn, chap=None, mutual=None, digests=False,
                 immediate=True, burst=262144):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.target, self.iqn, self.chap, self.mutual = target, iqn, chap, mutual
        self.want_digests, self.immediate, self.burst = digests, immediate, burst
        self.step = 1 << 20
        self.datasn_skew = 0  # added to every Data-Out's DataSN (datasn-error)
        self.hd = self.dd = False
        self.cmdsn, self.itt, self.statsn = 1, 1, 0
        self.max_send = 8192

    # -- PDUs --
    def send(self, bhs, data=b""):
        bhs = bytearray(bhs)
        bhs[5:8] = len(data).to_bytes(3, "big")
        out = bytes(bhs)
        if self.hd:
            out += struct.pack("<I", crc32c(bhs))
        if data:
            data = bytes(data) + b"\0" * pad4(len(data))
            out += data
            if self.dd:
                out += struct.pack("<I", crc32c(data))
        self.sock.sendall(out)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the target closed the connection")
            buf += chunk
        return buf

    def recv(self):
        bhs = self.recv_exact(48)
        ahs = self.recv_exact(bhs[4] * 4)
        if self.hd:
            (dig,) = struct.unpack("<I", self.recv_exact(4))
            if dig != crc32c(bhs + ahs):
                raise ConnectionError("header digest mismatch from the target")
        dlen = int.from_bytes(bhs[5:8], "big")
        data = self.recv_exact(dlen + pad4(dlen)) if dlen else b""
        if dlen and self.dd:
            (dig,) = struct.unpack("<I", self.recv_exact(4))
            if dig != crc32c(data):
                raise ConnectionError("data digest mismatch from the target")
        return bhs, data[:dlen]

    # -- login --
    def login_pdu(self, csg, nsg, transit, keys):
        bhs = bytearray(48)
        bhs[0] = 0x43
        bhs[1] = (0x80 if transit else 0) | csg << 2 | (nsg if transit else 0)
        bhs[8:14] = b"\x80\x00\x00\x00\x12\x34"
        struct.pack_into(">III", bhs, 16, self.itt, 0, 0)
        struct.pack_into(">II", bhs, 24, self.cmdsn, self.statsn)
        data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in keys)
        self.send(bhs, data)
        rsp, rdata = self.recv()
        if rsp[0] & 0x3F != 0x23:
            raise ConnectionError(f"opcode {rsp[0]:#x} during login")
        status = rsp[36] << 8 | rsp[37]
        if status:
            raise LoginRefused(f"login status {status:#06x}")
        self.statsn = struct.unpack_from(">I", rsp, 24)[0] + 1
        kv = {}
        for item in rdata.split(b"\0"):
            if b"=" in item:
                k, v = item.decode().split("=", 1)
                kv[k] = v
        return rsp, kv

    def login(self):
        base = [("InitiatorName", self.iqn), ("SessionType", "Normal"),
                ("TargetName", self.target)]
        if self.chap:
            _, kv = self.login_pdu(0, 1, False, base + [("AuthMethod", "CHAP,None")])
            if kv.get("AuthMethod") != "CHAP":
                raise ConnectionError(f"AuthMethod={kv.get('AuthMethod')}")
            _, kv = self.login_pdu(0, 1, False, [("CHAP_A", "5")])
            cid, chal = int(kv["CHAP_I"]), bytes.fromhex(kv["CHAP_C"][2:])
            user, secret = self.chap.split(":", 1)
            resp = hashlib.md5(bytes([cid]) + secret.encode() + chal).hexdigest()
            keys = [("CHAP_N", user), ("CHAP_R", "0x" + resp)]
            if self.mutual:
                my_chal = os.urandom(16)
                keys += [("CHAP_I", "7"), ("CHAP_C", "0x" + my_chal.hex())]
            rsp, kv = self.login_pdu(0, 1, True, keys)
            if self.mutual:
                tuser, tsecret = self.mutual.split(":", 1)
                want = hashlib.md5(bytes([7]) + tsecret.encode() + my_chal).hexdigest()
                if kv.get("CHAP_R", "").lower() != "0x" + want or kv.get("CHAP_N") != tuser:
                    raise LoginRefused("mutual CHAP: the target's answer is wrong")
            base = []
        else:
            base += [("AuthMethod", "None")]
            self.login_pdu(0, 1, True, base)
            base = []
        dig = "CRC32C,None" if self.want_digests else "None"
        rsp, kv = self.login_pdu(1, 3, True, base + [
            ("HeaderDigest", dig), ("DataDigest", dig), ("MaxConnections", "1"),
            ("InitialR2T", "Yes"), ("ImmediateData", "Yes" if self.immediate else "No"),
            ("MaxRecvDataSegmentLength", "65536"), ("MaxBurstLength", str(self.burst)),
            ("FirstBurstLength", "65536"), ("ErrorRecoveryLevel", "0"),
            ("DataPDUInOrder", "Yes"), ("DataSequenceInOrder", "Yes")])
        if not rsp[1] & 0x80 or rsp[1] & 3 != 3:
            raise ConnectionError("no transit to the full feature phase")
        self.hd = kv.get("HeaderDigest") == "CRC32C"
        self.dd = kv.get("DataDigest") == "CRC32C"
        if self.want_digests and not (self.hd and self.dd):
            raise ConnectionError(f"digests not agreed: {kv}")
        self.max_send = int(kv.get("MaxRecvDataSegmentLength", "8192"))
        self.immediate = self.immediate and kv.get("ImmediateData") == "Yes"
        self.first_burst = int(kv.get("FirstBurstLength", "65536"))
        return kv

    def request(self, op, ttt=0xFFFFFFFF):
        """The header of a final, non-SCSI request under the next ITT and CmdSN;
        ttt fills bytes 20-23 (a Logout's CID and reserved bytes: 0)."""
        self.itt += 1
        bhs = bytearray(48)
        bhs[0], bhs[1] = op, 0x80
        struct.pack_into(">IIII", bhs, 16, self.itt, ttt, self.cmdsn, self.statsn)
        self.cmdsn += 1
        return bhs

    # -- SCSI --
    def command(self, cdb, read_len=0, data=b""):
        self.itt += 1
        itt = self.itt
        bhs = bytearray(48)
        bhs[0] = 0x01
        bhs[1] = 0x80 | (0x40 if read_len else 0) | (0x20 if data else 0) | 1
        struct.pack_into(">II", bhs, 16, itt, read_len or len(data))
        struct.pack_into(">II", bhs, 24, self.cmdsn, self.statsn)
        self.cmdsn += 1
        bhs[32:32 + len(cdb)] = cdb
        imm = b""
        if data and self.immediate:
            imm = data[:min(self.first_burst, self.max_send)]
        self.send(bhs, imm)
        got = bytearray()
        datasn = 0
        while True:
            rsp, rdata = self.recv()
            op = rsp[0] & 0x3F
            if op == 0x25:  # Data-In, numbered 0, 1, ... within the command
                sn, off = struct.unpack_from(">II", rsp, 36)
                if sn != datasn:
                    raise ConnectionError(f"Data-In DataSN {sn}, expected {datasn}")
                datasn += 1
                got[off:off + len(rdata)] = rdata
                if rsp[1] & 0x01:
                    self.statsn = struct.unpack_from(">I", rsp, 24)[0] + 1
                    if rsp[3]:
                        raise ScsiError(f"status {rsp[3]}")
                    return bytes(got)
            elif op == 0x31:  # R2T: the burst asked for
                ttt, _, _, _, _, off, length = struct.unpack_from(">IIIIIII", rsp, 20)
                sn = 0
                while length:
                    n = min(length, self.max_send)
                    d = bytearray(48)
                    d[0] = 0x05
                    d[1] = 0x80 if n == length else 0
                    struct.pack_into(">II", d, 16, itt, ttt)
                    struct.pack_into(">I", d, 28, self.statsn)
                    struct.pack_into(">II", d, 36, sn + self.datasn_skew, off)
                    self.send(d, data[off:off + n])
                    sn, off, length = sn + 1, off + n, length - n
            elif op == 0x21:  # SCSI Response
                self.statsn = struct.unpack_from(">I", rsp, 24)[0] + 1
                if rsp[3]:
                    s = rdata[2:]
                    raise ScsiError(f"sense {s[2] & 15:02x}/{s[12]:02x}/{s[13]:02x}"
                                    if len(s) >= 14 else f"status {rsp[3]}")
                return bytes(got)
            else:
                raise ConnectionError(f"unexpected opcode {op:#x}")

    def discover(self):
        """A discovery session's SendTargets=All, following the target's C bit."""
        self.login_pdu(1, 3, True, [("InitiatorName", self.iqn), ("SessionType", "Discovery"),
                                    ("MaxRecvDataSegmentLength", "512")])
        self.max_send = 512
        text, ttt, keys = b"", 0xFFFFFFFF, b"SendTargets=All\0"
        while True:
            self.send(self.request(0x04, ttt), keys)
            rsp, data = self.recv()
            if rsp[0] & 0x3F != 0x24 or len(data) > 512:
                raise ConnectionError(f"bad text response ({len(data)} bytes)")
            self.statsn = struct.unpack_from(">I", rsp, 24)[0] + 1
            text += data
            if not rsp[1] & 0x40:
                break
            ttt, keys = struct.unpack_from(">I", rsp, 20)[0], b""
            self.parts = getattr(self, "parts", 1) + 1
        return [k.decode() for k in text.split(b"\0") if k]

    def capacity(self):
        d = self.command(bytes([0x9E, 0x10]) + b"\0" * 8 + struct.pack(">I", 32) + b"\0\0",
                         read_len=32)
        last, bs = struct.unpack_from(">QI", d)
        return (last + 1) * bs

    def read(self, off, length, out):
        step = self.step
        while length:
            n = min(step, length)
            cdb = bytes([0x88, 0]) + struct.pack(">QI", off // 512, n // 512) + b"\0\0"
            out.write(self.command(cdb, read_len=n))
            off, length = off + n, length - n

    def write(self, off, data):
        step = self.step
        for pos in range(0, len(data), step):
            chunk = data[pos:pos + step]
            cdb = bytes([0x8A, 0]) + struct.pack(">QI", (off + pos) // 512,
                                                 len(chunk) // 512) + b"\0\0"
            self.command(cdb, data=chunk)

    def sync(self):
        self.command(bytes([0x35]) + b"\0" * 9)

    def nop(self, nbytes):
        """A NOP-Out ping with nbytes of data: the NOP-In must carry its ITT,
        TTT ffffffff and the same data back."""
        ping = os.urandom(nbytes)
        self.send(self.request(0x00), ping)
        rsp, data = self.recv()
        itt, ttt = struct.unpack_from(">II", rsp, 16)
        if rsp[0] & 0x3F != 0x20 or itt != self.itt or ttt != 0xFFFFFFFF or data != ping:
            raise ConnectionError(f"NOP-In op {rsp[0] & 0x3F:#x} itt {itt:#x} ttt {ttt:#x} "
                                  f"data {len(data)} bytes{' (not the ping)' if data != ping else ''}")
        self.statsn = struct.unpack_from(">I", rsp, 24)[0] + 1

    def logout(self):
        self.send(self.request(0x46, 0))  # CID 0
        rsp, _ = self.recv()
        if rsp[0] & 0x3F != 0x26 or rsp[2]:
            raise ConnectionError("logout refused")


def size(text):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    return int(text[:-1] if mult > 1 else text, 0) * mult


def main(argv):
    opts = {"initiator": "iqn.2000-01.org.netdisk.test:pyinit", "chap": None,
            "mutual": None, "digests": False, "immediate": True, "burst": 262144,
            "step": 1 << 20}
    args = []
    it = iter(argv[1:])
    for a in it:
        if a == "--initiator":
            opts["initiator"] = next(it)
        elif a == "--chap":
            opts["chap"] = next(it)
        elif a == "--mutual":
            opts["mutual"] = next(it)
        elif a == "--digests":
            opts["digests"] = True
        elif a == "--no-immediate":
            opts["immediate"] = False
        elif a == "--burst":
            opts["burst"] = int(next(it))
        elif a == "--step":
            opts["step"] = size(next(it))
        else:
            args.append(a)
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 1
    addr, target, op, rest = args[0], args[1], args[2], args[3:]
    try:
        ini = Initiator(addr, target, opts["initiator"], opts["chap"], opts["mutual"],
                        opts["digests"], opts["immediate"], opts["burst"])
        ini.step = opts["step"]
        if op == "discover":
            names = ini.discover()
            print("\n".join(names))
            print(f"parts={getattr(ini, 'parts', 1)}")
            ini.logout()
            return 0
        ini.login()
        if op == "read":
            with open(rest[2], "wb") as f:
                ini.read(size(rest[0]), size(rest[1]), f)
        elif op == "write":
            with open(rest[1], "rb") as f:
                ini.write(size(rest[0]), f.read())
        elif op == "sync":
            ini.sync()
        elif op == "hold":  # stay logged in (for status checks)
            import time
            time.sleep(float(rest[0]))
        elif op == "cdb":  # any CDB (hex) reading up to LEN bytes: the data in hex
            print(ini.command(bytes.fromhex(rest[0]), read_len=int(rest[1], 0)).hex())
        elif op == "datasn-error":
            # A WRITE whose Data-Out carries a wrong DataSN must fail alone
            # (sense 0b/47/05) and change nothing; the same WRITE made right
            # on the same connection then lands.
            with open(rest[1], "rb") as f:
                data = f.read()
            off = size(rest[0])
            before = io.BytesIO()
            ini.read(off, len(data), before)
            ini.immediate, ini.datasn_skew = False, 7
            try:
                ini.write(off, data)
                print("error: the WRITE with a wrong DataSN succeeded")
                return 1
            except ScsiError as e:
                print(f"refused: {e}")
            ini.datasn_skew = 0
            after = io.BytesIO()
            ini.read(off, len(data), after)
            if after.getvalue() != before.getvalue():
                print("error: the refused WRITE changed the disk")
                return 1
            ini.write(off, data)
            after = io.BytesIO()
            ini.read(off, len(data), after)
            if after.getvalue() != data:
                print("error: the WRITE after it did not land")
                return 1
            print("written and read back on the same connection")
        elif op == "nop":
            ini.nop(int(rest[0]))
        elif op == "capacity":
            print(ini.capacity())
        elif op != "login":
            print(f"unknown op {op}", file=sys.stderr)
            return 1
        ini.logout()
    except LoginRefused as e:
        print(e)
        return 3
    except ScsiError as e:
        print(e)
        return 2
    except (OSError, ConnectionError, KeyError, ValueError) as e:
        print(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
