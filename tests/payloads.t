#!/usr/bin/env python3
# Payloads arrive exact: 512 KiB, binary (NUL, invalid UTF-8), UTF-8 text,
# multi-line (LF, CRLF, CR), JSON vs non-JSON, empty; in json and raw format.
import json
import random
import re

import harness

t = harness.Test()

rng = random.Random(7)
ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \"\\/{}<>"
BIG = "".join(rng.choice(ALPHA) for _ in range(512 * 1024)).encode()
BINARY = b"a\x00b\xffc\xfe\x80d\xe6\x97\xa5\xff\xe6\x9c\xac\xe2\x82"
# One U+FFFD per maximal invalid subpart is what WHATWG decoders do; the
# spec only says "U+FFFD", so runs of U+FFFD are compared collapsed.
BINARY_JSON = BINARY.decode("utf-8", "replace")
UTF8 = "h\u00e9llo \u2713 \u65e5\u672c\u8a9e \U0001F600".encode()
MULTI = b"l1\nl2\r\nl3\rl4"

# (name, payload, expected json "data" value, expected raw data lines)
CASES = [
    ("512 KiB", BIG, BIG.decode(), [BIG]),
    ("binary with NUL and invalid UTF-8", BINARY, BINARY_JSON, [BINARY]),
    ("UTF-8 multi-byte text", UTF8, UTF8.decode(), [UTF8]),
    ("multi-line LF/CRLF/CR", MULTI, MULTI.decode(), [b"l1", b"l2", b"l3", b"l4"]),
    ("JSON object", b'{"pct":40,"name":"x\\u00e9","list":[1,2,null]}',
     {"pct": 40, "name": "x\u00e9", "list": [1, 2, None]},
     [b'{"pct":40,"name":"x\\u00e9","list":[1,2,null]}']),
    ("JSON array", b"[1,\"two\",{\"3\":true}]", [1, "two", {"3": True}],
     [b"[1,\"two\",{\"3\":true}]"]),
    ("plain text", b"hello world", "hello world", [b"hello world"]),
    ("JSON with trailing garbage is a string", b'{"a":1}x', '{"a":1}x',
     [b'{"a":1}x']),
    ("truncated JSON is a string", b'{"a":', '{"a":', [b'{"a":']),
    ("empty", b"", "", [b""]),
    ("after everything: still parses", b"end", "end", [b"end"]),
]


def main():
    r = t.redis()
    dj = t.daemon(r, name="sserelay-json")
    dr = t.daemon(r, extra=["--format", "raw"], name="sserelay-raw")
    sj = dj.stream("/events?user=p")
    sr = dr.stream("/events?user=p")
    t.ok(sj.wait_opened() and sr.wait_opened(), "both streams opened")
    pub = r.client()
    counts = [pub.publish("user:p", c[1]) for c in CASES]
    t.eq(counts, [2] * len(CASES), "every PUBLISH reached both daemons")
    n = len(CASES)
    t.ok(sj.wait_events(n, 20), "json: %d events arrive" % n,
         "got %d: %r" % (len(sj.events), sj.events[-3:]))
    t.ok(sr.wait_events(n, 20), "raw: %d events arrive" % n,
         "got %d: %r" % (len(sr.events), sr.events[-3:]))
    t.ok(sj.error is None and sr.error is None, "chunked framing is valid",
         "%r %r" % (sj.error, sr.error))

    for i, (name, payload, jexp, rexp) in enumerate(CASES):
        if i < len(sj.events):
            e = sj.events[i]
            t.eq(len(e.data_lines), 1, "json %s: one data line" % name)
            try:
                env = json.loads(e.data_bytes.decode("utf-8"))
            except ValueError as ex:
                env = "invalid JSON (%s): %r" % (ex, e.data_bytes[:200])
            if payload is BINARY and isinstance(env, dict) \
                    and isinstance(env.get("data"), str):
                if env["data"] != jexp:
                    t.diag("binary: got %r, a WHATWG decoder gives %r "
                           "(compared with U+FFFD runs collapsed)"
                           % (env["data"], jexp))
                env["data"] = re.sub("\ufffd+", "\ufffd", env["data"])
                jexp = re.sub("\ufffd+", "\ufffd", jexp)
            t.eq(env, {"channel": "user:p", "data": jexp},
                 "json %s: envelope and data exact" % name)
        else:
            t.ok(False, "json %s: event missing" % name)
        if i < len(sr.events):
            e = sr.events[i]
            t.eq(e.data_lines, rexp, "raw %s: data lines exact" % name)
        else:
            t.ok(False, "raw %s: event missing" % name)

    # Binary payload: NUL must be escaped, never sent raw; line not broken.
    bi = 1
    if bi < len(sj.events):
        line = sj.events[bi].data_bytes
        t.ok(b"\\u0000" in line and b"\x00" not in line,
             "json: NUL is written as \\u0000", repr(line))
        try:
            line.decode("utf-8")
            t.ok(True, "json: the data line is valid UTF-8")
        except UnicodeDecodeError:
            t.ok(False, "json: the data line is valid UTF-8", repr(line))
    t.ok(all(e.event is None for e in sj.events + sr.events), "no event: field")
    for s, fmt in ((sj, "json"), (sr, "raw")):
        ids = [harness.parse_id(e.id) for e in s.events]
        t.ok(all(ids) and all(a[1] < b[1] for a, b in zip(ids, ids[1:])),
             "%s: ids well-formed and increasing" % fmt,
             repr([e.id for e in s.events]))
    # raw frames: exactly "id: ..\n" + "data: <line>\n"... + "\n" for multi-line
    mi = 3
    if mi < len(sr.events):
        t.eq(sr.events[mi].lines[1:],
             [b"data: l1", b"data: l2", b"data: l3", b"data: l4"],
             "raw multi-line: one 'data: ' line per line, space after colon")
    ei = 9
    if ei < len(sr.events):
        t.eq(sr.events[ei].lines[1:], [b"data: "],
             "raw empty payload: a single 'data: ' line")
    for s in (sj, sr):
        s.close()


t.run(main)
