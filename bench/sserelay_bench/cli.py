"""bench/run's command line: the flags, the header, every scenario's runs
(interleaved: sserelay, nchan, sserelay, ...), the tables, the
anomalies."""

import argparse
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from . import SRCDIR
from .common import box_info, die, log, run_out, skey
from .metrics import anomalies_of, summary_line
from .redis import Redis, Workspace
from .registry import KEYS, SCENARIOS, parse_scenarios, scenario_params
from .servers import NCHAN_MODULE
from .sseload import build_sseload, default_build_dir

APT_PACKAGES = ["nginx", "libnginx-mod-nchan", "redis-server", "gnuplot-nox"]


def parse_args():
    ap = argparse.ArgumentParser(
        description="sserelay vs nginx+nchan side by side (loopback only).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Scenarios: " + "; ".join(
            "%s %s" % (skey(k), SCENARIOS[k].TITLE) for k in KEYS))
    ap.add_argument("--sserelay", help="the daemon to test "
                    "[./src/sserelay]")
    ap.add_argument("--out", default="bench-results.jsonl",
                    help="append raw sseload JSON lines here "
                    "[%(default)s]")
    ap.add_argument("--build-dir", help="where sseload is built "
                    "[directory of --out, or a temp dir if that is in the "
                    "source tree]")
    ap.add_argument("--sseload", help="use this sseload binary instead of "
                    "building bench/sseload")
    ap.add_argument("--runs", type=int, help="runs per scenario and server "
                    "[3; 1 with --quick]")
    ap.add_argument("--scenarios", default=os.environ.get(
        "SSERELAY_BENCH_SCENARIOS", "all"),
        help="comma list of numbers and names: 1-5 (or idle, fanout, "
        "peruser, flatout, multi), curve, threads, heartbeat, firehose, "
        "publish, storm, outage, cluster, tls, presence, floor, all "
        "[%(default)s]")
    ap.add_argument("--plot-dir", help="where the curve's PNG, data and "
                    "table go [the directory of --out]")
    ap.add_argument("--quick", action="store_true",
                    help="smaller N and shorter runs (smoke test)")
    ap.add_argument("--heartbeat", type=int, default=int(os.environ.get(
        "SSERELAY_BENCH_HEARTBEAT", "5")),
        help="sserelay --heartbeat and nchan ping interval, s "
        "[%(default)s]")
    ap.add_argument("--threads", type=int, default=int(os.environ.get(
        "SSERELAY_BENCH_THREADS", "0")) or None,
        help="sserelay --threads, its writer threads [the daemon's "
        "default: one per processor]")
    ap.add_argument("--sserelay-arg", action="append", default=[],
                    metavar="ARG", help="extra sserelay argument "
                    "(repeatable), e.g. --sserelay-arg=--ring-size=1024")
    ap.add_argument("--set", action="append", default=[],
                    metavar="SCEN.KEY=VALUE",
                    help="scenario parameter, e.g. s2.rate=50, s1.n=10000, "
                    "curve.points=1000,19000, threads.threads=1,4")
    ap.add_argument("--list", action="store_true",
                    help="print the scenario parameters and exit")
    ap.add_argument("--pin", action="store_true",
                    help="taskset: client on CPU 0, servers and Redis on "
                    "the other CPUs")
    ap.add_argument("--install", action="store_true",
                    help="apt-get install " + " ".join(APT_PACKAGES) +
                    " if missing")
    ap.add_argument("--no-nchan", action="store_true",
                    help="run sserelay only")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (server logs, sseload stderr)")
    return ap.parse_args()



def maybe_install(args):
    missing = []
    if not shutil.which("nginx"):
        missing.append("nginx")
    if not os.path.exists(NCHAN_MODULE):
        missing.append("libnginx-mod-nchan")
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if not shutil.which("gnuplot"):
        missing.append("gnuplot-nox")   # the curve's PNG
    if missing and args.install:
        log("installing: " + " ".join(missing))
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "update", "-q"], env=env)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q"] + missing,
                       env=env)
        # Debian starts the packaged services: the benchmark uses its own
        # instances on free ports, so they are left alone.


def main():
    args = parse_args()
    params = scenario_params(args)
    if args.list:
        for k in KEYS:
            log("%-9s %-8s %s" % (skey(k), SCENARIOS[k].NAME
                                  if isinstance(k, int) else "",
                                  " ".join("%s=%s" % kv
                                           for kv in params[k].items())))
        return 0
    scen_list = parse_scenarios(args.scenarios)
    runs = args.runs or int(os.environ.get("SSERELAY_BENCH_RUNS", "0")) or \
        (1 if args.quick else 3)

    binary = args.sserelay or os.path.join(os.getcwd(), "src", "sserelay")
    binary = os.path.abspath(binary)
    if not os.access(binary, os.X_OK):
        die("no sserelay binary at %s (use --sserelay PATH)" % binary)

    maybe_install(args)
    if not shutil.which("redis-server"):
        die("redis-server is not installed (use --install)")
    cluster_note = None
    if "cluster" in scen_list and not shutil.which("redis-cli"):
        # Debian's redis-server depends on redis-tools, which has it
        scen_list.remove("cluster")
        cluster_note = ("the cluster scenario needs redis-cli (Debian: "
                        "redis-tools) to create the cluster: left out")
    if "tls" in scen_list and not shutil.which("openssl"):
        scen_list.remove("tls")
        cluster_note = ((cluster_note + "; ") if cluster_note else "") + (
            "the tls scenario needs openssl (Debian: openssl) for its "
            "certificate: left out")
    nchan_ok = bool(shutil.which("nginx")) and os.path.exists(NCHAN_MODULE)
    nchan_note = None
    if args.no_nchan:
        nchan_ok, nchan_note = False, "nchan skipped (--no-nchan)"
    elif not nchan_ok:
        nchan_note = ("nginx with the nchan module is not installed "
                      "(%s): running sserelay only; --install adds it"
                      % NCHAN_MODULE)
    plot_dir = os.path.abspath(args.plot_dir or os.path.dirname(
        os.path.abspath(args.out)))
    if "curve" in scen_list:
        os.makedirs(plot_dir, exist_ok=True)

    # file descriptors: soft limit up to the hard limit (inherited by all)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    ncpu, kernel, model, mem = box_info()
    pin_client, pin_server = [], []
    if args.pin:
        if ncpu < 2 or not shutil.which("taskset"):
            die("--pin needs taskset and at least 2 CPUs")
        pin_client = ["taskset", "-c", "0"]
        pin_server = ["taskset", "-c", "1-%d" % (ncpu - 1)]

    build_dir = default_build_dir(args)
    sseload = build_sseload(args, build_dir)

    nchan_ver = run_out(["dpkg-query", "-W", "-f", "${Version}",
                         "libnginx-mod-nchan"], stderr=False) or "?"
    command = shlex.join([sys.argv[0]] + sys.argv[1:])
    # a worktree's .git is a file, not a directory
    source = "unknown (not a git checkout: %s)" % SRCDIR
    if os.path.exists(os.path.join(SRCDIR, ".git")):
        head = run_out(["git", "-C", SRCDIR, "log", "-1",
                        "--format=%h %s"], stderr=False)
        dirty = run_out(["git", "-C", SRCDIR, "status", "--porcelain",
                         "--untracked-files=no"], stderr=False)
        source = head + (" (+ uncommitted changes)" if dirty else "")
    log("=" * 78)
    log("sserelay benchmark  %s" % time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    log("command : " + command)
    log("cwd     : " + os.getcwd())
    log("box     : %d CPUs, %s, kernel %s, %s RAM, load %s" % (
        ncpu, model, kernel, mem,
        " ".join("%.2f" % x for x in os.getloadavg())))
    log("sserelay: %s (%s, built %s)" % (
        run_out([binary, "--version"]), binary,
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(
            os.path.getmtime(binary)))))
    log("source  : " + source)
    if nchan_ok:
        log("nginx   : %s, libnginx-mod-nchan %s, 2 workers" % (
            run_out(["nginx", "-v"]).replace("nginx version: ", ""),
            nchan_ver))
    log("redis   : " + run_out(["redis-server", "--version"]))
    log("libs    : libmicrohttpd %s, hiredis %s" % (
        run_out(["pkg-config", "--modversion", "libmicrohttpd"]),
        run_out(["pkg-config", "--modversion", "hiredis"])))
    log("client  : %s (bench/sseload)" % sseload)
    log("settings: runs %d, heartbeat %d s, sserelay threads %s, "
        "open files %d%s%s" % (
            runs, args.heartbeat, args.threads or "default", nofile,
            ", QUICK" if args.quick else "",
            ", extra sserelay args: " + " ".join(args.sserelay_arg)
            if args.sserelay_arg else ""))
    log("pinning : " + ("client on CPU 0, servers and Redis on CPUs 1-%d"
                        % (ncpu - 1) if args.pin else
                        "off (client, servers and Redis share all CPUs)"))
    if nchan_note:
        log("NOTE    : " + nchan_note)
    if cluster_note:
        log("NOTE    : " + cluster_note)
    log("=" * 78)

    servers = ["sserelay"] + (["nchan"] if nchan_ok else [])
    tmp = tempfile.mkdtemp(prefix="sserelay-bench-")
    ws = Workspace(tmp)
    redis = Redis(ws, pin_server)
    results = {}   # (scen, case key, server) -> [json]
    anomalies = []
    outf = open(args.out, "a")
    ctx = dict(args=args, binary=binary, tmp=tmp, ws=ws, redis=redis,
               pin_client=pin_client, pin_server=pin_server,
               sseload=sseload, outf=outf, runs=runs, command=command,
               source=source, plot_dir=plot_dir, build_dir=build_dir)
    t_start = time.time()
    try:
        for scen in scen_list:
            mod = SCENARIOS[scen]
            p = params[scen]
            cases = mod.cases(p, servers, args)
            log("\n-- %s: %s (%s)" % (
                skey(scen) + (" " + mod.NAME if isinstance(scen, int)
                              else ""), mod.TITLE,
                " ".join("%s=%s" % kv for kv in p.items())))
            for run in range(1, runs + 1):
                for c in getattr(mod, "order", lambda cs, r: cs)(cases, run):
                    order = getattr(mod, "servers_order",
                                    lambda sv, r: sv)(c["servers"], run)
                    for server in order:
                        j = mod.run(ctx, c, server, run)
                        results.setdefault((scen, c["key"], server),
                                           []).append(j)
                        an = anomalies_of(j) + getattr(
                            mod, "anomalies", lambda j: [])(j)
                        # the named scenarios compare at a fixed rate
                        if (getattr(mod, "CHECK_RATE", False) and
                                j.get("published_per_s")
                                is not None and float(j["published_per_s"])
                                < 0.9 * float(p["rate"])):
                            an.append("published %.0f msg/s of %s asked" % (
                                j["published_per_s"], p["rate"]))
                        what = server + (" " + c["label"] if c["label"]
                                         else "")
                        if an:
                            anomalies.append("%s %s run %d: %s" % (
                                skey(scen), what, run, ", ".join(an)))
                        log("  %-8s run %d/%d: %s%s" % (
                            what, run, runs, getattr(
                                mod, "summary", summary_line)(j),
                            "  [" + "; ".join(an) + "]" if an else ""))
    finally:
        outf.close()
        redis.stop()
        if ctx.get("cluster"):
            ctx["cluster"].stop()
        ws.cleanup()
        if args.keep:
            log("\nkept: " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- the tables ----
    log("\n" + "=" * 78)
    log("MEDIANS over %d run%s per server%s%s; ratio = sserelay / nchan" % (
        runs, "s" if runs > 1 else "",
        "; PINNED: client CPU 0, servers+Redis CPUs 1-%d" % (ncpu - 1)
        if args.pin else "; not pinned", "; QUICK" if args.quick else ""))
    log("server CPU: sserelay process, or both nginx workers (Redis not "
        "counted); cores = CPU s / measured s")
    generic_hdr = "%-*s %12s %12s %8s  %s" % (
        34, "metric", "sserelay", "nchan" if nchan_ok else "(nchan)",
        "ratio", "better")
    for scen in scen_list:
        mod = SCENARIOS[scen]
        log("-" * 78)
        if getattr(mod, "GENERIC", False) and generic_hdr:
            log(generic_hdr)
            generic_hdr = None
        mod.report(ctx, params[scen], results, servers)
    log("=" * 78)
    log("anomalies (connect failures, non-200, closed early, missing, ...):")
    for a in anomalies or ["none"]:
        log("  " + a)
    log("raw JSON lines appended to %s; total %.0f s" % (
        os.path.abspath(args.out), time.time() - t_start))
    return 0

