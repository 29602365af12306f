#!/usr/bin/python3
"""Read a whole Kafka topic with kcat, exactly: one JSON object per message on stdout,
{"partition", "offset", "key" (text or null), "headers" (name -> text), "payload_hex"}.

    kafka_read.py BOOTSTRAP TOPIC [MIN_COUNT [TIMEOUT_S]]

Waits (re-reading) until the topic holds at least MIN_COUNT messages or TIMEOUT_S pass.
Headers come from kcat's JSON envelope (exact for UTF-8 text, which every header the
daemon writes is); keys and payloads from a length-prefixed format, byte for byte.
"""
import json
import subprocess
import sys
import time


def kcat(bootstrap, topic, args):
    return subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q"] + args,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60).stdout


def read_raw(bootstrap, topic):
    out = kcat(bootstrap, topic, ["-f", "%p %o %K %S\n%k%s\n"])
    msgs, i = {}, 0
    while i < len(out):
        nl = out.index(b"\n", i)
        p, o, klen, slen = (int(x) for x in out[i:nl].split())
        i = nl + 1
        key = out[i:i + max(klen, 0)]
        i += max(klen, 0)
        payload = out[i:i + max(slen, 0)]
        i += max(slen, 0) + 1  # the newline after the payload
        msgs[(p, o)] = (None if klen < 0 else key, payload)
    return msgs


def read_headers(bootstrap, topic):
    hdrs = {}
    for line in kcat(bootstrap, topic, ["-J"]).decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        m = json.loads(line)
        h = m.get("headers") or []
        hdrs[(m["partition"], m["offset"])] = dict(zip(h[0::2], h[1::2]))
    return hdrs


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    want = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    deadline = time.time() + (float(sys.argv[4]) if len(sys.argv) > 4 else 30)
    while True:
        raw = read_raw(bootstrap, topic)
        if len(raw) >= want or time.time() >= deadline:
            break
        time.sleep(0.5)
    hdrs = read_headers(bootstrap, topic)
    for (p, o) in sorted(raw):
        key, payload = raw[(p, o)]
        print(json.dumps({
            "partition": p, "offset": o,
            "key": None if key is None else key.decode("utf-8", "surrogateescape"),
            "headers": hdrs.get((p, o), {}),
            "payload_hex": payload.hex(),
        }))


if __name__ == "__main__":
    main()
