#!/usr/bin/env python3
# Hostile and broken input: over-long request lines and headers, bad
# percent-encoding, NUL bytes, invalid UTF-8, thousands of parameters,
# garbage and huge Last-Event-IDs, half requests, silent clients, a client
# that never reads, odd methods and HTTP versions, pipelining.  Each gets a
# 4xx with a one-line reason or a timely close (each assertion says which),
# and after each one a stream opened at the start still receives a PUBLISH
# and a new stream can still be opened.  The daemon never crashes (the
# harness fails the test on any sanitizer report in its log).
import random
import socket
import threading
import time

import harness
import rawhttp

t = harness.Test()
CLIENT_TIMEOUT = 2
# A connection idle for --client-timeout must be gone by then.  MHD checks
# timeouts about once a second; the rest is room for a busy 2-core machine
# and the sanitizer build, so that only a daemon that does not close idle
# connections (or takes several timeouts to) misses it.  Waits end when
# the connection closes: the bound costs nothing when it holds.
CLOSE_WITHIN = 3 * CLIENT_TIMEOUT + 2 + (4 if t.sanitized else 0)

H11 = b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def get(target):
    if isinstance(target, str):
        target = target.encode("latin-1")
    return b"GET " + target + H11


class Ctx:
    pass


ctx = Ctx()


def healthy(after):
    """The stream opened first still gets a PUBLISH, a new stream opens,
    and the daemon is alive."""
    if not t.ok(ctx.d.running(), "after %s: daemon still running" % after):
        return
    ctx.n += 1
    payload = "after-%d" % ctx.n
    ctx.pub.publish("user:healthy", payload)
    got = ctx.h.wait_events(ctx.n, 10)
    t.ok(got and ctx.h.events[ctx.n - 1].json()["data"] == payload
         and not ctx.h.eof,
         "after %s: the healthy stream still receives a PUBLISH" % after,
         "events %r eof %r" % (ctx.h.events[-3:], ctx.h.eof))
    s = ctx.d.stream("/events?upload=newcomer")
    t.ok(s.wait_opened(10) and s.status == 200,
         "after %s: a new stream opens" % after,
         "status %r eof %r" % (s.status, s.eof))
    s.close()


def expect_4xx(name, data, statuses=None, words=(), timeout=10):
    """A 4xx (one of statuses if given) with a one-line reason."""
    o = rawhttp.exchange(ctx.d.port, data, timeout=timeout)
    st = o.status
    good = st is not None and 400 <= st < 500 and \
        (statuses is None or st in statuses)
    text = o.first.body.decode("utf-8", "replace") if o.first else ""
    reason = o.first.reason if o.first else ""
    good = good and rawhttp.one_line(o.first.body) and reason != "" and \
        all(w.lower() in text.lower() for w in words)
    t.ok(good, "%s -> 4xx%s with a one-line reason%s (got %r %s)" % (
        name, " %r" % (statuses,) if statuses else "",
        " naming %s" % "/".join(words) if words else "", st, reason),
        o.describe())
    return o


def expect_4xx_or_close(name, data, timeout=None):
    """A 4xx with a one-line reason, or the connection closed in time."""
    o = rawhttp.exchange(ctx.d.port, data, timeout=timeout or
                         CLOSE_WITHIN + 3, until_close=True)
    st = o.status
    if st is not None:
        t.ok(400 <= st < 500 and rawhttp.one_line(o.first.body),
             "%s -> 4xx with a one-line reason (got %r %s)"
             % (name, st, o.first.reason), o.describe())
    else:
        t.ok(o.closed and o.elapsed <= CLOSE_WITHIN,
             "%s -> no response, connection closed within %d s (%s)"
             % (name, CLOSE_WITHIN, "after %.1f s" % o.elapsed
                if o.closed else "still open"), o.describe())
    return o


def main():
    r = t.redis()
    ctx.d = d = t.daemon(r, extra=["--client-timeout", str(CLIENT_TIMEOUT),
                                   "--heartbeat", "1"])
    ctx.pub = r.client()
    ctx.n = 0
    # A healthy stream opened before everything else, read all along.
    ctx.h = d.stream("/events?user=healthy")
    t.ok(ctx.h.wait_opened(10), "healthy stream opened")
    healthy("start")

    # ---- sizes -----------------------------------------------------------
    expect_4xx("100 KB request line", get("/events?user=" + "a" * 100000),
               statuses=(414, 400, 431))
    healthy("100 KB request line")
    expect_4xx("100 KB header",
               b"GET /events?user=a HTTP/1.1\r\nHost: x\r\nX-Big: "
               + b"b" * 100000 + b"\r\nConnection: close\r\n\r\n",
               statuses=(431, 400, 413))
    healthy("100 KB header")
    expect_4xx("200 headers of 500 bytes",
               b"GET /events?user=a HTTP/1.1\r\nHost: x\r\n" + b"".join(
                   b"X-H%d: %s\r\n" % (i, b"v" * 500) for i in range(200))
               + b"\r\n", statuses=(431, 400, 413))
    healthy("many headers")

    # ---- percent-encoding, NUL, UTF-8 ------------------------------------
    for enc in ("%zz", "%", "%4", "a%0", "%%41"):
        expect_4xx("user=%s (bad percent-encoding)" % enc,
                   get("/events?user=" + enc), statuses=(400,),
                   words=("user",))
    healthy("bad percent-encoding")
    expect_4xx("user=a%00b (NUL in a value)", get("/events?user=a%00b"),
               statuses=(400,), words=("user",))
    expect_4xx("upload=%00 (NUL in a value)", get("/events?upload=%00"),
               statuses=(400,), words=("upload",))
    expect_4xx("a%00b=1 (NUL in a parameter name)",
               get("/events?user=a&a%00b=1"), statuses=(400,),
               words=("NUL",))
    expect_4xx("user=%ff%fe (invalid UTF-8)", get("/events?user=%ff%fe"),
               statuses=(400,), words=("user",))
    expect_4xx("raw 0xff 0xfe bytes in the query",
               get(b"/events?upload=\xff\xfe"), statuses=(400,),
               words=("upload",))
    healthy("NUL and invalid UTF-8 in values")

    # A raw NUL byte in the request line.  Right: a 400 (a request-target
    # cannot hold NUL).  libmicrohttpd 0.9.75 ends the target at the NUL
    # and sserelay cannot see past it; that is tolerated only as long as
    # nothing after the NUL is acted on.
    raw = b"GET /events?user=nul\x00&upload=evil HTTP/1.1\r\nHost: x\r\n\r\n"
    s = rawhttp.RawSSEStream(d.port, raw)
    s.wait(lambda: s.resp is not None, CLOSE_WITHIN + 1)
    if s.status is None or 400 <= s.status < 500:
        t.ok(s.eof or (s.status and s.status >= 400),
             "raw NUL in the request line -> 4xx or close (got %r)"
             % s.status)
    else:
        t.diag("raw NUL in the request line answered %r: libmicrohttpd "
               "cut the target at the NUL" % s.status)
        s.wait_opened(5)
        ctx.pub.publish("upload:evil", "after-the-nul")
        ctx.pub.publish("user:nul", "before-the-nul")
        s.wait_events(2, 2)
        t.eq([e.json()["data"] for e in s.events], ["before-the-nul"],
             "raw NUL in the request line -> 200 at most for the part "
             "before the NUL, nothing after it subscribed")
    s.close()
    # Same leniency for the method: "GET\0X" is compared as "GET".
    o = rawhttp.exchange(d.port, b"GET\x00X /events?user=nulm HTTP/1.1\r\n"
                         b"Host: x\r\n\r\n", timeout=CLOSE_WITHIN + 2,
                         until_close=True)
    if o.status == 200:
        t.diag("raw NUL in the method answered 200: libmicrohttpd read "
               "the method up to the NUL")
    t.ok((o.status is not None and 400 <= o.status < 500
          and rawhttp.one_line(o.first.body))
         or (o.status is None and o.closed and o.elapsed <= CLOSE_WITHIN)
         or o.status == 200,
         "raw NUL in the method -> 4xx, close, or (libmicrohttpd 0.9.75) "
         "served as the method before the NUL (got %r)" % o.status,
         o.describe())
    expect_4xx_or_close("raw NUL in a header name",
                        b"GET /events?user=a HTTP/1.1\r\nHo\x00st: x\r\n\r\n")
    healthy("raw NUL bytes")

    # ---- many parameters -------------------------------------------------
    ups = "&".join("upload=u%d" % i for i in range(10000))
    expect_4xx("10,000 upload parameters (%d KB)" % (len(ups) // 1024),
               get("/events?" + ups), statuses=(414, 400, 431))
    healthy("10,000 upload parameters")
    # 40 fit the default connection pool (--conn-memory 6144) and are
    # refused by the daemon's own rule, with its reason.
    ups = "&".join("upload=u%d" % i for i in range(40))
    expect_4xx("40 upload parameters (they fit the connection pool)",
               get("/events?" + ups), statuses=(400,),
               words=("too many upload parameters",))
    # Between the two: the request fits the read buffer but its parameter
    # records do not fit the connection's memory pool; libmicrohttpd 0.9.75
    # then cannot even queue its 431 and closes.
    for n in (100, 150, 500):
        ups = "&".join("upload=u%d" % i for i in range(n))
        expect_4xx_or_close("%d upload parameters (%d bytes)"
                            % (n, len(ups)), get("/events?" + ups))
    healthy("hundreds of upload parameters")
    # 10,000 copies of one upload are folded into one subscription, but
    # the request is still far too long.
    expect_4xx("10,000 identical upload parameters",
               get("/events?" + "&".join(["upload=x"] * 10000)),
               statuses=(414, 400, 431))
    healthy("identical upload parameters")

    # ---- Last-Event-ID ---------------------------------------------------
    # Junk that fits the request limits (the request must fit in about 40%
    # of the default --conn-memory 6144), so that the daemon itself judges
    # the id: bytes of every kind, high ones and quotes included.
    rnd = random.Random(5)
    junk = bytes(rnd.choice(b"abcdefXYZ0123456789-_.:;!?*/%+=~ \t\x80\xa0\xfe"
                            b"\xff{}[]\"'\\") for _ in range(1024)).strip()
    s = rawhttp.RawSSEStream(
        d.port, b"GET /events?user=lei HTTP/1.1\r\nHost: x\r\n"
        b"Last-Event-ID: " + junk + b"\r\n\r\n")
    s.wait(lambda: len(s.events) >= 1 or s.eof, 10)
    ev = s.events[0] if s.events else None
    t.ok(s.status == 200 and ev is not None and ev.event == "reset"
         and ev.json() == {"reason": "malformed-id"},
         "1 KB junk Last-Event-ID -> 200 starting with event: reset, "
         "reason malformed-id", "status %r events %r" % (s.status,
                                                        s.events[:2]))
    ctx.pub.publish("user:lei", "live")
    t.ok(s.wait_events(2, 10) and s.events[1].event is None
         and s.events[1].json()["data"] == "live",
         "and then it continues live", repr(s.events[:3]))
    s.close()
    healthy("1 KB junk Last-Event-ID")
    expect_4xx("64 KB Last-Event-ID",
               b"GET /events?user=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: "
               + b"7" * 65536 + b"\r\nConnection: close\r\n\r\n",
               statuses=(431, 400, 413))
    healthy("64 KB Last-Event-ID")
    # The same garbage as the lastEventId query parameter (what polyfills
    # send): a malformed id is a reset, never a silent fresh start.
    for name, q in (("short junk", "not-an-id"),
                    ("NUL", "%00"),
                    ("junk over 128 bytes", "x" * 200),
                    ("invalid UTF-8", "%ff%fe-1")):
        s = d.stream("/events?user=leiq&lastEventId=" + q)
        ok = s.wait_opened(10) and s.status == 200
        s.wait_events(1, 10)
        ev = s.events[0] if s.events else None
        t.ok(ok and ev is not None and ev.event == "reset"
             and ev.json().get("reason") == "malformed-id",
             "lastEventId=<%s> -> 200 starting with event: reset, reason "
             "malformed-id" % name, "status %r events %r" % (
                 s.status, s.events[:2]))
        s.close()
    healthy("junk lastEventId parameters")

    # ---- clients that stop -----------------------------------------------
    # Half requests and silent connections, 20 of each at once; meanwhile
    # everyone else is served, and each is closed in time.
    half = [b"GET /events?user=a HTTP/1.1\r\nHost:",
            b"GET /events?us", b"G",
            b"GET /events?user=a HTTP/1.1\r\nHost: x\r\n"]
    socks = []
    t0 = time.monotonic()
    for i in range(40):
        c = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        if i < 20:
            c.sendall(half[i % len(half)])
        socks.append(c)
    healthy("40 half-request and silent connections opened")
    closed_at = [None] * len(socks)
    got_data = [b""] * len(socks)

    def watch(i, c):
        c.settimeout(CLOSE_WITHIN + 5)
        try:
            while True:
                data = c.recv(4096)
                if not data:
                    break
                got_data[i] += data
        except OSError:
            pass
        closed_at[i] = time.monotonic() - t0
    ths = [threading.Thread(target=watch, args=(i, c))
           for i, c in enumerate(socks)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    for c in socks:
        c.close()
    late_half = [x for x in closed_at[:20] if x is None or x > CLOSE_WITHIN]
    late_idle = [x for x in closed_at[20:] if x is None or x > CLOSE_WITHIN]
    t.ok(not late_half, "20 half requests: closed within %d s (max %.1f s)"
         % (CLOSE_WITHIN, max(x or 99 for x in closed_at[:20])),
         repr(closed_at[:20]))
    t.ok(not late_idle, "20 connections that never send: closed within %d s "
         "(max %.1f s)" % (CLOSE_WITHIN, max(x or 99 for x in closed_at[20:])),
         repr(closed_at[20:]))
    stray = [g[:80] for g in got_data if g and not g.startswith(b"HTTP/1.")]
    t.eq(stray, [], "they got nothing but (at most) an HTTP response")
    healthy("half requests and silent connections")

    # A client that opens a stream and never reads while messages flow:
    # the daemon closes it as slow, others keep their messages.  It reads
    # the opening (so it is subscribed before the first PUBLISH), then
    # nothing more.
    _, hz = d.healthz()
    slow0 = hz.get("slow_closes", 0)
    stalled = rawhttp.RawSSEStream(
        d.port, b"GET /events?user=stall HTTP/1.1\r\nHost: x\r\n\r\n",
        rcvbuf=4096)
    t.ok(stalled.wait_opened(10) and stalled.status == 200,
         "the stream that will not read opened", "status %r" % stalled.status)
    big = "x" * 2000
    n0 = ctx.n
    lat = []
    for k in range(30):
        ctx.pub.publish_many([("user:stall", big)] * 200)
        ctx.n += 1
        t1 = time.monotonic()
        ctx.pub.publish("user:healthy", "during-%d" % k)
        if ctx.h.wait_events(ctx.n, 10):
            lat.append(time.monotonic() - t1)
    t.eq(len(lat), 30, "healthy stream got all 30 messages while 6,000 x 2 KB "
         "went to a client that never reads")
    # Not waiting for the stalled client: a daemon that did would deliver
    # nothing (its writes never complete), which the count above catches;
    # this bound catches one that delivers only when something else (a
    # heartbeat, a timeout) comes by.  The median, not the maximum: on a
    # busy machine a stall shows in the slowest few, which are reported.
    lat.sort()
    med = lat[len(lat) // 2] if lat else None
    bound = 1.5 if t.sanitized else 0.5
    t.ok(med is not None and med < bound,
         "and the median of their delays is under %.1f s (median %s, max "
         "%s)" % (bound, "%.3f s" % med if lat else None,
                  "%.3f s" % lat[-1] if lat else None))
    t.eq([e.json()["data"] for e in ctx.h.events[n0:ctx.n]],
         ["during-%d" % k for k in range(30)], "in order, none lost")
    slow = harness.wait_for(
        lambda: d.healthz()[1].get("slow_closes", 0) > slow0, 10, 0.1)
    t.ok(slow, "the stream that never reads is closed as slow (/healthz "
         "slow_closes %r -> %r)" % (slow0, d.healthz()[1].get("slow_closes")))
    stalled.close(rst=True)
    healthy("a client that never reads")

    # ---- methods, versions, pipelining -----------------------------------
    expect_4xx("FOO /events", b"FOO /events?user=a" + H11, statuses=(405,))
    expect_4xx("GET /events?user=a HTTP/0.9-style (no version)",
               b"GET /events?user=a\r\n", statuses=(400, 505))
    expect_4xx_or_close("a line of binary garbage",
                        bytes(range(1, 256)) + b"\r\n\r\n")
    o = rawhttp.exchange(d.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                         timeout=CLOSE_WITHIN + 2, until_close=True)
    t.ok((o.status is not None and 400 <= o.status < 600
          and rawhttp.one_line(o.first.body))
         or (o.status is None and o.closed and o.elapsed <= CLOSE_WITHIN),
         "HTTP/2 preface -> an error status with a one-line body, or close "
         "(got %r)" % o.status, o.describe())
    healthy("garbage methods and versions")

    s = rawhttp.RawSSEStream(d.port, b"GET /events?user=old HTTP/1.0\r\n\r\n")
    s.wait(lambda: s.resp is not None or s.eof, 10)
    if s.status == 200:
        t.ok(s.wait_opened(10), "GET ... HTTP/1.0 -> 200 stream opened")
        ctx.pub.publish("user:old", "hello 1.0")
        t.ok(s.wait_events(1, 10) and s.events[0].json()["data"] ==
             "hello 1.0", "HTTP/1.0 stream receives a PUBLISH",
             repr(s.events))
        t.ok(s.dech is None, "HTTP/1.0 response is not chunked")
    else:
        t.ok(s.status is not None and 400 <= s.status < 600,
             "GET ... HTTP/1.0 -> clean error (got %r)" % s.status)
    s.close()
    healthy("HTTP/1.0")

    # Pipelined: three requests in one write, three answers in order.
    o = rawhttp.exchange(
        d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /events?user=pipe HTTP/1.1\r\nHost: x\r\n\r\n",
        timeout=10, want=3)
    t.eq([x.status for x in o.responses], [200, 404, 200],
         "pipelined /healthz, /nope, /events: 200, 404, 200 in order")
    if len(o.responses) == 3:
        t.ok(o.responses[0].body.startswith(b"{") and
             rawhttp.one_line(o.responses[1].body) and
             o.responses[2].header("content-type", "").startswith(
                 "text/event-stream"),
             "pipelined: JSON, a one-line 404 reason, an event stream")
    o = rawhttp.exchange(
        d.port, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10, want=2,
        until_close=False)
    t.ok(o.status == 400 and (len(o.responses) == 2 and
                              o.responses[1].status == 200
                              or o.responses[0].header("connection", "")
                              .lower() == "close"),
         "pipelined bad request then /healthz: 400, then either 200 or "
         "Connection: close", o.describe())
    # Pipelined HEAD then GET: the HEAD answer has no body to confuse it.
    o = rawhttp.exchange(
        d.port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        timeout=10, want=2, methods=["HEAD", "GET"])
    t.ok([x.status for x in o.responses] == [200, 200]
         and o.responses[1].body.startswith(b"{"),
         "pipelined HEAD then GET /healthz: two clean 200s", o.describe())
    healthy("pipelining")

    # 200 pipelined requests in one write.
    o = rawhttp.exchange(
        d.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 200,
        timeout=20, want=200)
    t.ok(len(o.responses) >= 1 and all(x.status == 200 for x in o.responses),
         "200 pipelined /healthz: %d answered, all 200" % len(o.responses),
         o.describe())
    healthy("200 pipelined requests")

    # The healthy stream was never dropped or reset along the way.
    t.ok(not ctx.h.eof and all(e.event is None for e in ctx.h.events),
         "the healthy stream stayed open all along, no reset")
    ctx.h.close()
    errs = [l for l in d.log_lines() if " error " in l]
    t.eq(errs[:5], [], "no error-level log line")


t.run(main)
