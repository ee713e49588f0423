#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A tiny HTTP/1.1 file server with Range support (iPXE's HTTP SAN boot needs ranges)."""

import http.server
import os
import sys


class RangeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    path_served = None

    def log_message(self, fmt, *args):
        pass

    def _span(self, size):
        """(start, end) from the Range header, inclusive; the whole file without one."""
        header = self.headers.get("Range", "")
        if not header.startswith("bytes="):
            return 0, size - 1, False
        first, _, last = header[6:].partition("-")
        start = int(first) if first else size - int(last)
        end = int(last) if first and last else size - 1
        return start, min(end, size - 1), True

    def _answer(self, with_body):
        size = os.path.getsize(self.path_served)
        start, end, partial = self._span(size)
        if start > end or start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if partial else 200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if with_body:
            with open(self.path_served, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(end - start + 1))

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    RangeHandler.path_served = path
    http.server.ThreadingHTTPServer(("127.0.0.1", port), RangeHandler).serve_forever()


if __name__ == "__main__":
    main()
