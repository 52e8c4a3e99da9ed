#!/usr/bin/env python3
# --heartbeat 0.3: an idle stream receives ": ping" comments about every
# 0.3 s (never more often; the median gap near it); 50 idle streams all get
# theirs (spread is reported, not asserted).
import time

import harness

t = harness.Test()


def main():
    r = t.redis()
    d = t.daemon(r, extra=["--heartbeat", "0.3"])
    s = d.stream("/events?user=idle")
    t.ok(s.wait_opened(), "stream opened")
    # Six pings, however long a loaded box takes to bring them; then what
    # load cannot cause: no more pings than the interval allows, and a
    # typical gap near it (the median: one stall of the box shows only in
    # the largest gap, which is reported).
    t0 = time.monotonic()
    s.wait(lambda: len([c for c in s.sse.pings() if c[0] >= t0]) >= 6, 30)
    elapsed = time.monotonic() - t0
    pings = [c for c in s.sse.pings() if c[0] >= t0]
    n = len(pings)
    t.ok(n >= 6, "%d ': ping' comments arrive (in %.1f s)" % (n, elapsed))
    t.ok(n <= elapsed / 0.3 + 2, "no more than one per 0.3 s (%d in %.1f s)"
         % (n, elapsed))
    others = [c[1] for c in s.sse.comments if c[1] not in ("ping", "sserelay")]
    t.eq(others, [], "no other comments")
    t.eq(s.events, [], "heartbeats are not events")
    t.ok(not s.eof, "stream still open")
    if n >= 2:
        gaps = sorted(b[0] - a[0] for a, b in zip(pings, pings[1:]))
        t.diag("ping gaps: %s" % " ".join("%.2f" % g for g in gaps))
        t.ok(gaps[len(gaps) // 2] < 1.0, "the median gap between pings is "
             "near 0.3 s (%.2f s)" % gaps[len(gaps) // 2])
    # A message between pings does not break anything.
    t.eq(r.client().publish("user:idle", "x"), 1, "PUBLISH")
    t.ok(s.wait_events(1, 5), "event arrives between heartbeats")
    s.close()

    streams = harness.open_streams(d.port, ["/events?user=hb%d" % i
                                            for i in range(50)])
    t.eq(sum(1 for x in streams if x.opened), 50, "50 streams opened")
    t1 = time.monotonic()
    harness.pump(streams, lambda: all(
        any(c[0] > t1 for c in x.sse.pings()) for x in streams), 3)
    got = sum(1 for x in streams if any(c[0] > t1 for c in x.sse.pings()))
    t.eq(got, 50, "all 50 idle streams receive heartbeats")
    firsts = sorted(min(c[0] for c in x.sse.pings() if c[0] > t1)
                    for x in streams
                    if any(c[0] > t1 for c in x.sse.pings()))
    if firsts:
        t.diag("first ping after t1 spread over %.0f ms across %d streams "
               "(staggering is informative only)"
               % ((firsts[-1] - firsts[0]) * 1000, len(firsts)))
    for x in streams:
        x.close()


t.run(main)
