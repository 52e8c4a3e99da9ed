#!/usr/bin/env python3
# make check-long: 100,000 stream connect/disconnect cycles against one
# running daemon while a publisher sends 200 messages/s to the channels
# being subscribed.  Raw sockets, CONCURRENCY connections in flight at once
# (selectors), some closed after an event arrived, a third with a TCP
# reset.  The daemon's open fd count and RSS are taken at the baseline,
# after the first 10,000 cycles and at the end (each time once /healthz
# counts 0 streams): fds return to the baseline and the end RSS is within
# 5 % of the 10,000-cycle level.  Not part of make check (a few minutes).
# SSERELAY_CHURN_CYCLES overrides the number of cycles (for trying it out).
import os
import selectors
import socket
import struct
import threading
import time

import harness

t = harness.Test()
CYCLES = int(os.environ.get("SSERELAY_CHURN_CYCLES", "100000"))
FIRST = min(10000, CYCLES // 10)
CONCURRENCY = 32
CHANNELS = 10
RATE = 200          # messages per second, over the CHANNELS users
EVERY_WAITS = 20    # every 20th cycle waits for one event before closing
# Cycles started per second: about what a busy site sees from reconnecting
# browsers, and it keeps the number of closed-but-not-yet-reaped streams
# (the daemon notices a FIN on its next write) the same all along, so RSS
# levels compare like with like.
CYCLE_RATE = int(os.environ.get("SSERELAY_CHURN_RATE", "1000"))
CHECKPOINT = 10000


class Conn:
    __slots__ = ("sock", "i", "buf", "state", "t0")


def churn(d, first, last, failures, stats):
    """Run cycles [first, last) with CONCURRENCY in flight."""
    sel = selectors.DefaultSelector()
    nxt = first
    live = 0
    done = 0

    def start(i):
        c = Conn()
        c.i = i
        c.buf = b""
        c.state = "open"
        c.t0 = time.monotonic()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        c.sock = s
        try:
            s.connect(("127.0.0.1", d.port))
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_WRITE, c)
        return c

    def finish(c, ok, why=None):
        nonlocal live, done
        sel.unregister(c.sock)
        try:
            if c.i % 3 == 0:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  struct.pack("ii", 1, 0))
            c.sock.close()
        except OSError:
            pass
        live -= 1
        done += 1
        if not ok:
            failures.append("cycle %d: %s" % (c.i, why))

    t_start = time.monotonic()
    while nxt < last or live:
        due = first + int((time.monotonic() - t_start) * CYCLE_RATE) + 1
        while live < CONCURRENCY and nxt < last and nxt < due:
            try:
                start(nxt)
                live += 1
            except OSError as e:
                failures.append("cycle %d: connect: %r" % (nxt, e))
                done += 1
            nxt += 1
        now = time.monotonic()
        for key, ev in sel.select(0.5 if live else 0.002):
            c = key.data
            s = c.sock
            if c.state == "open":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    finish(c, False, "connect: %s" % os.strerror(err))
                    continue
                req = ("GET /events?user=c%d&upload=cu%d HTTP/1.1\r\n"
                       "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                       "\r\n" % (c.i % CHANNELS, c.i % 7)).encode()
                try:
                    s.send(req)
                except OSError as e:
                    finish(c, False, "send: %r" % e)
                    continue
                c.state = "head"
                sel.modify(s, selectors.EVENT_READ, c)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                finish(c, False, "recv: %r" % e)
                continue
            if not data:
                finish(c, False, "closed by the daemon after %r"
                       % c.buf[:80])
                continue
            c.buf += data
            if c.state == "head":
                if not c.buf.startswith(b"HTTP/1.1 200"):
                    if len(c.buf) >= 12:
                        finish(c, False, "status %r" % c.buf[:40])
                    continue
                if b"retry: " not in c.buf or b"sserelay\n\n" not in c.buf:
                    continue
                stats["opened"] += 1
                if c.i % EVERY_WAITS == 0:
                    c.state = "event"
                    c.buf = c.buf[c.buf.index(b"sserelay\n\n") + 10:]
                else:
                    finish(c, True)
            if c.state == "event":
                if b"data: " in c.buf:
                    stats["events"] += 1
                    finish(c, True)
        # nothing may hang: a connection older than 10 s is a failure
        for key in list(sel.get_map().values()):
            c = key.data
            if now - c.t0 > 10:
                finish(c, False, "no progress in 10 s (state %s, %r)"
                       % (c.state, c.buf[:80]))
    sel.close()
    return done


def settle(d, label):
    """Wait until the daemon counts no stream and its fds stop dropping;
    returns (fds, rss_kb, streams)."""
    harness.wait_for(lambda: d.healthz()[1].get("streams") == 0, 30, 0.2)
    last = None
    for _ in range(20):
        time.sleep(0.25)
        fds = harness.proc_fd_count(d.pid)
        if fds == last:
            break
        last = fds
    streams = d.healthz()[1].get("streams")
    fds = harness.proc_fd_count(d.pid)
    rss = harness.proc_rss_kb(d.pid)
    t.diag("%-22s fds %4d  RSS %7d kB  streams %s" % (label, fds, rss,
                                                       streams))
    return fds, rss, streams


def main():
    r = t.redis()
    d = t.daemon(r, extra=["--heartbeat", "1"], log_level="info")
    # warm up the code paths, then the baseline
    s = d.stream("/events?user=warm")
    s.wait_opened()
    s.close()
    base_fds, base_rss, _ = settle(d, "baseline")

    stop = threading.Event()
    published = [0]

    def publisher():
        c = r.client()
        i = 0
        t0 = time.monotonic()
        while not stop.is_set():
            # 20 per 100 ms: RATE per second
            c.publish_many([("user:c%d" % ((i + k) % CHANNELS),
                             '{"n":%d}' % (i + k)) for k in range(RATE // 10)])
            i += RATE // 10
            published[0] = i
            delay = t0 + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        c.close()

    th = threading.Thread(target=publisher, daemon=True)
    th.start()
    failures = []
    stats = {"opened": 0, "events": 0}
    t0 = time.monotonic()
    try:
        churn(d, 0, FIRST, failures, stats)
        t1 = time.monotonic()
        t.diag("first %d cycles in %.1f s" % (FIRST, t1 - t0))
        fds1, rss1, st1 = settle(d, "after %d cycles" % FIRST)
        t2 = time.monotonic()
        paused = 0.0
        for a in range(FIRST, CYCLES, CHECKPOINT):
            b = min(CYCLES, a + CHECKPOINT)
            churn(d, a, b, failures, stats)
            if b < CYCLES:
                p0 = time.monotonic()
                settle(d, "after %d cycles" % b)
                paused += time.monotonic() - p0
        t3 = time.monotonic() - paused
    finally:
        stop.set()
        th.join(5)
    t.diag("%d cycles in %.1f s (%.0f/s), %d messages published, "
           "%d waited-for events received" % (
               CYCLES, (t1 - t0) + (t3 - t2),
               CYCLES / ((t1 - t0) + (t3 - t2)), published[0],
               stats["events"]))
    t.eq(failures[:5], [], "every cycle opened its stream (%d failures)"
         % len(failures))
    t.eq(stats["opened"], CYCLES, "%d streams opened" % CYCLES)
    t.ok(d.running(), "daemon still running")
    fds2, rss2, st2 = settle(d, "after %d cycles" % CYCLES)
    t.eq(st2, 0, "/healthz counts 0 streams at the end")

    fds = [fds2]

    def back():
        fds[0] = harness.proc_fd_count(d.pid)
        return fds[0] <= base_fds
    t.ok(harness.wait_for(back, 10, 0.2),
         "open fds back to the baseline (%d at %d cycles, %d at the end, "
         "baseline %d)" % (fds1, FIRST, fds[0], base_fds))
    t.diag("RSS: baseline %d kB, after %d cycles %d kB, after %d cycles "
           "%d kB (%+.1f %%)" % (base_rss, FIRST, rss1, CYCLES, rss2,
                                 100.0 * (rss2 - rss1) / rss1))
    if t.sanitized:
        t.skip("end RSS within 5 % of the 10,000-cycle level",
               "ASan quarantine holds freed memory; LeakSanitizer checks "
               "leaks at exit instead")
    else:
        t.ok(rss2 <= rss1 * 1.05, "end RSS within 5 %% of the level after "
             "%d cycles (%d -> %d kB)" % (FIRST, rss1, rss2))

    s = d.stream("/events?user=final")
    t.ok(s.wait_opened(10), "a stream still opens afterwards")
    r.client().publish("user:final", "bye")
    t.ok(s.wait_events(1, 10) and s.events[0].json()["data"] == "bye",
         "and its event arrives")
    s.close()


t.run(main)
