#!/usr/bin/env python3
# --history redis: open streams across the loss of Redis (issue 20).
#
# - a Sentinel failover under a steady publisher (FCALL sserelay_publish,
#   300 msg/s): the daemon is stopped (SIGSTOP) and 600 messages of 4 KB
#   are published, which it has not read when the master dies; the
#   publisher pauses, WAIT makes sure the replica has every acknowledged
#   message, the master is SIGKILLed, the daemon continued, and the
#   publisher goes on on the promoted replica as soon as the sentinels
#   name it; the open streams catch up from the new master: every
#   acknowledged message once, in order, no reset;
# - the same with a Redis Cluster primary failover (3 primaries, 3
#   replicas): the streams' channels on the killed primary and on the
#   others, the primary killed after WAIT, its replica takes over;
# - Redis restarted without persistence: the history is gone, and the open
#   stream is told so, reset epoch-changed, then goes on live;
# - --history memory: pub/sub keeps nothing, so an outage still gives the
#   reset redis-outage.
# The streams stay open throughout (the daemon never restarts); each step
# waits for what the client would see.  --history-size 1000 holds the
# 600 messages of the burst (150 a channel) and what comes around them.
import signal
import threading
import time

import harness
import topology

t = harness.Test(require=("redis-server", "redis-sentinel", "redis-cli"))

RATE = 300
BURST = 600             # messages the daemon has not read when the primary dies
BURST_PAD = ":" + "x" * 4000


def data(s):
    return [e.json().get("data") for e in harness.message_events(s)]


def reasons(s):
    return [e.json().get("reason") for e in harness.reset_events(s)]


def by_channel(s, ch):
    return [e.json()["data"] for e in harness.message_events(s)
            if e.json().get("channel") == ch]


class Publisher(threading.Thread):
    """FCALL sserelay_publish "m<k>" at RATE/s round robin on chans, with
    send(channel, payload) (an exception: not acknowledged).  sent[ch]:
    what was acknowledged, in order; maybe: what was sent without an
    answer.  pause() stops it after a last sync() (WAIT: the replicas
    have everything acknowledged) and returns sync's answer; go() starts
    it again."""

    def __init__(self, chans, send, sync):
        super().__init__(daemon=True)
        self.chans, self.send, self.sync = chans, send, sync
        self.sent = {ch: [] for ch in chans}
        self.maybe = set()
        self.errors = []
        self.acked = 0
        self.stop = False
        self.want_pause = False
        self.paused = threading.Event()
        self.synced = None
        self.k = 0

    def run(self):
        t0, n0 = time.monotonic(), 0
        while not self.stop:
            if self.want_pause:
                self.before()
                for _ in range(self.burst):
                    self.one(BURST_PAD)
                try:
                    self.synced = self.sync()
                except Exception as e:
                    self.synced = e
                self.paused.set()
                while self.want_pause and not self.stop:
                    time.sleep(0.01)
                t0, n0 = time.monotonic(), self.k
                continue
            d = t0 + (self.k - n0) / RATE - time.monotonic()
            if d > 0:
                time.sleep(d)       # pacing the publisher, not a wait
            if not self.one():
                time.sleep(0.02)
                t0, n0 = time.monotonic(), self.k

    def one(self, pad=""):
        ch = self.chans[self.k % len(self.chans)]
        m = "m%d%s" % (self.k, pad)
        self.k += 1
        try:
            pos = self.send(ch, m)
        except Exception as e:
            self.maybe.add(m)
            self.errors.append(repr(e))
            return False
        if isinstance(pos, bytes) and b":" in pos:
            self.sent[ch].append(m)
            self.acked += 1
        else:
            self.maybe.add(m)
        return True

    def pause(self, before=lambda: None, burst=0):
        """before(), then burst messages of 4 KB, then sync()."""
        self.before, self.burst = before, burst
        self.paused.clear()
        self.want_pause = True
        self.paused.wait(30)
        return self.synced

    def go(self):
        self.want_pause = False

    def wait_acked(self, n, timeout=60):
        mark = self.acked + n
        return harness.wait_for(lambda: self.acked >= mark, timeout, 0.01)


def caught_up(streams, pub, chans_of):
    """Every stream has the last acknowledged message of its channels."""
    last = {ch: (v[-1] if v else None) for ch, v in pub.sent.items()}
    return harness.pump(streams, lambda: all(
        last[ch] is None or last[ch] in by_channel(s, ch)
        for s in streams for ch in chans_of[s]), 60)


def short(ms):
    return [m.split(":")[0] for m in ms[:10]]


def check_exact(label, streams, pub, chans_of):
    for i, s in enumerate(streams):
        for ch in chans_of[s]:
            got = by_channel(s, ch)
            want = pub.sent[ch]
            acked = set(want)
            dups = sorted(set(x for x in got if got.count(x) > 1))
            extra = [x for x in got if x not in acked and x not in pub.maybe]
            lost = [x for x in want if x not in set(got)]
            t.ok(not dups and not extra and
                 [x for x in got if x in acked] == want,
                 "%s: stream %d, %s: all %d acknowledged messages, exactly "
                 "once, in order" % (label, i, ch, len(want)),
                 "%d got, duplicates %s, missing %s, never sent %s" % (
                     len(got), short(dups), short(lost), short(extra)))
    t.eq([reasons(s) for s in streams], [[] for _ in streams],
         "%s: no reset on any stream" % label)
    t.ok(all(not s.eof for s in streams), "%s: no stream was closed" % label)


def through_failover(label, d, paths, chans_of_path, pub, kill_and_wait):
    """Streams on paths, pub running: the failover in the middle."""
    streams = [d.stream(p) for p in paths]
    harness.pump(streams, lambda: all(s.opened for s in streams), 15)
    t.ok(all(s.opened for s in streams), "%s: %d streams open" %
         (label, len(streams)))
    chans_of = {s: chans_of_path[p] for s, p in zip(streams, paths)}
    pub.start()
    t.ok(pub.wait_acked(RATE) and caught_up(streams, pub, chans_of),
         "%s: live at %d msg/s" % (label, RATE))
    rec0 = d.healthz()[1]["recoveries"]
    # the daemon stopped (SIGSTOP) while 2.4 MB more are published: most
    # of them are still in the primary's output buffer for it when the
    # primary dies, so the streams have them to catch up from the replica.
    # (A stream keeps aside what comes live on its other channels while
    # it catches up, at most --ring-size (256) events, or it is closed as
    # too slow: 150 a channel stays below that.)
    n = pub.pause(lambda: d.signal(signal.SIGSTOP), BURST)
    t.ok(isinstance(n, int) and n >= 1,
         "%s: the daemon stopped, %d messages of 4 KB more, the publisher "
         "paused, WAIT: the replica has every acknowledged message (%r)" %
         (label, BURST, n))
    kill_and_wait()
    d.signal(signal.SIGCONT)
    pub.go()
    t.ok(pub.wait_acked(2 * RATE), "%s: publishing again on the new "
         "primary" % label, pub.errors[-3:])
    t.ok(harness.wait_for(lambda: d.healthz()[0] == 200, 60, 0.05),
         "%s: the daemon is back (/healthz 200)" % label)
    t.ok(pub.wait_acked(RATE) and caught_up(streams, pub, chans_of),
         "%s: every stream has the last acknowledged message of each of "
         "its channels" % label)
    pub.stop = True
    pub.join(10)
    t.ok(caught_up(streams, pub, chans_of), "%s: and the last one, once the "
         "publisher stopped" % label)
    h = d.healthz()[1]
    t.ok(h["recoveries"] > rec0, "%s: the open streams were caught up from "
         "Redis (recoveries %d, recovered %d events)" % (
             label, h["recoveries"] - rec0, h["recovered"]))
    t.diag("%s: %d acknowledged, %d not (%s)" % (
        label, pub.acked, len(pub.maybe), "; ".join(sorted(set(
            e[:60] for e in pub.errors))[:3])))
    check_exact(label, streams, pub, chans_of)
    t.eq(h["slow_closes"], 0, "%s: no stream closed as too slow" % label)
    for s in streams:
        s.close()


def sentinel():
    sn = topology.Sentinel(t)
    d = t.daemon(None, extra=["--redis-sentinel", ",".join(
        sn.sentinel_addrs()), "--redis-sentinel-master", sn.name,
        "--history", "redis", "--subscribe", "exact", "--heartbeat", "0.5",
        "--history-size", "1000"],
        name="sentinel", no_redis_arg=True)
    paths = ["/events?user=s%d&upload=sh" % i for i in range(3)]
    chans_of = {p: ["user:s%d" % i, "upload:sh"] for i, p in
                enumerate(paths)}
    chans = ["user:s0", "user:s1", "user:s2", "upload:sh"]
    conn = {}

    def master_conn():
        m = sn.master()
        if conn.get("addr") != m:
            if conn.get("c"):
                conn["c"].close()
            conn["c"] = sn.data[int(m.rsplit(":", 1)[1])].conn()
            conn["addr"] = m
        return conn["c"]

    def send(ch, m):
        try:
            return master_conn().cmd("FCALL", "sserelay_publish", "1", ch, m)
        except Exception:
            conn.pop("addr", None)
            raise

    def sync():
        return master_conn().cmd("WAIT", "1", "5000")

    def kill_and_wait():
        sn.kill_master()
        new = sn.wait_failover(timeout=60)
        t.diag("sentinel: failover to %s in %.2f s" %
               (new, sn.failover_seconds))
    through_failover("sentinel", d, paths, chans_of,
                     Publisher(chans, send, sync), kill_and_wait)
    d.stop()


def cluster():
    cl = topology.Cluster(t)
    cc = topology.ClusterClient(cl.seeds())
    d = t.daemon(None, extra=["--redis-cluster", ",".join(cl.seeds()),
                              "--history", "redis", "--heartbeat", "0.5",
                              "--history-size", "1000"],
                 name="cluster", no_redis_arg=True)
    prims = cl.primaries()
    t.ok(harness.wait_for(lambda: all(
        topology.try_cmd(p, "FCALL_RO", "sserelay_version", "0")
        for p in prims), 15, 0.05), "cluster: the library on every primary")
    victim = next(p for p in prims if cl.replicas(of=p))
    others = [p for p in prims if p != victim]
    shared = cl.channel_on(victim, "upload:cs")[len("upload:"):]
    users = [cl.channel_on(victim, "user:cv")[len("user:"):]] + \
        [cl.channel_on(p, "user:co")[len("user:"):] for p in others]
    paths = ["/events?user=%s&upload=%s" % (u, shared) for u in users]
    chans_of = {p: ["user:" + u, "upload:" + shared]
                for p, u in zip(paths, users)}
    chans = ["user:" + u for u in users] + ["upload:" + shared]

    def send(ch, m):
        return cc.cmd("FCALL", "sserelay_publish", "1", ch, m, key=ch,
                      timeout=1)

    def sync():
        return cc.conn(victim).cmd("WAIT", "1", "5000")

    def kill_and_wait():
        cl.kill_primary(victim)
        new = cl.wait_failover(victim, timeout=60)
        t.diag("cluster: failover of %d -> %d in %.2f s" %
               (victim, new, cl.failover_seconds))
    through_failover("cluster", d, paths, chans_of,
                     Publisher(chans, send, sync), kill_and_wait)
    d.stop()
    cc.close()


def nopersist(r):
    d = t.daemon(r, extra=["--history", "redis", "--heartbeat", "0.5"],
                 name="nopersist")
    s = d.stream("/events?user=np")
    t.ok(s.wait_opened(10), "no persistence: a stream")
    c = r.client()
    c.cmd("FCALL", "sserelay_publish", "1", "user:np", "before")
    t.ok(s.wait(lambda: data(s) == ["before"], 10), "its message arrives")
    c.close()
    r.kill()
    r.start()
    c = r.client()

    def published():
        try:
            c.cmd("FCALL", "sserelay_publish", "1", "user:np", "after")
            return s.wait(lambda: "after" in data(s), 0.2)
        except harness.RedisError:
            return False    # the library is not loaded again yet
    t.ok(harness.wait_for(published, 30, 0.05),
         "Redis restarted empty: the daemon loads its library again and "
         "the stream gets the next message")
    t.eq(reasons(s), ["epoch-changed"],
         "the open stream is told that Redis lost the history: reset "
         "epoch-changed, once")
    ev = [e.event or "message" for e in s.events
          if e.event in (None, "reset")]
    t.eq(ev, ["message", "reset", "message"], "before the next message")
    t.ok(not s.eof, "the stream stayed open")
    s.close()
    c.close()
    d.stop()


def memory(r):
    d = t.daemon(r, extra=["--history", "memory", "--heartbeat", "0.5"],
                 name="memory")
    s = d.stream("/events?user=mem")
    t.ok(s.wait_opened(10), "--history memory: a stream")
    c = r.client()
    c.publish("user:mem", "before")
    t.ok(s.wait(lambda: data(s) == ["before"], 10), "its message arrives")
    c.close()
    r.kill()
    r.start()
    c = r.client()
    t.ok(harness.wait_for(lambda: c.publish("user:mem", "after") == 1 and
                          s.wait(lambda: "after" in data(s), 0.2), 30, 0.05),
         "Redis restarted: the next message arrives")
    t.eq(reasons(s), ["redis-outage"],
         "--history memory: reset redis-outage (pub/sub kept nothing)")
    t.ok(not s.eof, "the stream stayed open")
    s.close()
    c.close()
    d.stop()


def main():
    r = t.redis()
    t.parts(r, [nopersist, memory, lambda _: sentinel(),
                lambda _: cluster()])


t.run(main)
