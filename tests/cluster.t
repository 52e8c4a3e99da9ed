#!/usr/bin/env python3
# --redis-cluster: sharded pub/sub on a real Redis Cluster of 3 primaries
# and 3 replicas (tests/lib/topology.py).
#
# - streams on channels in every primary's slots receive SPUBLISHed events,
#   each channel SSUBSCRIBEd on its own primary only (PUBSUB SHARDNUMSUB);
# - a primary killed: its replica is promoted and delivery on its channels
#   resumes, the streams on them told with a reset (redis-outage); streams
#   on other primaries never notice;
# - a slot moved to another primary while a stream listens: the
#   subscription follows (Redis pushes sunsubscribe), the stream gets its
#   reset and then the next message;
# - --cluster-pubsub classic: one node, SUBSCRIBE, and a plain PUBLISH on
#   any node reaches the stream;
# - --history redis: the Function library loaded on every primary; FCALL
#   sserelay_publish on channels of every primary; a client moved from one
#   instance to another resumes exactly; after a primary's failover the
#   history is on its replica and resumes stay exact;
# - presence and revocation (issue 22): two instances with --presence
#   --presence-events; a user channel on every primary and an upload
#   channel: FCALL sserelay_presence (sent to the channel's primary)
#   answers who is there, through both instances, and a watcher gets the
#   join (SPUBLISHed in the channel's slot), each new stream its event:
#   presence read from its channel's primary; FCALL sserelay_revoke on a
#   channel of every primary answers 2 (both instances subscribed on
#   every primary), ends the streams with event: revoked, and new ones on
#   either instance are refused with 403;
# - bad input: a seed that is no cluster node is a startup error (exit 1);
#   unreachable seeds are logged and retried, never a crash.
import subprocess
import time

import harness
import topology

t = harness.Test(require=("redis-server", "redis-cli"))


def shardnumsub(port, *channels):
    r = topology.one_cmd(port, "PUBSUB", "SHARDNUMSUB", *channels)
    return {r[i].decode(): r[i + 1] for i in range(0, len(r), 2)}


def daemon(cl, name, extra=()):
    return t.daemon(None, extra=["--redis-cluster", ",".join(cl.seeds()),
                                 "--heartbeat", "0.5"] + list(extra),
                    name=name, no_redis_arg=True)


def reasons(s):
    return [e.json().get("reason") for e in harness.reset_events(s)]


def data(s):
    return [e.json().get("data") for e in harness.message_events(s)]


def sharded(cl):
    cc = topology.ClusterClient(cl.seeds())
    d = daemon(cl, "sharded")
    prims = cl.primaries()
    # a user channel on every primary, three streams each
    users = {}
    for p in prims:
        ch = cl.channel_on(p, "user:u")
        users[p] = ch[len("user:"):]
    streams = {p: [d.stream("/events?user=%s" % users[p]) for _ in range(3)]
               for p in prims}
    every = [s for ss in streams.values() for s in ss]
    harness.pump(every, lambda: all(s.opened for s in every), 20)
    t.ok(all(s.opened for s in every),
         "9 streams open, 3 on a channel of each of the 3 primaries")
    for p in prims:
        ch = "user:" + users[p]
        others = [q for q in prims if q != p]
        t.eq((shardnumsub(p, ch)[ch], [shardnumsub(q, ch)[ch]
                                       for q in others]), (1, [0, 0]),
             "%s is SSUBSCRIBEd on its own primary (%d) only" % (ch, p))
    for p in prims:
        t.eq(cc.spublish("user:" + users[p], "hello-%d" % p), 1,
             "SPUBLISH on %d's channel reaches the daemon: one "
             "subscription for its 3 streams" % p)
    harness.pump(every, lambda: all(data(s) for s in every), 10)
    t.ok(all(data(s) == ["hello-%d" % p] for p in prims for s in streams[p]),
         "every stream got exactly its channel's message")
    h = d.healthz()[1]
    t.eq((h["status"], h["redis_channels"]), ("ok", 3),
         "/healthz ok, 3 channels subscribed")
    return d, cc, prims, users, streams


def failover(cl, d, cc, prims, users, streams):
    victim = prims[0]
    t0 = time.monotonic()
    cl.kill_primary(victim)
    new = cl.wait_failover(victim, timeout=60)
    t.diag("cluster failover of %d -> %d took %.2f s"
           % (victim, new, cl.failover_seconds))
    ch = "user:" + users[victim]
    ss = streams[victim]
    got = {}

    def delivered():
        for s in ss:
            s.recv_once()
        n = cc.spublish(ch, "after")
        got["n"] = n
        return n == 1
    t.ok(harness.wait_for(delivered, 60, 0.1),
         "after the failover the daemon subscribes on the promoted replica "
         "(SPUBLISH there reaches it)", "last SPUBLISH count %r" % got)
    resumed = time.monotonic() - t0
    t.diag("delivery on the failed primary's channel resumed %.2f s after "
           "the kill (failover itself %.2f s)" % (resumed,
                                                   cl.failover_seconds))
    harness.pump(ss, lambda: all("after" in data(s) for s in ss), 10)
    t.ok(all("after" in data(s) for s in ss),
         "the streams on it get messages again")
    t.ok(all(reasons(s) == ["redis-outage"] for s in ss),
         "each was told once: reset redis-outage", repr([reasons(s)
                                                          for s in ss]))
    calm = [s for p in prims[1:] for s in streams[p]]
    for s in calm:
        s.recv_once()
    t.ok(all(reasons(s) == [] and not s.eof for s in calm),
         "streams on the other primaries got no reset and stayed open")
    return new


def move(cl, d, cc, prims, users, streams):
    p = prims[1]
    ch = "user:" + users[p]
    slot = topology.keyslot(ch)
    to = prims[2]
    ss = streams[p]
    cl.move_slot(slot, to)
    t.ok(harness.wait_for(lambda: shardnumsub(to, ch)[ch] == 1, 20, 0.05),
         "slot %d moved from %d to %d: the subscription follows" %
         (slot, p, to))
    t.eq(cc.spublish(ch, "moved"), 1, "SPUBLISH on the new primary reaches "
         "the daemon")
    harness.pump(ss, lambda: all("moved" in data(s) for s in ss), 10)
    t.ok(all("moved" in data(s) for s in ss), "and its streams")
    t.ok(all(reasons(s) == ["redis-outage"] for s in ss),
         "each told once that it may have missed messages during the move",
         repr([reasons(s) for s in ss]))


def classic(cl):
    d = daemon(cl, "classic", ["--cluster-pubsub", "classic"])
    s = d.stream("/events?user=cl&upload=cu")
    t.ok(s.wait_opened(15), "classic: a stream opens")
    # PUBLISH on any node goes over the cluster bus to all of them
    node = cl.primaries()[-1]
    t.ok(harness.wait_for(lambda: topology.one_cmd(node, "PUBLISH",
                                                   "user:cl", "x") >= 0 and
                          s.wait(lambda: data(s), 0.2), 15),
         "a plain PUBLISH on %d reaches the stream" % node)
    t.eq(data(s)[:1], ["x"], "the message")
    s.close()
    d.stop()


def durable(cl):
    cc = topology.ClusterClient(cl.seeds())
    a = daemon(cl, "dur-a", ["--history", "redis"])
    b = daemon(cl, "dur-b", ["--history", "redis"])
    prims = cl.primaries()
    t.ok(harness.wait_for(lambda: all(
        topology.try_cmd(p, "FCALL_RO", "sserelay_version", "0")
        for p in prims), 15, 0.05),
         "the function library is loaded on every primary")
    # one stream on a user channel and two uploads, spread over primaries,
    # the user channel on one that has a replica (for the failover below)
    victim = next(p for p in prims if cl.replicas(of=p))
    others = [p for p in prims if p != victim]
    user = cl.channel_on(victim, "user:du")[len("user:"):]
    ups = [cl.channel_on(p, "upload:dp")[len("upload:"):] for p in others]
    path = "/events?user=%s&upload=%s&upload=%s" % (user, ups[0], ups[1])
    chans = ["user:" + user] + ["upload:" + u for u in ups]
    s = a.stream(path)
    t.ok(s.wait_opened(15), "a durable stream on channels of 3 primaries")
    sent = []
    for k in range(30):
        ch = chans[k % 3]
        pos = cc.cmd("FCALL", "sserelay_publish", "1", ch, "c%d" % k, key=ch)
        sent.append(("c%d" % k, pos))
    t.ok(all(isinstance(p, bytes) and b":" in p for _, p in sent),
         "FCALL sserelay_publish answers each position, on its primary")
    s.wait(lambda: len(harness.message_events(s)) >= 30, 15)
    for ch in chans:
        # each channel in its order; channels of several primaries come
        # over several connections
        t.eq([e.json()["data"] for e in harness.message_events(s)
              if e.json()["channel"] == ch],
             ["c%d" % k for k in range(30) if chans[k % 3] == ch],
             "%s: its 10 arrive live, in order" % ch)
    last = [e.id for e in s.events if e.id][-1]
    s.close()
    for k in range(30, 45):
        ch = chans[k % 3]
        cc.cmd("FCALL", "sserelay_publish", "1", ch, "c%d" % k, key=ch)
    s2 = b.resume(path, last)
    s2.wait(lambda: len(harness.message_events(s2)) >= 15, 15)
    t.eq(sorted(e.json()["data"] for e in harness.message_events(s2)),
         sorted("c%d" % k for k in range(30, 45)),
         "moved to the other instance: exactly the 15 it missed")
    t.eq(harness.reset_events(s2), [], "with no reset")
    for ch in chans:
        got = [e.json()["data"] for e in harness.message_events(s2)
               if e.json()["channel"] == ch]
        t.eq(got, ["c%d" % k for k in range(30, 45) if chans[k % 3] == ch],
             "%s: in order" % ch)
    last = [e.id for e in s2.events if e.id][-1]
    s2.close()
    # a failover: the history is on the promoted replica
    cl.kill_primary(victim)
    new = cl.wait_failover(victim, timeout=60)
    t.diag("durable: failover of %d -> %d in %.2f s" %
           (victim, new, cl.failover_seconds))

    def fcall_after(k):
        try:
            ch = chans[k % 3]
            cc.cmd("FCALL", "sserelay_publish", "1", ch, "c%d" % k, key=ch)
            return True
        except harness.RedisError:
            return False
    for k in range(45, 51):
        t.ok(harness.wait_for(lambda: fcall_after(k), 30, 0.05),
             "FCALL on c%d after the failover" % k)
    t.ok(harness.wait_for(lambda: a.healthz()[0] == 200 and
                          b.healthz()[0] == 200, 30, 0.05),
         "both instances follow the failover (/healthz 200)")
    s3 = a.resume(path, last)
    s3.wait(lambda: len(harness.message_events(s3)) >= 6 or
            harness.reset_events(s3), 20)
    t.eq(sorted(e.json()["data"] for e in harness.message_events(s3)),
         sorted("c%d" % k for k in range(45, 51)),
         "after the failover a resume is exact: the replica had the history "
         "(the library and the keys are replicated)")
    t.eq([e.json().get("reason") for e in harness.reset_events(s3)], [],
         "no reset")
    s3.close()
    a.stop()
    b.stop()
    cc.close()


def bad_input(cl):
    r = t.redis()
    p = subprocess.run([t.sserelay, "-c", "/dev/null", "--listen",
                        "127.0.0.1:%d" % harness.free_port(),
                        "--redis-cluster", "127.0.0.1:%d" % r.port],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    err = p.stderr.decode(errors="replace")
    t.eq(p.returncode, 1, "a seed that is no cluster node: exit 1")
    t.ok("--redis-cluster" in err and "not a cluster node" in err,
         "naming the option and why", err)
    dead = "127.0.0.1:%d,127.0.0.1:%d" % (harness.free_port(),
                                         harness.free_port())
    d = t.daemon(None, extra=["--redis-cluster", dead], name="deadseeds",
                 no_redis_arg=True, wait_redis=False)
    t.ok(d.wait_log(r"warn redis: cannot read the cluster map from", 15),
         "unreachable seeds: a log line, and retries")
    t.eq(d.healthz()[0], 503, "/healthz 503 meanwhile")
    t.ok(d.running(), "the daemon keeps running")
    d.stop()


def control(cl):
    cc = topology.ClusterClient(cl.seeds())
    extra = ["--presence", "--presence-events", "--presence-ttl", "3",
             "--presence-grace", "1"]
    a = daemon(cl, "ctl-a", extra)
    b = daemon(cl, "ctl-b", extra)
    prims = cl.primaries()
    users = [cl.channel_on(p, "user:pr")[len("user:"):] for p in prims]
    up = cl.channel_on(prims[0], "upload:pw")[len("upload:"):]
    watcher = b.stream("/events?upload=%s" % up)
    t.ok(watcher.wait_opened(15), "a watcher on upload:%s" % up)
    ss = [(a if i % 2 == 0 else b).stream("/events?user=%s&upload=%s" %
                                          (u, up))
          for i, u in enumerate(users)]
    t.ok(all(s.wait_opened(15) for s in ss),
         "a stream on a user channel of each primary, on both instances")

    def presence(ch):
        r = cc.cmd("FCALL", "sserelay_presence", "1", ch, key=ch)
        return {r[i].decode(): int(r[i + 1]) for i in range(0, len(r), 2)}
    want = dict({u: 1 for u in users}, **{"": 1})
    t.ok(harness.wait_for(lambda: presence("upload:" + up) == want, 10,
                          0.05),
         "sserelay_presence on upload:%s: everyone, through both "
         "instances" % up, presence("upload:" + up))
    t.ok(all(presence("user:" + u) == {u: 1} for u in users),
         "sserelay_presence on each user channel, on its own primary")
    t.eq(cc.cmd("FCALL", "sserelay_presence_count", "1", "upload:" + up,
                key="upload:" + up), [len(users), len(users) + 1],
         "sserelay_presence_count: [people, streams]")
    watcher.wait(lambda: len([e for e in watcher.events
                              if e.event == "join"]) >= len(users), 10)
    t.eq(sorted(e.json()["user"] for e in watcher.events
                if e.event == "join"), sorted(users),
         "the watcher got a join for each, SPUBLISHed in the slot")

    def snapshots(st, n):
        st.wait(lambda: len([e for e in st.events
                             if e.event == "presence"]) >= n, 10)
        return sorted((e.json() for e in st.events
                       if e.event == "presence"),
                      key=lambda j: j["channel"])
    t.eq([snapshots(st, 2)[1] for st in ss],
         [{"channel": "user:" + u, "users": [u], "anonymous": 0}
          for u in users],
         "each stream was told who is on its user channel, read from "
         "that channel's primary (event: presence)")
    late = a.stream("/events?upload=%s" % up)
    t.eq(snapshots(late, 1),
         [{"channel": "upload:" + up, "users": sorted(users),
           "anonymous": 2}],
         "a new stream on upload:%s is told who is there, on every "
         "instance's streams" % up)
    late.close()

    got = [cc.cmd("FCALL", "sserelay_revoke", "1", "user:" + u, "60",
                  key="user:" + u) for u in users]
    t.eq(got, [2] * len(users),
         "sserelay_revoke on a channel of each primary answers 2")
    for s, u in zip(ss, users):
        s.wait(lambda: s.eof, 10)
        ev = [e for e in s.events if e.event == "revoked"]
        t.ok(len(ev) == 1 and ev[0].data == "user:" + u and s.eof,
             "user:%s: event: revoked, then the end" % u)
    for d in (a, b):
        for u in users:
            r = d.stream("/events?user=%s" % u)
            r.wait(lambda: r.status is not None, 10)
            t.eq(r.status, 403, "%s refuses user:%s" % (d.name, u))
            r.close()
    watcher.close()
    a.stop()
    b.stop()
    cc.close()


def main():
    cl = topology.Cluster(t)
    bad_input(cl)
    d, cc, prims, users, streams = sharded(cl)
    failover(cl, d, cc, prims, users, streams)
    move(cl, d, cc, prims, users, streams)
    for ss in streams.values():
        for s in ss:
            s.close()
    d.stop()
    classic(cl)
    cc.close()
    durable(cl)
    control(cl)


t.run(main)
