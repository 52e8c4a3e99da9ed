"""threads: scenario 3 at n streams, sserelay only, at several --threads
(writer threads; the default is one per processor);
CPU per event, cores, latency, RSS per stream, context switches, the
threads the daemon runs.

Context switches are summed over every thread of the daemon
(/proc/PID/task/*/status), from just before sseload starts to just after
it ends, per wall second; the connection phase is included."""

from ..common import fmt, int_list, log, medians_of
from ..metrics import F_CORES, F_P50, F_P99, F_USEV, ctxt_rate, kb
from .. import sseload
from ..sseload import base_case
from . import peruser

KEY = "threads"
NAME = "threads"
TITLE = "thread sweep: s3 per-user, sserelay at several --threads"
PARAMS = dict(threads="1,2,4,8", n=10000, rate=2000, size=128,
              duration=10, heartbeat=600)
QUICK = dict(threads="1,2", n=1000, rate=500, size=128, duration=3,
             heartbeat=600)
CHECK_RATE = True


def cases(p, servers, args):
    one = base_case(KEY, NAME, p, ["sserelay"], args, peruser.sseload_args)
    return [dict(one, key=t, label="threads=%d" % t, hb=int(p["heartbeat"]),
                 threads=t)
            for t in int_list(p["threads"])]


run = sseload.run    # a fresh server, one sseload run


def report(ctx, p, results, servers):
    scen = "threads"
    log("threads: sserelay only, scenario 3 at n=%s, %s msg/s in total, %s "
        "B, %s s, heartbeat %s s; medians of %d run(s)" % (
            p["n"], p["rate"], p["size"], p["duration"], p["heartbeat"],
            ctx["runs"]))
    log("  ctx switches: summed over the daemon's threads "
        "(/proc/PID/task/*/status), from before sseload starts to after "
        "it ends, per wall second")
    log("  %9s %7s %8s %6s %7s %7s %8s %9s %9s %7s" % (
        "--threads", "threads", "us/event", "cores", "p50 us", "p99 us",
        "RSS/str", "vol cs/s", "invol/s", "missing"))
    for t in int_list(p["threads"]):
        k = (scen, t, "sserelay")
        g = lambda f: medians_of(results, k, f)
        log("  %9d %7s %8s %6s %7s %7s %8s %9s %9s %7s" % (
            t, fmt(g(lambda j: j.get("server_threads")), "%.0f"),
            fmt(g(F_USEV), "%.2f"), fmt(g(F_CORES), "%.3f"),
            fmt(g(F_P50), "%.0f"), fmt(g(F_P99), "%.0f"),
            fmt(g(kb), "%.2f"),
            fmt(g(lambda j: ctxt_rate(j, "ctxt_voluntary")), "%.0f"),
            fmt(g(lambda j: ctxt_rate(j, "ctxt_nonvoluntary")), "%.0f"),
            fmt(g(lambda j: j.get("missing")), "%.0f")))
    log("  (RSS/str: kB (1000 B) of daemon RSS per connected stream; "
        "threads: the daemon's threads at the end)")
