"""s2 fanout: one channel, N streams; events/s, missing, latency, CPU."""

from .. import metrics as m
from .. import sseload
from ..sseload import base_case, pub_args, rate_args, report_generic

KEY = 2
NAME = "fanout"
TITLE = "fan-out: 1 channel x N streams"
PARAMS = dict(n=10000, rate=20, size=128, duration=10, nchan_pub_conns=4)
QUICK = dict(n=1000, rate=20, size=128, duration=3, nchan_pub_conns=4)
GENERIC = True
METRICS = [m.M_EVS, m.M_PUB, m.M_MISS, m.M_P50MS, m.M_P99MS, m.M_SCPU,
           m.M_USEV, m.M_CCPU]


def sseload_args(p, server, srv, redis_url):
    """Every stream on upload:fan (/sub/fan); nchan gets nchan_pub_conns
    publish connections, as in s3: it answers a POST only after its
    fan-out (about 70 ms for 10,000 streams), so one connection would
    publish 14 msg/s, not the 20 asked."""
    url = srv.base + ("/events?upload=fan" if server == "sserelay"
                      else "/sub/fan")
    return ["-n", str(int(p["n"])), "--url", url] + pub_args(
        server, srv, redis_url, "upload:fan", "/pub/fan",
        p.get("nchan_pub_conns", 1)) + rate_args(p)


def cases(p, servers, args):
    return [base_case(KEY, NAME, p, servers, args, sseload_args)]


run = sseload.run    # a fresh server, one sseload run


def report(ctx, p, results, servers):
    report_generic(KEY, NAME, METRICS, p, results)
