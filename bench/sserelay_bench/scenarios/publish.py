"""publish (--history redis): FCALL sserelay_publish against PUBLISH, from
one pipelined publisher (bench/run itself), with no subscriber at all
(subs=none) and with a daemon and streams (subs=streams).  sserelay
only, no sseload: the "servers" of its cases are the two commands,
interleaved, FCALL first in odd runs and PUBLISH first in even ones."""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

from ..common import die, fmt, log, medians_of, str_list
from ..procs import proc_cpu_s
from ..redis import function_loaded
from ..servers import durable_daemon, healthz_subset
from ..sseload import base_case, write_record
from .storm import STORM

KEY = "publish"
NAME = "publish"
TITLE = ("durable publish: FCALL sserelay_publish against PUBLISH, one "
         "pipelined publisher, with and without a daemon and streams")
PARAMS = dict(messages=200000, pipeline=200, size=100, channels=4,
              streams=8, modes="none,streams", subscribe="exact",
              heartbeat=15, ring_size=65536)
QUICK = dict(PARAMS, messages=50000)
CHECK_RATE = True
PUBLISH_CMDS = ("fcall", "publish")


def cases(p, servers, args):
    modes = str_list(p["modes"])
    for mo in modes:
        if mo not in ("none", "streams"):
            die("publish.modes: %r is neither none nor streams" % mo)
    if p["subscribe"] not in ("pattern", "exact"):
        die("publish.subscribe: %r is neither pattern nor exact" %
            p["subscribe"])
    one = base_case(KEY, NAME, p, list(PUBLISH_CMDS), args)
    return [dict(one, key=mo, label="subs=" + mo, hb=int(p["heartbeat"]),
                 subscribe=p["subscribe"]) for mo in modes]


def servers_order(servers, run):
    """FCALL first in odd runs, PUBLISH first in even ones."""
    return servers[::-1] if run % 2 == 0 else servers


def resp_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for x in args:
        x = x if isinstance(x, bytes) else str(x).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(out)


def pipelined_publish(port, cmd, chans, payload, messages, depth):
    """Publish messages round robin over chans, depth commands in flight
    (sent together, then all their replies read), as FCALL
    sserelay_publish or PUBLISH.  Returns (sent, error or None, the first
    reply's bytes).  The replies are counted by their CRLFs, which is
    exact here: a PUBLISH answers :N, an FCALL $len and epoch:offset, and
    neither holds a '-', the mark of an error reply."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if cmd == "fcall":
        cmds = [resp_command(b"FCALL", b"sserelay_publish", b"1",
                             chans[k % len(chans)], payload)
                for k in range(depth)]
        crlf = 2
    else:
        cmds = [resp_command(b"PUBLISH", chans[k % len(chans)], payload)
                for k in range(depth)]
        crlf = 1
    full = b"".join(cmds)
    sent, err, first, tail = 0, None, None, b""
    try:
        while sent < messages and err is None:
            k = min(depth, messages - sent)
            s.sendall(full if k == depth else b"".join(cmds[:k]))
            need, got = k * crlf, 0
            while got < need:
                d = s.recv(1 << 20)
                if not d:
                    err = "Redis closed the connection"
                    break
                got += d.count(b"\r\n") + (tail == b"\r" and
                                           d[:1] == b"\n")
                tail = d[-1:]
                if first is None:
                    first = d[:d.find(b"\r\n", 0 if crlf == 1 else
                                      d.find(b"\r\n") + 2)]
                if b"-" in d:
                    i = d.index(b"-")
                    err = d[i:i + 200].split(b"\r\n")[0].decode(
                        "utf-8", "replace")
                    break
            if err is None:
                sent += k       # a batch with an error counts for none
    except OSError as e:
        err = "publisher: %s" % e
    finally:
        s.close()
    return sent, err, (first or b"").decode("utf-8", "replace").strip()


def publish_expected(p, messages):
    """Events the streams should get: message k goes to channel k %% K
    within its batch, stream i listens to channel i %% K."""
    nch, depth, n = int(p["channels"]), int(p["pipeline"]), int(p["streams"])
    per_ch = [0] * nch
    left = messages
    while left > 0:
        k = min(depth, left)
        for j in range(k):
            per_ch[j % nch] += 1
        left -= k
    subs = [sum(1 for i in range(n) if i % nch == ch) for ch in range(nch)]
    return sum(a * b for a, b in zip(per_ch, subs))


def run(ctx, c, cmd, run):
    """One measurement: `messages` FCALLs or PUBLISHes from one pipelined
    publisher (bench/run itself), with no subscriber at all (subs=none:
    a daemon loads the library and is stopped first) or with a fresh
    daemon subscribed and `streams` streams open on the channels, read
    by bench/storm --hold."""
    p, redis = c["p"], ctx["redis"]
    nch, n = int(p["channels"]), int(p["streams"])
    messages, depth = int(p["messages"]), int(p["pipeline"])
    chans = [b"user:p%d" % k for k in range(nch)]
    head = b'{"pct":40,"pad":"'
    payload = head + b"x" * max(0, int(p["size"]) - len(head) - 2) + b'"}'
    run_id = "publish-%s-%s-r%d" % (c["label"], cmd, run)
    srv = drain = None
    j = dict(command=cmd, messages_asked=messages, pipeline=depth,
             payload_bytes=len(payload), channels=nch)
    server_cmd = None
    try:
        if c["key"] == "none":
            if not function_loaded(redis):
                d = durable_daemon(ctx, c)
                server_cmd = shlex.join(d.cmd) + "  (stopped: it only " \
                    "loaded the library)"
                d.stop()
            end = time.time() + 5
            while not redis.pubsub_idle() and time.time() < end:
                time.sleep(0.05)
            j["streams"] = 0
        else:
            # an open-loop publisher outruns any stream: a ring that holds
            # a stream's whole share keeps the slow-client close out of it
            srv = durable_daemon(ctx, c, ["--ring-size",
                                          str(p["ring_size"])])
            server_cmd = shlex.join(srv.cmd)
            errf = open(os.path.join(ctx["tmp"], run_id + ".stderr"), "w")
            drain = subprocess.Popen(
                ctx["pin_client"] + [sys.executable, STORM, "--hold",
                                     "--port", str(srv.port), "-n", str(n),
                                     "--path", "/events?user=p{i%%%d}" %
                                     nch],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=errf, text=True)
            line = drain.stdout.readline()
            end = time.time() + 15
            while time.time() < end:
                h = srv.healthz()
                if h.get("streams") == n and (
                        c["subscribe"] == "pattern" or
                        h.get("redis_channels", 0) >= min(n, nch)):
                    break
                time.sleep(0.05)
            time.sleep(0.5)     # the streams' first reads (positions)
            j["streams"] = srv.healthz().get("streams")
            j["drainer_ready"] = line.strip()
        numsub = redis.try_cmd("PUBSUB", "NUMSUB",
                               *[ch.decode() for ch in chans])
        j["subscribers"] = sum(numsub[1::2]) if isinstance(numsub, list) \
            else None
        h0 = srv.healthz() if srv else {}
        cpu0 = (redis.cpu_s(), proc_cpu_s(srv.proc.pid) if srv else None,
                sum(os.times()[:2]))
        t0 = time.time()
        sent, err, first = pipelined_publish(redis.port, cmd, chans,
                                             payload, messages, depth)
        t1 = time.time()
        cpu1 = (redis.cpu_s(), proc_cpu_s(srv.proc.pid) if srv else None,
                sum(os.times()[:2]))
        j.update(published=sent, publish_s=round(t1 - t0, 4),
                 msgs_per_s=round(sent / (t1 - t0), 1) if t1 > t0 else None,
                 first_reply=first)
        if err:
            j["publish_errors"] = 1
            j["error"] = err
        if cpu0[0] is not None and cpu1[0] is not None:
            j["redis_cpu_s"] = round(cpu1[0] - cpu0[0], 3)
        j["client_cpu_s"] = round(cpu1[2] - cpu0[2], 3)
        if srv:
            # the daemon may still be writing: wait for its deliveries
            want = publish_expected(p, sent)
            j["expected_events"] = want
            srv.wait_delivered(h0, want, 30, 2)
            t2 = time.time()
            cpu2 = proc_cpu_s(srv.proc.pid)
            h1 = srv.healthz()
            if cpu0[1] is not None and cpu2 is not None:
                j["server_cpu_s"] = round(cpu2 - cpu0[1], 3)
            j["deliver_s"] = round(t2 - t0, 3)
            for k in ("events_delivered", "slow_closes", "redis_reconnects",
                      "redis_messages"):
                if k in h0 and k in h1:
                    j[k if k != "events_delivered" else
                      "delivered_events"] = h1[k] - h0[k]
            j["healthz"] = healthz_subset(h1)
            drain.send_signal(signal.SIGTERM)
            try:
                out, _ = drain.communicate(timeout=15)
                dj = json.loads(out.strip().splitlines()[-1])
            except (subprocess.TimeoutExpired, ValueError, IndexError):
                drain.kill()
                drain.communicate()
                dj = {}
            drain = None
            j["client_events"] = dj.get("events")
            j["closed_early"] = dj.get("closed_early")
            j["resets"] = dj.get("resets")
            if j.get("delivered_events") is not None:
                j["missing"] = max(0, want - j["delivered_events"])
    finally:
        if drain is not None:
            drain.kill()
            drain.communicate()
        if srv:
            srv.stop()
    write_record(ctx, c, cmd, run, c["p"], "bench/run "
                 "pipelined publisher: %s" % cmd, server_cmd, j)
    return j




def summary(j):
    parts = ["%s %s msgs in %.2f s: %s msg/s" % (
        j.get("command", "?").upper(), j.get("published"),
        j.get("publish_s") or 0, fmt(j.get("msgs_per_s"), "%.0f"))]
    if j.get("redis_cpu_s") is not None and j.get("published"):
        parts.append("Redis %.2f us/msg" % (
            j["redis_cpu_s"] * 1e6 / j["published"]))
    if j.get("server_cpu_s") is not None and j.get("published"):
        parts.append("daemon %.2f us/msg" % (
            j["server_cpu_s"] * 1e6 / j["published"]))
    if j.get("expected_events") is not None:
        parts.append("%s/%s events delivered" % (
            j.get("delivered_events"), j["expected_events"]))
    parts.append("%s subscriber(s)" % j.get("subscribers"))
    return ", ".join(parts)


def per_msg_us(key):
    def f(j):
        v, n = j.get(key), j.get("published")
        return v * 1e6 / n if v is not None and n else None
    return f


def report(ctx, p, results, servers):
    scen = "publish"
    modes = [c["key"] for c in cases(p, [], ctx["args"])]
    log("publish: %s messages of %s B, round robin over %s channels "
        "user:p0.., pipeline %s, one publisher; medians of %d run(s), "
        "FCALL and PUBLISH interleaved" % (
            p["messages"], p["size"], p["channels"], p["pipeline"],
            ctx["runs"]))
    log("  subs=none: no subscriber (a daemon loaded the library and was "
        "stopped); subs=streams: a sserelay --history redis --subscribe %s "
        "with %s streams open on the channels" % (p["subscribe"],
                                                  p["streams"]))
    log("  %-13s %-8s %9s %9s %8s %9s %9s %8s" % (
        "case", "command", "msg/s", "Redis us", "Redis", "daemon us",
        "client", "missing"))
    log("  %-13s %-8s %9s %9s %8s %9s %9s %8s" % (
        "", "", "", "/msg", "cores", "/msg", "cores", "events"))
    for m in modes:
        med = {}
        for cmd in PUBLISH_CMDS:
            k = (scen, m, cmd)
            g = lambda f: medians_of(results, k, f)
            med[cmd] = (g(lambda j: j.get("msgs_per_s")),
                        g(per_msg_us("redis_cpu_s")))
            log("  %-13s %-8s %9s %9s %8s %9s %9s %8s" % (
                "subs=" + m, cmd.upper(), fmt(med[cmd][0], "%.0f"),
                fmt(med[cmd][1], "%.2f"),
                fmt(g(lambda j: j.get("redis_cpu_s") / j["publish_s"]
                      if j.get("redis_cpu_s") is not None and
                      j.get("publish_s") else None), "%.3f"),
                fmt(g(per_msg_us("server_cpu_s")), "%.2f"),
                fmt(g(lambda j: j.get("client_cpu_s") / j["publish_s"]
                      if j.get("client_cpu_s") is not None and
                      j.get("publish_s") else None), "%.3f"),
                fmt(g(lambda j: j.get("missing")), "%.0f")))
        (fr, fc), (pr, pc) = med["fcall"], med["publish"]
        per_run = []
        for jf, jp in zip(results.get((scen, m, "fcall"), []),
                          results.get((scen, m, "publish"), [])):
            if jf.get("msgs_per_s") and jp.get("msgs_per_s"):
                per_run.append("%.2f" % (jf["msgs_per_s"] /
                                         jp["msgs_per_s"]))
        log("  %-13s FCALL / PUBLISH: msg/s %s%s, Redis CPU per message %s"
            % ("", fmt(fr / pr if fr and pr else None, "%.3f"),
               " (per run: %s)" % " ".join(per_run) if len(per_run) > 1
               else "", fmt(fc / pc if fc and pc else None, "%.2fx")))
    log("  (Redis us/msg: redis-server CPU (/proc/PID/stat) from the first "
        "command sent to the last reply, per message; daemon us/msg: until "
        "the streams had every event; client: bench/run itself)")
