#!/usr/bin/env python3
# The daemon runs the HTTP worker threads it says it runs: with and without
# TLS, for --threads 1, 3 and 8, the log line names the count MHD was
# given, and the process has exactly that many libmicrohttpd workers
# (/proc/PID/task/*/comm "MHD-worker", or MHD's one internal thread), next
# to main and the Redis thread; streams are served on them.
import os
import subprocess
import harness

t = harness.Test(require=("redis-server", "openssl"))


def threads(pid):
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


def main():
    key, cert = t.path("key.pem"), t.path("cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-sha256", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-keyout", key, "-out", cert], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = t.redis()
    for tls in (False, True):
        for n in (1, 3, 8):
            what = "%s, --threads %d" % ("TLS" if tls else "plain", n)
            extra = ["--threads", str(n)]
            if tls:
                extra += ["--tls-cert", cert, "--tls-key", key]
            # /healthz is HTTPS with TLS: the harness cannot ask it
            d = t.daemon(r, extra=extra, wait_redis=not tls,
                         name="t%d%s" % (n, "s" if tls else ""))
            m = d.wait_log(r"listening on \S+, (\d+) worker threads", 5)
            said = int(m.group(1)) if m else None
            t.eq(said, n, what + ": the log line says %d worker threads" % n)
            def workers():
                names[:] = threads(d.pid)
                return names.count("MHD-worker") if n > 1 else \
                    sum(1 for x in names if x.startswith("MHD"))
            # a thread names itself once it runs: wait for that
            names = []
            harness.wait_for(lambda: workers() == n and
                             "sserelay-redis" in names, 10)
            workers = workers()
            t.eq(workers, n, what + ": the process runs %d MHD workers" % n)
            t.eq(names.count("sserelay-redis"), 1,
                 what + ": and one Redis thread")
            t.eq(len(names), n + 2, what + ": %d threads in all (%s)"
                 % (n + 2, ", ".join(sorted(names))))
            if not tls:
                # streams land on the workers and are served
                ss = [d.stream("/events?user=w%d" % i) for i in range(2 * n)]
                harness.pump(ss, lambda: all(s.opened for s in ss), 10)
                t.ok(all(s.opened for s in ss),
                     what + ": %d streams open" % len(ss))
                c = r.client()
                for i in range(2 * n):
                    c.publish("user:w%d" % i, "hi")
                harness.pump(ss, lambda: all(harness.message_events(s)
                                             for s in ss), 10)
                t.ok(all(harness.message_events(s) for s in ss),
                     what + ": every stream got its message")
                c.close()
                for s in ss:
                    s.close()
            d.stop()


t.run(main)
