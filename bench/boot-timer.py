#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Starts a VM whose serial console is its stdout and prints when each awaited console text first appeared.

Usage: boot-timer.py SECONDS NAME=TEXT... -- COMMAND...
Prints "NAME SECONDS" (since COMMAND started) for every NAME whose TEXT showed
up, in the order seen, and stops the VM once all have shown up, it ends, or
SECONDS pass.  With SERIAL_LOG=FILE the console is kept in FILE.
"""
import os
import signal
import subprocess
import sys
import time


def main():
    split = sys.argv.index("--")
    limit = float(sys.argv[1])
    awaited = dict(arg.split("=", 1) for arg in sys.argv[2:split])
    log = open(os.environ["SERIAL_LOG"], "wb") if os.environ.get("SERIAL_LOG") else None
    start = time.monotonic()
    # Its own process group: a launcher script's QEMU child goes with it.
    vm = subprocess.Popen(sys.argv[split + 1:], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        # Lines end in CR LF or in escape sequences the firmware prints;
        # whole lines are enough here since every awaited text ends a line.
        for raw in vm.stdout:
            if log:
                log.write(raw)
            line = raw.decode("latin-1")
            for name, text in list(awaited.items()):
                if text in line:
                    print("%s %.2f" % (name, time.monotonic() - start), flush=True)
                    del awaited[name]
            if not awaited or time.monotonic() - start > limit:
                break
    finally:
        if vm.poll() is None:
            os.killpg(vm.pid, signal.SIGTERM)
        vm.wait()
    return 1 if awaited else 0


if __name__ == "__main__":
    sys.exit(main())
