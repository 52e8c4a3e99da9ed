"""s1 idle: streams held with no messages; RSS per stream, server CPU
for the heartbeats."""

from .. import metrics as m
from .. import sseload
from ..sseload import base_case, report_generic

KEY = 1
NAME = "idle"
TITLE = "idle memory: streams held, no messages"
PARAMS = dict(n=19000, hold=20)
QUICK = dict(n=2000, hold=5)
GENERIC = True
METRICS = [m.M_CONN, m.M_RSS, m.M_SCPU,
           ("heartbeats per stream", lambda j: m.per_stream(j, "heartbeats"),
            "info", "%.1f"),
           m.M_CLOSED]


def sseload_args(p, server, srv, redis_url):
    """Stream i on user u<i>, held `hold` s (also the heartbeat
    scenario's)."""
    url = srv.base + ("/events?user=u{i}" if server == "sserelay"
                      else "/sub/u{i}")
    return ["-n", str(int(p["n"])), "--url", url, "--hold", str(p["hold"])]


def cases(p, servers, args):
    return [base_case(KEY, NAME, p, servers, args, sseload_args)]


run = sseload.run    # a fresh server, one sseload run


def report(ctx, p, results, servers):
    report_generic(KEY, NAME, METRICS, p, results)
