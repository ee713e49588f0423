#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Disk image for the INT 13h test: the test program in sectors 0-31, then dword k of sector n = n*128+k."""
import array
import sys

PROGRAM_SECTORS = 32


def main():
    program, out, sectors = sys.argv[1], sys.argv[2], int(sys.argv[3])
    code = open(program, "rb").read()
    if len(code) > PROGRAM_SECTORS * 512:
        sys.exit("test program larger than %d sectors" % PROGRAM_SECTORS)
    with open(out, "wb") as f:
        f.write(code.ljust(PROGRAM_SECTORS * 512, b"\0"))
        step = 2048
        for first in range(PROGRAM_SECTORS, sectors, step):
            last = min(first + step, sectors)
            f.write(array.array("I", range(first * 128, last * 128)).tobytes())


if __name__ == "__main__":
    main()
