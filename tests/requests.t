#!/usr/bin/env python3
# Every bad request gets its status and a one-line reason; HEAD and OPTIONS
# behave as HTTP says; /healthz counts open streams; the daemon keeps serving.
import json

import harness

t = harness.Test()


def one_line(body):
    text = body.decode("utf-8", "replace")
    stripped = text.rstrip("\r\n")
    return stripped != "" and "\n" not in stripped and "\r" not in stripped


def check_error(d, method, path, status, words, name):
    try:
        r = harness.http_request(d.port, method, path)
    except (OSError, ValueError) as e:
        t.ok(False, "%s: got a response" % name, repr(e))
        return None
    text = r.body.decode("utf-8", "replace")
    t.ok(r.status == status and one_line(r.body)
         and all(w.lower() in text.lower() for w in words),
         "%s %s -> %d with a one-line reason naming %s" % (
             method, path if len(path) < 60 else path[:57] + "...",
             status, "/".join(words)),
         "status %r, body %r" % (r.status, text[:300]))
    return r


def main():
    r = t.redis()
    # short heartbeat: closed streams are found on the next write
    d = t.daemon(r, extra=["--heartbeat", "0.5"])
    p = d.port

    check_error(d, "GET", "/", 404, [], "unknown path /")
    check_error(d, "GET", "/nope", 404, [], "unknown path")
    check_error(d, "GET", "/events/x?user=a", 404, [], "path below /events")

    rr = check_error(d, "POST", "/events?user=a", 405, [], "POST /events")
    if rr:
        allow = rr.header("allow", "")
        t.ok("GET" in allow and "POST" not in allow,
             "405 carries an Allow header listing GET (got %r)" % allow)
    check_error(d, "DELETE", "/events?user=a", 405, [], "DELETE /events")

    for path in ("/events?user=a", "/anything"):
        o = harness.http_request(p, "OPTIONS", path)
        allow = [x.strip() for x in o.header("allow", "").split(",")]
        t.ok(o.status == 204 and sorted(allow) == ["GET", "HEAD", "OPTIONS"]
             and o.extra == b"",
             "OPTIONS %s -> 204, Allow: GET, HEAD, OPTIONS, no body" % path,
             "status %r allow %r extra %r" % (o.status, allow, o.extra[:100]))

    h = harness.http_request(p, "HEAD", "/events?user=a")
    t.eq(h.status, 200, "HEAD /events?user=a -> 200")
    t.ok(h.header("content-type", "").startswith("text/event-stream"),
         "HEAD: Content-Type text/event-stream (got %r)"
         % h.header("content-type"))
    t.eq(h.header("cache-control"), "no-cache", "HEAD: Cache-Control no-cache")
    t.eq(h.extra, b"", "HEAD: no body bytes")
    # Keep-alive: the response after a HEAD must start right after its
    # headers (a stray body would be read as the next response).
    import socket
    with socket.create_connection(("127.0.0.1", p), timeout=5) as ka:
        ka.sendall(b"HEAD /events?user=a HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = ka.recv(4096)
            if not data:
                break
            buf += data
        ka.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
        try:
            while True:
                data = ka.recv(4096)
                if not data:
                    break
                buf += data
        except OSError:
            pass
    head, _, after = buf.partition(b"\r\n\r\n")
    if b"\r\nconnection: close" in head.lower():
        # closing after a HEAD is correct too, as long as nothing but the
        # headers was written
        t.eq(after, b"", "HEAD with Connection: close: nothing after the "
             "headers, connection closed")
    else:
        t.ok(after.startswith(b"HTTP/1.1 200"),
             "keep-alive: GET /healthz after HEAD on the same connection "
             "gets its own response (got %r)" % after[:40])
    hb = harness.http_request(p, "HEAD", "/events")
    t.eq(hb.status, 400, "HEAD /events without parameters -> 400")

    bad = [
        ("/events", ["user", "upload"], "no parameters"),
        ("/events?foo=bar", ["user", "upload"], "only unknown parameters"),
        ("/events?user=", ["user"], "empty user"),
        ("/events?upload=", ["upload"], "empty upload"),
        ("/events?user=" + "a" * 129, ["user"], "129-byte user id"),
        ("/events?upload=" + "b" * 129, ["upload"], "129-byte upload id"),
        ("/events?user=a*b", ["user"], "unsafe user id a*b"),
        ("/events?user=a%2Fb", ["user"], "unsafe user id a%2Fb"),
        ("/events?user=%00", ["user"], "unsafe user id %00"),
        ("/events?user=a%0Ab", ["user"], "unsafe user id with LF"),
        ("/events?upload=x%20y", ["upload"], "unsafe upload id with space"),
        ("/events?" + "&".join("upload=u%d" % i for i in range(17)),
         ["upload", "16"], "17 uploads"),
        ("/events?user=a&user=b", ["duplicate", "user"], "duplicate user"),
        ("/events?user=a&user=a", ["duplicate", "user"], "duplicate user (same)"),
        # a typo must not subscribe to nothing in silence
        ("/events?user=a&uplaod=u7", ["unknown parameter 'uplaod'",
                                      "user", "upload"], "typo uplaod"),
        ("/events?user=a&foo=bar", ["unknown parameter 'foo'"],
         "unknown parameter"),
        ("/events?user=a&Upload=u7", ["unknown parameter 'Upload'"],
         "names are case-sensitive"),
    ]
    for path, words, name in bad:
        rr = check_error(d, "GET", path, 400, words, name)
        if rr is not None and name == "no parameters":
            t.ok(rr.header("content-type", "").startswith("text/plain"),
                 "400 body is text/plain (got %r)" % rr.header("content-type"))

    # The limits themselves are accepted.
    good = [
        ("/events?user=" + "a" * 128, "128-byte user id"),
        ("/events?user=A-z.0_9:x@y", "all allowed id characters"),
        ("/events?" + "&".join("upload=u%d" % i for i in range(16)),
         "16 uploads"),
        ("/events?upload=u1&upload=u1&upload=u2", "duplicate upload folded"),
        ("/events?user=a&_=1712345678901", "cache buster _ accepted"),
        ("/events?user=a&lastEventId=x-1&_=1",
         "lastEventId and _ (EventSource polyfills) accepted"),
        ("/events?upload=only", "upload without user"),
    ]
    for path, name in good:
        s = d.stream(path)
        t.ok(s.wait_opened(10) and s.status == 200,
             "%s -> 200 stream" % name, "status %r" % s.status)
        s.close()

    # /healthz while 3 streams are open.
    streams = [d.stream("/events?user=hz%d" % i) for i in range(3)]
    t.ok(all(s.wait_opened(10) for s in streams), "3 streams opened")
    hz = harness.http_request(p, "GET", "/healthz")
    t.eq(hz.status, 200, "/healthz -> 200")
    t.ok(hz.header("content-type", "").startswith("application/json"),
         "/healthz Content-Type application/json (got %r)"
         % hz.header("content-type"))
    try:
        js = json.loads(hz.body.decode())
    except ValueError:
        js = {}
        t.ok(False, "/healthz body is JSON", repr(hz.body[:300]))
    t.diag("healthz: %s" % hz.body.decode("utf-8", "replace")[:400])
    t.eq(js.get("redis"), "up", "/healthz redis up")
    t.eq(js.get("status"), "ok", "/healthz status ok")
    t.eq(js.get("version"), "0.1.0", "/healthz version")
    t.ok(isinstance(js.get("uptime_s"), int) and js["uptime_s"] >= 0,
         "/healthz uptime_s is a number")
    # Streams closed above may still be counted until the daemon's next
    # write to them (heartbeat); the 3 open ones must be there.
    n = js.get("streams")
    t.ok(isinstance(n, int) and n >= 3, "/healthz counts the 3 open streams "
         "(got %r)" % n)
    ok3 = harness.wait_for(lambda: d.healthz()[1].get("streams") == 3, 5, 0.1)
    t.ok(ok3, "/healthz streams == 3 once closed streams are reaped",
         "last: %r" % (d.healthz()[1],))
    for s in streams:
        s.close()
    t.ok(harness.wait_for(lambda: d.healthz()[1].get("streams") == 0, 5, 0.1),
         "/healthz streams back to 0 after closing them")

    # Still serving after all that.
    s = d.stream("/events?user=after")
    t.ok(s.wait_opened(10), "a new stream still opens")
    t.eq(r.client().publish("user:after", "x"), 1, "PUBLISH after bad requests")
    t.ok(s.wait_events(1, 10), "and its event arrives")
    s.close()
    # Bad requests are not errors of the daemon.
    errs = [l for l in d.log_lines() if " error " in l]
    t.eq(errs, [], "no error-level log line")


t.run(main)
