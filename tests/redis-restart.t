#!/usr/bin/env python3
# Redis killed mid-stream: /healthz says down (503), the stream stays open
# and keeps its heartbeats; Redis restarted on the same port: the daemon
# resubscribes by itself and later PUBLISHes arrive on the same stream.
import signal
import time

import harness

t = harness.Test()


def main():
    r = t.redis()
    d = t.daemon(r, extra=["--heartbeat", "0.5"])
    s = d.stream("/events?user=rr&upload=ru")
    t.ok(s.wait_opened(), "stream opened")
    t.eq(r.client().publish("user:rr", "before"), 1, "PUBLISH before the kill")
    t.ok(s.wait_events(1, 10), "event before the kill arrives")

    for cycle in (1, 2):
        logpos = len(d.log_text())
        r.kill(signal.SIGKILL)
        t0 = time.monotonic()
        down = [None]

        def is_down():
            s.recv_once()
            try:
                st, js = d.healthz(timeout=2)
            except (OSError, ValueError):
                return False
            down[0] = (st, js.get("redis"), js.get("status"))
            return st == 503 and js.get("redis") == "down"
        t.ok(harness.wait_for(is_down, 8, 0.05),
             "cycle %d: /healthz turns 503 redis down after SIGKILL" % cycle,
             "last: %r" % (down[0],))
        t.diag("cycle %d: down noticed after %.2f s"
               % (cycle, time.monotonic() - t0))
        t.ok(d.wait_log(r"\b(warn|error) .*redis:", 5, logpos),
             "cycle %d: a warn line 'redis: ...' is logged" % cycle)
        pings_before = len(s.sse.pings())
        s.read_for(1.6)
        pings = len(s.sse.pings()) - pings_before
        t.ok(not s.eof and pings >= 2,
             "cycle %d: stream stays open with heartbeats while Redis is down"
             " (%d pings in 1.6 s)" % (cycle, pings))
        nev = len(s.events)

        r.start()   # same port
        t1 = time.monotonic()
        c = r.client()
        got = [0]
        attempts = [0]

        def resubscribed():
            s.recv_once()
            attempts[0] += 1
            got[0] = c.publish("upload:ru", "after-%d-%d" % (cycle, attempts[0]))
            return got[0] == 1
        t.ok(harness.wait_for(resubscribed, 10, 0.05),
             "cycle %d: the daemon resubscribes (PUBLISH returns 1)" % cycle)
        dt = time.monotonic() - t1
        t.diag("cycle %d: resubscribed %.2f s after Redis came back" % (cycle, dt))
        # The issue asks for delivery within 1 s of Redis coming back;
        # the bound leaves room for a loaded machine.
        t.ok(dt < 2.5, "cycle %d: resubscribed within ~1 s of Redis coming "
             "back (%.2f s, bound 2.5 s)" % (cycle, dt))
        want = "after-%d-%d" % (cycle, attempts[0])
        t.ok(s.wait(lambda: any(e.json().get("data") == want
                                for e in s.events[nev:]), 10),
             "cycle %d: that message arrives on the same stream" % cycle,
             "events since restart: %r" % s.events[nev:])
        t.ok(not s.eof, "cycle %d: stream never closed" % cycle)
        t.ok(harness.wait_for(lambda: d.healthz()[0] == 200, 5, 0.05),
             "cycle %d: /healthz back to 200" % cycle)
        t.ok(d.wait_log(r"info .*redis: subscribed", 2, logpos),
             "cycle %d: 'redis: subscribed' logged again" % cycle)
        c.close()
    ids = [harness.parse_id(e.id) for e in s.events]
    t.ok(all(ids) and all(a[1] < b[1] for a, b in zip(ids, ids[1:])),
         "ids keep increasing across reconnects", repr([e.id for e in s.events]))
    s.close()


t.run(main)
