#!/usr/bin/env python3
# Connection limits (issue 7): --max-streams, --max-streams-per-ip,
# --max-streams-per-user, --trusted-proxy (X-Forwarded-For behind a proxy).
# Over a limit the client gets 200, text/event-stream and exactly
#   retry: <ms>\nevent: overload\ndata: {"limit":"global"|"ip"|"user"}\n\n
# with <ms> jittered in [--retry, 4 x --retry], then the body ends (a
# non-200 would make EventSource give up for good).  A stream frees its
# slots when it ends; SIGHUP changes the limits live; every refusal is
# counted in /metrics as sserelay_limit_refusals_total{limit="..."}.
# Another client IP is made by binding the client socket to 127.0.0.2.
import re
import signal
import socket

import harness

t = harness.Test()
RETRY = 1000
OVERLOAD_RE = re.compile(rb'\Aretry: (\d+)\nevent: overload\n'
                         rb'data: \{"limit":"(global|ip|user)"\}\n\n\Z')
OTHER_IP = "127.0.0.2"


def other_ip_works():
    try:
        s = socket.socket()
        s.bind((OTHER_IP, 0))
        s.close()
        return True
    except OSError:
        return False


def is_overload(s):
    return any(e.event == "overload" for e in s.events)


def body_done(s):
    """The response body ended: the chunked last-chunk, Content-Length
    bytes read, or the connection closed."""
    if s.ended_cleanly or s.eof:
        return True
    cl = s.resp.header("content-length") if s.resp else None
    return cl is not None and cl.isdigit() and s.body_bytes >= int(cl)


def accepted(d, path, **kw):
    """Open a stream; True when it is a real stream (not an overload)."""
    s = d.stream(path, **kw)
    if not s.wait_opened(10) or s.status != 200 or is_overload(s):
        s.wait(lambda: body_done(s), 2)
        return s, False
    return s, True


def refused(d, path, limit, name, **kw):
    """Open a stream that must be refused for `limit`; checks the exact
    body and that it ends.  Returns the retry value or None."""
    s = d.stream(path, **kw)
    s.wait(lambda: s.sse.blocks >= 1, 10)
    if is_overload(s):
        s.wait(lambda: body_done(s), 5)
    raw = bytes(s.sse.raw)
    m = OVERLOAD_RE.match(raw)
    good = (s.status == 200 and m is not None
            and m.group(2).decode() == limit and body_done(s)
            and not s.error)
    ct = s.resp.header("content-type", "") if s.resp else ""
    t.ok(good and ct.startswith("text/event-stream"),
         "%s: 200 text/event-stream, body exactly retry/event: overload/"
         "data: {\"limit\":\"%s\"}, then the body ends" % (name, limit),
         "status %r content-type %r ended %r error %r body %r"
         % (s.status, ct, body_done(s), s.error, raw[:300]))
    s.close()
    return int(m.group(1)) if m else None


def open_count(d):
    return d.healthz()[1].get("streams")


def refusals(d):
    smp = harness.metric_samples(d.port)
    return {k: int(harness.metric(smp, "sserelay_limit_refusals_total",
                                  limit=k))
            for k in ("global", "ip", "user")}


def close_all(streams):
    for s in streams:
        s.close()


def wait_accepted(d, path, counter, timeout=8, **kw):
    """Retry until a stream is accepted (a closed stream's slot is freed
    when the daemon notices the close, on its next write); counts the
    refusals meanwhile in counter[0]."""
    got = [None]

    def once():
        s, ok = accepted(d, path, **kw)
        if ok:
            got[0] = s
            return True
        if is_overload(s):
            counter[0] += 1
        s.close()
        return False
    harness.wait_for(once, timeout, 0.1)
    return got[0]


# --------------------------------------------------------------------------

def global_limit(r):
    d = t.daemon(r, extra=["--max-streams", "3", "--retry", str(RETRY),
                           "--heartbeat", "0.2"], name="global")
    streams = []
    for i in range(3):
        s, ok = accepted(d, "/events?user=g%d" % i)
        streams.append(s)
        t.ok(ok, "--max-streams 3: stream %d accepted" % (i + 1))
    t.eq(open_count(d), 3, "/healthz: 3 streams open")
    nref = 0
    retries = []
    for i in range(8):
        v = refused(d, "/events?user=x%d" % i, "global",
                    "--max-streams 3: stream %d" % (4 + i))
        nref += 1
        if v is not None:
            retries.append(v)
    t.ok(retries and all(RETRY <= v <= 4 * RETRY for v in retries),
         "overload retry: within [--retry, 4 x --retry] = [%d, %d]"
         % (RETRY, 4 * RETRY), "retries %r" % retries)
    t.ok(len(set(retries)) > 1, "overload retry: is jittered (%d distinct "
         "values in %d refusals)" % (len(set(retries)), len(retries)),
         "retries %r" % retries)

    # a refusal over Connection: close, read with a plain HTTP client
    try:
        rr = harness.http_request(d.port, "GET", "/events?upload=z")
        m = OVERLOAD_RE.match(rr.body)
        why = "status %r body %r" % (rr.status, rr.body[:200])
    except (OSError, ValueError) as e:
        rr, m, why = None, None, repr(e)
    nref += 1
    t.ok(rr is not None and rr.status == 200 and m and m.group(2) == b"global",
         "plain HTTP client (Connection: close): 200 and the complete "
         "overload body", why)
    t.eq(open_count(d), 3, "/healthz: still 3 streams open (refusals are "
         "not streams)")

    # the open streams are unaffected
    pub = r.client()
    t.eq(pub.publish("user:g1", "still-here"), 1,
         "PUBLISH reaches the accepted stream")
    t.ok(streams[1].wait_events(1, 5) and
         streams[1].events[-1].json()["data"] == "still-here",
         "an accepted stream still gets its events")

    # one closes: its slot is freed for a new stream
    streams[0].close()
    cnt = [0]
    s = wait_accepted(d, "/events?user=g-new", cnt)
    nref += cnt[0]
    t.ok(s is not None, "after one stream closes a new one is accepted "
         "(%d refusals while the close was noticed)" % cnt[0])
    streams[0] = s or streams[0]
    refused(d, "/events?user=g-over", "global",
            "3 open again: the next one")
    nref += 1
    t.eq(refusals(d), {"global": nref, "ip": 0, "user": 0},
         "/metrics: sserelay_limit_refusals_total{limit=\"global\"} counts "
         "every refusal (%d)" % nref)

    # all close: all three slots come back
    close_all(streams)
    t.ok(harness.wait_for(lambda: open_count(d) == 0, 5),
         "all streams closed: /healthz streams 0")
    again = [accepted(d, "/events?user=g%d" % i) for i in range(3)]
    t.ok(all(ok for _, ok in again), "then 3 new streams are accepted")
    close_all(s for s, _ in again)


def per_ip_limit(r):
    d = t.daemon(r, extra=["--max-streams-per-ip", "2", "--retry",
                           str(RETRY), "--heartbeat", "0.2"], name="per-ip")
    mine = [accepted(d, "/events?user=i%d" % i) for i in range(2)]
    t.ok(all(ok for _, ok in mine), "--max-streams-per-ip 2: two streams "
         "from 127.0.0.1 accepted")
    refused(d, "/events?user=i2", "ip", "a third from 127.0.0.1")
    refused(d, "/events?user=i3", "ip",
            "a third from 127.0.0.1 with X-Forwarded-For (no trusted "
            "proxy: ignored)", headers={"X-Forwarded-For": "10.0.0.9"})
    other = [accepted(d, "/events?user=o%d" % i, source=OTHER_IP)
             for i in range(2)]
    t.ok(all(ok for _, ok in other), "two streams from %s accepted (another "
         "client address)" % OTHER_IP)
    refused(d, "/events?user=o2", "ip", "a third from %s" % OTHER_IP,
            source=OTHER_IP)
    mine[0][0].close()
    cnt = [0]
    s = wait_accepted(d, "/events?user=i-new", cnt)
    t.ok(s is not None, "one from 127.0.0.1 closes: a new one from "
         "127.0.0.1 is accepted")
    t.eq(refusals(d), {"global": 0, "ip": 3 + cnt[0], "user": 0},
         "/metrics: limit=\"ip\" counts the refusals")
    close_all([s] if s else [])
    close_all(x for x, _ in mine + other)


def per_user_limit(r):
    d = t.daemon(r, extra=["--max-streams-per-user", "2", "--retry",
                           str(RETRY), "--heartbeat", "0.2"], name="per-user")
    a = [accepted(d, "/events?user=alice&upload=u%d" % i) for i in range(2)]
    t.ok(all(ok for _, ok in a), "--max-streams-per-user 2: two streams of "
         "alice accepted")
    refused(d, "/events?user=alice", "user", "a third of alice")
    refused(d, "/events?user=alice&upload=u9", "user",
            "a third of alice from another address", source=OTHER_IP)
    b, okb = accepted(d, "/events?user=bob")
    t.ok(okb, "bob's stream accepted")
    ups = [accepted(d, "/events?upload=u1") for _ in range(3)]
    t.ok(all(ok for _, ok in ups), "upload-only streams (no user) are not "
         "limited per user")
    a[1][0].close()
    cnt = [0]
    s = wait_accepted(d, "/events?user=alice", cnt)
    t.ok(s is not None, "one of alice's closes: a new one of alice accepted")
    t.eq(refusals(d), {"global": 0, "ip": 0, "user": 2 + cnt[0]},
         "/metrics: limit=\"user\" counts the refusals")
    close_all([b, s] if s else [b])
    close_all(x for x, _ in a + ups)


def trusted_proxy(r):
    # 127.0.0.0/31 is 127.0.0.0 and 127.0.0.1: the proxy; 127.0.0.2 is not
    d = t.daemon(r, extra=["--trusted-proxy", "192.0.2.7,127.0.0.0/31",
                           "--max-streams-per-ip", "2", "--retry",
                           str(RETRY), "--heartbeat", "0.2"], name="proxy")

    def xff(v):
        return {"headers": {"X-Forwarded-For": v}}
    one = [accepted(d, "/events?user=p%d" % i, **xff("10.1.1.1"))
           for i in range(2)]
    t.ok(all(ok for _, ok in one), "via the trusted proxy: two streams for "
         "X-Forwarded-For 10.1.1.1 accepted")
    refused(d, "/events?user=p2", "ip", "a third for 10.1.1.1",
            **xff("10.1.1.1"))
    refused(d, "/events?user=p3", "ip", "a third for 10.1.1.1 behind a "
            "second trusted proxy (XFF 10.1.1.1, 192.0.2.7)",
            **xff("10.1.1.1, 192.0.2.7"))
    two = [accepted(d, "/events?user=q%d" % i, **xff("10.1.1.2"))
           for i in range(2)]
    t.ok(all(ok for _, ok in two), "two streams for X-Forwarded-For "
         "10.1.1.2 accepted (counted per forwarded address)")
    refused(d, "/events?user=q2", "ip", "a forged left entry is not "
            "believed (XFF 203.0.113.5, 10.1.1.2)",
            **xff("203.0.113.5, 10.1.1.2"))
    # behind two proxies (nginx writes "client, proxy"): each client
    # counts for itself, not for the inner proxy they share
    chain = [accepted(d, "/events?user=c%d" % i,
                      **xff("10.2.0.%d, 192.0.2.7" % (1 + i // 2)))
             for i in range(4)]
    t.ok(all(ok for _, ok in chain), "behind a second trusted proxy: two "
         "streams each for XFF \"10.2.0.1, 192.0.2.7\" and \"10.2.0.2, "
         "192.0.2.7\" accepted (counted per client, not per proxy)",
         [ok for _, ok in chain])
    refused(d, "/events?user=c9", "ip", "a third for 10.2.0.1 (XFF "
            "\"10.2.0.1,192.0.2.7\")", **xff("10.2.0.1,192.0.2.7"))
    direct = [accepted(d, "/events?user=d%d" % i) for i in range(2)]
    t.ok(all(ok for _, ok in direct), "the proxy's own requests without "
         "X-Forwarded-For count for its own address")
    # an untrusted peer: its X-Forwarded-For is ignored
    un = [accepted(d, "/events?user=u%d" % i, source=OTHER_IP,
                   **xff("10.1.1.%d" % (10 + i))) for i in range(2)]
    t.ok(all(ok for _, ok in un), "untrusted peer %s: two streams accepted"
         % OTHER_IP)
    refused(d, "/events?user=u2", "ip", "untrusted peer: a third with yet "
            "another X-Forwarded-For is refused (header ignored)",
            source=OTHER_IP, **xff("10.1.1.99"))
    t.eq(refusals(d)["ip"], 5, "/metrics: limit=\"ip\" 5")
    close_all(x for x, _ in one + two + chain + direct + un)


def sighup(r):
    conf = t.path("limits.conf")

    def write(text):
        with open(conf, "w") as f:
            f.write(text)
    write("max-streams 1\nmax-streams-per-user 5\n")
    d = t.daemon(r, extra=["-c", conf, "--retry", str(RETRY),
                           "--heartbeat", "0.2"], name="sighup")
    s1, ok = accepted(d, "/events?user=h1")
    t.ok(ok, "max-streams 1 (file): first stream accepted")
    refused(d, "/events?user=h2", "global", "max-streams 1: the second")

    pos = len(d.log_text())
    write("max-streams 3\nmax-streams-per-user 1\n")
    d.signal(signal.SIGHUP)
    t.ok(d.wait_log(r"reload: 'max-streams' changed", 5, pos),
         "SIGHUP: \"reload: 'max-streams' changed\" logged")
    t.ok(d.wait_log(r"reload: 'max-streams-per-user' changed", 5, pos),
         "SIGHUP: \"reload: 'max-streams-per-user' changed\" logged")
    t.ok(not d.wait_log(r"max-streams.*restart", 0.3, pos),
         "the limits are not logged as needing a restart")
    s2, ok2 = accepted(d, "/events?user=h2")
    t.ok(ok2, "raised to 3 live: a second stream accepted")
    refused(d, "/events?user=h1&upload=x", "user",
            "max-streams-per-user lowered to 1 live: h1's second")
    s3, ok3 = accepted(d, "/events?user=h3")
    t.ok(ok3, "raised to 3 live: a third stream accepted")
    refused(d, "/events?user=h4", "global", "raised to 3: the fourth")

    pos = len(d.log_text())
    write("max-streams 0\nmax-streams-per-user 5\n")
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload: 'max-streams' changed", 5, pos)
    more = [accepted(d, "/events?user=m%d" % i) for i in range(4)]
    t.ok(all(ok for _, ok in more), "max-streams 0 live: no global limit "
         "any more (7 open)")
    t.ok(not s1.eof and not s2.eof and not s3.eof,
         "the streams opened earlier stayed open through the reloads")
    t.eq(refusals(d), {"global": 2, "ip": 0, "user": 1},
         "/metrics: the refusals by limit")
    close_all([s1, s2, s3] + [x for x, _ in more])


def main():
    if not other_ip_works():
        t.ok(False, "cannot bind a socket to %s (needed as a second client "
             "address)" % OTHER_IP)
        return
    t.parts(t.redis(), (global_limit, per_ip_limit, per_user_limit,
                        trusted_proxy, sighup))


t.run(main)
