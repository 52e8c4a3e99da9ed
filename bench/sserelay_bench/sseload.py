"""The load client: building bench/sseload, one case of a scenario that
sseload drives (a fresh server, one sseload run, the JSON record), and
the side-by-side table of the numbered scenarios."""

import json
import os
import re
import shlex
import subprocess
import tempfile
import time

from . import SRCDIR
from .common import build_c, die, fmt, log, medians_of, run_out, skey
from .procs import proc_ctxt
from .servers import Nchan, Sserelay, healthz_subset


def build_sseload(args, build_dir):
    if args.sseload:
        return os.path.abspath(args.sseload)
    out = build_c(os.path.join(SRCDIR, "bench", "sseload", "sseload.c"),
                  os.path.join(build_dir, "sseload"),
                  ["-lhiredis", "-lssl", "-lcrypto", "-lpthread"],
                  "libhiredis-dev and libssl-dev")
    st = run_out([out, "--self-test"])
    if "0 failed" not in st:
        die("sseload --self-test failed:\n" + st)
    return out


def default_build_dir(args):
    if args.build_dir:
        return os.path.abspath(args.build_dir)
    d = os.path.dirname(os.path.abspath(args.out))
    if os.path.commonpath([d, SRCDIR]) == SRCDIR:
        return os.path.join(tempfile.gettempdir(),
                            "sserelay-bench-build-%d" % os.getuid())
    return os.path.join(d, "bench-build")


def base_case(scen, name, p, servers, args, args_of=None):
    """A scenario's one case as the numbered scenarios have it; the
    others derive theirs from it.  key (None, or what tells the cases
    apart), label, the servers, the scenario (scen, name), its
    parameters, sseload's flags for it (args_of(p, server, srv,
    redis_url)), the daemon's heartbeat, threads and subscription mode,
    and TLS."""
    return dict(key=None, label="", servers=servers, scen=scen, name=name,
                p=p, args_of=args_of, hb=args.heartbeat,
                threads=args.threads, subscribe="pattern", tls=False)


def record(ctx, c, server, run, **kw):
    """The JSON line's own fields; kw (commands, and the subscription
    mode where it differs) follow them."""
    a = ctx["args"]
    return dict(scenario=skey(c["scen"]), scenario_name=c["name"],
                case=c["label"] or None, server=server, run=run,
                quick=a.quick, pinned=a.pin, heartbeat=c["hb"],
                threads=c["threads"], **kw)


def write_record(ctx, c, server, run, p, client_cmd, server_cmd, j):
    """For the scenarios with a client of their own (publish, storm,
    cluster)."""
    rec = record(ctx, c, server, run, subscribe=c["subscribe"], params=p,
                 client_cmd=client_cmd, server_cmd=server_cmd)
    rec.update(j)
    ctx["outf"].write(json.dumps(rec) + "\n")
    ctx["outf"].flush()


def start_server(ctx, c, server, run_id):
    a = ctx["args"]
    tls = ctx["tls"] if c["tls"] else None
    if server == "sserelay":
        return Sserelay(ctx["binary"], ctx["tmp"], ctx["redis"], c["hb"],
                        c["threads"], a.sserelay_arg, ctx["pin_server"],
                        c["subscribe"], tls=tls)
    return Nchan(ctx["tmp"], c["hb"], ctx["pin_server"], run_id, tls=tls)


def run(ctx, c, server, run):
    """One fresh server, one sseload run; returns the JSON record."""
    run_id = re.sub(r"[^\w.-]", "_", "%s-%s%s-r%d" % (
        skey(c["scen"]), c["label"] + "-" if c["label"] else "", server,
        run))
    srv = start_server(ctx, c, server, run_id)
    extra = {}
    try:
        p = c["p"]
        sa = c["args_of"](p, server, srv, ctx["redis"].url)
        if c["tls"]:
            sa += ["--tls-ca", ctx["tls"]["cert"]]
        n = int(p["n"])
        span = float(p.get("hold", 0)) + float(p.get("duration", 0))
        timeout = int(max(120, n / 5000 + span + 60))
        cmd = ctx["pin_client"] + [ctx["sseload"], "-q", "--server-pid",
                                   ",".join(map(str, srv.pids)),
                                   "--timeout", str(timeout)] + sa
        errpath = os.path.join(ctx["tmp"], run_id + ".stderr")
        cs0 = [proc_ctxt(pid) for pid in srv.pids]
        rc0, t0 = ctx["redis"].cpu_s(), time.time()
        with open(errpath, "w") as ef:
            pr = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=ef,
                                text=True)
        t1, rc1 = time.time(), ctx["redis"].cpu_s()
        cs1 = [proc_ctxt(pid) for pid in srv.pids]
        extra["wall_s"] = round(t1 - t0, 3)
        if rc0 is not None and rc1 is not None:
            extra["redis_cpu_s"] = round(rc1 - rc0, 3)
        if None not in cs0 and None not in cs1:
            extra["ctxt_voluntary"] = sum(x[0] for x in cs1) - sum(
                x[0] for x in cs0)
            extra["ctxt_nonvoluntary"] = sum(x[1] for x in cs1) - sum(
                x[1] for x in cs0)
            extra["server_threads"] = sum(x[2] for x in cs1)
        if server == "sserelay":
            extra["healthz"] = healthz_subset(srv.healthz())
        line = pr.stdout.strip().splitlines()
        try:
            j = json.loads(line[-1])
        except (IndexError, ValueError):
            j = {"error": "no JSON from sseload",
                 "exit_status": pr.returncode}
            log("  %s: sseload failed (exit %d):\n%s" % (
                run_id, pr.returncode, open(errpath).read()[-3000:]))
        if pr.returncode:
            j["exit_status"] = pr.returncode
    finally:
        srv.stop()
    j.update(extra)
    rec = record(ctx, c, server, run, subscribe=c["subscribe"]
                 if server == "sserelay" else None, params=p,
                 sseload_cmd=shlex.join(cmd), server_cmd=shlex.join(srv.cmd))
    rec.update(j)
    ctx["outf"].write(json.dumps(rec) + "\n")
    ctx["outf"].flush()
    return j


def report_generic(scen, name, metrics, p, results):
    """The side-by-side table: a row per metric, medians of sserelay and
    nchan and their ratio."""
    w = 34
    log("%s: %s" % (skey(scen) + (" " + name if isinstance(scen, int)
                                  else ""),
                    " ".join("%s=%s" % kv for kv in p.items())))
    for label, f, better, vf in metrics:
        label = label.format(**p)
        vs = medians_of(results, (scen, None, "sserelay"), f)
        vn = medians_of(results, (scen, None, "nchan"), f)
        ratio = "-"
        if vs is not None and vn:
            ratio = "%.2f" % (vs / vn)
        log("  %-*s %12s %12s %8s  %s" % (w - 2, label, fmt(vs, vf),
                                           fmt(vn, vf), ratio, better))


def pub_args(server, srv, redis_url, channel, http_path, conns=None):
    """The publisher's flags: PUBLISH to Redis for sserelay, POST to the
    nchan API otherwise (it takes publishes over HTTP only)."""
    if server == "sserelay":
        return ["--pub-redis", redis_url, "--channel", channel]
    return ["--pub-http", srv.pub_base + http_path] + (
        ["--pub-conns", str(conns)] if conns is not None else [])


def rate_args(p):
    """Size, rate and duration of a scenario with a publisher."""
    return ["--size", str(p["size"]), "--rate", str(p["rate"]),
            "--duration", str(p["duration"])]
