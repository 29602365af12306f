#!/usr/bin/python3
"""Stand in for systemd's notification socket: bind an AF_UNIX datagram socket at PATH
and append every message to OUT as one line, "<monotonic seconds> <message>", with the
message's newlines written as \\n.

    notify_listen.py PATH OUT

Runs until killed.
"""
import socket
import sys
import time

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    print("%.3f listening" % time.monotonic(), file=f)
    while True:
        data = s.recv(65536).decode("utf-8", "replace")
        print("%.3f %s" % (time.monotonic(), data.replace("\n", "\\n")), file=f)
