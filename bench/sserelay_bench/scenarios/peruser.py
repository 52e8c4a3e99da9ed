"""s3 peruser: N streams on N user channels, one stream per channel;
latency, server CPU.  The curve, threads and tls scenarios run it too."""

from .. import metrics as m
from .. import sseload
from ..sseload import base_case, pub_args, rate_args, report_generic

KEY = 3
NAME = "peruser"
TITLE = "per-user: N streams on N user channels"
PARAMS = dict(n=10000, rate=2000, size=128, duration=10, nchan_pub_conns=4)
QUICK = dict(n=1000, rate=500, size=128, duration=3, nchan_pub_conns=4)
GENERIC = True
METRICS = [m.M_P50US, m.M_P99US, m.M_SCPU, m.M_PUB, m.M_MISS, m.M_EVS]


def sseload_args(p, server, srv, redis_url):
    """Connection i listens to user u<i>, message k goes to user u<k>;
    nchan gets nchan_pub_conns publish connections so that its
    closed-loop HTTP publisher can keep the rate."""
    n = int(p["n"])
    url = srv.base + ("/events?user=u{i}" if server == "sserelay"
                      else "/sub/u{i}")
    return ["-n", str(n), "--url", url] + pub_args(
        server, srv, redis_url, "user:u{k}", "/pub/u{k}",
        p.get("nchan_pub_conns", 1)) + ["--channels", str(n)] + rate_args(p)


def cases(p, servers, args):
    return [base_case(KEY, NAME, p, servers, args, sseload_args)]


run = sseload.run    # a fresh server, one sseload run


def report(ctx, p, results, servers):
    report_generic(KEY, NAME, METRICS, p, results)
