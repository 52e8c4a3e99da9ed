#!/usr/bin/env python3
# --subscribe exact: each instance SUBSCRIBEs only the channels of its own
# streams, lets go of them once their linger has passed, and never tells a
# stream it missed nothing when it could have.
#
# - two instances on one Redis behind HAProxy (examples/haproxy.cfg): each
#   receives only its own streams' channels (its redis_messages counter,
#   PUBSUB NUMSUB);
# - 1,000 connect/disconnect cycles leave no subscription behind once the
#   linger has passed (PUBSUB CHANNELS, the daemon's redis_channels gauge);
# - a resume within the linger replays exactly; across an unsubscribed gap
#   it gets the reset not-subscribed;
# - a new stream's response waits for Redis to confirm its channels, so a
#   message published as soon as it opens is not lost (Redis SIGSTOPped
#   meanwhile: it opens only once Redis answers);
# - Redis restarted: every channel is subscribed again, in batches, and
#   the open streams get the reset redis-outage;
# - /healthz and /metrics count channels and commands; --subscribe
#   pattern (the default) still PSUBSCRIBEs.
import os
import signal
import time

import harness
import topology

t = harness.Test(require=("redis-server", "haproxy"))


def numsub(c, *channels):
    r = c.cmd("PUBSUB", "NUMSUB", *channels)
    return {r[i].decode(): r[i + 1] for i in range(0, len(r), 2)}


def channels(c):
    # the control thread's own (revocations) is not a stream's
    return sorted(x.decode() for x in c.cmd("PUBSUB", "CHANNELS", "*")
                  if x != b"sserelay:control")


def exact(r, name, linger="1", extra=()):
    return t.daemon(r, extra=["--subscribe", "exact", "--subscribe-linger",
                              linger, "--heartbeat", "0.2"] + list(extra),
                    name=name)


def two_instances(r):
    c = r.client()
    a = exact(r, "inst-a")
    b = exact(r, "inst-b")
    with open(os.path.join(os.environ["TESTS_SRCDIR"], "..", "examples",
                           "haproxy.cfg")) as f:
        hp = topology.HAProxy(t, [a.port, b.port], config=f.read())
    users = ["h%d" % i for i in range(6)]
    ss = []
    for u in users:
        s = harness.SSEStream(hp.port, "/events?user=%s&upload=%s-up" %
                              (u, u))
        t.ok(s.wait_opened(10), "stream for %s opened through HAProxy" % u)
        ss.append(s)
    ha, hb = a.healthz()[1], b.healthz()[1]
    t.eq((ha["streams"], hb["streams"]), (3, 3),
         "HAProxy spread the 6 streams, 3 on each instance")
    chans = ["user:%s" % u for u in users] + ["upload:%s-up" % u
                                              for u in users]
    t.eq(numsub(c, *chans), {ch: 1 for ch in chans},
         "each of the 12 channels is subscribed once, by one instance")
    t.eq((ha["redis_channels"], hb["redis_channels"]), (6, 6),
         "6 channels on each instance: its own streams' only")
    t.eq(c.cmd("PUBSUB", "NUMPAT"), 0, "and no pattern subscription at all")
    for i in range(10):
        for u in users:
            c.publish("user:%s" % u, "%s-%d" % (u, i))
        c.publish("user:nobody", "x%d" % i)   # no stream anywhere
    harness.pump(ss, lambda: all(len(s.events) >= 10 for s in ss), 10)
    t.ok(all([e.json()["data"] for e in s.events] ==
             ["%s-%d" % (u, i) for i in range(10)]
             for u, s in zip(users, ss)),
         "every stream got its 10 messages, in order")
    ha, hb = a.healthz()[1], b.healthz()[1]
    t.eq((ha["redis_messages"], hb["redis_messages"]), (30, 30),
         "each instance received only its own streams' 30 messages of the "
         "70 published (redis_messages)")
    for s in ss:
        s.close()
    hp.stop()
    a.stop()
    b.stop()
    c.close()


def churn(r):
    c = r.client()
    d = exact(r, "churn", linger="1")
    n = 1000
    t0 = time.monotonic()
    for i in range(n):
        s = d.stream("/events?user=churn%d&upload=cu%d" % (i % 50, i % 7))
        s.wait_opened(10)
        s.close()
    t.diag("%d connect/disconnect cycles in %.1f s" % (n, time.monotonic() - t0))
    h = {}

    def gone():
        h.update(d.healthz()[1])
        return h["streams"] == 0 and h["redis_channels"] == 0 and \
            channels(c) == []
    t.ok(harness.wait_for(gone, 30, 0.1),
         "%d cycles: once the linger has passed, no stream, no channel "
         "subscribed (PUBSUB CHANNELS empty)" % n,
         "healthz %r, channels %r" % (h, channels(c)[:10]))
    t.ok(h.get("redis_subscribes", 0) < n / 2,
         "SUBSCRIBE batched and lingering: %s commands for %d streams"
         % (h.get("redis_subscribes"), n))
    t.ok(h.get("redis_unsubscribes", 0) >= 1, "UNSUBSCRIBE sent (%s)"
         % h.get("redis_unsubscribes"))
    m = harness.metric_samples(d.port)
    t.eq(harness.metric(m, "sserelay_redis_channels"), 0,
         "/metrics: sserelay_redis_channels 0")
    t.eq(harness.metric(m, "sserelay_redis_subscribe_commands_total"),
         h.get("redis_subscribes"), "/metrics counts the SUBSCRIBE commands")
    d.stop()
    c.close()


def resume_gap(r):
    c = r.client()
    d = exact(r, "gap", linger="1")
    path = "/events?user=gap"
    s = d.stream(path)
    t.ok(s.wait_opened(), "stream opened")
    c.publish("user:gap", "m1")
    t.ok(s.wait_events(1), "m1 received")
    last = s.events[-1].id
    s.close()
    # within the linger: still subscribed, exact replay
    c.publish("user:gap", "m2")
    s2 = d.resume(path, last)
    t.ok(s2.wait_events(1), "a resume within the linger")
    t.eq([e.json().get("data") for e in harness.message_events(s2)], ["m2"],
         "replays exactly what it missed")
    t.eq(harness.reset_events(s2), [], "with no reset")
    last = s2.events[-1].id
    s2.close()
    t.ok(harness.wait_for(lambda: numsub(c, "user:gap")["user:gap"] == 0, 10,
                          0.05), "after the linger the channel is let go of")
    c.publish("user:gap", "lost")   # nobody hears it
    s3 = d.resume(path, last)
    t.ok(s3.wait(lambda: harness.reset_events(s3), 10),
         "a resume across the unsubscribed gap gets a reset")
    t.eq([e.json().get("reason") for e in harness.reset_events(s3)],
         ["not-subscribed"], "reason not-subscribed, never silence")
    t.ok(harness.wait_for(lambda: numsub(c, "user:gap")["user:gap"] == 1, 10,
                          0.05), "and the channel is subscribed again")
    c.publish("user:gap", "after")
    t.ok(s3.wait(lambda: harness.message_events(s3), 10), "then it goes live")
    s3.close()
    d.stop()
    c.close()


def held_open(r):
    c = r.client()
    d = exact(r, "held", extra=["--redis-timeout", "20000"])
    # Redis stopped: a SUBSCRIBE cannot be confirmed, so the new stream's
    # response waits (up to --redis-timeout) for it
    r.proc.send_signal(signal.SIGSTOP)
    try:
        s = d.stream("/events?user=held")
        s.read_for(1.0)
        t.eq(s.status, None, "Redis not answering: the new stream's "
             "response is held back (no status line after 1 s)")
    finally:
        r.proc.send_signal(signal.SIGCONT)
    t.ok(s.wait_opened(15), "Redis answers: the stream opens")
    # published the moment the client sees the stream open
    t.eq(c.publish("user:held", "first"), 1,
         "a PUBLISH right after the open reaches the daemon")
    t.ok(s.wait_events(1, 10), "and the stream")
    t.eq(harness.reset_events(s), [], "no reset: nothing was missed")
    s.close()
    d.stop()
    c.close()


def outage(r):
    d = exact(r, "outage", linger="30")
    ss = [d.stream("/events?user=o%d&upload=ou%d" % (i, i % 3))
          for i in range(30)]
    harness.pump(ss, lambda: all(s.opened for s in ss), 15)
    t.ok(all(s.opened for s in ss), "30 streams open on 33 channels")
    r.kill()
    t.ok(harness.wait_for(lambda: d.healthz()[0] == 503, 10, 0.05),
         "Redis killed: /healthz 503")
    r.start()
    t.ok(harness.wait_for(lambda: d.healthz()[1].get("redis_channels") == 33,
                          15, 0.05),
         "Redis back: all 33 channels subscribed again")
    c = r.client()
    t.eq(sum(numsub(c, *["user:o%d" % i for i in range(30)]).values()), 30,
         "Redis has every user channel once")
    harness.pump(ss, lambda: all(harness.reset_events(s) for s in ss), 15)
    reasons = [[e.json().get("reason") for e in harness.reset_events(s)]
               for s in ss]
    t.ok(all(x == ["redis-outage"] for x in reasons),
         "every open stream got one reset, redis-outage", repr(reasons[:3]))
    c.publish("user:o7", "back")
    t.ok(ss[7].wait(lambda: harness.message_events(ss[7]), 10),
         "and messages flow again")
    for s in ss:
        s.close()
    d.stop()
    c.close()


def pattern_default(r):
    c = r.client()
    d = t.daemon(r, name="pattern")
    t.eq(c.cmd("PUBSUB", "NUMPAT"), 2, "the default is --subscribe pattern: "
         "two pattern subscriptions")
    t.eq(d.healthz()[1].get("redis_channels"), 0,
         "and no exact channel counted")
    d.stop()
    c.close()


def main():
    r = t.redis()
    two_instances(r)
    churn(r)
    resume_gap(r)
    held_open(r)
    pattern_default(r)
    outage(r)


t.run(main)
