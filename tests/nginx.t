#!/usr/bin/env python3
# examples/nginx.conf in front of the daemon, with Debian's nginx: the site
# file (only its listen port and upstream port changed) passes `nginx -t`,
# a stream opened through nginx carries the SSE headers, and a PUBLISH
# arrives through it at once, with the daemon's heartbeat at 30 s, i.e.
# nginx does not buffer.  Closing the client closes the upstream stream.
import os
import pwd
import grp
import re
import shutil
import signal
import subprocess
import time

import harness

t = harness.Test()

EXAMPLE = os.path.join(os.environ.get("TESTS_SRCDIR")
                       or os.path.dirname(os.path.abspath(__file__)),
                       "..", "examples", "nginx.conf")


def find_nginx():
    p = harness.find_program("nginx", "NGINX")
    if p:
        return p
    for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx"):
        if os.access(p, os.X_OK):
            return p
    return None


NGINX = find_nginx()
if NGINX is None:
    t.skip_all_unless_required("nginx not found (Debian package nginx)")


class Nginx:
    """nginx -p PREFIX in the foreground; stopped by pid at exit."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.conf = os.path.join(prefix, "nginx.conf")
        self.errlog = os.path.join(prefix, "error.log")
        self.proc = None
        t.cleanups.append(self.stop)

    def cmd(self, *extra):
        return [NGINX, "-p", self.prefix + "/", "-c", self.conf,
                "-e", self.errlog] + list(extra)

    def test_config(self):
        return subprocess.run(self.cmd("-t"), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=30)

    def start(self, ports):
        out = open(os.path.join(self.prefix, "stderr.log"), "ab")
        self.proc = subprocess.Popen(self.cmd("-g", "daemon off;"),
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=out)
        out.close()

        def up():
            if self.proc.poll() is not None:
                return True
            for p in ports:
                try:
                    harness.socket.create_connection(("127.0.0.1", p),
                                                     timeout=0.5).close()
                except OSError:
                    return False
            return True
        harness.wait_for(up, 10, 0.05)
        return self.proc.poll() is None

    def log(self):
        text = ""
        for name in ("error.log", "stderr.log"):
            try:
                with open(os.path.join(self.prefix, name),
                          errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def children(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid,
                                                      self.proc.pid)) as f:
                return [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            return []

    def stop(self):
        """SIGQUIT (graceful), then SIGTERM, then SIGKILL master and workers."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        workers = self.children()
        for sig, wait in ((signal.SIGQUIT, 3), (signal.SIGTERM, 3)):
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return self.proc.returncode


def site_conf(nginx_port, daemon_port):
    """The example with only its ports changed; each change made once."""
    with open(EXAMPLE) as f:
        text = f.read()
    text, n1 = re.subn(r"(?m)^(\s*)listen 80;", r"\g<1>listen 127.0.0.1:%d;"
                       % nginx_port, text)
    text, n2 = re.subn(r"(?m)^\s*listen \[::\]:80;\n", "", text)
    text, n3 = re.subn(r"\b127\.0\.0\.1:8080;", "127.0.0.1:%d;" % daemon_port,
                       text)
    return text, (n1, n2, n3)


def main_conf(prefix):
    lines = ["worker_processes 1;",
             "pid %s/nginx.pid;" % prefix,
             "error_log %s/error.log info;" % prefix]
    if os.geteuid() == 0:
        # as root nginx switches its workers to this user; they only proxy
        user = pwd.getpwnam("nobody")
        lines.append("user %s %s;" % (user.pw_name,
                                      grp.getgrgid(user.pw_gid).gr_name))
    lines += ["events { worker_connections 256; }",
              "http {",
              "    access_log %s/access.log;" % prefix,
              "    client_body_temp_path %s/client_body;" % prefix,
              "    proxy_temp_path %s/proxy;" % prefix,
              "    fastcgi_temp_path %s/fastcgi;" % prefix,
              "    uwsgi_temp_path %s/uwsgi;" % prefix,
              "    scgi_temp_path %s/scgi;" % prefix,
              "    include %s/sserelay-site.conf;" % prefix,
              "}", ""]
    return "\n".join(lines)


def main():
    with open(EXAMPLE) as f:
        example = f.read()
    m = re.search(r"proxy_read_timeout\s+(\d+)([smh]?)\s*;", example)
    secs = None
    if m:
        secs = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    t.ok(secs is not None and secs >= 60,
         "example: proxy_read_timeout is at least 60 s, well above the 15 s "
         "heartbeat (got %r s)" % secs)
    for directive in ("proxy_http_version 1.1;", 'proxy_set_header Connection "";',
                      "proxy_buffering off;", "proxy_cache off;",
                      "chunked_transfer_encoding on;",
                      "proxy_set_header X-Forwarded-For",
                      "proxy_set_header Host $host;"):
        t.ok(re.search(r"(?m)^\s*" + re.escape(directive), example),
             "example sets %s" % directive)

    r = t.redis()
    d = t.daemon(r, extra=["--heartbeat", "30"])

    prefix = t.path("nginx")
    os.mkdir(prefix)
    ng = None
    for attempt in range(4):
        nport = harness.free_port()
        site, counts = site_conf(nport, d.port)
        if attempt == 0:
            t.eq(counts, (1, 1, 1), "the example has one 'listen 80;', one "
                 "'listen [::]:80;' and one upstream 127.0.0.1:8080")
        with open(os.path.join(prefix, "sserelay-site.conf"), "w") as f:
            f.write(site)
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(main_conf(prefix))
        ng = Nginx(prefix)
        if attempt == 0:
            res = ng.test_config()
            out = res.stdout.decode("utf-8", "replace")
            t.ok(res.returncode == 0 and "test is successful" in out,
                 "nginx -t passes with the example included", out)
            t.ok("[warn]" not in out and "[emerg]" not in out,
                 "nginx -t prints no warning", out)
        if ng.start((nport,)):
            break
        log = ng.log()
        ng.stop()
        if "in use" not in log:
            break
    t.ok(ng.proc.poll() is None, "nginx runs with the example", ng.log())
    if ng.proc.poll() is not None:
        return

    s = harness.SSEStream(nport, "/events?user=ngx&upload=ngu")
    t.ok(s.wait_opened(5), "a stream opens through nginx (the opening block "
         "is not held back either)", "status %r, %d body bytes"
         % (s.status, s.body_bytes))
    if s.resp is not None:
        t.eq(s.status, 200, "status 200 through nginx")
        ct = s.resp.header("content-type", "")
        t.eq(ct.split(";")[0].strip(), "text/event-stream",
             "Content-Type: text/event-stream passes through")
        t.eq(s.resp.header("cache-control"), "no-cache",
             "Cache-Control: no-cache passes through")
        t.eq(s.resp.header("transfer-encoding", "").lower(), "chunked",
             "nginx answers chunked")
        t.ok(s.resp.header("content-length") is None, "no Content-Length")
    t.eq(s.sse.retries[:1], [3000], "the opening retry: 3000 arrives")

    c = r.client()
    s.read_for(0.3)
    for i, (channel, payload) in enumerate(
            (("user:ngx", '{"note":"hello"}'),
             ("upload:ngu", '{"pct":50}'))):
        n0 = len(s.events)
        t0 = time.monotonic()
        t.eq(c.publish(channel, payload), 1, "PUBLISH %s reaches one "
             "subscriber (the daemon)" % channel)
        got = s.wait_events(n0 + 1, 5)
        dt = time.monotonic() - t0
        t.ok(got and dt < 1.0, "event %d arrives through nginx %.3f s after "
             "PUBLISH (bound 1 s; next heartbeat is 30 s away)" % (i + 1, dt))
        if got:
            ev = s.events[n0]
            t.eq(ev.json(), {"channel": channel,
                             "data": harness.json.loads(payload)},
                 "event %d: the JSON envelope passes unchanged" % (i + 1))
            t.ok(harness.parse_id(ev.id) is not None,
                 "event %d: id passes through (%r)" % (i + 1, ev.id))
    t.eq(len(s.sse.pings()), 0, "no heartbeat was needed to push them out")

    n0 = len(s.events)
    c.publish_many([("upload:ngu", '{"pct":%d}' % p) for p in range(100)])
    t.ok(s.wait_events(n0 + 100, 5), "a burst of 100 events passes through "
         "(%d arrived)" % (len(s.events) - n0))
    t.eq([e.json()["data"]["pct"] for e in s.events[n0:n0 + 100]],
         list(range(100)), "in order")

    # the client goes away: nginx closes its upstream connection, so the
    # daemon's next writes to it (here events; the first one after a peer
    # closes still succeeds in TCP) find it closed
    s.close()
    streams = [None]

    def upstream_closed():
        c.publish("user:ngx", "after close")
        st, js = d.healthz()
        streams[0] = js.get("streams")
        return streams[0] == 0
    t.ok(harness.wait_for(upstream_closed, 5, 0.1),
         "closing the client closes the stream in sserelay at its next "
         "writes (streams %r)"
         % streams[0])

    log = ng.log()
    t.ok(not re.search(r"\[(emerg|alert|crit|error)\]", log),
         "nginx error log has no errors",
         "\n".join(l for l in log.splitlines()
                   if re.search(r"\[(emerg|alert|crit|error)\]", l))[:3000])
    ng.stop()
    t.ok(ng.proc.returncode == 0 and not [p for p in ng.children()],
         "nginx stopped (exit %r)" % ng.proc.returncode)


t.run(main)
