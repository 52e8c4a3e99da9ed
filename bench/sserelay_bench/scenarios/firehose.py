"""firehose: R msg/s round robin over K user channels, N streams on N of
them, sserelay --subscribe pattern against exact; sserelay and Redis CPU.

sseload publishes round robin over all --channels: with {i} in the URL,
connection i expects channel i (i < n), and channels n..K-1 have no
subscriber (they add nothing to expected_events).  So one sseload is both
the firehose and the client; no second publisher.  sserelay only: nchan
takes publishes over HTTP, one POST at a time per connection."""

from ..common import die, fmt, log, medians_of, str_list
from ..metrics import F_CORES, F_P50, F_P99
from .. import sseload
from ..sseload import base_case, rate_args

KEY = "firehose"
NAME = "firehose"
TITLE = ("firehose: R msg/s over K user channels, N streams on N of them, "
         "sserelay --subscribe pattern vs exact")
PARAMS = dict(n=2000, channels=100000, rate=20000, size=128, duration=10,
              pipeline=64, modes="pattern,exact", heartbeat=15)
QUICK = dict(n=200, channels=10000, rate=2000, size=128, duration=3,
             pipeline=64, modes="pattern,exact", heartbeat=15)
CHECK_RATE = True


def sseload_args(p, server, srv, redis_url):
    """Round robin over user:u0 .. user:u(K-1); connection i (i < n) is
    on user u<i>, so n of the K channels have a stream and the other
    K - n only cost the subscriber (and Redis)."""
    return ["-n", str(int(p["n"])), "--url", srv.base + "/events?user=u{i}",
            "--pub-redis", redis_url, "--channel", "user:u{k}",
            "--channels", str(p["channels"]),
            "--pub-redis-pipeline", str(p["pipeline"])] + rate_args(p)


def cases(p, servers, args):
    modes = str_list(p["modes"])
    for mo in modes:
        if mo not in ("pattern", "exact"):
            die("firehose.modes: %r is neither pattern nor exact" % mo)
    one = base_case(KEY, NAME, p, ["sserelay"], args, sseload_args)
    return [dict(one, key=mo, label=mo, hb=int(p["heartbeat"]),
                 subscribe=mo) for mo in modes]


run = sseload.run    # a fresh server, one sseload run


def redis_us_per_msg(j):
    c, n = j.get("redis_cpu_s"), j.get("published")
    return c * 1e6 / n if c is not None and n else None


def redis_cores(j):
    c, t = j.get("redis_cpu_s"), j.get("publish_s")
    return c / t if c is not None and t else None


def report(ctx, p, results, servers):
    scen = "firehose"
    modes = [c["key"] for c in cases(p, ["sserelay"], ctx["args"])]
    log("firehose: %s msg/s round robin over user:u0..u%d, %s streams on "
        "user:u0..u%d, %s B, %s s, heartbeat %s s; medians of %d run(s)" % (
            p["rate"], int(p["channels"]) - 1, p["n"], int(p["n"]) - 1,
            p["size"], p["duration"], p["heartbeat"], ctx["runs"]))
    log("  Redis CPU: over the whole sseload run, per published message, "
        "and / publishing time as cores")
    log("  %-8s %7s %7s %7s %9s %8s %7s %7s %8s %8s %9s" % (
        "mode", "cores", "redis", "r us/msg", "publ/s", "missing",
        "p50 us", "p99 us", "RSS MB", "hist ch", "redis msg"))
    med = {}
    for m in modes:
        k = (scen, m, "sserelay")
        g = lambda f: medians_of(results, k, f)
        med[m] = (g(F_CORES), g(redis_cores))
        log("  %-8s %7s %7s %7s %9s %8s %7s %7s %8s %8s %9s" % (
            m, fmt(med[m][0], "%.3f"), fmt(med[m][1], "%.3f"),
            fmt(g(redis_us_per_msg), "%.2f"),
            fmt(g(lambda j: j.get("published_per_s")), "%.0f"),
            fmt(g(lambda j: j.get("missing")), "%.0f"),
            fmt(g(F_P50), "%.0f"), fmt(g(F_P99), "%.0f"),
            fmt(g(lambda j: j.get("server_rss_end_kb") and
                  j["server_rss_end_kb"] / 1024.0), "%.1f"),
            fmt(g(lambda j: (j.get("healthz") or {}).get(
                "history_channels")), "%.0f"),
            fmt(g(lambda j: (j.get("healthz") or {}).get(
                "redis_messages")), "%.0f")))
    log("  (cores: sserelay; redis: Redis cores; RSS MB: daemon RSS at the "
        "end; hist ch / redis msg: /healthz history_channels and "
        "redis_messages at the end)")
    if "pattern" in med and "exact" in med:
        (sp, rp), (se, re_) = med["pattern"], med["exact"]
        r = se / sp if se is not None and sp else None
        log("  exact / pattern: sserelay CPU %s (goal <= 0.10: %s), "
            "Redis CPU %s" % (
                fmt(r, "%.3f"), "-" if r is None else
                ("met" if r <= 0.10 else "NOT met"),
                fmt(re_ / rp if re_ is not None and rp else None, "%.2f")))
