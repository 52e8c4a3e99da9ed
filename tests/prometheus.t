#!/usr/bin/env python3
# Prometheus's own tools against sserelay (issue 23), Debian's prometheus
# package (prometheus, promtool):
# - `promtool check metrics` prints nothing for /metrics: idle, after
#   streams, messages, a resume, a reset and a limit refusal,
#   with --auth jwt refusals, and with --history-size 0;
# - examples/prometheus/: `promtool check config` and `check rules` accept
#   the files, `promtool test rules` passes, every alert has a test, and
#   every sserelay_* name the rules use is one /metrics really has;
# - a real Prometheus with examples/prometheus/prometheus.yml (the target
#   and the intervals changed, nothing else) scrapes a daemon: the target is
#   up, sserelay_streams_open read back through the HTTP API is the number
#   of open streams, every rule of the example evaluates, and with Redis
#   killed SserelayRedisDown fires after its 30 s.
import json
import os
import re
import shutil
import signal
import subprocess
import urllib.parse

import harness

t = harness.Test()
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
if not PROMTOOL or not PROMETHEUS:
    t.skip_all_unless_required("promtool or prometheus not found (Debian: "
                               "apt-get install prometheus)")

EXAMPLES = os.path.join(os.environ.get("TESTS_SRCDIR", os.path.dirname(
    os.path.abspath(__file__))), "..", "examples", "prometheus")
CONFIG = os.path.join(EXAMPLES, "prometheus.yml")
RULES = os.path.join(EXAMPLES, "sserelay.rules.yml")
RULE_TESTS = os.path.join(EXAMPLES, "sserelay.rules.test.yml")
SCRAPED = []    # /metrics of a busy daemon, for the names the rules use


def promtool(*args, stdin=None):
    p = subprocess.run([PROMTOOL] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def check_metrics(port, label):
    """promtool check metrics on one GET /metrics: silent, exit 0."""
    r = harness.http_request(port, "GET", "/metrics")
    rc, out = promtool("check", "metrics", stdin=r.body)
    t.ok(r.status == 200 and rc == 0 and out == "",
         "%s: promtool check metrics prints nothing" % label,
         "exit %d:\n%s" % (rc, out))
    return r.body.decode()


def families(text):
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def wait_health(port, pred, timeout=15):
    last = [None]

    def once():
        try:
            last[0] = json.loads(harness.http_request(
                port, "GET", "/healthz", timeout=2).body)
        except (OSError, ValueError):
            return False
        return pred(last[0])
    harness.wait_for(once, timeout, 0.05)
    return last[0]


def metrics_daemons(r):
    """Every family populated, then promtool on each kind of daemon."""
    mport = harness.free_port()
    d = t.daemon(r, extra=["--metrics-listen", "127.0.0.1:%d" % mport,
                           "--max-streams", "5", "--heartbeat", "0.2"],
                 name="busy",
                 wait_redis=False)
    t.ok(wait_health(mport, lambda h: h.get("redis") == "up"),
         "busy: up on --metrics-listen")
    check_metrics(mport, "idle")
    streams = harness.open_streams(d.port, ["/events?user=p%d" % i
                                            for i in range(3)])
    pub = r.client()
    pub.publish_many([("user:p%d" % (i % 3), '{"n":%d}' % i)
                      for i in range(30)])
    harness.pump(streams, lambda: sum(len(harness.message_events(x))
                                      for x in streams) >= 30, 10)
    first = harness.message_events(streams[0])[0].id
    rs = d.resume("/events?user=p0", first)
    bad = d.resume("/events?user=p0", "not-an-id")
    rs.wait(lambda: len(rs.events) >= 9, 5)
    bad.wait(lambda: len(bad.events) >= 1, 5)
    over = d.stream("/events?user=over")    # the 6th: over --max-streams 5
    over.wait(lambda: over.eof or over.events, 5)
    h = wait_health(mport, lambda h: h["limit_refusals"]["global"] >= 1 and
                    h["resumes"] >= 1 and h["resets"]["malformed-id"] >= 1)
    t.ok(h and h["events_delivered"] >= 30, "busy: events, a resume, a "
         "reset and a refusal counted", h)
    SCRAPED.append(check_metrics(mport, "busy"))
    for x in streams + [rs, bad, over]:
        x.close()
    d.stop()

    key = t.path("hs.key")
    with open(key, "w") as f:
        f.write("prometheus-test-secret\n")
    a = t.daemon(r, extra=["--auth", "jwt", "--jwt-key-file", key,
                           "--history-size", "0"], name="jwt-nohistory")
    for hdr in ({}, {"Authorization": "Bearer a.b.c"}):
        harness.http_request(a.port, "GET", "/events?user=a", headers=hdr)
    wait_health(a.port, lambda h: sum(h["auth_refusals"].values()) >= 2)
    nh = check_metrics(a.port, "--auth jwt refusals, --history-size 0")
    t.ok("sserelay_history_messages" not in families(nh),
         "--history-size 0: no sserelay_history_* family")
    a.stop()


def examples(r):
    rc, out = promtool("check", "config", CONFIG)
    t.ok(rc == 0 and "SUCCESS" in out, "promtool check config "
         "examples/prometheus/prometheus.yml (and the rule file it names)",
         out)
    rc, out = promtool("check", "rules", RULES)
    t.ok(rc == 0 and "SUCCESS" in out, "promtool check rules "
         "examples/prometheus/sserelay.rules.yml", out)
    rc, out = promtool("test", "rules", RULE_TESTS)
    t.ok(rc == 0 and "SUCCESS" in out, "promtool test rules "
         "examples/prometheus/sserelay.rules.test.yml passes", out)
    with open(RULES) as f:
        rules = f.read()
    with open(RULE_TESTS) as f:
        tests = f.read()
    alerts = re.findall(r"^\s*- alert: (\S+)", rules, re.M)
    tested = set(re.findall(r"^\s*alertname: (\S+)", tests, re.M))
    t.ok(len(alerts) >= 9, "the rules have %d alerts" % len(alerts))
    t.eq(sorted(set(alerts) - tested), [], "every alert has a unit test")
    fired = set(re.findall(r"alertname: (\S+)\n\s+exp_alerts:\n\s+- ",
                           tests))
    t.eq(sorted(set(alerts) - fired), [], "every alert's test has it fire")
    exprs = " ".join(re.findall(r"^\s*expr: (.*)$", rules, re.M))
    have = families(SCRAPED[0] if SCRAPED else "")
    used = set(re.findall(r"\bsserelay_[a-z_]+", exprs))
    t.ok(used, "the rules use %d sserelay metrics" % len(used))
    t.eq(sorted(used - have), [], "every sserelay_* name in the rules is "
         "a family of a real /metrics")


class Prometheus:
    """Debian's prometheus on a free port, with a config in a temp dir."""

    def __init__(self, config):
        self.dir = t.path("prometheus")
        os.makedirs(self.dir, exist_ok=True)
        self.cfg = os.path.join(self.dir, "prometheus.yml")
        with open(self.cfg, "w") as f:
            f.write(config)
        self.log = os.path.join(self.dir, "prometheus.log")
        self.proc = None
        for _ in range(4):
            self.port = harness.free_port()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [PROMETHEUS, "--config.file", self.cfg,
                     "--storage.tsdb.path", os.path.join(self.dir, "data"),
                     "--web.listen-address", "127.0.0.1:%d" % self.port],
                    cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=log)
            t.cleanups.append(self.kill)
            if harness.wait_for(self.ready, 60, 0.1):
                return
            self.kill()
            if "address already in use" not in self.log_text():
                break
        raise RuntimeError("prometheus did not become ready:\n" +
                           self.log_text()[-3000:])

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def ready(self):
        if self.proc.poll() is not None:
            return False
        try:
            return harness.http_request(self.port, "GET", "/-/ready",
                                        timeout=2).status == 200
        except OSError:
            return False

    def api(self, path, **params):
        q = urllib.parse.urlencode(params)
        r = harness.http_request(self.port, "GET", "/api/v1/" + path +
                                 ("?" + q if q else ""), timeout=10)
        return json.loads(r.body)

    def query(self, expr):
        """The instant vector of expr: [(labels, value)]."""
        js = self.api("query", query=expr)
        return [(x["metric"], float(x["value"][1]))
                for x in js.get("data", {}).get("result", [])]

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def render(text, target):
    """The example config with a fast clock, this target and the rule
    file by its absolute path; each change must find its line."""
    subs = [("scrape_interval", r"(?m)^(\s*scrape_interval:) 15s$",
             r"\1 1s"),
            ("evaluation_interval", r"(?m)^(\s*evaluation_interval:) 15s$",
             r"\1 1s"),
            ("targets", r"(?m)^(\s*- targets: )\['127\.0\.0\.1:9100'\]$",
             r"\g<1>['%s']" % target),
            ("rule_files", r"(?m)^(\s*- )sserelay\.rules\.yml$",
             r"\g<1>" + RULES)]
    for what, pat, rep in subs:
        text, n = re.subn(pat, rep, text)
        t.eq(n, 1, "examples/prometheus/prometheus.yml has its %s line"
             % what)
    return text


def real_prometheus(r):
    mport = harness.free_port()
    d = t.daemon(r, extra=["--metrics-listen", "127.0.0.1:%d" % mport,
                           "--max-streams", "100"],
                 name="scraped", wait_redis=False)
    t.ok(wait_health(mport, lambda h: h.get("redis") == "up"),
         "scraped: up on --metrics-listen")
    with open(CONFIG) as f:
        cfg = render(f.read(), "127.0.0.1:%d" % mport)
    p = Prometheus(cfg)
    t.ok(True, "prometheus ready on 127.0.0.1:%d" % p.port)

    def target_up():
        ts = p.api("targets").get("data", {}).get("activeTargets", [])
        return [x for x in ts if x.get("health") == "up" and
                x["labels"].get("job") == "sserelay"]
    t.ok(harness.wait_for(target_up, 60, 0.2), "Prometheus scrapes the "
         "daemon: job sserelay is up", p.api("targets"))

    streams = harness.open_streams(d.port, ["/events?user=q%d" % i
                                            for i in range(3)])
    t.ok(wait_health(mport, lambda h: h["streams"] == 3)["streams"] == 3,
         "3 streams open (/healthz)")
    want = [({"__name__": "sserelay_streams_open", "job": "sserelay",
              "instance": "127.0.0.1:%d" % mport}, 3.0)]
    got = harness.wait_for(lambda: p.query("sserelay_streams_open") == want
                           and want, 60, 0.2)
    t.eq(got or p.query("sserelay_streams_open"), want,
         "sserelay_streams_open read back through Prometheus's HTTP API: 3")
    t.eq(p.query("sserelay_streams_max"), [(dict(want[0][0], __name__=
                                            "sserelay_streams_max"), 100.0)],
         "sserelay_streams_max: 100 (--max-streams)")

    def rules_ok():
        groups = p.api("rules").get("data", {}).get("groups", [])
        rs = [x for g in groups for x in g.get("rules", [])]
        return rs if len(rs) >= 9 and all(x.get("health") == "ok"
                                          for x in rs) else None
    rs = harness.wait_for(rules_ok, 60, 0.2)
    t.ok(rs, "every rule of sserelay.rules.yml loaded and evaluated without "
         "error (%d)" % len(rs or []),
         json.dumps(p.api("rules"))[:3000])

    def alert(name):
        js = p.api("alerts")
        return [a for a in js.get("data", {}).get("alerts", [])
                if a["labels"].get("alertname") == name]
    t.eq(alert("SserelayRedisDown"), [], "no SserelayRedisDown while Redis "
         "is up")
    r.kill(signal.SIGKILL)
    pending = harness.wait_for(lambda: alert("SserelayRedisDown"), 60, 0.2)
    t.ok(pending, "Redis killed: SserelayRedisDown is pending")
    firing = harness.wait_for(
        lambda: [a for a in alert("SserelayRedisDown")
                 if a["state"] == "firing"], 120, 0.5)
    t.ok(firing and firing[0]["labels"].get("instance") ==
         "127.0.0.1:%d" % mport and firing[0]["labels"].get("severity") ==
         "page", "...and fires after its 30 s, for this instance",
         alert("SserelayRedisDown"))
    r.start()
    t.ok(harness.wait_for(lambda: not alert("SserelayRedisDown"), 60, 0.2),
         "Redis back: SserelayRedisDown is gone")
    for x in streams:
        x.close()
    p.kill()
    d.stop()


def main():
    t.parts(t.redis(), (metrics_daemons, examples, real_prometheus))


t.run(main)
