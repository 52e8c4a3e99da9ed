"""tls: scenario 3 over HTTPS, sserelay (--tls-cert/--tls-key) against
nginx + nchan (listen ... ssl), the same certificate for both (ECDSA
P-256, self-signed, made with openssl in the temp dir at the first run);
sseload opens its streams over TLS and trusts that certificate
(--tls-ca).  Publishing is as in scenario 3: PUBLISH to Redis for
sserelay, POSTs to nchan's API on a plain HTTP port of its own (the
publisher is not what is compared).  Goal: sserelay's CPU at or below
nchan's.

Both get their streams at `ramp` new connections a second (sseload
--ramp-per-sec, 5,000 elsewhere) with a `connect_timeout` of 60 s: on
this box sserelay's TLS handshakes fell behind from about 500 a second
on (2,000 streams at 500/s took 58 s to connect, at 250/s 8 s; nginx
took 2 s at 5,000/s).  The measurement starts once every stream is up,
so the ramp changes how long a run takes, not its figures."""

from .. import metrics as m
from ..common import fmt, log, medians_of
from ..servers import make_tls
from ..sseload import base_case, report_generic
from ..sseload import run as run_sseload
from . import peruser

KEY = "tls"
NAME = "tls"
TITLE = "TLS: s3 per-user over HTTPS, sserelay and nginx+nchan"
PARAMS = dict(peruser.PARAMS, ramp=200, connect_timeout=60)
QUICK = dict(peruser.QUICK, ramp=200, connect_timeout=60)
CHECK_RATE = True
METRICS = [m.M_SCPU, m.M_USEV, m.M_P50US, m.M_P99US, m.M_MISS, m.M_CONN,
           m.M_PUB, m.M_EVS]


def sseload_args(p, server, srv, redis_url):
    return peruser.sseload_args(p, server, srv, redis_url) + [
        "--ramp-per-sec", str(p["ramp"]),
        "--connect-timeout", str(p["connect_timeout"])]


def cases(p, servers, args):
    return [dict(base_case(KEY, NAME, p, servers, args, sseload_args),
                 tls=True)]


def run(ctx, c, server, run):
    if ctx.get("tls") is None:
        ctx["tls"] = make_tls(ctx["tmp"])
    return run_sseload(ctx, c, server, run)


def report(ctx, p, results, servers):
    log("tls: scenario 3 over HTTPS (%s); heartbeat %d s; medians of %d "
        "run(s)" % ((ctx.get("tls") or {}).get("what", "no certificate"),
                    ctx["args"].heartbeat, ctx["runs"]))
    log("%-34s %12s %12s %8s  %s" % ("metric", "sserelay", "nchan", "ratio",
                                     "better"))
    report_generic(KEY, NAME, METRICS, p, results)
    if "nchan" not in servers:
        return
    cpu = [medians_of(results, (KEY, None, sv), m.M_SCPU[1])
           for sv in ("sserelay", "nchan")]
    if None not in cpu:
        log("  sserelay CPU / nchan CPU: %s (goal <= 1: %s)" % (
            fmt(cpu[0] / cpu[1] if cpu[1] else None, "%.2f"),
            "met" if cpu[0] <= cpu[1] else "NOT met"))
