#!/usr/bin/env python3
# 1000 stream connect/disconnect cycles, some closed while messages are being
# published to them, some with a TCP reset: afterwards the daemon's fd count
# is back at its baseline, RSS has not grown, and /healthz counts 0 streams.
import threading
import time

import harness

t = harness.Test()
CYCLES = 1000


def main():
    r = t.redis()
    d = t.daemon(r, extra=["--heartbeat", "0.5"])
    # Warm up: one stream and one healthz, then take the baseline.
    s = d.stream("/events?user=warm")
    s.wait_opened()
    s.close()
    harness.wait_for(lambda: d.healthz()[1].get("streams") == 0, 5, 0.1)
    time.sleep(0.2)
    base_fds = harness.proc_fd_count(d.pid)
    t.diag("baseline: %d fds, %d kB RSS" % (base_fds,
                                             harness.proc_rss_kb(d.pid)))

    stop = threading.Event()
    published = [0]

    def publisher():
        c = r.client()
        i = 0
        while not stop.is_set():
            c.publish_many([("user:c%d" % ((i + k) % 10), "m%d" % (i + k))
                            for k in range(10)])
            i += 10
            published[0] = i
            time.sleep(0.002)
        c.close()

    th = threading.Thread(target=publisher, daemon=True)
    th.start()
    rss100 = None
    failures = []
    t0 = time.monotonic()
    try:
        for i in range(CYCLES):
            try:
                s = d.stream("/events?user=c%d&upload=cu%d" % (i % 10, i % 7))
            except OSError as e:
                failures.append("cycle %d: connect: %r" % (i, e))
                continue
            if not s.wait_opened(10):
                failures.append("cycle %d: no opening (status %r, eof %r)"
                                % (i, s.status, s.eof))
            if i % 5 == 0:
                # close mid-publish: after at least one event arrived
                s.wait_events(1, 0.5)
            s.close(rst=(i % 3 == 0))
            if i == 99:
                time.sleep(0.3)
                rss100 = harness.proc_rss_kb(d.pid)
    finally:
        stop.set()
        th.join(5)
    dt = time.monotonic() - t0
    t.diag("%d cycles in %.1f s, %d messages published meanwhile"
           % (CYCLES, dt, published[0]))
    t.eq(failures[:5], [], "every cycle opened its stream")
    t.ok(d.running(), "daemon still running")

    zero = harness.wait_for(lambda: d.healthz()[1].get("streams") == 0, 10, 0.1)
    t.ok(zero, "/healthz streams back to 0", "last: %r" % (d.healthz()[1],))
    fds = [0]

    def fds_back():
        fds[0] = harness.proc_fd_count(d.pid)
        return fds[0] <= base_fds
    t.ok(harness.wait_for(fds_back, 10, 0.1),
         "fd count back to baseline (%d, baseline %d)" % (fds[0], base_fds))
    rss_end = harness.proc_rss_kb(d.pid)
    t.diag("RSS after 100 cycles %s kB, after %d cycles %d kB"
           % (rss100, CYCLES, rss_end))
    if t.sanitized:
        t.skip("RSS within 2 MB of the value after 100 cycles",
               "ASan quarantine holds freed memory; LeakSanitizer checks "
               "leaks at exit instead")
    else:
        t.ok(rss100 is not None and rss_end <= rss100 + 2048,
             "RSS within 2 MB of the value after 100 cycles (%s -> %d kB)"
             % (rss100, rss_end))

    s = d.stream("/events?user=final")
    t.ok(s.wait_opened(10), "a stream still opens afterwards")
    t.eq(r.client().publish("user:final", "bye"), 1, "PUBLISH reaches daemon")
    t.ok(s.wait_events(1, 10) and s.events[0].json()["data"] == "bye",
         "and its event arrives")
    s.close()


t.run(main)
