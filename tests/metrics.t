#!/usr/bin/env python3
# GET /metrics (issue 7), read with a real Prometheus text-format parser
# (prometheus_client.parser from Debian's python3-prometheus-client):
# every metric of the contract is there with its type, and the counters
# move as the daemon works: streams opened and open, events delivered,
# bytes written, messages from Redis, the delivery-time histogram
# (cumulative buckets, +Inf = _count), heartbeats, resumes and resets,
# slow closes, Redis down/up and reconnects, history size, auth refusals;
# --metrics-listen moves /metrics and /healthz to a second listener.
import re
import signal
import harness
from harness import message_events

# python3-prometheus-client, maybe under /usr/bin/python3 (system_module)
_parser = harness.system_module("prometheus_client.parser")
text_string_to_metric_families = (_parser.text_string_to_metric_families
                                  if _parser else None)

t = harness.Test()
if text_string_to_metric_families is None:
    why = ("python module prometheus_client not found (Debian: apt-get "
           "install python3-prometheus-client)")
    t.skip_all_unless_required(why)

P = "sserelay_"
GAUGES = ["streams_open", "redis_up", "history_messages", "history_bytes"]
COUNTERS = ["streams_opened_total", "events_delivered_total",
            "bytes_written_total", "heartbeats_total", "slow_closes_total",
            "resumes_total", "resume_events_total", "resets_total",
            "redis_reconnects_total", "redis_messages_total",
            "auth_refusals_total", "limit_refusals_total"]
HISTOGRAMS = ["delivery_seconds"]
TYPE_RE = re.compile(r"^# TYPE (\S+) (\S+)\s*$", re.M)


class Scrape:
    """One GET /metrics parsed by prometheus_client."""

    def __init__(self, port, path="/metrics"):
        self.resp = harness.http_request(port, "GET", path)
        self.text = self.resp.body.decode("utf-8")
        self.error = None
        self.families = {}
        self.samples = {}
        try:
            for fam in text_string_to_metric_families(self.text):
                self.families[fam.name] = fam
                for s in fam.samples:
                    key = (s.name, tuple(sorted(s.labels.items())))
                    self.samples[key] = s.value
        except Exception as e:   # the parser's ValueError and friends
            self.error = "%s: %s" % (type(e).__name__, e)
        self.declared = {}
        for name, typ in TYPE_RE.findall(self.text):
            self.declared.setdefault(name, []).append(typ)

    def v(self, name, **labels):
        return self.samples.get((P + name, tuple(sorted(labels.items()))))

    def n(self, name, **labels):
        x = self.v(name, **labels)
        return 0.0 if x is None else x

    def family(self, name):
        """The parser's family: counters lose their _total suffix."""
        if name.endswith("_total"):
            return self.families.get(P + name[:-6]) or \
                self.families.get(P + name)
        return self.families.get(P + name)

    def buckets(self, name):
        out = []
        for (sname, labels), val in self.samples.items():
            if sname == P + name + "_bucket":
                le = dict(labels).get("le")
                out.append((float(le), val))
        return sorted(out)


def scrape(d, path="/metrics"):
    return Scrape(d.port, path)


def wait_metric(d, pred, timeout=5):
    """Poll /metrics until pred(scrape) is true; returns the last scrape."""
    last = [None]

    def once():
        last[0] = scrape(d)
        return pred(last[0])
    harness.wait_for(once, timeout, 0.05)
    return last[0]


def check_format(s, label):
    t.eq(s.resp.status, 200, "%s: GET /metrics -> 200" % label)
    ct = s.resp.header("content-type", "")
    t.ok(ct.replace(" ", "").lower().startswith("text/plain;version=0.0.4"),
         "%s: Content-Type text/plain; version=0.0.4 (got %r)" % (label, ct))
    t.ok(s.error is None and s.families, "%s: prometheus_client parses the "
         "whole body (%d families)" % (label, len(s.families)),
         "%s\n%s" % (s.error, s.text[:2000]))
    dup = sorted(k for k, v in s.declared.items() if len(v) > 1)
    t.eq(dup, [], "%s: no metric has two TYPE lines" % label)
    alien = sorted(k for k in s.declared if not k.startswith(P))
    t.eq(alien, [], "%s: every metric is named sserelay_*" % label)


def check_types(s):
    for names, typ in ((GAUGES, "gauge"), (COUNTERS, "counter"),
                       (HISTOGRAMS, "histogram")):
        for name in names:
            fam = s.family(name)
            decl = s.declared.get(P + name) or \
                s.declared.get(P + name[:-6] if name.endswith("_total")
                               else None)
            t.ok(fam is not None and fam.type == typ and decl == [typ],
                 "%s%s is a %s" % (P, name, typ),
                 "parser: %r, TYPE line: %r" % (fam and fam.type, decl))
    for name in ("streams_open", "redis_up", "history_messages",
                 "history_bytes", "streams_opened_total",
                 "events_delivered_total", "bytes_written_total",
                 "heartbeats_total", "slow_closes_total", "resumes_total",
                 "resume_events_total", "redis_reconnects_total",
                 "redis_messages_total", "delivery_seconds_count",
                 "delivery_seconds_sum"):
        t.ok(s.v(name) is not None, "%s%s has an unlabelled sample from the "
             "start" % (P, name))
    t.ok(s.buckets("delivery_seconds") and
         s.buckets("delivery_seconds")[-1][0] == float("inf"),
         "delivery_seconds has buckets ending with le=\"+Inf\"",
         repr(s.buckets("delivery_seconds")))


def check_histogram(s, label):
    b = s.buckets("delivery_seconds")
    vals = [v for _, v in b]
    t.ok(b and all(vals[i] <= vals[i + 1] for i in range(len(vals) - 1)),
         "%s: delivery_seconds buckets are cumulative (non-decreasing in le)"
         % label, repr(b))
    t.ok(b and b[-1][0] == float("inf") and
         b[-1][1] == s.n("delivery_seconds_count"),
         "%s: bucket le=\"+Inf\" equals delivery_seconds_count" % label,
         "buckets %r count %r" % (b[-3:], s.v("delivery_seconds_count")))
    c, sm = s.n("delivery_seconds_count"), s.n("delivery_seconds_sum")
    t.ok(sm >= 0 and (c == 0 or sm / c < 5),
         "%s: delivery_seconds_sum is plausible (%g s over %g)" %
         (label, sm, c))


def pings(streams):
    return sum(len(x.sse.pings()) for x in streams)


# --------------------------------------------------------------------------

def main_daemon(r):
    d = t.daemon(r, extra=["--heartbeat", "0.2", "--retry", "1000",
                           "--history-size", "100"], name="metrics")
    s0 = scrape(d)
    check_format(s0, "idle")
    check_types(s0)
    check_histogram(s0, "idle")
    t.eq(s0.v("streams_open"), 0.0, "idle: streams_open 0")
    t.eq(s0.v("redis_up"), 1.0, "idle: redis_up 1")

    # ---- 3 streams
    streams = harness.open_streams(d.port, ["/events?user=m%d" % i
                                            for i in range(3)])
    t.ok(all(x.opened and not x.eof for x in streams), "3 streams opened")
    s1 = wait_metric(d, lambda s: s.n("streams_open") >= 3)
    t.eq(s1.v("streams_open"), 3.0, "3 streams: streams_open 3")
    t.eq(s1.n("streams_opened_total") - s0.n("streams_opened_total"), 3.0,
         "3 streams: streams_opened_total +3")
    t.eq(d.healthz()[1].get("streams"), 3, "/healthz agrees: 3 streams")

    # ---- 10 messages
    pub = r.client()
    sent = [pub.publish("user:m%d" % (i % 3), '{"n":%d,"pad":"%s"}'
                        % (i, "x" * 50)) for i in range(10)]
    t.eq(sent, [1] * 10, "10 PUBLISHes each reach one stream")
    harness.pump(streams, lambda: sum(len(message_events(x))
                                      for x in streams) >= 10, 10)
    got = [len(message_events(x)) for x in streams]
    t.eq(got, [4, 3, 3], "the streams received 4 + 3 + 3 events")
    s2 = wait_metric(d, lambda s: s.n("events_delivered_total") -
                     s1.n("events_delivered_total") >= 10 and
                     s.n("delivery_seconds_count") -
                     s1.n("delivery_seconds_count") >= 10)
    t.eq(s2.n("events_delivered_total") - s1.n("events_delivered_total"),
         10.0, "10 events delivered: events_delivered_total +10")
    t.eq(s2.n("redis_messages_total") - s1.n("redis_messages_total"), 10.0,
         "redis_messages_total +10")
    t.eq(s2.n("delivery_seconds_count") - s1.n("delivery_seconds_count"),
         10.0, "delivery_seconds_count +10 (one per event delivered)")
    t.ok(s2.n("delivery_seconds_sum") > s1.n("delivery_seconds_sum"),
         "delivery_seconds_sum grows")
    ev_bytes = sum(len(b"\n".join(e.lines)) + 2 for x in streams
                   for e in message_events(x))
    dbytes = s2.n("bytes_written_total") - s1.n("bytes_written_total")
    t.ok(dbytes >= ev_bytes, "bytes_written_total grew by at least the "
         "events' bytes (%d >= %d)" % (dbytes, ev_bytes))
    check_histogram(s2, "after 10 events")
    t.eq(s2.v("history_messages"), 10.0, "history_messages 10 (10 messages "
         "kept for resume)")
    t.ok(s2.n("history_bytes") >= 10 * 50, "history_bytes counts them (%g)"
         % s2.n("history_bytes"))
    t.eq(s2.n("redis_messages_total"), float(d.healthz()[1].get(
        "redis_messages", -1)), "/healthz redis_messages agrees")

    # ---- heartbeats (--heartbeat 0.2)
    h0 = scrape(d)
    p0 = pings(streams)
    harness.pump(streams, lambda: False, 1.2)
    h1 = scrape(d)
    dh = h1.n("heartbeats_total") - h0.n("heartbeats_total")
    t.ok(dh >= 3, "heartbeats_total moves with --heartbeat 0.2 (+%g in "
         "1.2 s; the 3 clients read %d pings)" % (dh, pings(streams) - p0))
    t.eq(h1.n("events_delivered_total"), s2.n("events_delivered_total"),
         "heartbeats are not counted as events delivered")

    # ---- resume and reset
    first = message_events(streams[1])[0].id
    rs = d.resume("/events?user=m1", first)
    rs.wait(lambda: len(rs.events) >= 2, 5)
    t.eq(len(message_events(rs)), 2, "a resume from m1's first event "
         "replays the other 2")
    # the writer counts an event delivered once its write returned, and
    # adds its counts to the daemon's after the round: a scrape may come
    # between the client's read and that (a loaded box does it)
    s3 = wait_metric(d, lambda s: s.n("resumes_total") > h1.n(
        "resumes_total") and s.n("events_delivered_total") - h1.n(
        "events_delivered_total") >= 2)
    t.eq(s3.n("resumes_total") - h1.n("resumes_total"), 1.0,
         "resumes_total +1")
    t.eq(s3.n("resume_events_total") - h1.n("resume_events_total"), 2.0,
         "resume_events_total +2")
    t.eq(s3.n("events_delivered_total") - h1.n("events_delivered_total"),
         2.0, "the replayed events are delivered events too (+2)")
    bad = d.resume("/events?user=m1", "not-an-id")
    bad.wait(lambda: len(bad.events) >= 1, 5)
    t.ok(bad.events and bad.events[0].event == "reset",
         "a malformed Last-Event-ID gets a reset")
    s4 = wait_metric(d, lambda s: s.n("resets_total", reason="malformed-id")
                     > s3.n("resets_total", reason="malformed-id"))
    t.eq(s4.n("resets_total", reason="malformed-id") -
         s3.n("resets_total", reason="malformed-id"), 1.0,
         "resets_total{reason=\"malformed-id\"} +1")
    rs.close()
    bad.close()

    # ---- streams close
    for x in streams[1:]:
        x.close()
    s5 = wait_metric(d, lambda s: s.n("streams_open") == 1)
    t.eq(s5.v("streams_open"), 1.0, "2 of them and the 2 resumes closed: "
         "streams_open 1 (found on the next heartbeat)")
    t.eq(s5.n("streams_opened_total") - s0.n("streams_opened_total"), 5.0,
         "streams_opened_total counts all 5 ever opened")

    # ---- Redis outage
    keep = streams[0]
    nev = len(keep.events)
    r.kill(signal.SIGKILL)
    s6 = wait_metric(d, lambda s: s.v("redis_up") == 0.0, 10)
    t.eq(s6.v("redis_up"), 0.0, "Redis killed: redis_up 0")
    t.eq(s6.resp.status, 200, "/metrics still answers 200 while Redis is "
         "down")
    r.start()
    s7 = wait_metric(d, lambda s: s.v("redis_up") == 1.0, 15)
    t.eq(s7.v("redis_up"), 1.0, "Redis back: redis_up 1")
    # counted when the connection is lost or when it is made again: +1
    # across the outage either way
    t.eq(s7.n("redis_reconnects_total") - s5.n("redis_reconnects_total"),
         1.0, "redis_reconnects_total +1 across the outage")
    out = s7.n("resets_total", reason="redis-outage") - \
        s6.n("resets_total", reason="redis-outage")
    t.ok(out >= 1, "resets_total{reason=\"redis-outage\"} moves (+%g)" % out)
    keep.wait(lambda: any(e.event == "reset" for e in keep.events[nev:]), 5)
    t.ok(any(e.event == "reset" for e in keep.events[nev:]),
         "the open stream got its reset event")
    keep.close()
    return d


def slow_daemon(r):
    d = t.daemon(r, extra=["--ring-size", "8", "--history-size", "0",
                           "--retry", "1000"], name="slow")
    s = d.stream("/events?user=slow", rcvbuf=4096)
    t.ok(harness.wait_for(lambda: d.healthz()[1].get("streams", 0) >= 1, 5),
         "slow: a client that will not read is connected")
    base = scrape(d).n("slow_closes_total")
    pub = r.client()
    pad = "s" * 65536
    n = 0
    while n < 400:
        pub.publish("user:slow", '{"n":%d,"p":"%s"}' % (n, pad))
        n += 1
        if n % 4 == 0 and d.healthz()[1].get("slow_closes", 0) >= 1:
            break
    sc = wait_metric(d, lambda x: x.n("slow_closes_total") > base, 5)
    t.eq(sc.n("slow_closes_total") - base, 1.0, "a client that does not read "
         "is closed as slow: slow_closes_total +1 (after %d x 64 KiB)" % n)
    t.eq(sc.n("slow_closes_total"), float(d.healthz()[1].get("slow_closes")),
         "/healthz slow_closes agrees")
    s.close()


def auth_daemon(r):
    key = t.path("hs.key")
    with open(key, "w") as f:
        f.write("metrics-test-secret\n")
    d = t.daemon(r, extra=["--auth", "jwt", "--jwt-key-file", key],
                 name="auth")
    a0 = scrape(d)
    x = harness.http_request(d.port, "GET", "/events?user=a")
    t.eq(x.status, 401, "--auth jwt: no token -> 401")
    y = harness.http_request(d.port, "GET", "/events?user=a",
                             headers={"Authorization": "Bearer abc.def.ghi"})
    t.eq(y.status, 401, "--auth jwt: a garbage token -> 401")
    a1 = wait_metric(d, lambda s: s.n("auth_refusals_total",
                                      reason="invalid") >= 1)
    check_format(a1, "auth")
    t.eq(a1.n("auth_refusals_total", reason="missing") -
         a0.n("auth_refusals_total", reason="missing"), 1.0,
         "auth_refusals_total{reason=\"missing\"} +1")
    t.eq(a1.n("auth_refusals_total", reason="invalid") -
         a0.n("auth_refusals_total", reason="invalid"), 1.0,
         "auth_refusals_total{reason=\"invalid\"} +1")
    t.eq(a1.n("streams_opened_total"), 0.0, "refused requests are not "
         "streams opened")


def metrics_listen(r):
    mport = harness.free_port()
    d = t.daemon(r, extra=["--metrics-listen", "127.0.0.1:%d" % mport],
                 wait_redis=False, name="metrics-listen")

    def up():
        try:
            x = harness.http_request(mport, "GET", "/healthz", timeout=2)
            return x.status == 200 and b'"up"' in x.body
        except OSError:
            return False
    t.ok(harness.wait_for(up, 15, 0.05), "--metrics-listen: /healthz "
         "answers 200 (redis up) on the metrics port")
    m = Scrape(mport)
    check_format(m, "metrics port")
    t.eq(m.v("redis_up"), 1.0, "metrics port: redis_up 1")
    for path in ("/metrics", "/healthz"):
        x = harness.http_request(d.port, "GET", path)
        t.eq(x.status, 404, "--metrics-listen: the main port answers 404 "
             "for %s" % path)
    x = harness.http_request(mport, "GET", "/events?user=a")
    t.eq(x.status, 404, "the metrics port serves no streams (404)")
    s = d.stream("/events?user=ml")
    t.ok(s.wait_opened(5) and s.status == 200, "the main port serves "
         "streams")
    ok = harness.wait_for(lambda: Scrape(mport).v("streams_open") == 1.0, 5)
    t.ok(ok, "metrics port: streams_open 1")
    s.close()


def main():
    t.parts(t.redis(), (main_daemon, slow_daemon, auth_daemon,
                        metrics_listen))


t.run(main)
