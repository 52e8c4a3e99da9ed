#!/usr/bin/env python3
# 200 concurrent streams (various users and shared uploads) x 50 messages on
# each of their channels: no message lost, duplicated or out of order.
import json

import harness

t = harness.Test()

NSTREAMS = 200
NMSG = 50
NUPLOADS = 10


def main():
    r = t.redis()
    d = t.daemon(r)
    # stream i: user f<i>; every even stream also follows upload g<i%10>
    # (so each upload channel has 10 subscribers), every 4th a second one.
    subs = []
    for i in range(NSTREAMS):
        chans = ["user:f%d" % i]
        path = "/events?user=f%d" % i
        if i % 2 == 0:
            chans.append("upload:g%d" % (i % NUPLOADS))
            path += "&upload=g%d" % (i % NUPLOADS)
        if i % 4 == 0:
            chans.append("upload:h%d" % (i % 3))
            path += "&upload=h%d" % (i % 3)
        subs.append((path, chans))
    streams = harness.open_streams(d.port, [p for p, _ in subs], timeout=30)
    opened = sum(1 for s in streams if s.opened)
    t.eq(opened, NSTREAMS, "all %d streams opened" % NSTREAMS)
    bad = [s.status for s in streams if s.status != 200]
    t.eq(bad, [], "all streams answered 200")
    st, js = d.healthz()
    t.eq(js.get("streams"), NSTREAMS, "/healthz counts %d streams" % NSTREAMS)

    # Publish round-robin over all channels, each payload numbered globally.
    channels = sorted({c for _, cs in subs for c in cs})
    items = []
    expected_on = {c: [] for c in channels}
    n = 0
    for k in range(NMSG):
        for c in channels:
            items.append((c, json.dumps({"n": n, "c": c, "k": k})))
            expected_on[c].append(n)
            n += 1
    pub = r.client()
    counts = pub.publish_many(items)
    t.ok(all(x == 1 for x in counts),
         "all %d PUBLISHes reached the daemon" % len(items))

    expected = []
    for _, cs in subs:
        exp = sorted(x for c in cs for x in expected_on[c])
        expected.append(exp)
    total = sum(len(e) for e in expected)
    t.diag("%d channels, %d publishes, %d deliveries expected"
           % (len(channels), len(items), total))
    harness.pump(streams, lambda: sum(len(s.events) for s in streams) >= total,
                 timeout=45)
    # Duplicates would come before a marker published after everything:
    # one on each stream's user channel.
    markers = harness.settle(streams, pub.publish,
                             {id(s): cs[0] for s, (_, cs) in zip(streams,
                                                                 subs)}, 30)
    t.ok(all(markers), "a marker published after the messages reaches "
         "every stream (%d of %d)" % (sum(map(bool, markers)),
                                      len(streams)))

    lost = dup = disorder = badenv = badid = 0
    first_bad = []
    for i, (s, exp) in enumerate(zip(streams, expected)):
        got = []
        for e in s.events:
            try:
                env = e.json()
                got.append(env["data"]["n"])
                if env["channel"] != env["data"]["c"]:
                    badenv += 1
            except (ValueError, KeyError, TypeError):
                badenv += 1
        if got != exp:
            if len(set(got)) != len(got):
                dup += 1
            if set(exp) - set(got):
                lost += 1
            if got != sorted(got):
                disorder += 1
            if len(first_bad) < 3:
                first_bad.append("stream %d (%s): got %d events, expected %d;"
                                 " first difference at %r" % (
                                     i, subs[i][0], len(got), len(exp),
                                     next((j for j, (a, b) in
                                           enumerate(zip(got, exp)) if a != b),
                                          min(len(got), len(exp)))))
        ids = [harness.parse_id(e.id) for e in s.events]
        if not all(ids) or any(a[1] >= b[1] for a, b in zip(ids, ids[1:])):
            badid += 1
    t.eq(lost, 0, "no stream lost a message", )
    t.eq(dup, 0, "no stream got a duplicate")
    t.eq(disorder, 0, "no stream got messages out of order")
    if first_bad:
        t.diag("\n".join(first_bad))
    t.eq(badenv, 0, "every event has the JSON envelope with the right channel")
    t.eq(badid, 0, "ids increase along every stream")
    t.eq([i for i, s in enumerate(streams) if s.eof], [],
         "no stream was closed by the daemon")
    for s in streams:
        s.close()


t.run(main)
