"""heartbeat: N streams held with no messages, heartbeat H (nchan's ping
interval the same); streams connected and closed early, heartbeats per
stream, CPU per heartbeat, RSS per stream.

n=19,600: what the daemon takes with 20,000 open files once its 156
default workers have their epoll and eventfd (19,624 connections)."""

from .. import metrics as m
from .. import sseload
from ..sseload import base_case, report_generic
from . import idle

KEY = "heartbeat"
NAME = "heartbeat"
TITLE = "heartbeats at scale: N streams held, no messages, heartbeat H"
PARAMS = dict(n=19900, heartbeat=15, hold=60)
QUICK = dict(n=1000, heartbeat=2, hold=6)
GENERIC = True
METRICS = [m.M_CONN, m.M_CLOSED, m.M_HBS, m.M_SCPU, m.M_USHB, m.M_RSS,
           m.M_CCPU]


def cases(p, servers, args):
    return [dict(base_case(KEY, NAME, p, servers, args, idle.sseload_args),
                 hb=int(p["heartbeat"]))]


run = sseload.run    # a fresh server, one sseload run


def report(ctx, p, results, servers):
    report_generic(KEY, NAME, METRICS, p, results)
