"""curve: scenario 3 at several stream counts, sserelay and nchan; server
CPU per delivered event at each, the ratio last / first, and the plot
(bench-curve.txt, .dat, .gp, .png in --plot-dir).

Heartbeat 600 s keeps heartbeats out of the per-event figures (19,000
streams / 600 s = 32 pings/s against 2,000 events/s)."""

import os
import shutil
import subprocess
import time

from ..common import fmt, int_list, log, medians_of, span_of
from ..metrics import F_CORES, F_P50, F_P99, F_USEV
from .. import sseload
from ..sseload import base_case
from . import peruser

KEY = "curve"
NAME = "curve"
TITLE = ("scaling curve: s3 per-user at several stream counts, server CPU "
         "per delivered event")
PARAMS = dict(points="1000,5000,10000,19000", rate=2000, size=128,
              duration=10, heartbeat=600, nchan_pub_conns=4)
QUICK = dict(points="200,1000,2000", rate=500, size=128, duration=3,
             heartbeat=600, nchan_pub_conns=4)
CHECK_RATE = True


def cases(p, servers, args):
    one = base_case(KEY, NAME, p, servers, args, peruser.sseload_args)
    return [dict(one, key=n, label="n=%d" % n, p=dict(p, n=n),
                 hb=int(p["heartbeat"]))
            for n in int_list(p["points"])]


run = sseload.run    # a fresh server, one sseload run


def report(ctx, p, results, servers):
    """The curve table, the 'last / first' ratio, and the plot files."""
    scen = "curve"
    points = int_list(p["points"])
    runs = ctx["runs"]
    out = []
    out.append("curve: scenario 3 (per-user) at %s streams; %s msg/s in "
               "total, %s B, %s s per point, heartbeat %s s" % (
                   ", ".join(map(str, points)), p["rate"], p["size"],
                   p["duration"], p["heartbeat"]))
    out.append("medians of %d run%s, interleaved (run r: every point, "
               "%s); us/event = server CPU us / events delivered" % (
                   runs, "s" if runs > 1 else "", " then ".join(servers)))
    out.append("command : " + ctx["command"])
    out.append("source  : " + ctx["source"])
    grp = "%7s" % ""
    hdr = "%7s" % "streams"
    for sv in servers:
        grp += " | %s" % ("-" * 15 + " " + sv + " ").ljust(39, "-")
        hdr += " | %8s %7s %7s %6s %7s" % ("us/event", "p50 us", "p99 us",
                                           "cores", "missing")
    if len(servers) > 1:
        grp += " | %12s" % "ratio"
        hdr += " | %12s" % "us/event s/n"
    out += [grp, hdr]
    rows = []
    for n in points:
        line = "%7d" % n
        row = [n]
        for sv in servers:
            k = (scen, n, sv)
            ue = medians_of(results, k, F_USEV)
            lo, hi = span_of(results, k, F_USEV)
            p50 = medians_of(results, k, F_P50)
            p99 = medians_of(results, k, F_P99)
            lo99, hi99 = span_of(results, k, F_P99)
            co = medians_of(results, k, F_CORES)
            miss = medians_of(results, k, lambda j: j.get("missing"))
            line += " | %8s %7s %7s %6s %7s" % (
                fmt(ue, "%.2f"), fmt(p50, "%.0f"), fmt(p99, "%.0f"),
                fmt(co, "%.3f"), fmt(miss, "%.0f"))
            row += [ue, lo, hi, p50, p99, lo99, hi99]
        if len(servers) > 1:
            a = medians_of(results, (scen, n, servers[0]), F_USEV)
            b = medians_of(results, (scen, n, servers[1]), F_USEV)
            line += " | %12s" % (fmt(a / b, "%.2f") if a and b else "-")
        out.append(line)
        rows.append(row)
    # CPU per event at the last point / at the first, per server
    if len(points) > 1:
        first, last = points[0], points[-1]
        parts = []
        for sv in servers:
            a = medians_of(results, (scen, last, sv), F_USEV)
            b = medians_of(results, (scen, first, sv), F_USEV)
            per_run = []
            ra = results.get((scen, last, sv), [])
            rb = results.get((scen, first, sv), [])
            for ja, jb in zip(ra, rb):
                x, y = F_USEV(ja), F_USEV(jb)
                if x and y:
                    per_run.append("%.2f" % (x / y))
            goal = ""
            if sv == "sserelay" and a and b:
                goal = ", goal <= 1.5: %s" % (
                    "met" if a / b <= 1.5 else "NOT met")
            parts.append("%s %s%s%s" % (
                sv, fmt(a / b if a and b else None, "%.2fx"), goal,
                " (per run: %s)" % " ".join(per_run)
                if len(per_run) > 1 else ""))
        out.append("CPU per event at %d / at %d streams: %s" % (
            last, first, "; ".join(parts)))
    for line in out:
        log(line)
    write_curve_files(ctx, p, out, rows, servers)


def write_curve_files(ctx, p, table, rows, servers):
    d = ctx["plot_dir"]
    base = os.path.join(d, "bench-curve")
    with open(base + ".txt", "w") as f:
        f.write("\n".join(table) + "\n")
    cols = ["streams"]
    for sv in servers:
        cols += ["%s_%s" % (sv, c) for c in (
            "us_per_event", "us_per_event_min", "us_per_event_max",
            "p50_us", "p99_us", "p99_us_min", "p99_us_max")]
    with open(base + ".dat", "w") as f:
        f.write("# sserelay bench/run scaling curve, %s\n" % time.strftime(
            "%Y-%m-%d %H:%M:%S %Z"))
        f.write("# command: %s\n# source: %s\n" % (ctx["command"],
                                                   ctx["source"]))
        f.write("# medians (min, max) over %d runs; NaN: no data\n" %
                ctx["runs"])
        f.write("# " + " ".join(cols) + "\n")
        for r in rows:
            f.write(" ".join("NaN" if v is None else
                             ("%d" % v if isinstance(v, int) else "%.4f" % v)
                             for v in r) + "\n")
    gp = base + ".gp"
    title = "sserelay%s: s3 per-user, %s msg/s in total, medians of %d " \
        "run%s (bars: min-max)%s\\n%s" % (
            " vs nginx+nchan" if len(servers) > 1 else "", p["rate"],
            ctx["runs"], "s" if ctx["runs"] > 1 else "",
            ", QUICK" if ctx["args"].quick else "",
            ctx["source"].replace('"', "'").replace("\\", "/")[:100])
    styles = {"sserelay": "lc rgb '#1f77b4' pt 7",
              "nchan": "lc rgb '#d62728' pt 5"}
    cpu_plots, lat_plots = [], []
    for i, sv in enumerate(servers):
        c0 = 2 + 7 * i
        st = styles.get(sv, "")
        cpu_plots.append(
            "dat using 1:%d:%d:%d with yerrorlines lw 2 %s title '%s'" % (
                c0, c0 + 1, c0 + 2, st, sv))
        lat_plots.append(
            "dat using 1:%d:%d:%d with yerrorlines lw 2 %s title '%s p99'"
            % (c0 + 4, c0 + 5, c0 + 6, st, sv))
        lat_plots.append(
            "dat using 1:%d with linespoints lw 1 dt 2 %s title '%s p50'"
            % (c0 + 3, st, sv))
    term = "pngcairo size 900,900 font ',10'"
    with open(gp, "w") as f:
        f.write("""# gnuplot %(gp)s  (written by bench/run)
dat = '%(dat)s'
set terminal %(term)s
set output '%(png)s'
set multiplot layout 2,1 title "%(title)s"
set grid
set key top left opaque box
set xrange [0:*]
set yrange [0:*]
set xlabel 'streams (one user channel each)'
set ylabel 'server CPU per delivered event, us'
plot %(cpu)s
set logscale y
set yrange [*:*]
set ylabel 'latency, us (log)'
plot %(lat)s
unset multiplot
""" % dict(gp=os.path.basename(gp), dat=base + ".dat", term=term,
           png=base + ".png", title=title, cpu=", \\\n     ".join(cpu_plots),
           lat=", \\\n     ".join(lat_plots)))
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        log("plot    : gnuplot is not installed (apt-get install "
            "gnuplot-nox, or --install): wrote %s.dat and %s.gp, no PNG" % (
                base, base))
        return
    r = subprocess.run([gnuplot, gp], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode or not os.path.exists(base + ".png"):
        log("plot    : gnuplot failed:\n" + r.stdout[-2000:])
    else:
        log("plot    : %s.png (data %s.dat, script %s.gp, table %s.txt)" % (
            base, base, base, base))
