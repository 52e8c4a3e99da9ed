#!/usr/bin/env python3
# Command line: every option --help lists is one the parser knows, and it
# takes a value exactly when --help shows one; --version prints the version
# configure gave (SSERELAY_VERSION, or PACKAGE_VERSION in the build's
# autoconf.h); bad values and unknown options exit 1 with one stderr line
# naming the option; the Redis password from a file, the environment or the
# URL works with requirepass, a wrong one gives the warning about AUTH and
# /healthz down; log lines have the documented format.
import os
import re
import subprocess
import harness

t = harness.Test()

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


def configured_version():
    """The version configure gave: from make check's environment, else
    from autoconf.h in the build directory of $SSERELAY (src/..)."""
    if os.environ.get("SSERELAY_VERSION"):
        return os.environ["SSERELAY_VERSION"]
    path = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(t.sserelay))), "autoconf.h")
    try:
        with open(path) as f:
            m = re.search(r'^#define PACKAGE_VERSION "([^"]+)"', f.read(),
                          re.M)
        return m.group(1) if m else None
    except OSError:
        return None


def help_rows(text):
    """[(long name, short letter or None, value)] for each option line of
    --help; value is None (none), "[=yes|no]" (optional) or its name."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^(?:  -(\w), |      )--([a-z][a-z0-9-]*)"
                     r"(\[=[^\]]*\]| \S+)?(?: |$)", line)
        if m:
            value = m.group(3).strip() if m.group(3) else None
            rows.append((m.group(2), m.group(1), value))
    return rows


def redis_up(d):
    try:
        st, js = d.healthz(timeout=2)
        return st == 200 and js.get("redis") == "up"
    except (OSError, ValueError):
        return False


def main():
    rc, out, err = run(["--help"])
    t.eq(rc, 0, "--help exits 0")
    rc, out2, _ = run(["-h"])
    t.ok(rc == 0 and out2 == out, "-h is the same as --help")
    rows = help_rows(out)
    names = [name for name, _, _ in rows]
    t.ok(len(rows) >= 30, "--help lists %d options" % len(rows), out)
    t.eq(sorted({n for n in names if names.count(n) > 1}), [],
         "--help lists each option once")

    # Every option of --help is known to the parser: without its value it
    # is "missing value", not "unknown option"; without one it is taken.
    wrong = []
    for name, short, value in rows:
        if name in ("version", "help"):
            continue
        forms = ["--" + name] + (["-" + short] if short else [])
        for form in forms:
            rc, o, e = run(["-t", "-c", "/dev/null", form])
            if value is None or value.startswith("[="):
                good = rc == 0 and o == "configuration OK\n"
            else:
                good = rc == 1 and e == "sserelay: %s: missing value\n" % form
            if not good:
                wrong.append("%s (--help: %s): exit %r, %r" % (
                    form, value or "no value", rc, (o + e)[:200]))
    t.ok(not wrong, "each option of --help is known to the parser, with a "
         "value exactly when --help shows one", "\n".join(wrong))
    for name, _, value in rows:
        if value and value.startswith("[="):
            rc, o, e = run(["-t", "-c", "/dev/null", "--%s=no" % name])
            t.ok(rc == 0, "--%s=no: taken" % name, e)

    version = configured_version()
    t.ok(version, "the version configure gave is known (SSERELAY_VERSION "
         "or autoconf.h)")
    rc, out, err = run(["--version"])
    t.ok(rc == 0 and out == "sserelay %s\n" % version,
         "--version prints 'sserelay %s' and exits 0" % version,
         "%r %r" % (rc, out))
    rc, out, err = run(["-V"])
    t.ok(rc == 0 and out == "sserelay %s\n" % version, "-V too",
         "%r %r" % (rc, out))

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
    t.eq(sorted({opt[2:] for opt, _, _ in bad} - set(names)), [],
         "the options given bad values below are all in --help")
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
    # default log level: no line per message.  Redis delivers in order,
    # so once the stream has the last message the daemon has handled all.
    before = len(d1.log_lines())
    c.publish_many([("user:nobody", "m%d" % i) for i in range(30)])
    c.publish_many([("user:pw", "m%d" % i) for i in range(30)])
    t.ok(s.wait_events(31, 10), "password file: 30 more events arrive")
    grown = len(d1.log_lines()) - before
    s.close()
    t.ok(grown < 10, "default log level: no log line per message (+%d lines "
         "for 60 messages)" % grown)
    lines = [l for l in d1.log_lines() if l.strip()]
    badfmt = [l for l in lines if not harness.LOG_LINE_RE.match(l)]
    t.eq(badfmt[:5], [], "every log line is 'YYYY-mm-ddTHH:MM:SS.mmmZ LEVEL msg'")
    # written once MHD runs, so a client may be served before it is
    t.ok(d1.wait_log(r" info .*listening on 127\.0\.0\.1:%d" % d1.port, 10),
         "info line 'listening on HOST:PORT'")
    t.ok(any(re.search(r" info .*redis: subscribed", l) for l in lines),
         "info line 'redis: subscribed'")
    t.ok(not any(" debug " in l for l in lines), "no debug line at info level")
    t.ok(PW not in d1.log_text(), "the password never appears in the log")
    d1.stop()

    up = 30 if t.sanitized else 15
    d2 = t.daemon(r, env={"SSERELAY_REDIS_PASSWORD": PW}, name="pw-env",
                  wait_redis=False)
    t.ok(harness.wait_for(lambda: redis_up(d2), up, 0.05),
         "password from the environment: /healthz says redis up")
    t.ok(PW not in d2.log_text(), "the password never appears in the log")
    d2.stop()

    d3 = t.daemon(redis_url="redis://:%s@127.0.0.1:%d" % (PW, r.port),
                  name="pw-url", wait_redis=False)
    t.ok(harness.wait_for(lambda: redis_up(d3), up, 0.05),
         "password in the URL: /healthz says redis up")
    t.ok(PW not in d3.log_text(), "the URL password never appears in the log")
    d3.stop()

    wrong = t.path("wrong-pw")
    with open(wrong, "w") as f:
        f.write("not-the-password\n")
    d4 = t.daemon(r, extra=["--redis-password-file", wrong],
                  wait_redis=False, name="pw-wrong")
    t.ok(d4.wait_log(r" warn redis: cannot connect to \S+: AUTH: \S", up),
         "wrong password: the warning says Redis refused AUTH",
         "\n".join(d4.log_lines()[-10:]))
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
    t.ok(s.wait_opened(), "--log-level warn: stream opens")
    r.client().publish("user:lv", "x")
    t.ok(s.wait_events(1, 5), "--log-level warn: event arrives")
    s.close()
    noisy = [l for l in d5.log_lines() if re.search(r" (info|debug) ", l)]
    t.eq(noisy, [], "--log-level warn: no info or debug lines")
    d5.stop()


t.run(main)
