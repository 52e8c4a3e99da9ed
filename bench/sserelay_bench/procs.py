"""/proc readings (CPU time, context switches, children) and stopping
what we started, by pid."""

import os
import signal
import subprocess
import time


def proc_children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == pid:
            kids.append(int(d))
    return sorted(kids)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """utime + stime of a process (all its threads), seconds; None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        fields = st[st.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def proc_ctxt(pid):
    """(voluntary, nonvoluntary, threads) summed over /proc/PID/task/*:
    /proc/PID/status alone counts only the main thread's switches."""
    vol = invol = n = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for t in tids:
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
            n += 1
        except (OSError, ValueError):
            pass   # a thread that ended in between
    return vol, invol, n


def stop_pid(proc, extra_pids=(), grace=10.0):
    """SIGTERM the process we started (and the given pids), then SIGKILL."""
    pids = [proc.pid] + list(extra_pids)
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    end = time.time() + grace
    for p in extra_pids:
        while os.path.exists("/proc/%d" % p) and time.time() < end:
            try:
                with open("/proc/%d/stat" % p) as f:
                    if f.read().split(")")[-1].split()[0] == "Z":
                        break
            except OSError:
                break
            time.sleep(0.05)
        if os.path.exists("/proc/%d" % p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------
# Servers
