#!/usr/bin/env python3
# --history redis: resume on any instance.
#
# Publishing is FCALL sserelay_publish 1 <channel> <payload>; the history
# lives in Redis, shared by every instance and kept across restarts, and an
# event id is the position of every channel of the stream.
#
# - two instances behind HAProxy on one Redis: 2,000 messages at about
#   500/s on the 3 channels of one stream while the client is moved 20
#   times, alternately to each instance (HAProxy drains one, then the
#   other): every message exactly once, in order per channel;
# - an instance SIGKILLed mid-stream: its client resumes on the other,
#   exactly;
# - a plain PUBLISH is ephemeral: live, without an id, and the next id is
#   still a full position;
# - Redis restarted with appendonly yes: exact resume; without persistence:
#   reset epoch-changed; a position trimmed away: reset history-exceeded;
# - bad input: an id of the wrong shape (malformed-id), of another
#   deployment (epoch-changed), naming other channels (unknown-channels),
#   2 KB of it; FCALL with a missing argument: an error, nothing published.
import os
import signal
import threading
import time

import harness
import topology

t = harness.Test(require=("redis-server", "haproxy"))

CHANS = ["user:dur", "upload:d1", "upload:d2"]
PATH = "/events?user=dur&upload=d1&upload=d2"


def fcall(c, ch, payload):
    return c.cmd("FCALL", "sserelay_publish", "1", ch, payload)


def daemon(r, name, extra=()):
    return t.daemon(r, extra=["--history", "redis", "--subscribe", "exact",
                              "--heartbeat", "0.5"] + list(extra), name=name)


class Client:
    """An SSE client that comes back with its Last-Event-ID, as a browser
    does, to whatever port it is given."""

    def __init__(self, port, path=PATH):
        self.port = port
        self.path = path
        self.last = None
        self.got = {}           # channel -> [data]
        self.resets = []
        self.connects = 0
        self.s = None
        self.ids = []

    def connect(self):
        h = {"Last-Event-ID": self.last} if self.last else {}
        self.s = harness.SSEStream(self.port, self.path, headers=h)
        self.seen = 0
        self.connects += 1

    def pump(self):
        s = self.s
        s.recv_once()
        while self.seen < len(s.events):
            e = s.events[self.seen]
            self.seen += 1
            if e.event == "reset":
                self.resets.append(e.json().get("reason"))
            elif e.event in (None, "", "message"):
                j = e.json()
                self.got.setdefault(j["channel"], []).append(j["data"])
            if e.id:
                self.last = e.id
                self.ids.append(e.id)
        return not s.eof

    def count(self):
        return sum(len(v) for v in self.got.values())


def publisher(r, total, rate, sent, errors):
    try:
        c = r.client()
        t0 = time.monotonic()
        for k in range(total):
            due = t0 + k / rate
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)       # pacing the publisher, not a wait
            ch = CHANS[k % 3]
            fcall(c, ch, "m%d" % k)
            sent.setdefault(ch, []).append("m%d" % k)
        c.close()
    except Exception as e:
        errors.append(repr(e))


def behind_haproxy(r):
    a = daemon(r, "a")
    b = daemon(r, "b")
    with open(os.path.join(os.environ["TESTS_SRCDIR"], "..", "examples",
                           "haproxy.cfg")) as f:
        hp = topology.HAProxy(t, [a.port, b.port], config=f.read())
    servers = sorted(hp.server_stats())
    cl = Client(hp.port)
    cl.connect()
    t.ok(cl.s.wait_opened(10), "a stream through HAProxy")
    sent, errors = {}, []
    pub = threading.Thread(target=publisher, args=(r, 2000, 500, sent, errors),
                           daemon=True)
    pub.start()
    moves = 0
    landed = []
    while moves < 20:
        # drain the server the client is on: new connections go to the
        # other, and the stream is cut as a deploy or a crash would
        if not harness.wait_for(lambda: cl.pump() and cl.count() >=
                                (moves + 1) * 80, 20, 0.005):
            break
        st = hp.server_stats()
        on = [n for n in servers if st[n].get("scur") not in ("0", "")]
        if len(on) != 1:
            continue
        other = [n for n in servers if n != on[0]][0]
        hp.admin("enable server sserelay/%s" % other)
        hp.admin("disable server sserelay/%s" % on[0])
        hp.admin("shutdown sessions server sserelay/%s" % on[0])
        harness.wait_for(lambda: not cl.pump(), 10, 0.005)
        landed.append(other)
        cl.connect()
        moves += 1
    pub.join(60)
    t.eq(errors, [], "the publisher ran (FCALL sserelay_publish)")
    t.eq(moves, 20, "the client was moved 20 times")
    t.ok(landed.count(servers[0]) == 10 and landed.count(servers[1]) == 10,
         "alternately to each instance (%r)" % landed)
    harness.wait_for(lambda: cl.pump() and cl.count() >= 2000, 30, 0.005)
    for ch in CHANS:
        got, want = cl.got.get(ch, []), sent.get(ch, [])
        dups = sorted(set(x for x in got if got.count(x) > 1))
        lost = [x for x in want if x not in got]
        t.ok(got == want, "%s: all %d messages, exactly once, in order" %
             (ch, len(want)), "%d got, duplicates %s, missing %s" %
             (len(got), dups[:10], lost[:10]))
    t.eq(cl.resets, [], "no reset: every resume was exact")
    ha, hb = a.healthz()[1], b.healthz()[1]
    t.ok(ha["resumes"] >= 9 and hb["resumes"] >= 9,
         "both instances replayed (resumes %d and %d)" % (ha["resumes"],
                                                          hb["resumes"]))
    cl.s.close()
    hp.stop()
    return a, b


def sigkill(r, a, b):
    c = r.client()
    cl = Client(a.port)
    cl.connect()
    t.ok(cl.s.wait_opened(10), "a stream on instance A")
    for k in range(10):
        fcall(c, CHANS[k % 3], "k%d" % k)
    harness.wait_for(lambda: cl.pump() and cl.count() >= 10, 10, 0.01)
    a.kill()
    harness.wait_for(lambda: not cl.pump(), 10, 0.01)
    for k in range(10, 20):
        fcall(c, CHANS[k % 3], "k%d" % k)
    cl.port = b.port
    cl.connect()
    harness.wait_for(lambda: cl.pump() and cl.count() >= 20, 10, 0.01)
    want = {ch: ["k%d" % k for k in range(20) if CHANS[k % 3] == ch]
            for ch in CHANS}
    t.eq(cl.got, want, "A SIGKILLed: its client resumed on B, exactly")
    t.eq(cl.resets, [], "without a reset")
    # a plain PUBLISH: live, no id; the next durable event has a full id
    last = cl.last
    t.eq(c.publish("user:dur", "plain"), 1, "a plain PUBLISH reaches B")
    harness.wait_for(lambda: cl.pump() and "plain" in cl.got["user:dur"], 10,
                     0.01)
    e = [x for x in cl.s.events if x.data and "plain" in x.data]
    t.ok(e and not e[0].id, "it arrives live, without an id (ephemeral)")
    t.eq(cl.last, last, "the client keeps its last durable id")
    fcall(c, "upload:d1", "after-plain")
    harness.wait_for(lambda: cl.pump() and cl.last != last, 10, 0.01)
    t.ok(cl.last != last and cl.last.startswith("r"),
         "the next durable event has an id with every channel's position")
    cl.s.close()
    c.close()
    return cl


def restarts(t_dir):
    # appendonly yes: the history survives a restart
    r = t.redis(extra=["--appendonly", "yes", "--appendfsync", "always"])
    d = daemon(r, "aof")
    c = r.client()
    cl = Client(d.port)
    cl.connect()
    t.ok(cl.s.wait_opened(10), "a stream (Redis with appendonly yes)")
    fcall(c, "user:dur", "before")
    harness.wait_for(lambda: cl.pump() and cl.count() >= 1, 10, 0.01)
    cl.s.close()
    c.close()
    r.kill(signal.SIGTERM)
    r.start()
    c = r.client()
    fcall(c, "user:dur", "after-restart")
    t.ok(harness.wait_for(lambda: d.healthz()[0] == 200, 15, 0.05),
         "the daemon is back on the restarted Redis")
    cl.connect()
    harness.wait_for(lambda: cl.pump() and cl.count() >= 2, 10, 0.01)
    t.eq(cl.got.get("user:dur"), ["before", "after-restart"],
         "appendonly yes: the resume is exact across the restart")
    t.eq(cl.resets, [], "no reset")
    cl.s.close()
    c.close()
    d.stop()

    # no persistence: the history is gone, and the client is told
    r2 = t.redis()
    d2 = daemon(r2, "nopersist")
    c = r2.client()
    cl = Client(d2.port)
    cl.connect()
    t.ok(cl.s.wait_opened(10), "a stream (Redis without persistence)")
    fcall(c, "user:dur", "x1")
    harness.wait_for(lambda: cl.pump() and cl.count() >= 1, 10, 0.01)
    cl.s.close()
    c.close()
    r2.kill()
    r2.start()
    c = r2.client()
    t.ok(harness.wait_for(lambda: d2.healthz()[0] == 200, 15, 0.05),
         "the daemon is back on the empty Redis")

    def published():
        try:
            fcall(c, "user:dur", "x2")
            return True
        except harness.RedisError:
            return False    # the library is not loaded again yet
    t.ok(harness.wait_for(published, 15, 0.05),
         "the daemon loads the function library into the empty Redis")
    cl.connect()
    harness.wait_for(lambda: cl.pump() and cl.resets, 10, 0.01)
    t.eq(cl.resets, ["epoch-changed"],
         "Redis lost its data: reset epoch-changed, never silence")
    cl.s.close()

    # trimmed: --history-size 5, the client away for 8 messages
    d3 = daemon(r2, "trim", ["--history-size", "5"])
    cl = Client(d3.port)
    cl.connect()
    t.ok(cl.s.wait_opened(10), "a stream (--history-size 5)")
    fcall(c, "upload:d1", "t0")
    harness.wait_for(lambda: cl.pump() and cl.count() >= 1, 10, 0.01)
    cl.s.close()
    for k in range(8):
        fcall(c, "upload:d1", "t%d" % (k + 1))
    cl.connect()
    harness.wait_for(lambda: cl.pump() and cl.resets, 10, 0.01)
    t.eq(cl.resets, ["history-exceeded"],
         "8 missed, 5 kept: reset history-exceeded")
    fcall(c, "upload:d1", "t9")
    harness.wait_for(lambda: cl.pump() and "t9" in cl.got["upload:d1"], 10,
                     0.01)
    t.eq(cl.got["upload:d1"], ["t0", "t9"], "then live, no partial replay")
    cl.s.close()
    c.close()
    d2.stop()
    d3.stop()


def bad_input(r, b):
    c = r.client()
    s = b.stream(PATH)
    t.ok(s.wait_opened(10), "a stream")
    fcall(c, "user:dur", "b1")
    s.wait(lambda: harness.message_events(s), 10)
    good = [e.id for e in s.events if e.id][-1]
    s.close()

    def reason_for(last_id, path=PATH):
        x = b.resume(path, last_id)
        x.wait(lambda: harness.reset_events(x), 10)
        rs = [e.json().get("reason") for e in harness.reset_events(x)]
        x.close()
        return rs
    t.eq(reason_for("0badf00d-12"), ["malformed-id"],
         "an id of the wrong shape (a memory-history id): malformed-id")
    t.eq(reason_for("r" + "z" * 2000), ["malformed-id"],
         "a 2 KB id: malformed-id")
    parts = good.split("_")
    other = "_".join([parts[0]] + ["zzzz.1"] * (len(parts) - 1))
    t.eq(reason_for(other), ["epoch-changed"],
         "an id of another deployment (other epochs): epoch-changed")
    t.eq(reason_for(good, "/events?user=dur&upload=d1"),
         ["unknown-channels"],
         "an id naming channels the stream does not have: unknown-channels")
    t.eq(reason_for(good[:-1] + "z" if good[-1] != "z" else good[:-1] + "y"),
         ["unknown-id"], "an offset never given: unknown-id")
    # FCALL with a missing argument: an error, nothing published
    n0 = b.healthz()[1]["redis_messages"]
    err = None
    try:
        c.cmd("FCALL", "sserelay_publish", "1", "user:dur")
    except harness.RedisError as e:
        err = str(e)
    t.ok(err and "usage" in err, "FCALL without the payload: an error to the "
         "publisher (%s)" % err)
    fcall(c, "user:dur", "marker")
    t.ok(harness.wait_for(lambda: b.healthz()[1]["redis_messages"] > n0, 10,
                          0.02), "the next publish arrives")
    t.eq(b.healthz()[1]["redis_messages"], n0 + 1,
         "and nothing was published by the bad FCALL")
    c.close()


def many_channels(r):
    """64 channels, the most a stream may have: an id of every position is
    long (several hundred bytes), and still resumes from the header and
    from ?lastEventId= alike."""
    d = daemon(r, "wide", ["--channel", "room=room:", "--channel-max",
                           "room=47", "--conn-memory", "16384"])
    c = r.client()
    chans = ["user:w"] + ["upload:w%d" % i for i in range(16)] + \
        ["room:w%d" % i for i in range(47)]
    path = "/events?user=w&" + "&".join(
        "upload=w%d" % i for i in range(16)) + "&" + "&".join(
        "room=w%d" % i for i in range(47))
    s = d.stream(path)
    t.ok(s.wait_opened(10), "a stream of 64 channels")
    for ch in chans:
        fcall(c, ch, "first")
    s.wait(lambda: len(harness.message_events(s)) >= 64, 10)
    last = [e.id for e in s.events if e.id][-1]
    s.close()
    t.ok(400 <= len(last) <= 1417, "its id holds 64 positions (%d bytes)"
         % len(last))
    for ch in chans[::9]:
        fcall(c, ch, "missed")
    want = sorted(chans[::9])
    for how in ("header", "query"):
        x = d.resume(path, last) if how == "header" else \
            d.stream(path + "&lastEventId=" + last)
        x.wait(lambda: len(harness.message_events(x)) >= len(want) or
               harness.reset_events(x), 10)
        got = sorted(e.json()["channel"] for e in harness.message_events(x)
                     if e.json()["data"] == "missed")
        t.eq((got, [e.json() for e in harness.reset_events(x)]), (want, []),
             "resumed from the %s: exactly the %d missed" % (how, len(want)))
        x.close()
    c.close()
    d.stop()


def main():
    r = t.redis()
    a, b = behind_haproxy(r)
    sigkill(r, a, b)
    bad_input(r, b)
    many_channels(r)
    restarts(t.tmp)


t.run(main)
