"""What the tables show of a JSON record: the rows (label, function(json)
-> number, which direction is better, format), the one-line summary of a
run, and the anomalies."""

import json

def cores(j, key):
    v, el = j.get(key), j.get("elapsed_s")
    return v / el if v is not None and el else None


def lat(j, q, div):
    v = (j.get("latency_us") or {}).get(q)
    return v / div if v is not None else None


def kb(j):
    v = j.get("rss_per_conn_bytes")
    return v / 1000.0 if v is not None else None


def per_stream(j, key):
    c = j.get("connected") or 0
    return j.get(key, 0) / c if c else None


M_CONN = ("streams connected", lambda j: j.get("connected"), "higher", "%.0f")
M_MISS = ("missing events", lambda j: j.get("missing"), "lower", "%.0f")
M_PUB = ("published msg/s (asked: {rate})",
         lambda j: j.get("published_per_s"), "higher", "%.1f")
M_EVS = ("events/s delivered", lambda j: j.get("delivered_per_s"),
         "higher", "%.0f")
M_SCPU = ("server CPU, cores", lambda j: cores(j, "server_cpu_s"),
          "lower", "%.3f")
M_CCPU = ("client CPU, cores", lambda j: cores(j, "client_cpu_s"),
          "lower", "%.3f")
M_P50MS = ("latency p50, ms", lambda j: lat(j, "p50", 1000), "lower", "%.2f")
M_P99MS = ("latency p99, ms", lambda j: lat(j, "p99", 1000), "lower", "%.2f")
M_P50US = ("latency p50, us", lambda j: lat(j, "p50", 1), "lower", "%.0f")
M_P99US = ("latency p99, us", lambda j: lat(j, "p99", 1), "lower", "%.0f")
M_RSS = ("RSS per stream, kB (1000 B)", kb, "lower", "%.2f")
M_CLOSED = ("streams closed early", lambda j: j.get("closed_early"),
            "lower", "%.0f")


def us_per(j, key):
    """server CPU microseconds per delivered event (or per heartbeat)."""
    c, n = j.get("server_cpu_s"), j.get(key)
    return c * 1e6 / n if c is not None and n else None


def ctxt_rate(j, key):
    v, w = j.get(key), j.get("wall_s")
    return v / w if v is not None and w else None


M_USEV = ("server CPU per event, us", lambda j: us_per(j, "delivered_events"),
          "lower", "%.2f")
M_USHB = ("server CPU per heartbeat, us", lambda j: us_per(j, "heartbeats"),
          "lower", "%.2f")
M_HBS = ("heartbeats per stream (hold {hold} s)",
         lambda j: per_stream(j, "heartbeats"), "info", "%.2f")

F_USEV = M_USEV[1]
F_P50 = M_P50US[1]
F_P99 = M_P99US[1]
F_CORES = M_SCPU[1]


def summary_line(j):
    """One run of an sseload scenario in a line."""
    lat_ = j.get("latency_us") or {}
    parts = ["%s/%s connected" % (j.get("connected"),
                                  j.get("connections_requested"))]
    if j.get("mode") != "hold":
        parts.append("%s/%s events (missing %s)" % (
            j.get("delivered_events"), j.get("expected_events"),
            j.get("missing")))
        parts.append("%.0f ev/s, %.1f msg/s published" % (
            j.get("delivered_per_s") or 0, j.get("published_per_s") or 0))
        if lat_.get("p50") is not None:
            parts.append("p50 %.0f us, p99 %.0f us" % (lat_["p50"],
                                                       lat_["p99"]))
    else:
        if j.get("rss_per_conn_bytes") is not None:
            parts.append("%.0f B/stream" % j["rss_per_conn_bytes"])
        parts.append("%s heartbeats" % j.get("heartbeats"))
    sc = cores(j, "server_cpu_s")
    if sc is not None:
        parts.append("server %.2f cores" % sc)
    return ", ".join(parts)


def anomalies_of(j):
    """What went wrong in a run, as short texts (the scenario module may
    add its own: anomalies(j))."""
    a = []
    for key in ("connect_failures", "non_200", "closed_early", "missing",
                "duplicates", "publish_errors", "protocol_errors",
                "unexpected_events", "other_events",
                # publish and storm (issue 13)
                "resets", "events_without_id", "marker_before_backlog",
                "stale_streams", "streams_not_ready", "slow_closes",
                "redis_reconnects", "error"):
        if j.get(key):
            a.append("%s %s" % (key, j[key]))
    if j.get("connect_errors"):
        a.append("connect_errors %s" % json.dumps(j["connect_errors"]))
    if j.get("non_200_by_status"):
        a.append("status %s" % json.dumps(j["non_200_by_status"]))
    if j.get("reset_reasons"):
        a.append("reset reasons %s" % json.dumps(j["reset_reasons"]))
    if j.get("closed_why"):
        a.append("closed %s" % json.dumps(j["closed_why"]))
    if j.get("redis_errors"):
        a.append("Redis errors %s" % json.dumps(j["redis_errors"][:3]))
    if j.get("timed_out"):
        a.append("timed out")
    if j.get("exit_status"):
        a.append("sseload exit %s" % j["exit_status"])
    return a
