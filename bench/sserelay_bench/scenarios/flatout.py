"""s4 flatout: one channel, N streams, 2,400 msg/s asked of both servers.

2,400 msg/s (2.4M events/s) is more than nchan's self-throttled HTTP
publisher ever reaches here (230-560 msg/s), and an open-loop Redis
publisher at --rate 0 asks far more than any server can write, which
only measures sserelay's slow-client close (bench/README, "Flat out")."""

from .. import metrics as m
from .. import sseload
from ..sseload import base_case, report_generic
from .fanout import sseload_args  # the same streams as s2

KEY = 4
NAME = "flatout"
TITLE = ("flat out: 1 channel x N streams, publishing at more than nchan "
         "can take")
PARAMS = dict(n=1000, rate=2400, size=128, duration=5)
QUICK = dict(n=200, rate=2400, size=128, duration=2)
GENERIC = True
METRICS = [m.M_EVS, m.M_P50MS, m.M_P99MS, m.M_PUB, m.M_MISS, m.M_CLOSED,
           m.M_SCPU]


def cases(p, servers, args):
    return [base_case(KEY, NAME, p, servers, args, sseload_args)]


run = sseload.run    # a fresh server, one sseload run


def report(ctx, p, results, servers):
    report_generic(KEY, NAME, METRICS, p, results)
