#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs a VM whose serial console is its stdout; prints the seconds between BENCH-START and BENCH-END.

With SERIAL_LOG=FILE the whole console is also written to FILE."""
import os
import subprocess
import sys
import threading
import time


def main():
    timeout = float(sys.argv[1])
    vm = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    start = None
    log = open(os.environ["SERIAL_LOG"], "w") if os.environ.get("SERIAL_LOG") else None
    # the deadline holds even when the VM goes silent
    killer = threading.Timer(timeout, vm.kill)
    killer.start()
    try:
        for raw in vm.stdout:
            line = raw.decode("latin-1").strip()
            if log:
                log.write(line + "\n")
                log.flush()
            now = time.monotonic()
            if "BENCH-START" in line:
                start = now
            elif "BENCH-END" in line and start is not None:
                errors = line.split("errors=")[-1]
                print("%.2f %s" % (now - start, errors))
                return 0
        print("timeout -", file=sys.stderr)
        return 1
    finally:
        killer.cancel()
        vm.kill()
        vm.wait()


if __name__ == "__main__":
    sys.exit(main())
