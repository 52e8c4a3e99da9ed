#!/usr/bin/env python3
# --log-format json (issue 23): one JSON object per line for a log pipeline.
# A daemon with --auth jwt (tokens from Debian's python3-jwt), a Redis with
# a password and --log-level debug is made to write each kind of line it
# has: startup, Redis lost and back (and the resets it sends), token
# refusals of every kind (by header, cookie and query), bad requests, a
# stream over its user's limit, resumes and backlogs, a slow close, a token
# that expires, reloads (a live change, a restart-only change, nothing, a
# broken file), the stop; and a second daemon that cannot listen.
# - every line on stderr parses with Python's json module, with time, level
#   and message, and each kind has the fields it is about (client, user,
#   reason, status, stream, redis, option, count, signal, ...);
# - no line carries a JWT given in a request (nor its signature), the JWT
#   secret or the Redis password;
# - --log-format text (the default) writes the same lines as before.
import json
import re
import signal
import socket
import subprocess
import time

import harness

# Debian's python3-jwt, maybe under /usr/bin/python3 (system_module)
jwt = harness.system_module("jwt")

t = harness.Test()
if jwt is None:
    t.skip_all_unless_required("python3-jwt (Debian) for /usr/bin/python3 "
                               "not found")

SECRET = "json-logs-hs256-secret-not-for-logs"
PASSWORD = "redis-password-not-for-logs"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TOKENS = []             # every token sent


def token(sub, exp_in=600, uploads=("u7",)):
    now = int(time.time())
    p = {"sub": sub, "iat": now, "exp": now + exp_in,
         "sserelay": {"uploads": list(uploads)}}
    tok = jwt.encode(p, SECRET, algorithm="HS256")
    tok = tok.decode() if isinstance(tok, bytes) else tok
    TOKENS.append(tok)
    return tok


def bad_signature(tok):
    h, p, s = tok.split(".")
    tok = ".".join((h, p, ("A" if s[0] != "A" else "B") + s[1:]))
    TOKENS.append(tok)
    return tok


def get(d, path, headers=None):
    return harness.http_request(d.port, "GET", path, headers=headers)


def parse_lines(text):
    """[(line, object or None)] of every line."""
    out = []
    for line in text.splitlines():
        try:
            out.append((line, json.loads(line)))
        except ValueError:
            out.append((line, None))
    return out


def wait_json(d, rx, timeout=15, **fields):
    """The first JSON line whose message matches rx (and has fields)."""
    pat = re.compile(rx)

    def find():
        for _, o in parse_lines(d.log_text()):
            if o and isinstance(o.get("message"), str) and \
                    pat.search(o["message"]) and \
                    all(o.get(k) == v for k, v in fields.items()):
                return o
        return None
    return harness.wait_for(find, timeout, 0.05)


# (what, level, message regex, {field: type or value})
KINDS = [
    ("configuration file", "info", r"^configuration read from ",
     {}),
    ("Redis subscribed", "info", r"^redis: subscribed to .* on ",
     {"redis": str}),
    ("listening", "info", r"^listening on 127\.0\.0\.1:\d+, ",
     {"host": "127.0.0.1", "port": int, "writers": int, "threads": int,
      "connections": int}),
    ("started", "info", r"^sserelay \S+: redis ", {}),
    ("refused: no token", "info", r"^auth: 401 missing token \(user alice,",
     {"status": 401, "reason": "missing", "user": "alice",
      "client": "127.0.0.1"}),
    ("refused: bad signature", "info", r"^auth: 401 ",
     {"status": 401, "reason": "invalid", "user": "alice",
      "client": "127.0.0.1"}),
    ("refused: expired, in the query", "info", r"^auth: 401 ",
     {"status": 401, "reason": "expired", "user": "alice"}),
    ("refused: another user's, in a cookie", "info", r"^auth: 403 ",
     {"status": 403, "reason": "user", "user": "alice"}),
    ("refused: an upload not allowed", "info",
     r"^auth: 403 upload not allowed: u9 ",
     {"status": 403, "reason": "upload", "user": "alice"}),
    ("bad request", "debug", r"^http: 400 unknown parameter",
     {"status": 400, "reason": str}),
    ("over a limit", "debug", r"^http: over the user stream limit$",
     {"reason": "user"}),
    ("resume: reset", "debug", r"^http: resume from 'not-an-id': reset "
     r"\(malformed-id\)$",
     {"stream": int, "user": "alice", "client": "127.0.0.1",
      "reason": "malformed-id"}),
    ("resume: replayed", "debug", r"^http: resume from '.*': 2 events "
     r"replayed$", {"stream": int, "user": "alice", "client": "127.0.0.1"}),
    ("backlog", "debug", r"^http: last=2: a backlog of 2 events$",
     {"stream": int, "user": "alice"}),
    ("slow close", "debug", r"^stream closed: 4 events queued and not "
     r"read$", {"stream": int, "reason": "slow"}),
    ("token expired", "debug", r"^auth: a stream ended: its token "
     r"expired$", {"stream": int, "reason": "expired"}),
    ("client gone", "debug", r"^writer: the client on fd \d+ went away$",
     {"stream": int}),
    ("Redis lost", "warn", r"^redis: connection to .* lost: ",
     {"redis": str}),
    ("Redis not there", "debug", r"^redis: connect to ",
     {"redis": str}),
    ("resets after Redis", "info", r"^redis: told \d+ open streams to "
     r"refetch \(event: reset\)$",
     {"count": int, "reason": "redis-outage"}),
    ("reload: live", "info", r"^reload: 'heartbeat' changed$",
     {"option": "heartbeat"}),
    ("reload: restart", "warn", r"^reload: 'format' changed; it takes "
     r"effect only after a restart$", {"option": "format"}),
    ("reload: nothing", "info", r"^reload: nothing changed that can change "
     r"live$", {}),
    ("reload: broken file", "error", r"^reload: .*; keeping the running "
     r"configuration$", {}),
    ("stop", "info", r"^SIGTERM: draining streams and stopping$",
     {"signal": "SIGTERM"}),
    ("stopped", "info", r"^stopped$", {}),
]


def check_lines(text, name):
    lines = parse_lines(text)
    bad = [line for line, o in lines if not isinstance(o, dict)]
    t.ok(lines and not bad, "%s: each of the %d lines is a JSON object "
         "(Python's json module)" % (name, len(lines)), "\n".join(bad[:10]))
    objs = [o for _, o in lines if isinstance(o, dict)]
    shape = [o for o in objs
             if not (isinstance(o.get("time"), str) and
                     TIME_RE.match(o["time"]) and
                     o.get("level") in ("error", "warn", "info", "debug")
                     and isinstance(o.get("message"), str) and
                     o["message"])]
    t.eq(shape, [], "%s: each has time, level and message" % name)
    leaks = [line for line, _ in lines
             if any(x in line for x in [SECRET, PASSWORD] + TOKENS +
                    [tok.split(".")[2] for tok in TOKENS])]
    t.eq(leaks, [], "%s: no line carries a token (%d given), its "
         "signature, the JWT secret or the Redis password"
         % (name, len(TOKENS)))
    return objs


def main():
    r = t.redis(password=PASSWORD)
    key = t.path("hs.key")
    with open(key, "w") as f:
        f.write(SECRET + "\n")
    conf = t.path("sserelay.conf")
    with open(conf, "w") as f:
        f.write("heartbeat 0.2\nlog-format json\n")
    url = "redis://:%s@127.0.0.1:%d" % (PASSWORD, r.port)
    d = t.daemon(redis_url=url, name="json", extra=[
        "-c", conf, "--auth", "jwt", "--jwt-key-file", key,
        "--jwt-leeway", "0", "--ring-size", "4",
        "--max-streams-per-user", "2", "--retry", "500"])

    # ---- refusals, by header, cookie and query ----
    good = token("alice")
    get(d, "/events?user=alice")
    get(d, "/events?user=alice",
        {"Authorization": "Bearer " + bad_signature(token("alice"))})
    get(d, "/events?user=alice&access_token=" + token("alice", exp_in=-120))
    get(d, "/events?user=alice",
        {"Cookie": "sserelay_token=" + token("bob")})
    get(d, "/events?user=alice&upload=u9",
        {"Authorization": "Bearer " + good})
    get(d, "/events?user=alice&uplaod=u7&access_token=" + good)

    # ---- streams: resume, backlog, a user's limit ----
    hdr = {"Authorization": "Bearer " + good}
    s1 = d.stream("/events?user=alice&upload=u7", headers=hdr)
    t.ok(s1.wait_opened(10), "a stream with a valid token opens")
    pub = r.client()
    for i in range(3):
        pub.publish("upload:u7", json.dumps({"n": i}))
    s1.wait_events(4, 10)
    first = harness.message_events(s1)[0].id
    s2 = d.resume("/events?user=alice&upload=u7", first, headers=hdr)
    s2.wait_events(2, 10)
    s2.close()
    # a closed stream counts against the user's limit until the daemon
    # has seen it go
    one = lambda: d.healthz()[1]["streams"] == 1  # noqa: E731
    harness.wait_for(one, 10)
    s3 = d.resume("/events?user=alice", "not-an-id", headers=hdr)
    s3.wait_events(1, 10)
    s3.close()
    harness.wait_for(one, 10)
    s4 = d.stream("/events?user=alice&upload=u7&last=2", headers=hdr)
    s4.wait_events(2, 10)
    harness.wait_for(lambda: d.healthz()[1]["streams"] == 2, 10)
    over = d.stream("/events?user=alice", headers=hdr)
    over.wait(lambda: over.eof or over.events, 10)
    over.close()
    s4.close()

    # ---- a slow close (--ring-size 4): a client that reads nothing ----
    deaf = socket.create_connection(("127.0.0.1", d.port))
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    deaf.sendall(("GET /events?user=slow HTTP/1.1\r\nHost: x\r\n"
                  "Authorization: Bearer %s\r\n\r\n" % token("slow"))
                 .encode())
    harness.wait_for(lambda: d.healthz()[1]["streams"] >= 2, 10)
    n = 0
    while n < 1000 and d.healthz()[1]["slow_closes"] < 1:
        pub.publish("user:slow", "x" * 65536)
        n += 1
    deaf.close()
    t.ok(wait_json(d, r"^stream closed: "), "a slow close is logged (after "
         "%d messages of 64 KiB)" % n)

    # ---- a token that expires while its stream is open ----
    for margin in (5, 15, 45):
        s5 = d.stream("/events?user=exp", headers={
            "Authorization": "Bearer " + token("exp", exp_in=margin)})
        if s5.wait_opened(10) and s5.status == 200:
            break
        s5.close()
    t.ok(wait_json(d, r"^auth: a stream ended: its token expired$",
                   timeout=60), "a token that expires ends its stream, "
         "logged")
    s5.close()

    # ---- Redis lost and back: the open stream gets a reset ----
    r.kill(signal.SIGKILL)
    t.ok(wait_json(d, r"^redis: connection to .* lost"), "Redis killed: "
         "logged")
    t.ok(wait_json(d, r"^redis: connect to "), "a failed reconnection: "
         "logged (debug)")
    r.start()
    t.ok(wait_json(d, r"^redis: told \d+ open streams to refetch"),
         "Redis back: the resets are logged")

    # ---- reloads ----
    with open(conf, "w") as f:
        f.write("heartbeat 0.3\nformat raw\nlog-format json\n")
    d.signal(signal.SIGHUP)
    t.ok(wait_json(d, r"^reload: 'format' changed"), "a reload is logged")
    d.signal(signal.SIGHUP)
    t.ok(wait_json(d, r"^reload: nothing changed"), "a reload that changes "
         "nothing is logged")
    with open(conf, "w") as f:
        f.write("heartbeat nope\n")
    d.signal(signal.SIGHUP)
    t.ok(wait_json(d, r"keeping the running configuration$"), "a broken "
         "file on reload is logged")
    s1.close()
    d.stop()

    objs = check_lines(d.log_text(), "json daemon")
    for what, level, rx, fields in KINDS:
        pat = re.compile(rx)
        cands = [o for o in objs if pat.search(o.get("message", "")) and
                 o.get("level") == level]

        def fits(o):
            for k, v in fields.items():
                if isinstance(v, type):
                    if not isinstance(o.get(k), v) or isinstance(o.get(k),
                                                                 bool):
                        return False
                elif o.get(k) != v:
                    return False
            return True
        t.ok(any(fits(o) for o in cands), "%s: a %s line with %s" %
             (what, level, ", ".join(sorted(fields)) or "its message"),
             json.dumps(cands[:3]) if cands else "no %s line matches %s"
             % (level, rx))

    # ---- a daemon that cannot start: its error is a JSON line too ----
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    p = subprocess.run([t.sserelay, "-c", "/dev/null", "--listen",
                        "127.0.0.1:%d" % busy.getsockname()[1], "--redis",
                        "redis://127.0.0.1:%d" % r.port, "--log-format",
                        "json"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    busy.close()
    text = p.stdout.decode("utf-8", "replace")
    t.eq(p.returncode, 1, "a daemon that cannot listen exits 1")
    objs = check_lines(text, "startup error")
    t.ok([o for o in objs if o["level"] == "error" and
          "cannot listen on" in o["message"]],
         "...and says why in an error line", text)

    # ---- text, the default: the lines as before ----
    d = t.daemon(redis_url=url, name="text",
                 extra=["--auth", "jwt", "--jwt-key-file", key])
    get(d, "/events?user=alice")
    line = harness.wait_for(lambda: [x for x in d.log_lines()
                                     if "auth: 401" in x], 10)
    t.ok(line and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info "
                           r"auth: 401 missing token \(user alice, from "
                           r"127\.0\.0\.1\)$", line[0]),
         "--log-format text: 'TIME info auth: 401 missing token (user "
         "alice, from 127.0.0.1)' as before", line)
    d.stop()
    t.ok(all(harness.LOG_LINE_RE.match(x) for x in d.log_lines()),
         "--log-format text: every line 'TIME LEVEL message'",
         "\n".join(x for x in d.log_lines()
                   if not harness.LOG_LINE_RE.match(x)))


t.run(main)
