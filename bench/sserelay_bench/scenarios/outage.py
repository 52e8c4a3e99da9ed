"""outage (--history redis, issue 20): N streams stay open while the
daemon is cut off Redis and B messages each are published; Redis is
restarted on its AOF; the daemon reconnects and brings every open
stream up to date from Redis.  Time until every stream is live again,
daemon and Redis CPU, missing/duplicates/resets, and the latency of live
messages on streams already up to date while the others catch up.
sserelay only; the client is bench/storm --outage (storm's shape)."""

import os
import subprocess
import sys

import topology

from ..common import fmt, log, medians_of, span_of
from ..redis import Redis
from ..servers import durable_daemon
from ..sseload import base_case
from .storm import STORM, storm_history_size, storm_record, storm_table

KEY = "outage"
NAME = "outage"
TITLE = ("Redis outage: N open streams, each B messages behind when the "
         "daemon is back on a restarted Redis, caught up from its history")
PARAMS = dict(n=10000, users=100, backlog=100, size=100, live_rate=100,
              timeout=60, heartbeat=15)
QUICK = dict(PARAMS, n=1000)
AOF = ["--appendonly", "yes", "--appendfsync", "always"]


class AofRedis(Redis):
    """A redis-server of its own for this scenario, with appendonly yes
    and appendfsync always (what it acknowledged is on disk), restarted
    on the same port and directory."""

    def __init__(self, ws, pin):
        topology.RedisNode.__init__(self, ws, "redis-outage", args=AOF,
                                    prefix=pin)
        self.start()
        self.url = "redis://127.0.0.1:%d" % self.port


def cases(p, servers, args):
    return [dict(base_case(KEY, NAME, p, ["sserelay"], args),
                 hb=int(p["heartbeat"]), subscribe="exact")]


def run(ctx, c, server, run):
    """One outage: a fresh sserelay --history redis --subscribe exact on
    the scenario's own Redis, and bench/storm --outage, which says when
    to restart Redis (a line on its stdout; bench/run answers with the
    new pid on its stdin)."""
    p = c["p"]
    if ctx.get("aof_redis") is None:
        ctx["aof_redis"] = AofRedis(ctx["ws"], ctx["pin_server"])
    redis = ctx["aof_redis"]
    run_id = "outage-r%d" % run
    redis.cmd("FLUSHDB")
    hs = storm_history_size(p)
    srv = durable_daemon(dict(ctx, redis=redis), c,
                         [] if hs == 100 else ["--history-size", str(hs)])
    errpath = os.path.join(ctx["tmp"], run_id + ".stderr")
    cmd = ctx["pin_client"] + [
        sys.executable, STORM, "--outage", "--port", str(srv.port),
        "--redis-port", str(redis.port), "--server-pid", str(srv.proc.pid),
        "--redis-pid", str(redis.pid), "-n", str(p["n"]),
        "--users", str(p["users"]), "--backlog", str(p["backlog"]),
        "--size", str(p["size"]), "--live-rate", str(p["live_rate"]),
        "--timeout", str(p["timeout"])]
    out, rc = "", None
    try:
        with open(errpath, "w") as ef:
            pr = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=ef,
                                  text=True)
            try:
                for line in iter(pr.stdout.readline, ""):
                    if line.strip() == "restart-redis":
                        # SIGKILL: appendfsync always has every
                        # acknowledged write on disk already
                        redis.kill()
                        redis.start(timeout=60)
                        pr.stdin.write("ready %d\n" % redis.pid)
                        pr.stdin.flush()
                    else:
                        out += line
                rc = pr.wait(timeout=float(p["timeout"]) + 600)
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait()
                rc = "timeout"
        h = srv.healthz()
    finally:
        srv.stop()
    return storm_record(ctx, c, run, p, dict(
        run_id=run_id, cmd=cmd, srv=srv, out=out, rc=rc, errpath=errpath,
        healthz=h, history_size=hs))


def summary(j):
    return ("%s/%s live %s (daemon back on Redis after %s s); daemon %s "
            "CPU s, Redis %s CPU s; %s events, missing %s, dup %s, "
            "resets %s, closed %s; live latency p99 %s s" % (
                j.get("live"), j.get("storm_clients"),
                "in %.2f s" % j["all_live_s"] if j.get("all_live_s")
                is not None else "(not all)",
                fmt(j.get("daemon_back_s"), "%.2f"),
                fmt(j.get("server_cpu_s"), "%.2f"),
                fmt(j.get("redis_cpu_s"), "%.2f"),
                j.get("events_received"), j.get("missing"),
                j.get("duplicates"), j.get("resets"),
                j.get("closed_early"),
                fmt(j.get("live_latency_p99_s"), "%.3f")))


def report(ctx, p, results, servers):
    k = ("outage", None, "sserelay")
    g = lambda f: medians_of(results, k, f)
    lo_hi = lambda f: span_of(results, k, f)
    log("outage: %s open streams on user:u<i%%%s> + upload:shared, %s "
        "messages behind each when Redis (appendonly yes, appendfsync "
        "always) is back; %s msg/s of ticks meanwhile; sserelay --history "
        "redis --subscribe exact --heartbeat %s; medians of %d run(s)" % (
            p["n"], p["users"], p["backlog"], p["live_rate"],
            p["heartbeat"], ctx["runs"]))
    hz = lambda key: (lambda j: (j.get("healthz_delta") or {}).get(key))
    rows = [
        ("streams live again", lambda j: j.get("live"), "%.0f"),
        ("Redis restart (SIGKILL to PONG), s",
         lambda j: j.get("redis_restart_s"), "%.2f"),
        ("daemon back on Redis, s", lambda j: j.get("daemon_back_s"),
         "%.2f"),
        ("time until all are live, s", lambda j: j.get("all_live_s"),
         "%.2f"),
        ("  live p50 / p90 / p99, s", None, None),
        ("daemon CPU in the recovery, s", lambda j: j.get("server_cpu_s"),
         "%.2f"),
        ("  daemon cores", lambda j: j.get("server_cores"), "%.2f"),
        ("  busiest daemon thread, s", lambda j: (
            j["server_threads_cpu_s"][0][1]
            if j.get("server_threads_cpu_s") else None), "%.2f"),
        ("Redis CPU in the recovery, s", lambda j: j.get("redis_cpu_s"),
         "%.2f"),
        ("client CPU in the recovery, s", lambda j: j.get("client_cpu_s"),
         "%.2f"),
        ("events received in the recovery",
         lambda j: j.get("events_received"), "%.0f"),
        ("recoveries (healthz)", hz("recoveries"), "%.0f"),
        ("recovered events (healthz)", hz("recovered"), "%.0f"),
        ("missing", lambda j: j.get("missing"), "%.0f"),
        ("duplicates", lambda j: j.get("duplicates"), "%.0f"),
        ("resets", lambda j: j.get("resets"), "%.0f"),
        ("streams closed / not live", None, None),
        ("live latency p50, ms", lambda j: j.get("live_latency_p50_s") and
         j["live_latency_p50_s"] * 1e3, "%.1f"),
        ("live latency p99, ms", lambda j: j.get("live_latency_p99_s") and
         j["live_latency_p99_s"] * 1e3, "%.1f"),
        ("live latency max, ms", lambda j: j.get("live_latency_max_s") and
         j["live_latency_max_s"] * 1e3, "%.1f"),
        ("  live messages measured", lambda j: j.get("live_latency_n"),
         "%.0f"),
    ]
    storm_table(rows, g, lo_hi, 36)
    log("  (from Redis answering again after its restart to the last "
        "stream live, i.e. its %s missed messages then the marker; the "
        "daemon's reconnection backoff is in it; live latency: ticks "
        "published after their stream was live again, publish to "
        "receipt, while the others still caught up)" % p["backlog"])
