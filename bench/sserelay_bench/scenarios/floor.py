"""floor: the kernel's CPU for one loopback TCP write of one event, in
scenario 2's shape (10,000 streams, 20 msg/s, 192 B per event on the
wire), with no server: bench/floor/floor.c.

A server that writes each event in its own write cannot spend less per
delivered event than this on this box, whatever its own code costs; the
report sets it beside nchan's s2 CPU per event when s2 ran in the same
invocation (--scenarios 2,floor)."""

import json
import os
import shlex
import subprocess

from .. import SRCDIR
from ..common import build_c, fmt, log, medians_of, span_of
from ..metrics import F_USEV

KEY = "floor"
NAME = "floor"
TITLE = "kernel floor: one loopback TCP write per event, no server"
PARAMS = dict(n=10000, rate=20, bytes=192, duration=8)
QUICK = dict(n=1000, rate=20, bytes=192, duration=2)


def cases(p, servers, args):
    return [dict(key=None, label="", servers=["kernel"], scen=KEY,
                 name=NAME, p=p)]


def run(ctx, c, server, run):
    p = c["p"]
    floor = build_c(os.path.join(SRCDIR, "bench", "floor", "floor.c"),
                    os.path.join(ctx["build_dir"], "floor"), ["-lpthread"])
    cmd = ctx["pin_client"] + [floor, "-n", str(p["n"]), "-r",
                               str(p["rate"]), "-d", str(p["duration"]),
                               "-b", str(p["bytes"])]
    pr = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
    try:
        j = json.loads(pr.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        j = {"error": "floor: " + (pr.stderr.strip() or "no output")}
    if pr.returncode:
        j["exit_status"] = pr.returncode
    j.update(scenario=KEY, run=run, params=p, floor_cmd=shlex.join(cmd))
    ctx["outf"].write(json.dumps(j) + "\n")
    ctx["outf"].flush()
    return j


def summary(j):
    if "us_per_write" not in j:
        return j.get("error", "no result")
    return "%d writes to %d streams, %.2f us of CPU per write" % (
        j["writes"], j["streams"], j["us_per_write"])


def report(ctx, p, results, servers):
    g = lambda j: j.get("us_per_write")
    v = medians_of(results, (KEY, None, "kernel"), g)
    lo, hi = span_of(results, (KEY, None, "kernel"), g)
    log("floor: n=%s rate=%s bytes=%s duration=%s; medians of %d run(s)" % (
        p["n"], p["rate"], p["bytes"], p["duration"], ctx["runs"]))
    log("  kernel CPU per loopback write, us    %8s  (runs %s to %s)" % (
        fmt(v, "%.2f"), fmt(lo, "%.2f"), fmt(hi, "%.2f")))
    nchan = medians_of(results, (2, None, "nchan"), F_USEV)
    ours = medians_of(results, (2, None, "sserelay"), F_USEV)
    if nchan is not None and v is not None:
        log("  s2 CPU per event, us: nchan %s, sserelay %s; half of "
            "nchan's is %s, %s the floor" % (
                fmt(nchan, "%.2f"), fmt(ours, "%.2f"),
                fmt(nchan / 2, "%.2f"),
                "below" if nchan / 2 < v else "above"))
