"""storm (--history redis): N streams come back at once, each with its own
Last-Event-ID and B messages behind; time until every stream is live
again, daemon and Redis CPU, missing/duplicates/resets.  sserelay only;
its client is bench/storm (sseload's -H 'Last-Event-ID: ...{i}' cannot
give each stream back the id *it* got)."""

import json
import os
import shlex
import subprocess
import sys

from .. import BENCH_DIR
from ..common import fmt, log, medians_of, span_of
from ..servers import durable_daemon, healthz_subset
from ..sseload import base_case, write_record

KEY = "storm"
NAME = "storm"
TITLE = ("resume storm: N streams come back at once with their "
         "Last-Event-ID, each B messages behind")
PARAMS = dict(n=10000, users=100, backlog=100, size=100, live_rate=100,
              timeout=60, heartbeat=15)
QUICK = dict(PARAMS, n=1000)
CHECK_RATE = True
STORM = os.path.join(BENCH_DIR, "storm")


def cases(p, servers, args):
    return [dict(base_case(KEY, NAME, p, ["sserelay"], args),
                 hb=int(p["heartbeat"]), subscribe="exact")]


def storm_history_size(p):
    """--history-size that holds a user channel's share of the backlog
    and the ticks of a storm that lasts its whole timeout."""
    b = int(p["backlog"])
    ticks = float(p["live_rate"]) / max(1, int(p["users"])) * \
        float(p["timeout"])
    return max(100, b - b // 2 + int(ticks) + 10, b // 2 + 10)


def run(ctx, c, server, run):
    """One storm: a fresh sserelay --history redis --subscribe exact and
    one bench/storm, which does the rest (see its docstring)."""
    p, redis = c["p"], ctx["redis"]
    run_id = "storm-r%d" % run
    # no history left from a previous run (the Function library stays)
    redis.cmd("FLUSHDB")
    hs = storm_history_size(p)
    srv = durable_daemon(ctx, c, [] if hs == 100 else
                         ["--history-size", str(hs)])
    errpath = os.path.join(ctx["tmp"], run_id + ".stderr")
    cmd = ctx["pin_client"] + [
        sys.executable, STORM, "--port", str(srv.port),
        "--redis-port", str(redis.port), "--server-pid", str(srv.proc.pid),
        "--redis-pid", str(redis.proc.pid), "-n", str(p["n"]),
        "--users", str(p["users"]), "--backlog", str(p["backlog"]),
        "--size", str(p["size"]), "--live-rate", str(p["live_rate"]),
        "--timeout", str(p["timeout"])]
    try:
        with open(errpath, "w") as ef:
            try:
                pr = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=ef,
                                    text=True,
                                    timeout=float(p["timeout"]) + 600)
                out, rc = pr.stdout, pr.returncode
            except subprocess.TimeoutExpired as e:
                out, rc = e.stdout or "", "timeout"
        h = srv.healthz()
        rss = None
        try:
            with open("/proc/%d/status" % srv.proc.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        rss = int(line.split()[1])
        except OSError:
            pass
    finally:
        srv.stop()
    return storm_record(ctx, c, run, p, dict(
        run_id=run_id, cmd=cmd, srv=srv, out=out, rc=rc, errpath=errpath,
        healthz=h, history_size=hs, extra={"server_hwm_kb": rss}))


def storm_record(ctx, c, run, p, r):
    """bench/storm's last line (JSON) as the run's record, written; r:
    run_id, cmd, srv, out, rc, errpath, healthz, history_size, extra."""
    what = " ".join(["bench/storm"] + [a for a in r["cmd"]
                                       if a == "--outage"])
    try:
        j = json.loads(r["out"].strip().splitlines()[-1])
    except (IndexError, ValueError, AttributeError):
        j = {"error": "no JSON from %s" % what, "exit_status": r["rc"],
             "storm_clients": 0}
        log("  %s: %s failed (exit %s):\n%s" % (
            r["run_id"], what, r["rc"], open(r["errpath"]).read()[-3000:]))
    if r["rc"]:
        j["exit_status"] = r["rc"]
    j["history_size"] = r["history_size"]
    j.update(r.get("extra") or {})
    j["healthz"] = healthz_subset(r["healthz"])
    if j.get("storm_clients") is not None and j.get("n"):
        j["streams_not_ready"] = j["n"] - j["storm_clients"]
    if ctx["args"].keep:
        log("  (bench/storm's log: %s)" % r["errpath"])
    write_record(ctx, c, "sserelay", run, p, shlex.join(r["cmd"]),
                 shlex.join(r["srv"].cmd), j)
    return j


# ---------------------------------------------------------------------------
# Issue 12: the cluster scenario.  Scenario 3 (one stream per user channel)
# with sseload in listen mode and bench/run publishing sseload's payloads


def summary(j):
    return ("%s/%s live %s, p50 %s s, p99 %s s; daemon %s CPU s, Redis %s "
            "CPU s, client %s CPU s; %s events, missing %s, dup %s, "
            "resets %s, closed %s" % (
                j.get("live"), j.get("storm_clients"),
                "in %.2f s" % j["all_live_s"] if j.get("all_live_s")
                is not None else "(not all)",
                fmt(j.get("live_p50_s"), "%.2f"),
                fmt(j.get("live_p99_s"), "%.2f"),
                fmt(j.get("server_cpu_s"), "%.2f"),
                fmt(j.get("redis_cpu_s"), "%.2f"),
                fmt(j.get("client_cpu_s"), "%.2f"),
                j.get("events_received"), j.get("missing"),
                j.get("duplicates"), j.get("resets"),
                j.get("closed_early")))


def storm_table(rows, g, lo_hi, width):
    """Log rows (label, f, format) as median and min - max over the runs
    (g and lo_hi of f); the two compound rows of storm and outage, live
    percentiles and closed / not live, by their labels."""
    line = "  %%-%ds %%10s" % width
    log((line + " %21s") % ("metric", "median", "min - max"))
    for label, f, vf in rows:
        if label.startswith("  live p50"):
            log(line % (label, " / ".join(
                fmt(g(lambda j, q=q: j.get(q)), "%.2f")
                for q in ("live_p50_s", "live_p90_s", "live_p99_s"))))
            continue
        if label.startswith("streams closed"):
            log(line % (label, "%s / %s" % (
                fmt(g(lambda j: j.get("closed_early")), "%.0f"),
                fmt(g(lambda j: j.get("streams_not_live")), "%.0f"))))
            continue
        lo, hi = lo_hi(f)
        log((line + " %21s") % (label, fmt(g(f), vf), "" if lo is None
                                 else "%s - %s" % (fmt(lo, vf),
                                                   fmt(hi, vf))))


def report(ctx, p, results, servers):
    k = ("storm", None, "sserelay")
    g = lambda f: medians_of(results, k, f)
    lo_hi = lambda f: span_of(results, k, f)
    runs = results.get(k, [])
    log("storm: %s streams on user:u<i%%%s> + upload:shared, %s messages "
        "behind each, %s msg/s of ticks during the storm, sserelay "
        "--history redis --subscribe exact --heartbeat %s; medians of %d "
        "run(s)" % (p["n"], p["users"], p["backlog"], p["live_rate"],
                    p["heartbeat"], ctx["runs"]))
    rows = [
        ("streams live again", lambda j: j.get("live"), "%.0f"),
        ("time until all are live, s", lambda j: j.get("all_live_s"),
         "%.2f"),
        ("  live p50 / p90 / p99, s", None, None),
        ("  first byte max, s", lambda j: j.get("first_byte_max_s"),
         "%.2f"),
        ("daemon CPU in the storm, s", lambda j: j.get("server_cpu_s"),
         "%.2f"),
        ("  daemon cores", lambda j: j.get("server_cores"), "%.2f"),
        ("  busiest daemon thread, s", lambda j: (
            j["server_threads_cpu_s"][0][1]
            if j.get("server_threads_cpu_s") else None), "%.2f"),
        ("  daemon us per replayed event", lambda j: (
            j["server_cpu_s"] * 1e6 / j["events_received"]
            if j.get("server_cpu_s") is not None and j.get("events_received")
            else None), "%.2f"),
        ("Redis CPU in the storm, s", lambda j: j.get("redis_cpu_s"),
         "%.2f"),
        ("  Redis cores", lambda j: j.get("redis_cores"), "%.2f"),
        ("client CPU in the storm, s", lambda j: j.get("client_cpu_s"),
         "%.2f"),
        ("daemon RSS peak, MB", lambda j: j.get("server_rss_peak_kb") and
         j["server_rss_peak_kb"] / 1024.0, "%.1f"),
        ("events received in the storm", lambda j: j.get("events_received"),
         "%.0f"),
        ("resumes (healthz)", lambda j: (j.get("healthz_delta") or {}).get(
            "resumes"), "%.0f"),
        ("missing", lambda j: j.get("missing"), "%.0f"),
        ("duplicates", lambda j: j.get("duplicates"), "%.0f"),
        ("resets", lambda j: j.get("resets"), "%.0f"),
        ("streams closed / not live", None, None),
        ("cross-channel inversions (info)",
         lambda j: j.get("order_inversions"), "%.0f"),
    ]
    storm_table(rows, g, lo_hi, 34)
    for r, j in enumerate(runs, 1):
        if j.get("server_threads_cpu_s"):
            log("  daemon threads' CPU s, run %d: %s" % (r, ", ".join(
                "%s %.2f" % (nm, v) for nm, v in
                j["server_threads_cpu_s"][:6] if v > 0)))
    slow = [j.get("all_live_s") for j in runs]
    if any(v is None or v > 30 for v in slow):
        log("  NOTE: a storm took more than 30 s or did not end: %s" %
            ", ".join(fmt(v, "%.1f") for v in slow))
    log("  (storm: from the first connect to the last stream live, i.e. "
        "its %s missed messages then the marker published as the connects "
        "went out; CPU from /proc/PID/stat over that window; the client, "
        "bench/storm, is one Python process on the same box)" %
        p["backlog"])
