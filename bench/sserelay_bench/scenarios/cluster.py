"""cluster: scenario 3 against one Redis (PUBLISH) and against a Redis
Cluster of `primaries` primaries (SPUBLISH on each channel's primary),
sserelay only.  sseload cannot SPUBLISH: it listens, and bench/run
publishes its payloads itself (run).  Cases: single (one Redis,
--subscribe pattern, as scenario 3), exact (one Redis, --subscribe
exact, as the cluster subscribes) and cluster; run r goes through them
in order, run r + 1 in the reverse order."""

import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import time

from topology import keyslot

from ..common import die, fmt, log, medians_of, str_list
from ..metrics import F_P50, F_P99
from ..procs import proc_cpu_s
from ..redis import Cluster
from ..servers import Sserelay, healthz_subset
from ..sseload import base_case, write_record

KEY = "cluster"
NAME = "cluster"
TITLE = ("cluster: s3 per-user, sserelay against one Redis (PUBLISH) and a "
         "Redis Cluster (SPUBLISH); no nchan")
PARAMS = dict(n=10000, rate=2000, size=128, duration=10, heartbeat=600,
              primaries=3, cases="single,cluster", drain=5)
QUICK = dict(PARAMS, n=1000, rate=500, duration=3)
CHECK_RATE = True
CLUSTER_CASES = ("single", "exact", "cluster")
PROGRESS_RE = re.compile(r"\]\s+(\w+)\s+connected=(\d+).*?\bdelivered=(\d+)")


def cases(p, servers, args):
    modes = str_list(p["cases"])
    for mo in modes:
        if mo not in CLUSTER_CASES:
            die("cluster.cases: %r is not one of %s" % (
                mo, ", ".join(CLUSTER_CASES)))
    one = base_case(KEY, NAME, p, ["sserelay"], args)
    return [dict(one, key=mo, label=mo, hb=int(p["heartbeat"]),
                 subscribe="pattern" if mo == "single" else "exact")
            for mo in modes]


def order(cases, run):
    """Single Redis first, then the cluster, then the other way."""
    return cases[::-1] if run % 2 == 0 else cases


def anomalies(j):
    """sseload listened; bench/run published and counts the rest."""
    a = []
    for key in ("stale_events", "extra_events", "unanswered",
                "publish_first_error", "sseload_ended_first"):
        if j.get(key):
            a.append("%s %s" % (key, j[key]))
    if j.get("redis_receivers") is not None and j.get("published") \
            and j["redis_receivers"] < j["published"]:
        a.append("Redis counted %s receivers for %s messages" % (
            j["redis_receivers"], j["published"]))
    return a


def cluster_of(ctx, p):
    """The Redis Cluster, started on first use and kept for the rest."""
    if ctx.get("cluster") is None:
        t0 = time.time()
        ctx["cluster"] = Cluster(ctx["ws"], ctx["pin_server"],
                                 int(p["primaries"]))
        cl = ctx["cluster"]
        per = [cl.slot_port.count(port) for port in cl.ports]
        log("  (Redis Cluster: %d primaries on ports %s, slots %s, no "
            "replicas, up in %.1f s)" % (
                len(cl.ports), ",".join(map(str, cl.ports)),
                "/".join(map(str, per)), time.time() - t0))
    return ctx["cluster"]


def sseload_payload(seq, ch, size):
    """sseload's own payload: its per-channel sequence, its channel number
    and its send time (CLOCK_REALTIME ns), padded with x to size bytes."""
    head = b'{"seq":%d,"ch":%d,"t":%d,"pad":"' % (seq, ch, time.time_ns())
    return head + b"x" * (size - len(head) - 2) + b'"}'


def paced_publish(ports, routes, rate, messages, size, timeout=30.0):
    """Publish `messages` of sseload's payloads round robin over the
    channels (message m to channel m % K, as sseload does), message m at
    m / rate s after the start, open loop: one connection per Redis port,
    each message written when it is due (those already due go out
    together, one write per connection), the replies read whenever they
    come.  routes[k] = (index into ports, the command's bytes up to its
    payload), so each channel goes to the node that serves it.  Returns a
    dict of counts and times."""
    socks = []
    for port in ports:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    nk = len(routes)
    seq = [0] * nk
    sent_to = [0] * len(ports)
    outstanding = [0] * len(ports)
    tails = [b""] * len(ports)
    st = dict(redis_receivers=0, publish_errors=0, publish_first_error=None)
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}

    def read(i):
        try:
            d = socks[i].recv(1 << 16)
        except BlockingIOError:
            return
        if not d:
            raise OSError("Redis on port %d closed the connection" %
                          ports[i])
        lines = (tails[i] + d).split(b"\r\n")
        tails[i] = lines.pop()
        for line in lines:
            outstanding[i] -= 1
            if line[:1] == b":":
                st["redis_receivers"] += int(line[1:])
            else:
                st["publish_errors"] += 1
                if st["publish_first_error"] is None:
                    st["publish_first_error"] = line[:200].decode(
                        "utf-8", "replace")

    def write(i, data):
        socks[i].setblocking(True)
        try:
            socks[i].sendall(data)
        finally:
            socks[i].setblocking(False)

    cpu0 = sum(os.times()[:2])
    t0 = time.monotonic()
    sent = 0
    try:
        while sent < messages:
            now = time.monotonic()
            due = min(messages, int((now - t0) * rate) + 1)
            if due > sent:
                bufs = [[] for _ in ports]
                for m in range(sent, due):
                    k = m % nk
                    i, head = routes[k]
                    bufs[i].append(head)
                    bufs[i].append(sseload_payload(seq[k], k, size))
                    bufs[i].append(b"\r\n")
                    seq[k] += 1
                    sent_to[i] += 1
                    outstanding[i] += 1
                for i, b in enumerate(bufs):
                    if b:
                        write(i, b"".join(b))
                sent = due
                wait = 0
            else:
                wait = max(0.0, t0 + sent / rate - now)
            r, _, _ = select.select(socks, [], [], wait)
            for s in r:
                read(by_fd[s.fileno()])
        t_sent = time.monotonic()
        end = t_sent + timeout
        while any(outstanding) and time.monotonic() < end:
            r, _, _ = select.select(socks, [], [], 0.5)
            for s in r:
                read(by_fd[s.fileno()])
    except OSError as e:
        st["publish_errors"] += 1
        st["publish_first_error"] = st["publish_first_error"] or \
            "publisher: %s" % e
        t_sent = time.monotonic()
    finally:
        for s in socks:
            s.close()
    t_done = time.monotonic()
    st.update(published=sent, publish_s=round(t_sent - t0, 4),
              published_per_s=round(sent / (t_sent - t0), 1)
              if t_sent > t0 else None,
              replies_s=round(t_done - t0, 4),
              unanswered=sum(outstanding), sent_per_node=sent_to,
              publisher_cpu_s=round(sum(os.times()[:2]) - cpu0, 3),
              per_channel=seq)
    return st


def run(ctx, c, server, run):
    """One case of the cluster scenario: a fresh sserelay on one Redis
    (single: --subscribe pattern; exact: --subscribe exact) or on the
    Redis Cluster (--redis-cluster, sharded), N streams by sseload in
    listen mode, and this script publishing sseload's payloads: PUBLISH
    to the one Redis, or SPUBLISH to the primary of each channel's
    slot.  CPU of the daemon and of every Redis node from the first
    message to the daemon's last event written (/healthz)."""
    a, p, case = ctx["args"], c["p"], c["key"]
    n, size = int(p["n"]), int(p["size"])
    rate, duration = float(p["rate"]), float(p["duration"])
    drain = float(p["drain"])
    messages = int(round(rate * duration))
    cl = cluster_of(ctx, p) if case == "cluster" else None
    chans = [b"user:u%d" % k for k in range(n)]
    # the longest payload head must fit
    longest = len(b'{"seq":%d,"ch":%d,"t":%d,"pad":""}' % (
        messages // max(1, n) + 1, n, time.time_ns() * 10))
    if size < longest:
        die("cluster.size %d: sseload's payload needs %d bytes here" % (
            size, longest))
    if cl:
        ports = cl.ports
        verb = b"SPUBLISH"
        node = [ports.index(cl.slot_port[keyslot(ch)]) for ch in chans]
        redis_pids = list(cl.pids)
    else:
        ports = [ctx["redis"].port]
        verb = b"PUBLISH"
        node = [0] * n
        redis_pids = [ctx["redis"].pid]
    routes = [(node[k], b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n" % (
        len(verb), verb, len(ch), ch, size)) for k, ch in enumerate(chans)]
    run_id = "cluster-%s-r%d" % (case, run)
    srv = Sserelay(ctx["binary"], ctx["tmp"], ctx["redis"], c["hb"],
                   c["threads"], a.sserelay_arg, ctx["pin_server"],
                   c["subscribe"], cluster=cl)
    # sseload listens long enough for anything; it is stopped (SIGINT,
    # it still reports) once every event is in
    listen = int(duration * 2 + drain + 30)
    timeout = int(max(120, n / 5000 + listen + 60))
    cmd = ctx["pin_client"] + [
        ctx["sseload"], "--server-pid", str(srv.proc.pid),
        "--timeout", str(timeout), "-n", str(n),
        "--url", "http://127.0.0.1:%d/events?user=u{i}" % srv.port,
        "--channels", str(n), "--size", str(size),
        "--duration", str(listen)]
    errpath = os.path.join(ctx["tmp"], run_id + ".stderr")
    j = dict(cluster_case=case, redis_nodes=len(ports))
    pr = old_aff = pub = cpu0 = cpu1 = None
    out, expected, t0, t1, h0, h1 = "", 0, 0.0, 0.0, {}, {}
    try:
        ef = open(errpath, "w")
        pr = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=ef, text=True)
        rf = open(errpath, errors="replace")
        buf, progress = "", []

        def poll_progress():
            """sseload's once-a-second progress lines: (phase,
            connected, delivered)."""
            nonlocal buf
            buf += rf.read()
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                mm = PROGRESS_RE.search(line)
                if mm:
                    progress.append((mm.group(1), int(mm.group(2)),
                                     int(mm.group(3))))
        # wait for the measurement: the first "listen" line comes within
        # a second of its start (events sent before it would be stale)
        end = time.time() + n / 1000 + 60
        while time.time() < end and pr.poll() is None:
            poll_progress()
            if progress and progress[-1][0] == "listen":
                break
            time.sleep(0.02)
        if not progress or progress[-1][0] != "listen":
            j["error"] = "sseload never reached its measurement"
            raise RuntimeError(j["error"])
        j["connected_at_start"] = progress[-1][1]
        h0 = srv.healthz()
        pids = [srv.proc.pid] + redis_pids
        cpu0 = [proc_cpu_s(x) for x in pids]
        if a.pin:
            # the publisher is client side, as sseload's own thread is
            old_aff = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {0})
        t0 = time.time()
        pub = paced_publish(ports, routes, rate, messages, size)
        if old_aff is not None:
            os.sched_setaffinity(0, old_aff)
            old_aff = None
        per_channel = pub.pop("per_channel")
        expected = sum(per_channel)     # one stream per channel
        # the daemon is done when it has written every event
        srv.wait_delivered(h0, expected, drain, 1)
        t1 = time.time()
        cpu1 = [proc_cpu_s(x) for x in pids]
        h1 = srv.healthz()
        # and sseload when it has read them (or has read nothing new for
        # two progress lines, or the drain is over)
        end, seen, same = time.time() + drain, len(progress), 0
        while time.time() < end and pr.poll() is None:
            poll_progress()
            if len(progress) > seen:
                if progress[-1][2] >= expected:
                    break
                same = same + 1 if progress[-1][2] == progress[seen - 1][2] \
                    else 0
                seen = len(progress)
                if same >= 2:
                    break
            time.sleep(0.05)
        if pr.poll() is None:
            pr.send_signal(signal.SIGINT)
        else:
            j["sseload_ended_first"] = True
        out, _ = pr.communicate(timeout=60)
        ef.close()
        rf.close()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        if pr is not None and pr.poll() is None:
            pr.kill()
            pr.communicate()
        j.setdefault("error", str(e))
    finally:
        if old_aff is not None:
            os.sched_setaffinity(0, old_aff)
        srv.stop()
    try:
        sj = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        sj = {}
        j.setdefault("error", "no JSON from sseload")
        log("  %s: sseload failed (exit %s):\n%s" % (
            run_id, pr.returncode if pr else "-",
            open(errpath).read()[-3000:]))
    if pr is not None and pr.returncode:
        j["exit_status"] = pr.returncode
    # sseload's listen mode takes the first sequence number it sees on a
    # channel as its start and knows nothing of what was sent: the
    # expected events and the missing ones are counted here
    sj["sseload_expected_events"] = sj.get("expected_events")
    sj["sseload_missing"] = sj.get("missing")
    sj["sseload_published"] = sj.get("published")
    sj.update(j)
    j = sj
    if pub is not None and cpu1 is not None:
        j.update(pub)
        uniq = j.get("delivered_events", 0) - j.get("duplicates", 0)
        j["expected_events"] = expected
        j["missing"] = max(0, expected - uniq)
        j["extra_events"] = max(0, uniq - expected)
        j["cpu_window_s"] = round(t1 - t0, 3)
        if None not in cpu0 + cpu1:
            j["sserelay_cpu_s"] = round(cpu1[0] - cpu0[0], 3)
            j["redis_cpu_by_node_s"] = [round(y - x, 3) for x, y in
                                        zip(cpu0[1:], cpu1[1:])]
            j["redis_cpu_s"] = round(sum(j["redis_cpu_by_node_s"]), 3)
        for k in ("events_delivered", "redis_messages", "slow_closes",
                  "redis_reconnects", "redis_subscribes"):
            if k in h0 and k in h1:
                j["daemon_" + k] = h1[k] - h0[k]
        j["healthz"] = healthz_subset(h1)
    if a.keep:
        log("  (sseload's log: %s)" % errpath)
    write_record(ctx, c, "sserelay", run, p,
                 shlex.join(cmd) + "  + bench/run publishing: %s" %
                 verb.decode(), shlex.join(srv.cmd), j)
    return j


def summary(j):
    if j.get("error"):
        return "error: %s" % j["error"]
    lat_ = j.get("latency_us") or {}
    return ("%s/%s connected, %s/%s events (missing %s), %s msg/s %s, "
            "p50 %s us, p99 %s us, sserelay %s cores %s us/event, "
            "Redis %s cores (%s node%s)" % (
                j.get("connected"), j.get("connections_requested"),
                j.get("delivered_events"), j.get("expected_events"),
                j.get("missing"), fmt(j.get("published_per_s"), "%.0f"),
                "SPUBLISH" if j.get("cluster_case") == "cluster"
                else "PUBLISH", fmt(lat_.get("p50"), "%.0f"),
                fmt(lat_.get("p99"), "%.0f"),
                fmt(cl_cores(j, "sserelay_cpu_s"), "%.3f"),
                fmt(cl_us_event(j), "%.2f"),
                fmt(cl_cores(j, "redis_cpu_s"), "%.3f"),
                j.get("redis_nodes"), "s" if j.get("redis_nodes", 1) > 1
                else ""))


def cl_cores(j, key):
    v, w = j.get(key), j.get("cpu_window_s")
    return v / w if v is not None and w else None


def cl_us_event(j):
    v, e = j.get("sserelay_cpu_s"), j.get("delivered_events")
    return v * 1e6 / e if v is not None and e else None


def cl_redis_us_msg(j):
    v, m = j.get("redis_cpu_s"), j.get("published")
    return v * 1e6 / m if v is not None and m else None


def report(ctx, p, results, servers):
    scen = "cluster"
    keys = [c["key"] for c in cases(p, ["sserelay"], ctx["args"])]
    cl = ctx.get("cluster")
    log("cluster: sserelay only (nchan is not part of it), scenario 3: %s "
        "streams, stream i on user:u<i>, %s msg/s in total round robin, "
        "%s B, %s s, heartbeat %s s; medians of %d run(s), the cases "
        "interleaved" % (p["n"], p["rate"], p["size"], p["duration"],
                         p["heartbeat"], ctx["runs"]))
    desc = dict(single="one redis-server, sserelay --redis (--subscribe "
                "pattern), PUBLISH",
                exact="one redis-server, sserelay --redis --subscribe "
                "exact, PUBLISH",
                cluster="Redis Cluster of %s primaries%s, sserelay "
                "--redis-cluster (sharded), SPUBLISH on each channel's "
                "primary" % (p["primaries"], " (ports %s)" % ",".join(
                    map(str, cl.ports)) if cl else ""))
    for m in keys:
        log("  %-8s %s" % (m, desc[m]))
    log("  publisher: bench/run (sseload listens), same for every case")
    f = "  %-8s %10s %8s %7s %7s %8s %8s %7s %8s %7s"
    log(f % ("", "events", "", "latency", "latency", "sserelay",
             "sserelay", "Redis", "Redis", "msg/s"))
    log(f % ("case", "delivered", "missing", "p50 us", "p99 us", "cores",
             "us/event", "cores", "us/msg", "publ."))
    med = {}
    for m in keys:
        k = (scen, m, "sserelay")
        g = lambda fn: medians_of(results, k, fn)
        med[m] = dict(us=g(cl_us_event), p99=g(F_P99), p50=g(F_P50),
                      rc=g(lambda j: cl_cores(j, "redis_cpu_s")),
                      rus=g(cl_redis_us_msg),
                      sc=g(lambda j: cl_cores(j, "sserelay_cpu_s")))
        log(f % (m, fmt(g(lambda j: j.get("delivered_events")), "%.0f"),
                 fmt(g(lambda j: j.get("missing")), "%.0f"),
                 fmt(med[m]["p50"], "%.0f"), fmt(med[m]["p99"], "%.0f"),
                 fmt(med[m]["sc"], "%.3f"), fmt(med[m]["us"], "%.2f"),
                 fmt(med[m]["rc"], "%.3f"), fmt(med[m]["rus"], "%.2f"),
                 fmt(g(lambda j: j.get("published_per_s")), "%.0f")))
    if cl:
        for m in keys:
            if m != "cluster":
                continue
            by = [j.get("redis_cpu_by_node_s") for j in
                  results.get((scen, m, "sserelay"), [])]
            by = [b for b in by if b]
            if by:
                log("  Redis CPU s per node (cluster, per run): %s" % "; ".join(
                    "/".join("%.2f" % x for x in b) for b in by))
    if "cluster" in med:
        for base in ("single", "exact"):
            if base not in med:
                continue
            a, b = med["cluster"], med[base]
            r = lambda x, y: fmt(x / y if x is not None and y else None,
                                 "%.2f")
            log("  cluster / %s: sserelay us/event %s, Redis CPU %s, "
                "p50 %s, p99 %s" % (base, r(a["us"], b["us"]),
                                    r(a["rc"], b["rc"]),
                                    r(a["p50"], b["p50"]),
                                    r(a["p99"], b["p99"])))
    log("  (CPU from /proc/PID/stat, from the first message published to "
        "the daemon's last event written (/healthz events_delivered); "
        "cores = CPU s / that window; Redis: the one server, or the sum "
        "over the cluster's nodes; missing: what bench/run published to "
        "the streams' channels less the distinct events sseload counted)")
