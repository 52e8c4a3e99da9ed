#!/usr/bin/env python3
# --redis-sentinel: one primary, one replica and three redis-sentinels with
# short timeouts (tests/lib/topology.py), passwords on both the data nodes
# (--redis's password) and the sentinels (--redis-sentinel-password-file).
#
# - the daemon asks the sentinels where the master is and streams receive;
# - the master killed: the sentinels promote the replica and tell the
#   daemon (+switch-master); delivery resumes on the new master, and open
#   streams get the reset redis-outage (a failover is an outage);
# - bad input: a master name no sentinel knows is a startup error (exit 1);
#   sentinels that do not answer are logged and retried, never a crash.
import subprocess
import time

import harness
import topology

t = harness.Test(require=("redis-server", "redis-sentinel"))

PW = "data-pw-Q1"
SPW = "sentinel-pw-Z9"


def data(s):
    return [e.json().get("data") for e in harness.message_events(s)]


def reasons(s):
    return [e.json().get("reason") for e in harness.reset_events(s)]


def main():
    sn = topology.Sentinel(t, password=PW, sentinel_password=SPW)
    pwfile = t.path("sentinel-pw")
    with open(pwfile, "w") as f:
        f.write(SPW + "\n")
    args = ["--redis-sentinel", ",".join(sn.sentinel_addrs()),
            "--redis-sentinel-master", sn.name,
            "--redis-sentinel-password-file", pwfile, "--heartbeat", "0.5"]

    # bad input first
    p = subprocess.run([t.sserelay, "-c", "/dev/null", "--listen",
                        "127.0.0.1:%d" % harness.free_port(),
                        "--redis", "redis://:%s@127.0.0.1" % PW] +
                       args[:2] + ["--redis-sentinel-master", "nosuch"] +
                       args[4:6], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode(errors="replace")
    t.eq(p.returncode, 1, "a master name no sentinel knows: exit 1")
    t.ok("--redis-sentinel-master" in err and "nosuch" in err,
         "the error names the option and the name", err)
    dead = "127.0.0.1:%d" % harness.free_port()
    d0 = t.daemon(None, extra=["--redis-sentinel", dead,
                               "--redis-sentinel-master", "m"],
                  name="deadsentinel", no_redis_arg=True, wait_redis=False)
    t.ok(d0.wait_log(r"debug sentinel: no sentinel answered", 10),
         "a sentinel that does not answer: logged, asked again")
    t.eq(d0.healthz()[0], 503, "/healthz 503 meanwhile")
    d0.stop()

    d = t.daemon(None, redis_url="redis://:%s@127.0.0.1" % PW, extra=args,
                 name="sentinel")
    t.ok(d.wait_log(r"info sentinel: %s is at 127.0.0.1:%d" %
                    (sn.name, sn.initial_master), 5),
         "the sentinels named the master")
    ss = [d.stream("/events?user=s%d" % i) for i in range(5)]
    harness.pump(ss, lambda: all(s.opened for s in ss), 10)
    t.ok(all(s.opened for s in ss), "5 streams open")
    c = sn.data[sn.initial_master].conn()
    for i in range(5):
        c.publish("user:s%d" % i, "before")
    harness.pump(ss, lambda: all(data(s) for s in ss), 10)
    t.ok(all(data(s) == ["before"] for s in ss), "each got its message")
    c.close()

    t0 = time.monotonic()
    sn.kill_master()
    new = sn.wait_failover(timeout=60)
    t.diag("sentinel failover to %s took %.2f s" % (new,
                                                   sn.failover_seconds))
    port = int(new.rsplit(":", 1)[1])
    t.ok(port != sn.initial_master, "the replica was promoted")
    nc = sn.data[port].conn()
    got = {}

    def delivered():
        for s in ss:
            s.recv_once()
        got["n"] = nc.publish("user:s0", "after")
        return got["n"] == 1
    t.ok(harness.wait_for(delivered, 30, 0.05),
         "delivery resumes on the promoted replica", repr(got))
    t.diag("delivery resumed %.2f s after the kill (the sentinels' own "
           "failover: %.2f s)" % (time.monotonic() - t0,
                                 sn.failover_seconds))
    t.ok(d.wait_log(r"info sentinel: failover of %s" % sn.name, 5),
         "learned from +switch-master, not from a timeout")
    for i in range(1, 5):
        nc.publish("user:s%d" % i, "after")
    harness.pump(ss, lambda: all("after" in data(s) for s in ss), 10)
    t.ok(all("after" in data(s) for s in ss),
         "every stream gets messages from the new master")
    t.ok(all(reasons(s) == ["redis-outage"] for s in ss),
         "each was told once: reset redis-outage",
         repr([reasons(s) for s in ss]))
    t.ok(all(not s.eof for s in ss), "no stream was closed")
    h = d.healthz()[1]
    t.eq(h["status"], "ok", "/healthz ok again")
    nc.close()
    for s in ss:
        s.close()
    d.stop()


t.run(main)
