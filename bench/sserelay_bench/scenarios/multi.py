"""s5 multi: N streams, each on the same U upload channels.

sseload predicts one channel per connection from an {i%U} term, and
--share-mod 1 widens that to the union over all connections: every
connection expects every channel, which is what the URL asks for.  (An
unused parameter is that term: "_" for sserelay, which refuses
parameters it does not know but takes "_" as a cache buster, "s" for
nchan; both ignore it.)  bench/README says why sixteen different
channel sets per stream cannot be expressed."""

from .. import metrics as m
from .. import sseload
from ..sseload import base_case, pub_args, rate_args, report_generic

KEY = 5
NAME = "multi"
TITLE = ("many channels per stream: N streams x U uploads, every stream on "
         "all U channels")
PARAMS = dict(n=2000, uploads=16, rate=50, size=128, duration=10)
QUICK = dict(n=200, uploads=16, rate=20, size=128, duration=3)
GENERIC = True
METRICS = [m.M_EVS, m.M_PUB, m.M_MISS, m.M_P50MS, m.M_P99MS, m.M_SCPU,
           m.M_RSS]


def sseload_args(p, server, srv, redis_url):
    u = int(p["uploads"])
    if server == "sserelay":
        url = srv.base + "/events?_={i%%%d}&" % u + "&".join(
            "upload=a%d" % j for j in range(u))
    else:
        url = srv.base + "/multi?s={i%%%d}&c=" % u + ",".join(
            "a%d" % j for j in range(u))
    return ["-n", str(int(p["n"])), "--url", url] + pub_args(
        server, srv, redis_url, "upload:a{k}", "/pub/a{k}") + [
        "--channels", str(u), "--share-mod", "1"] + rate_args(p)


def cases(p, servers, args):
    return [base_case(KEY, NAME, p, servers, args, sseload_args)]


run = sseload.run    # a fresh server, one sseload run


def report(ctx, p, results, servers):
    report_generic(KEY, NAME, METRICS, p, results)
