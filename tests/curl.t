#!/usr/bin/env python3
# A real `curl -N` on one stream receives user and upload events with the
# JSON envelope, in order, with increasing ids, and nothing for other users.
import harness

t = harness.Test(require=("redis-server", "curl"))


def main():
    r = t.redis()
    d = t.daemon(r)
    url = d.url("/events?user=alice&upload=u7")
    c = harness.CurlStream(t, url)
    t.ok(c.wait_opened(10), "curl -N receives the opening block",
         "curl stderr: %s" % c.stderr())
    with c.lock:
        raw = bytes(c.sse.raw)
    t.eq(raw[:len(b"retry: 3000\n: sserelay\n\n")],
         b"retry: 3000\n: sserelay\n\n",
         "stream opens with 'retry: 3000' and a comment")

    h = c.headers()
    t.ok(h is not None, "curl -D wrote the response headers")
    if h is not None:
        t.eq(h.status, 200, "status 200")
        ct = h.header("content-type", "")
        t.ok(ct.split(";")[0].strip() == "text/event-stream"
             and (";" not in ct or "charset=utf-8" in ct.lower()),
             "Content-Type is text/event-stream (got %r)" % ct)
        t.eq(h.header("cache-control"), "no-cache", "Cache-Control: no-cache")
        t.eq(h.header("x-accel-buffering"), "no", "X-Accel-Buffering: no")
        t.eq(h.header("transfer-encoding", "").lower(), "chunked",
             "Transfer-Encoding: chunked")
        t.ok(h.header("content-length") is None, "no Content-Length")

    pub = r.client()
    t.eq(pub.publish("user:alice", '{"pct":40}'), 1,
         "PUBLISH user:alice reaches the daemon's subscription")
    pub.publish("upload:u7", "hello upload")
    pub.publish("user:bob", "not for alice")
    pub.publish("upload:u8", "not for this stream either")
    pub.publish("user:alice", "last one")
    got = c.wait(lambda: len(c.sse.events) >= 3, 10)
    t.ok(got, "three events arrive", "got %r" % c.sse.events)
    # A little longer, to see that nothing else shows up.
    c.wait(lambda: len(c.sse.events) > 3, 0.3)
    with c.lock:
        evs = list(c.sse.events)
    datas = []
    for e in evs:
        try:
            datas.append(e.json())
        except ValueError:
            datas.append(("not JSON", e.data))
    t.eq(datas, [
        {"channel": "user:alice", "data": {"pct": 40}},
        {"channel": "upload:u7", "data": "hello upload"},
        {"channel": "user:alice", "data": "last one"},
    ], "events carry the JSON envelope; user:bob and upload:u8 do not arrive")
    t.ok(all(len(e.data_lines) == 1 for e in evs),
         "each event has exactly one data line")
    t.ok(all(e.event is None for e in evs), "no event: field")
    ids = [harness.parse_id(e.id) for e in evs]
    t.ok(all(ids), "every id has the <8 hex>-<seq> form: %r"
         % [e.id for e in evs])
    if all(ids):
        t.eq(len({i[0] for i in ids}), 1, "one epoch for the daemon run")
        seqs = [i[1] for i in ids]
        t.ok(all(a < b for a, b in zip(seqs, seqs[1:])),
             "ids increase along the stream: %r" % seqs)

    # curl -sI: HEAD with the same headers and no body.
    import subprocess
    p = subprocess.run(["curl", "-sS", "-I", "--max-time", "5", url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t.eq(p.returncode, 0, "curl -sI exits 0")
    head = p.stdout.decode("latin-1")
    t.ok(head.startswith("HTTP/1.1 200"), "curl -sI: HTTP/1.1 200",
         head)
    t.ok("text/event-stream" in head.lower(),
         "curl -sI: Content-Type text/event-stream", head)

    t.ok(c.proc.poll() is None, "curl -N is still streaming")
    c.kill()
    t.eq(c.stderr().strip(), "", "curl printed no error")
    # The daemon frees the stream once it notices (next write); not asserted
    # here, see churn.t.


t.run(main)
