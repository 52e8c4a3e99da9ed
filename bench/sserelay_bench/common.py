"""Output and small helpers shared by every scenario."""

import os
import shlex
import socket
import statistics
import subprocess
import sys
import time

import harness


def skey(k):
    """How a scenario is named in output and --set: s3, curve."""
    return "s%d" % k if isinstance(k, int) else k


def log(*a):
    print(*a, flush=True)


def die(msg):
    print("bench/run: " + msg, file=sys.stderr, flush=True)
    sys.exit(2)


def build_c(src, out, libs, need=""):
    """cc -O2 src into out (its directory made) unless out is newer than
    src; out.  need: what a failed build says is missing."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if not os.path.exists(out) or os.path.getmtime(out) < \
            os.path.getmtime(src):
        cmd = [os.environ.get("CC", "cc"), "-O2", "-Wall", "-Wextra", "-o",
               out, src] + libs
        log("building %s: %s" % (os.path.basename(out), shlex.join(cmd)))
        if subprocess.run(cmd).returncode != 0:
            die("could not build %s%s" % (src, " (needs %s)" % need
                                          if need else ""))
    return out


def run_out(cmd, stderr=True):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT if stderr else
                           subprocess.DEVNULL, text=True, timeout=30)
        return p.stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return "(%s)" % e


free_port = harness.free_port


def wait_port(port, proc, timeout=15.0):
    """Until 127.0.0.1:port takes a connection: True; False if proc ends
    first or the time is up."""
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def int_list(v):
    try:
        return [int(x) for x in str(v).replace(" ", "").split(",") if x]
    except ValueError:
        die("bad list of numbers %r" % v)


def str_list(v):
    return [m.strip() for m in str(v).split(",") if m.strip()]


def fmt(v, f):
    return "-" if v is None else f % v


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def medians_of(results, key, f):
    return median([f(j) for j in results.get(key, [])])


def span_of(results, key, f):
    vals = [v for v in (f(j) for j in results.get(key, [])) if v is not None]
    return (min(vals), max(vals)) if vals else (None, None)


def ratio(a, b, f="%.2f"):
    return fmt(a / b if a is not None and b else None, f)


def box_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    return os.cpu_count(), os.uname().release, model, mem
