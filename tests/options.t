#!/usr/bin/env python3
# Command line: --help lists every option, --version, bad values and unknown
# options exit 1 with one stderr line naming the option; the Redis password
# from a file, the environment or the URL works with requirepass, a wrong one
# gives a warn line and /healthz down; log lines have the documented format.
import os
import re
import subprocess
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("TESTS_SRCDIR")
                or os.path.dirname(os.path.abspath(__file__)), "lib"))
import harness  # noqa: E402

t = harness.Test()

OPTIONS = ["--listen", "--redis", "--redis-password-file", "--redis-timeout",
           "--poll-timeout", "--threads", "--heartbeat", "--retry",
           "--ring-size", "--format", "--user-prefix", "--upload-prefix",
           "--max-uploads", "--max-connections", "--conn-memory",
           "--client-timeout", "--log-level", "--version", "--help"]
SHORT = ["-l", "-r", "-T", "-f", "-L", "-V", "-h"]
PW = "s3cret-pw-Zq9"


def run(args, timeout=10):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    try:
        p = subprocess.run([t.sserelay] + args, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=env)
        return p.returncode, p.stdout.decode("utf-8", "replace"), \
            p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return "timeout (it started?)", "", (e.stderr or b"").decode(
            "utf-8", "replace")


def main():
    rc, out, err = run(["--help"])
    t.eq(rc, 0, "--help exits 0")
    missing = [o for o in OPTIONS if not re.search(re.escape(o) + r"\b", out)]
    t.eq(missing, [], "--help on stdout lists every long option")
    missing = [o for o in SHORT if not re.search(r"(^|[\s,])" + re.escape(o)
                                                 + r"\b", out, re.M)]
    t.eq(missing, [], "--help lists the short options")
    rc, out2, _ = run(["-h"])
    t.ok(rc == 0 and out2 == out, "-h is the same as --help")

    rc, out, err = run(["--version"])
    t.ok(rc == 0 and out.strip() == "sserelay 0.1.0",
         "--version prints 'sserelay 0.1.0' and exits 0", "%r %r" % (rc, out))
    rc, out, err = run(["-V"])
    t.ok(rc == 0 and out.strip() == "sserelay 0.1.0", "-V too")

    # Bad values.  A free port and an unreachable Redis, so that a value
    # wrongly accepted starts a harmless daemon (killed by the timeout).
    port = harness.free_port()
    base = ["--listen", "127.0.0.1:%d" % port, "--redis", "redis://127.0.0.1:1"]
    bad = [
        ("--listen", "nonsense", "listen"),
        ("--listen", "127.0.0.1:70000", "listen"),
        ("--listen", "127.0.0.1:", "listen"),
        ("--redis", "http://localhost:6379", "redis"),
        ("--redis", "redis://127.0.0.1:notaport", "redis"),
        ("--redis-timeout", "abc", "redis-timeout"),
        ("--poll-timeout", "-5", "poll-timeout"),
        ("--threads", "abc", "threads"),
        ("--heartbeat", "abc", "heartbeat"),
        ("--heartbeat", "-1", "heartbeat"),
        ("--retry", "x", "retry"),
        ("--ring-size", "many", "ring-size"),
        ("--format", "xml", "format"),
        ("--max-uploads", "17", "max-uploads"),
        ("--max-uploads", "0", "max-uploads"),
        ("--max-connections", "abc", "max-connections"),
        ("--conn-memory", "abc", "conn-memory"),
        ("--client-timeout", "abc", "client-timeout"),
        ("--log-level", "loud", "log-level"),
        ("--redis-password-file", t.path("no-such-file"), "password"),
    ]
    for opt, val, word in bad:
        rc, out, err = run(base + [opt, val], timeout=5)
        lines = [l for l in err.splitlines() if l.strip()]
        t.ok(rc == 1 and word in err,
             "%s %s: exit 1, stderr names the option" % (opt, val),
             "exit %r, stderr %r" % (rc, err[:500]))
        t.eq(len(lines), 1, "%s %s: exactly one stderr line" % (opt, val))
    rc, out, err = run(base + ["--bogus-option"], timeout=5)
    t.ok(rc == 1 and "bogus-option" in err,
         "unknown option: exit 1, stderr names it", "%r %r" % (rc, err[:300]))
    rc, out, err = run(base + ["--heartbeat"], timeout=5)
    t.ok(rc == 1 and "heartbeat" in err,
         "missing argument: exit 1, stderr names the option",
         "%r %r" % (rc, err[:300]))
    rc, out, err = run(base + ["extra-argument"], timeout=5)
    t.eq(rc, 1, "a stray positional argument: exit 1")

    # Password-protected Redis.
    r = t.redis(password=PW)
    pwfile = t.path("redis-pw")
    with open(pwfile, "w") as f:
        f.write(PW + "\n")
    d1 = t.daemon(r, extra=["--redis-password-file", pwfile],
                  name="pw-file", log_level=None)
    s = d1.stream("/events?user=pw")
    t.ok(s.wait_opened(), "password file: stream opens")
    c = r.client()
    t.eq(c.publish("user:pw", "authed"), 1, "password file: daemon subscribed")
    t.ok(s.wait_events(1, 10), "password file: event arrives")
    s.close()
    # default log level: no line per message
    before = len(d1.log_lines())
    c.publish_many([("user:pw", "m%d" % i) for i in range(30)])
    c.publish_many([("user:nobody", "m%d" % i) for i in range(30)])
    harness.wait_for(lambda: False, 0.5)
    grown = len(d1.log_lines()) - before
    t.ok(grown < 10, "default log level: no log line per message (+%d lines "
         "for 60 messages)" % grown)
    lines = [l for l in d1.log_lines() if l.strip()]
    badfmt = [l for l in lines if not harness.LOG_LINE_RE.match(l)]
    t.eq(badfmt[:5], [], "every log line is 'YYYY-mm-ddTHH:MM:SS.mmmZ LEVEL msg'")
    t.ok(any(re.search(r" info .*listening on 127\.0\.0\.1:%d" % d1.port, l)
             for l in lines), "info line 'listening on HOST:PORT'")
    t.ok(any(re.search(r" info .*redis: subscribed", l) for l in lines),
         "info line 'redis: subscribed'")
    t.ok(not any(" debug " in l for l in lines), "no debug line at info level")
    t.ok(PW not in d1.log_text(), "the password never appears in the log")
    d1.stop()

    d2 = t.daemon(r, env={"SSERELAY_REDIS_PASSWORD": PW}, name="pw-env")
    t.eq(d2.healthz()[1].get("redis"), "up", "password from environment works")
    t.ok(PW not in d2.log_text(), "the password never appears in the log")
    d2.stop()

    d3 = t.daemon(redis_url="redis://:%s@127.0.0.1:%d" % (PW, r.port),
                  name="pw-url")
    t.eq(d3.healthz()[1].get("redis"), "up", "password in the URL works")
    t.ok(PW not in d3.log_text(), "the URL password never appears in the log")
    d3.stop()

    wrong = t.path("wrong-pw")
    with open(wrong, "w") as f:
        f.write("not-the-password\n")
    d4 = t.daemon(r, extra=["--redis-password-file", wrong],
                  wait_redis=False, name="pw-wrong")
    t.ok(d4.wait_log(r" warn .*", 10), "wrong password: a warn line is logged")
    t.diag("; ".join(l for l in d4.log_lines() if " warn " in l)[:300])
    st, js = d4.healthz()
    t.ok(st == 503 and js.get("redis") == "down",
         "wrong password: /healthz 503 redis down (got %r %r)"
         % (st, js.get("redis")))
    t.ok(d4.running(), "wrong password: daemon keeps running")
    t.ok("not-the-password" not in d4.log_text(),
         "the wrong password is not logged either")
    d4.stop()

    d5 = t.daemon(r, extra=["--redis-password-file", pwfile],
                  name="warn-level", log_level="warn")
    s = d5.stream("/events?user=lv")
    s.wait_opened()
    r.client().publish("user:lv", "x")
    s.wait_events(1, 5)
    s.close()
    noisy = [l for l in d5.log_lines() if re.search(r" (info|debug) ", l)]
    t.eq(noisy, [], "--log-level warn: no info or debug lines")
    d5.stop()


t.run(main)
