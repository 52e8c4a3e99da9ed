#!/usr/bin/env python3
# The daemon runs the writer threads it says it runs: with and without
# TLS, for --threads 1, 3 and 8 and the default (one per core), the log
# line names the count, and the process has exactly that many writers
# (/proc/PID/task/*/comm "sserelay-writer") next to main, the Redis
# thread, the control thread (sserelay-ctl) and as many libmicrohttpd
# workers as the log line says; streams are served on them.
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
    cores = os.cpu_count()
    for tls in (False, True):
        for n in (1, 3, 8, 0):
            what = "%s, --threads %d" % ("TLS" if tls else "plain", n)
            want = n or cores
            extra = ["--threads", str(n)]
            if tls:
                extra += ["--tls-cert", cert, "--tls-key", key]
            # /healthz is HTTPS with TLS: the harness cannot ask it
            d = t.daemon(r, extra=extra, wait_redis=not tls,
                         name="t%d%s" % (n, "s" if tls else ""))
            m = d.wait_log(r"listening on \S+, (\d+) writer threads, "
                           r"(\d+) HTTP threads", 5)
            said = int(m.group(1)) if m else None
            mhd = int(m.group(2)) if m else None
            t.eq(said, want, what + ": the log line says %d writer threads"
                 % want)
            names = []

            def counts():
                names[:] = threads(d.pid)
                return (names.count("sserelay-writer"),
                        sum(1 for x in names if x.startswith("MHD")))
            # a thread names itself once it runs: wait for that
            harness.wait_for(lambda: counts() == (want, mhd) and
                             "sserelay-redis" in names and
                             "sserelay-ctl" in names, 10)
            writers, workers = counts()
            t.eq(writers, want, what + ": the process runs %d writers"
                 % want)
            t.eq(workers, mhd, what + ": and the %s MHD threads it names"
                 % mhd)
            t.eq(names.count("sserelay-redis"), 1,
                 what + ": and one Redis thread")
            t.eq(names.count("sserelay-ctl"), 1,
                 what + ": and one control thread (revocation, presence)")
            t.eq(len(names), want + (mhd or 0) + 3,
                 what + ": no other thread but main")
            if not tls:
                # streams are spread over the writers and served
                ss = [d.stream("/events?user=w%d" % i)
                      for i in range(2 * want)]
                harness.pump(ss, lambda: all(s.opened for s in ss), 10)
                t.ok(all(s.opened for s in ss),
                     what + ": %d streams open" % len(ss))
                c = r.client()
                for i in range(2 * want):
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
