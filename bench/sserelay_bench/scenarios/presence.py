"""presence (issue 22): what --presence costs.  N streams held, each on
its own user channel; then for `secs` s streams are closed and opened
again (W replacements in flight, each a close of a random held stream and
a new stream for the same user, counted once its response head is in):
opens + closes per second with --presence off and on, and Redis's memory
per present stream (INFO used_memory with the N streams present, less
before them).  sserelay only; the client is this module (one process,
non-blocking sockets)."""

import random
import resource
import selectors
import socket
import time

from ..common import fmt, log, medians_of
from ..servers import Sserelay
from ..sseload import base_case, write_record

KEY = "presence"
NAME = "presence"
TITLE = ("presence: stream opens + closes per second with --presence off "
         "and on, Redis memory per present stream")
PARAMS = dict(n=10000, secs=10, inflight=64, heartbeat=600)
QUICK = dict(PARAMS, n=2000, secs=3)


def cases(p, servers, args):
    out = []
    for mode in ("off", "on"):
        c = base_case(KEY, NAME, p, ["sserelay"], args)
        c.update(key=mode, label="presence-" + mode, hb=int(p["heartbeat"]))
        out.append(c)
    return out


def _request(port, user):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    req = ("GET /events?user=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Accept: text/event-stream\r\n\r\n" % user).encode()
    return s, req


class Driver:
    """Streams by user index; each is (socket, state) with state 'w'
    (request to write), 'h' (head awaited) or 'o' (open)."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.socks = {}
        self.opened = 0
        self.failed = 0

    def start(self, i):
        s, req = _request(self.port, "u%d" % i)
        self.socks[i] = s
        self.sel.register(s, selectors.EVENT_WRITE, [i, req, b""])

    def close(self, i):
        s = self.socks.pop(i)
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()

    def pump(self, timeout):
        """One poll: writes requests, reads heads; returns the users whose
        stream just opened."""
        done = []
        for key, ev in self.sel.select(timeout):
            s, (i, req, buf) = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE:
                try:
                    s.send(req)
                except OSError:
                    self.failed += 1
                    self.close(i)
                    continue
                self.sel.modify(s, selectors.EVENT_READ, [i, req, b""])
                continue
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self.failed += 1
                self.close(i)
                continue
            buf += data
            if b"\r\n\r\n" in buf:
                if buf.startswith(b"HTTP/1.1 200"):
                    self.opened += 1
                    done.append(i)
                else:
                    self.failed += 1
                # held: nothing more is read (the heartbeat is 600 s)
                self.sel.unregister(s)
            else:
                key.data[2] = buf
        return done


def _used_memory(redis):
    info = redis.cmd("INFO", "memory").decode()
    for line in info.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return None


def run(ctx, c, server, run):
    p, redis = c["p"], ctx["redis"]
    n, secs, w = int(p["n"]), float(p["secs"]), int(p["inflight"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 1000:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(hard, n + 2000), hard))
    redis.cmd("FLUSHDB")
    on = c["key"] == "on"
    srv = Sserelay(ctx["binary"], ctx["tmp"], redis, c["hb"], c["threads"],
                   ["--presence=%s" % ("yes" if on else "no"),
                    "--max-connections", str(n + 2000)] +
                   ctx["args"].sserelay_arg, ctx["pin_server"])
    j = dict(presence=c["key"], n=n)
    d = Driver(srv.port)
    try:
        mem0 = _used_memory(redis)
        t0 = time.time()
        for i in range(n):
            d.start(i)
            if i % 500 == 499:
                d.pump(0)
        end = time.time() + 120
        while d.opened + d.failed < n and time.time() < end:
            d.pump(0.5)
        j["open_s"] = time.time() - t0
        j["opened"] = d.opened
        if on:
            # every stream's entry written (sampled)
            sample = ["sserelay:{user:u%d}:p" % i
                      for i in range(0, n, max(1, n // 100))]
            end = time.time() + 30
            while time.time() < end and \
                    redis.cmd("EXISTS", *sample) != len(sample):
                time.sleep(0.1)
        mem1 = _used_memory(redis)
        j["redis_bytes_per_stream"] = (mem1 - mem0) / max(1, d.opened)
        # churn: close one, open one for the same user, W at once
        d.opened = d.failed = 0
        held = [i for i in d.socks]
        pending = set()
        t0 = time.time()
        cpu0 = redis.cpu_s()
        while time.time() - t0 < secs:
            while len(pending) < w:
                i = random.choice(held)
                if i in pending:
                    continue
                d.close(i)
                d.start(i)
                pending.add(i)
            for i in d.pump(0.05):
                pending.discard(i)
        el = time.time() - t0
        j["churn_s"] = el
        j["replaced"] = d.opened
        j["opens_closes_per_s"] = 2 * d.opened / el
        j["failed"] = d.failed
        j["redis_cpu_s"] = redis.cpu_s() - cpu0
        j["healthz_streams"] = srv.healthz().get("streams")
    finally:
        for i in list(d.socks):
            d.close(i)
        srv.stop()
    write_record(ctx, c, "sserelay", run, p, "bench/sserelay_bench "
                 "presence driver", " ".join(srv.cmd), j)
    return j


def summary(j):
    return ("%s opened; %s opens+closes/s (%s replaced, %s failed); Redis "
            "%s B per stream, %s CPU s" % (
                j.get("opened"), fmt(j.get("opens_closes_per_s"), "%.0f"),
                j.get("replaced"), j.get("failed"),
                fmt(j.get("redis_bytes_per_stream"), "%.0f"),
                fmt(j.get("redis_cpu_s"), "%.2f")))


def report(ctx, p, results, servers):
    log("presence: %s streams, each on its own user channel; %s s of "
        "churn, %s replacements in flight; medians of %d run(s)" % (
            p["n"], p["secs"], p["inflight"], ctx["runs"]))
    for mode in ("off", "on"):
        k = (KEY, mode, "sserelay")
        g = lambda f: medians_of(results, k, f)
        log("  --presence %-3s: %s opens+closes/s, Redis %s B per present "
            "stream, Redis CPU %s s in the churn" % (
                mode, fmt(g(lambda j: j.get("opens_closes_per_s")), "%.0f"),
                fmt(g(lambda j: j.get("redis_bytes_per_stream")), "%.0f"),
                fmt(g(lambda j: j.get("redis_cpu_s")), "%.2f")))
