#!/usr/bin/env python3
# Self-test of tests/lib/topology.py, the real topologies that the
# scale-out tests (issue 12) start: a Redis Cluster of 3 primaries and 3
# replicas, Redis Sentinel, and HAProxy in front of several HTTP backends.
# It checks the helpers against real processes and records what Redis
# 7.0 really does during a failover and a slot move (as TAP diagnostics):
#   - the cluster comes up with every slot covered; keyslot() agrees with
#     CLUSTER KEYSLOT on thousands of random and crafted names;
#   - SPUBLISH on channels of every primary reaches an SSUBSCRIBEr;
#     classic PUBLISH is broadcast to a SUBSCRIBEr on any node;
#   - a primary killed: a replica takes over its slots, and SPUBLISH and
#     the ClusterClient work again; the old primary rejoins as a replica;
#   - a slot moved: the SSUBSCRIBEr on the old node gets a sunsubscribe
#     push, the client follows -ASK during the move and -MOVED after it;
#   - Sentinel (with passwords): a killed master is replaced by the
#     replica, which answers ROLE master; the old one comes back a replica;
#   - HAProxy (a generated config and examples/haproxy.cfg): consecutive
#     connections go to every backend in turn, streams pass without
#     buffering, and (the example) an unhealthy backend is taken out.
# None of it needs the sserelay daemon (harness.Test needs SSERELAY set).
import os
import random
import time
import harness
import topology
from topology import keyslot

t = harness.Test(require=("redis-server", "redis-cli"))

SRCDIR = os.environ.get("TESTS_SRCDIR") or \
    os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(SRCDIR, "..", "examples", "haproxy.cfg")

seed = int(os.environ.get("SSERELAY_TEST_SEED")
           or int.from_bytes(os.urandom(4), "big"))
rnd = random.Random(seed)


def main():
    t.diag("seed %d (SSERELAY_TEST_SEED=%d repeats it)" % (seed, seed))
    keyslot_offline()
    cluster()
    sentinel()
    haproxy()


# --------------------------------------------------------------------------
# keyslot

CRAFTED = [
    b"", b"foo", b"123456789", b"{", b"}", b"{}", b"}{", b"{{", b"}}",
    b"{}{a}", b"{a}{b}", b"a{b}c", b"a{{b}}", b"{{}}", b"a{b", b"a}b{c}",
    b"{user1000}.following", b"{user1000}.followers", b"foo{}{bar}",
    b"foo{{bar}}zap", b"foo{bar}{zap}", b"{}}", b"{{}", b"{a", b"a}",
    b"\xff{\x00}", b"\x00", b"{\x00}", b"\x00{}", b"{ }", b"{\r\n}",
    b"user:alice", b"upload:u7", b"{upload:u7}", b"x{upload:u7}y",
    "caf\u00e9".encode(), b"\xe9", b"{" * 40 + b"}" * 40,
]


def random_names(n):
    out = []
    alphabet = b"{}ab:\x00\xff"
    for i in range(n):
        k = rnd.randrange(4)
        if k == 0:      # any bytes
            out.append(bytes(rnd.randrange(256)
                             for _ in range(rnd.randrange(24))))
        elif k == 1:    # mostly braces
            out.append(bytes(rnd.choice(alphabet)
                             for _ in range(rnd.randrange(12))))
        elif k == 2:    # a tag somewhere
            tag = bytes(rnd.randrange(256) for _ in range(rnd.randrange(6)))
            out.append(b"p%d{%s}s%d" % (i, tag, rnd.randrange(1000)))
        else:           # channel-like names
            out.append(("%s:%d" % (rnd.choice(["user", "upload", "u{7}"]),
                                   rnd.randrange(10 ** 6))).encode())
    return out


def keyslot_offline():
    # Known values: the CRC16/XMODEM check value of "123456789" is 0x31C3,
    # and the hash tag rules of the Redis Cluster specification.
    t.eq(topology.crc16(b"123456789"), 0x31C3, "keyslot: CRC16/XMODEM "
         "check value")
    t.eq(keyslot("foo{bar}zap"), keyslot("bar"), "keyslot: a hash tag")
    t.eq(keyslot("foo{}{bar}"), topology.crc16(b"foo{}{bar}") % 16384,
         "keyslot: an empty first tag hashes the whole name")
    t.eq(keyslot("foo{{bar}}zap"), keyslot("{bar"),
         "keyslot: the tag ends at the first } after the first {")


def keyslot_vs_redis(port):
    names = CRAFTED + random_names(3000)
    c = topology.Conn(port)
    got = c.pipeline([("CLUSTER", "KEYSLOT", n) for n in names])
    c.close()
    bad = [(n, g, keyslot(n)) for n, g in zip(names, got)
           if g != keyslot(n)]
    t.ok(not bad, "keyslot() == CLUSTER KEYSLOT for %d names (%d crafted)"
         % (len(names), len(CRAFTED)), repr(bad[:10]))


# --------------------------------------------------------------------------
# cluster

def cluster():
    t0 = time.monotonic()
    c = topology.Cluster(t, primaries=3, replicas=1)
    t.diag("cluster of 6 up in %.1f s" % (time.monotonic() - t0))
    prim, reps = c.primaries(), c.replicas()
    t.eq(len(prim), 3, "cluster: 3 primaries")
    t.eq(len(reps), 3, "cluster: 3 replicas")
    t.ok(all(len(c.replicas(of=p)) == 1 for p in prim),
         "cluster: one replica per primary", c.describe())
    table = c.slot_table()
    t.ok(None not in table and set(table) == set(prim),
         "cluster: all 16384 slots covered by the 3 primaries")
    t.ok(all(c.info(n.port).get("cluster_state") == "ok" for n in c.live()),
         "cluster: every node says cluster_state:ok")
    t.eq(sorted(topology._port_of(s) for s in c.seeds()), sorted(c.nodes),
         "cluster: seeds() names the 6 nodes")
    t.ok(all(c.node_for_slot(s) == table[s] for s in (0, 5460, 5461, 16383)),
         "cluster: node_for_slot agrees with CLUSTER SLOTS")
    keyslot_vs_redis(prim[0])

    cc = topology.ClusterClient(c.seeds())
    # SPUBLISH on channels of every primary, and a hash-tagged one
    chans = [c.channel_on(p, "sp") for p in prim] + ["{user:alice}.x"]
    sub = topology.ShardedSubscriber(cc, *chans)
    t.ok(all(sub.where[ch.encode()] == c.node_for(ch) for ch in chans),
         "cluster: each channel subscribed on the primary of its slot",
         repr(sub.where))
    got = []
    for ch in chans:
        pl = b"hello " + ch.encode()
        n = cc.spublish(ch, pl)
        got.append((ch, n, bool(sub.wait_message(ch, pl, 10))))
    t.ok(all(n == 1 and ok for _, n, ok in got),
         "cluster: SPUBLISH on channels of every primary reaches the "
         "SSUBSCRIBEr", repr(got))
    conn = c.client_for(chans[0])
    t.eq(conn.cmd("SPUBLISH", chans[0], "direct"), 1,
         "cluster: client_for() connects to the channel's primary (no MOVED)")
    t.ok(sub.wait_message(chans[0], "direct", 10),
         "cluster: ... and the SSUBSCRIBEr gets that message")
    err = None
    try:
        conn.cmd("SSUBSCRIBE", "{a}x", "{b}x")
    except harness.RedisError as e:
        err = str(e)
    t.ok(err and err.startswith("CROSSSLOT"),
         "cluster: one SSUBSCRIBE of channels of two slots -> CROSSSLOT",
         err)
    conn.close()

    # Classic PUBLISH goes over the cluster bus to every node: a plain
    # SUBSCRIBEr on a replica of another shard gets it.
    bch = "broadcast"
    other = [p for p in reps if p not in c.replicas(of=c.node_for(bch))][0]
    bsub = topology.Conn(other)
    bsub.send("SUBSCRIBE", bch)
    ack = bsub.poll_reply(10)
    cc.publish(bch, "to all")
    msg = bsub.poll_reply(10)
    t.ok(ack != topology.NOTHING and msg == [b"message", bch.encode(),
                                            b"to all"],
         "cluster: PUBLISH reaches a SUBSCRIBEr on a replica of another "
         "shard (broadcast)", repr((ack, msg)))
    bsub.close()

    failover(c, cc, sub, chans)
    slot_move(c, cc)
    cc.close()
    sub.close()


def failover(c, cc, sub, chans):
    prim = c.primaries()
    P, Q = prim[0], prim[1]
    chP, chQ = chans[0], chans[1]
    assert c.node_for(chP) == P and c.node_for(chQ) == Q
    reps_before = c.replicas(of=P)
    key = c.channel_on(P, "key")
    cc.cmd("SET", key, "before")
    # replication is asynchronous: the key must be on the replica before
    # the kill, or a loaded box loses it and the check below fails
    cc.cmd("WAIT", "1", "5000", key=key)
    conn = topology.Conn(P)
    t.ok(conn.cmd("WAIT", 1, 10000) >= 1,
         "failover: a key written on the primary reached its replica")
    conn.close()
    c.kill_primary(P)
    new = c.wait_failover(P, 60, probe=(c.channel_on(Q, "probe"), chQ))
    t.diag("failover of %d: %.2f s after SIGKILL, --cluster-node-timeout "
           "%d ms; timeline (s since the kill):" % (P, c.failover_seconds,
                                                   c.node_timeout))
    for when, what in c.events:
        t.diag("  %5.2f  %s" % (when, what))
    t.ok(new in reps_before, "failover: the replica %r of %d is the new "
         "primary (%r)" % (reps_before, P, new))
    t.eq(c.nodes[new].role(), "master", "failover: ROLE on it says master")
    t.ok(P not in c.primaries() and new in c.primaries(),
         "failover: primaries() lists it instead of the killed one")
    eof = sub.wait(lambda p: p.kind == "eof" and p.port == P, 10)
    t.ok(eof, "failover: the SSUBSCRIBEr on the killed primary sees its "
         "connection end")
    others = [p for p in sub.pushes if p.kind not in ("ssubscribe",
                                                      "smessage", "eof")]
    t.diag("pushes other than smessage/ssubscribe/eof during the failover: "
           "%r" % (others,))
    t.eq(sub.where.get(chP.encode()), None,
         "failover: the helper marks the channel as lost")
    sub.resubscribe()
    t.eq(sub.where.get(chP.encode()), new,
         "failover: resubscribe() subscribes again on the new primary")
    n = cc.spublish(chP, "after failover")
    t.ok(n == 1 and sub.wait_message(chP, "after failover", 10),
         "failover: SPUBLISH through the ClusterClient (stale map) reaches "
         "the SSUBSCRIBEr again", "receivers %r, client errors %r"
         % (n, cc.errors[-5:]))
    n = cc.spublish(chQ, "other shard")
    t.ok(n == 1 and sub.wait_message(chQ, "other shard", 10),
         "failover: the subscription on another shard kept working")
    t.eq(cc.cmd("GET", key), b"before",
         "failover: the key is there on the new primary")
    c.restart(P)
    t.eq(c.nodes[P].replica_of(), (new, "connected"),
         "restart: the old primary rejoins as a replica of the new one")
    t.ok(c.healthy(), "restart: the cluster is healthy with 6 nodes")


def slot_move(c, cc):
    ch = "{mv}chan"
    slot = keyslot(ch)
    src = c.node_for_slot(slot)
    dst = [p for p in c.primaries() if p != src][0]
    sub = topology.ShardedSubscriber(cc, ch)
    cc.cmd("SET", "{mv}a", "1")
    cc.cmd("SET", "{mv}b", "2")
    before = len(cc.redirects)

    # half-way: only {mv}a moved yet
    c.begin_move(slot, dst)
    c.migrate_keys(slot, dst, keys=[b"{mv}a"])
    t.eq(cc.cmd("GET", "{mv}a"), b"1",
         "slot move: a key already migrated is read through -ASK")
    t.ok(("ASK", slot, dst) in cc.redirects[before:],
         "slot move: ... the client followed ASK to the target",
         repr(cc.redirects[before:]))
    t.eq(cc.cmd("GET", "{mv}b"), b"2",
         "slot move: a key not migrated yet is read on the source")
    n = cc.spublish(ch, "during")
    p = sub.wait(lambda p: p.kind == "smessage", 10)
    t.ok(n == 1 and p and p.data == b"during" and p.port == src,
         "slot move: during the migration the source still serves "
         "SPUBLISH to its SSUBSCRIBErs", repr((n, p)))
    c.migrate_keys(slot, dst)
    c.finish_move(slot, dst)
    t.eq(c.node_for_slot(slot), dst, "slot move: the slot is on the target")

    p = sub.wait(lambda p: p.kind != "smessage", 10)
    t.ok(p and p.kind == "sunsubscribe" and p.channel == ch.encode()
         and p.port == src,
         "slot move: the SSUBSCRIBEr on the old node gets a sunsubscribe "
         "push for the channel", repr(p))
    t.diag("slot move: pushes to the SSUBSCRIBEr: %r" % (sub.pushes,))
    before = len(cc.redirects)
    cc.slots[slot] = src    # as a client that has not refreshed yet
    t.eq(cc.cmd("GET", "{mv}b"), b"2",
         "slot move: both keys moved with the slot")
    t.ok(("MOVED", slot, dst) in cc.redirects[before:],
         "slot move: the client followed -MOVED to the new owner",
         repr(cc.redirects[before:]))
    t.eq(cc.slots[slot], dst, "slot move: ... and updated its slot map")
    sub.resubscribe()
    t.eq(sub.where.get(ch.encode()), dst,
         "slot move: resubscribe() subscribes on the new owner")
    n = cc.spublish(ch, "after move")
    t.ok(n == 1 and sub.wait_message(ch, "after move", 10),
         "slot move: SPUBLISH reaches the SSUBSCRIBEr there")
    sub.close()

    t.eq(c.move_slot(slot, src), dst, "move_slot: moved the slot back")
    t.ok(c.node_for_slot(slot) == src and cc.cmd("GET", "{mv}a") == b"1"
         and cc.cmd("GET", "{mv}b") == b"2",
         "move_slot: the slot and its keys are on the old node again")
    t.ok(wait_healthy(c), "slot move: the cluster is healthy afterwards",
         c.describe())


def wait_healthy(c, timeout=30):
    return harness.wait_for(lambda: c.healthy(), timeout, 0.05)


# --------------------------------------------------------------------------
# sentinel

def sentinel():
    t0 = time.monotonic()
    s = topology.Sentinel(t, password="data-secret",
                          sentinel_password="sentinel-secret")
    t.diag("sentinel topology up in %.1f s (SENTINEL DEBUG periods %s)"
           % (time.monotonic() - t0, "set" if s.debug_ok else "refused"))
    old = "127.0.0.1:%d" % s.initial_master
    t.eq(s.master(), old, "sentinel: the three sentinels name the primary")
    t.eq(len(s.sentinel_addrs()), 3, "sentinel: three sentinel addresses")
    err = None
    try:
        topology.one_cmd(s.sentinels[0].port, "SENTINEL", "masters")
    except harness.RedisError as e:
        err = str(e)
    t.ok(err and err.startswith("NOAUTH"),
         "sentinel: a sentinel refuses a client without its password", err)
    m = s.node(old)
    m.cmd("SET", "k", "v")
    t.ok(m.cmd("WAIT", 1, 10000) >= 1, "sentinel: the write reached the "
         "replica")

    # What a client of the sentinels gets: +switch-master on pub/sub.
    watch = s.sentinels[0].conn(timeout=10)
    watch.send("SUBSCRIBE", "+switch-master")
    watch.poll_reply(10)

    killed = s.kill_master()
    t.eq(killed, old, "sentinel: kill_master() killed the primary")
    new = s.wait_failover(60)
    t.diag("sentinel failover: %.2f s from SIGKILL to a new master that "
           "answers ROLE master (down-after-milliseconds %d)"
           % (s.failover_seconds, s.down_after))
    t.ok(new != old, "sentinel: a new master (%s)" % new)
    t.eq(s.node(new).role(), "master", "sentinel: ROLE on it says master")
    t.eq(s.node(new).cmd("GET", "k"), b"v", "sentinel: the data is there")
    msg = watch.poll_reply(10)
    want = [b"message", b"+switch-master",
            ("%s %s %s" % (s.name, old.replace(":", " "),
                           new.replace(":", " "))).encode()]
    t.eq(msg, want, "sentinel: subscribers of +switch-master are told")
    watch.close()
    t1 = time.monotonic()
    back = s.restart_old_master()
    t.diag("sentinel: the restarted old master was a replica of the new one "
           "%.2f s after its start" % (time.monotonic() - t1))
    t.eq(back, old, "sentinel: restart_old_master() on the old address")
    t.eq(s.node(old).replica_of(), (topology._port_of(new), "connected"),
         "sentinel: it is now a replica of the new master")
    t.eq(s.master(), new, "sentinel: the master stays the new one")


# --------------------------------------------------------------------------
# haproxy

def haproxy():
    if not topology.find_haproxy():
        t.skip_unless_required("haproxy", "haproxy not found (Debian "
                               "package haproxy)")
        return
    backends = [topology.HTTPBackend(t, "b%d" % i) for i in range(3)]
    ports = [b.port for b in backends]
    h = topology.HAProxy(t, ports, mode="roundrobin")
    t.ok(True, "haproxy: the generated config (balance roundrobin) passes "
         "haproxy -c and starts")
    proxy_checks("roundrobin", h, backends)
    h.stop()

    # The same without "option http-no-delay", for the record: HAProxy
    # then sends with MSG_MORE and each lone event waits for the client's
    # delayed ACK (diagnostic only: a latency is no test on a busy box).
    cfg = topology.HAPROXY_TEMPLATE.replace("{balance}", "roundrobin") \
        .replace("\toption http-no-delay\n", "")
    h = topology.HAProxy(t, ports, config=cfg, check=False,
                         name="haproxy-delay")
    good, _, lat, s, _ = lockstep(h, {b.name: b for b in backends}, 6)
    s.close()
    t.ok(good, "haproxy without http-no-delay: the events arrive too")
    t.diag("without option http-no-delay: event latency %s" % ms(lat))
    h.stop()

    with open(EXAMPLE) as f:
        example = f.read()
    t.ok(any(l.split() == ["option", "http-no-delay"]
             for l in example.splitlines()),
         "haproxy: examples/haproxy.cfg has option http-no-delay")
    h = topology.HAProxy(t, ports, config=example, name="haproxy-example")
    t.ok(True, "haproxy: examples/haproxy.cfg (bind and servers changed) "
         "passes haproxy -c and starts")
    warn = [l for l in h.check_output.splitlines() if "WARNING" in l]
    t.ok(not warn, "haproxy: haproxy -c has no warning for the example",
         "\n".join(warn))
    inf = h.show_info()
    t.diag("example: haproxy %s derived maxconn %s from its fd limit %s"
           % (inf.get("Version"), inf.get("Maxconn"), inf.get("Ulimit-n")))
    proxy_checks("example", h, backends)
    unhealthy(h, backends)
    h.stop()


def proxy_checks(label, h, backends):
    by_name = {b.name: b for b in backends}
    t.ok(harness.wait_for(h.servers_up, 20, 0.05),
         "%s: every backend server is UP" % label, repr(h.server_stats()))
    names = []

    def idle():
        st = h.server_stats()
        return bool(st) and all(int(r.get("scur") or 0) == 0
                                for r in st.values())
    for _ in range(3 * len(backends)):
        # leastconn: the last connection must be closed in HAProxy's count
        # before the next is balanced (a loaded box can be late to close)
        harness.wait_for(idle, 10, 0.02)
        r = harness.http_request(h.port, "GET", "/whoami", timeout=10)
        names.append(r.body.decode().strip() if r.status == 200 else None)
    counts = {n: names.count(n) for n in by_name}
    t.ok(all(v == 3 for v in counts.values()),
         "%s: 9 consecutive connections, 3 to each backend" % label,
         repr(names))
    t.ok(all(names[i] != names[i + 1] for i in range(len(names) - 1)),
         "%s: ... each one to another backend than the last" % label,
         repr(names))
    seen = [hd for path, hd in by_name[names[-1]].headers_seen
            if path == "/whoami"]
    t.eq(seen[-1].get("x-forwarded-for") if seen else None, "127.0.0.1",
         "%s: the backend gets X-Forwarded-For" % label)

    # lockstep: the backend writes event i+1 only after the test has
    # received event i through haproxy; any buffering would stall it.
    good, steps, lat, s, b = lockstep(h, by_name, 5)
    t.ok(good and steps == [1, 2, 3, 4] and s.ended_cleanly and
         [e.data for e in s.events] == ["%s %d" % (b.name, i)
                                        for i in range(5)],
         "%s: each event passes through while the backend waits (no "
         "buffering), the chunked body ends cleanly" % label,
         "status %r events %r steps %r" % (s.status, s.events, steps))
    t.eq(s.resp.header("content-type") if s.resp else None,
         "text/event-stream", "%s: Content-Type passed on" % label)
    t.diag("%s: event latency through haproxy (release to receipt): %s"
           % (label, ms(lat)))
    s.close()

    # a 3 s stream, an event every 100 ms: stays open and ends cleanly;
    # when the first event arrives the backend has not written them all
    # (a proxy that buffered the response would deliver nothing before
    # the end; the lockstep stream above is the strict check)
    s = harness.SSEStream(h.port, "/stream?n=30&interval=0.1",
                          connect_timeout=10)
    s.wait_events(1, 10)
    b = by_name.get(s.events[0].data.split()[0]) if s.events else None
    written = b.streams[-1] if b else None
    s.wait(lambda: s.ended_cleanly, 60)
    times = [e.time for e in s.events]
    t.ok(written is not None and written < 30,
         "%s: a 3 s stream's first event arrives before the backend has "
         "written the last one (%r of 30 written)" % (label, written))
    t.ok([e.data for e in s.events] == ["%s %d" % (b.name, i)
                                        for i in range(30)]
         and s.ended_cleanly,
         "%s: all 30 events arrive in order, the stream ends cleanly"
         % label, "events %d ended %r" % (len(s.events), s.ended_cleanly))
    if len(times) > 1:
        t.diag("%s: first to last event %.2f s (written 2.9 s apart)"
               % (label, times[-1] - times[0]))
    s.close()

    # streams open at the same time land on different backends
    streams = [harness.SSEStream(h.port, "/stream?n=600&interval=0.1",
                                 connect_timeout=10) for _ in backends]
    harness.pump(streams, lambda: all(len(x.events) >= 1 for x in streams),
                 15)
    first = sorted(x.events[0].data.split()[0] if x.events else "-"
                   for x in streams)
    t.eq(first, sorted(by_name), "%s: 3 streams open at once, one on "
         "each backend" % label)
    for x in streams:
        x.close()


def lockstep(h, by_name, n):
    """A /lockstep stream through h: the test releases each next event
    once it has the previous one.  Returns (all arrived, the backend's
    count of written events at each release, release-to-receipt
    latencies, the stream, the backend)."""
    s = harness.SSEStream(h.port, "/lockstep?n=%d" % n, connect_timeout=10)
    good = s.wait_events(1, 10) and s.status == 200
    b = by_name.get(s.events[0].data.split()[0]) if s.events else None
    steps, lat = [], []
    for i in range(1, n):
        if not good or b is None:
            break
        steps.append(b.streams[-1])
        t0 = time.monotonic()
        b.release()
        good = s.wait_events(i + 1, 10)
        if good:
            lat.append(s.events[i].time - t0)
    s.wait(lambda: s.ended_cleanly, 10)
    return good, steps, lat, s, b


def ms(lat):
    if not lat:
        return "-"
    srt = sorted(lat)
    return "median %.0f ms, max %.0f ms (%d events)" % (
        1000 * srt[len(srt) // 2], 1000 * srt[-1], len(srt))


def unhealthy(h, backends):
    """The example's health check: /healthz 503 takes a backend out."""
    b = backends[0]
    b.healthy = False
    t.ok(harness.wait_for(lambda: h.server_stats().get("sserelay1", {})
                          .get("status", "").startswith("DOWN"), 30, 0.1),
         "example: a backend whose /healthz says 503 is marked DOWN",
         repr(h.server_stats()))
    names = [harness.http_request(h.port, "GET", "/whoami", timeout=10)
             .body.decode().strip() for _ in range(6)]
    t.ok(b.name not in names and set(names) == {x.name for x in backends[1:]},
         "example: new connections go to the healthy backends only",
         repr(names))
    b.healthy = True
    t.ok(harness.wait_for(h.servers_up, 30, 0.1),
         "example: back UP once /healthz says 200 again",
         repr(h.server_stats()))


t.run(main)
