#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""UDP relay for outage tests: forwards a client to a server, goes dark after N datagrams until told to resume.

usage: udp-outage.py LISTEN_PORT SERVER_PORT N FLAG_DIR
After the client's Nth datagram nothing passes either way; FLAG_DIR/paused is
created, and traffic flows again once FLAG_DIR/resume exists.
"""
import os
import select
import socket
import sys

listen, target, after, flags = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind(('127.0.0.1', listen))
back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
back.connect(('127.0.0.1', target))
client, count, dark = None, 0, False
print('listening on', listen, flush=True)
while True:
    ready, _, _ = select.select([front, back], [], [], 0.1)
    if dark and os.path.exists(os.path.join(flags, 'resume')):
        dark = False
    for sock in ready:
        if sock is front:
            data, client = front.recvfrom(65536)
            count += 1
            if count == after:
                dark = True
                open(os.path.join(flags, 'paused'), 'w').close()
            if not dark:
                back.send(data)
        else:
            try:
                data = back.recv(65536)
            except ConnectionRefusedError:
                continue  # the server is down; the client retries
            if not dark and client:
                front.sendto(data, client)
