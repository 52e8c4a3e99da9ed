#!/usr/bin/env python3
# SIGTERM with 3 streams open (one of them a real curl -N): every stream gets
# a final retry: and a cleanly ended chunked body (curl exits 0); the daemon
# exits 0 within 2 s and logs no error.
import signal
import time

import harness

t = harness.Test(require=("redis-server", "curl"))


def main():
    r = t.redis()
    d = t.daemon(r)
    s1 = d.stream("/events?user=s1")
    s2 = d.stream("/events?user=s2&upload=up")
    c = harness.CurlStream(t, d.url("/events?user=s3&upload=up"))
    t.ok(s1.wait_opened() and s2.wait_opened() and c.wait_opened(),
         "3 streams opened")
    t.eq(r.client().publish("upload:up", "before shutdown"), 1, "PUBLISH")
    t.ok(s2.wait_events(1, 10) and c.wait(lambda: len(c.sse.events) >= 1, 10),
         "event delivered before shutdown")

    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    # a sanitizer's build stops its 160 threads more slowly (TSan: ~2 s)
    limit = 6.0 if t.sanitized else 2.0
    rc = None
    try:
        rc = d.proc.wait(timeout=limit + 3)
    except Exception:
        pass
    dt = time.monotonic() - t0
    t.eq(rc, 0, "daemon exits with status 0 on SIGTERM")
    t.ok(rc is not None and dt <= limit,
         "daemon exits within %.0f s (%.2f s)" % (limit, dt))

    for name, s in (("stream 1", s1), ("stream 2", s2)):
        s.wait(lambda: s.eof, 3)
        t.ok(len(s.sse.retries) >= 2,
             "%s: receives a final retry: line (retries %r)"
             % (name, s.sse.retries))
        t.ok(s.ended_cleanly, "%s: chunked body ends with the last chunk"
             % name, "eof %r reset %r error %r tail %r" % (
                 s.eof, s.reset, s.error, bytes(s.sse.raw[-80:])))
        t.ok(s.sse.raw.endswith(b"\n\n"), "%s: last event block terminated"
             % name)
        s.close()
    crc = c.wait_exit(5)
    t.eq(crc, 0, "curl -N exits 0 (body ended cleanly)")
    t.eq(c.stderr().strip(), "", "curl printed no error")
    with c.lock:
        t.ok(len(c.sse.retries) >= 2, "curl stream got the final retry: (%r)"
             % c.sse.retries)
    finals = [x.sse.retries[-1] for x in (s1, s2, c) if len(x.sse.retries) >= 2]
    t.diag("final retry values (jittered): %r" % finals)
    t.ok(all(v > 0 for v in finals), "final retry values are positive")

    errs = [l for l in d.log_lines() if " error " in l]
    t.eq(errs, [], "the log has no error line")
    d.returncode = rc


t.run(main)
