#!/usr/bin/env python3
# tests/debian.t: the Debian package (debian/) as an operator gets it.
#
# 1. Builds it, once, with `dpkg-buildpackage -us -uc -b` in a copy of the
#    source tree (TESTS_SRCDIR/..: a git checkout, or under distcheck the
#    unpacked tarball; build directories left out), and runs lintian on the
#    .changes: no error.
# 2. Installs sserelay_<version>_<arch>.deb with apt-get (without its
#    Recommends, so that the purge leaves the machine as it was) and checks
#    what dpkg -L lists: the binary, both man pages (man -w), the conffile
#    /etc/sserelay/sserelay.conf, the unit (enabled, as redis-server's is;
#    systemd-analyze verify), the examples once, in
#    /usr/share/doc/sserelay/examples; no /usr/local path in the conffile
#    or the unit.
# 3. Runs the INSTALLED binary: `sserelay -t` with no argument checks the
#    packaged file (shown by breaking it for a moment), then
#    `sserelay -c /etc/sserelay/sserelay.conf --redis ... --listen ...`
#    against a private redis-server delivers a PUBLISHed message to a stream.
# 4. `apt-get purge -y sserelay`: no /etc/sserelay, no binary, no unit or
#    enablement link, no deb-systemd-helper state, no user, dpkg has
#    forgotten the package.
#
# Needs root, apt-get, dpkg-buildpackage, debhelper and lintian: without
# them it skips, or fails under SSERELAY_REQUIRE_ALL.  It refuses to touch
# (skips) a machine where sserelay is already installed or where
# /etc/sserelay or /usr/bin/sserelay exist.  Runs of it on one machine
# take turns (a lock in /run/lock).  The package is built with Debian's
# flags whatever this build's configure options (--enable-sanitizers) were.
# About 20 s on 2 cores: the build takes most of it.
import fcntl
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import harness

t = harness.Test()

SRCDIR = os.path.abspath(os.path.join(
    os.environ.get("TESTS_SRCDIR")
    or os.path.dirname(os.path.abspath(__file__)), ".."))
PKG = "sserelay"
BIN = "/usr/bin/sserelay"
ETC = "/etc/sserelay"
CONF = ETC + "/sserelay.conf"
UNIT = "/lib/systemd/system/sserelay.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/sserelay.service"
DOC = "/usr/share/doc/sserelay"
LOCK = os.path.join("/run/lock" if os.path.isdir("/run/lock")
                    else tempfile.gettempdir(), "sserelay-debian.t.lock")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
APT_OPTS = ["-y", "-q", "-o", "DPkg::Lock::Timeout=900"]


def run(args, timeout=120, env=None, cwd=None, log=None):
    """(exit status, stdout+stderr as text); output to the file log when
    given (then the text is its last 80 lines)."""
    e = dict(os.environ)
    e.update(env or {})
    if log is None:
        res = subprocess.run(args, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=timeout, env=e, cwd=cwd)
        return res.returncode, res.stdout.decode("utf-8", "replace")
    with open(log, "wb") as f:
        try:
            rc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, timeout=timeout,
                                env=e, cwd=cwd).returncode
        except subprocess.TimeoutExpired:
            rc = "timed out after %d s" % timeout
    with open(log, "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines()
    return rc, "\n".join(lines[-80:])


def dpkg_status():
    """dpkg's status of sserelay ('install ok installed', 'deinstall ok
    config-files', ...), or None when it is not on the machine at all."""
    rc, out = run(["dpkg-query", "-W", "-f=${Status}", PKG])
    out = out.strip()
    if rc != 0 or not out or out.endswith(" not-installed"):
        return None
    return out


def helper_state():
    """deb-systemd-helper's records of the unit (enabled/masked state)."""
    return sorted(glob.glob("/var/lib/systemd/deb-systemd-helper-*/**/"
                            "*sserelay*", recursive=True))


def accounts():
    """passwd and group entries named sserelay."""
    out = []
    for f in ("/etc/passwd", "/etc/group"):
        try:
            with open(f) as fh:
                out += ["%s: %s" % (f, line.strip()) for line in fh
                        if line.startswith(PKG + ":")]
        except OSError:
            pass
    return out


def snapshot():
    """Everything the package may leave behind."""
    s = {p: os.path.lexists(p) for p in
         (ETC, BIN, "/usr/sbin/sserelay", UNIT, "/usr/lib/systemd/system/"
          "sserelay.service", "/etc/systemd/system/sserelay.service", WANTS,
          DOC, "/usr/share/man/man8/sserelay.8.gz",
          "/usr/share/man/man5/sserelay.conf.5.gz")}
    s["dpkg status"] = dpkg_status()
    s["deb-systemd-helper state"] = helper_state()
    s["accounts"] = accounts()
    return s


def purge():
    """Cleanup: purge the package this test installed."""
    if dpkg_status() is not None:
        run(["apt-get", "purge"] + APT_OPTS + [PKG], timeout=900,
            env=APT_ENV)


def copy_tree(dst):
    """TESTS_SRCDIR/.. to dst, without build directories and products."""
    builddir = os.path.dirname(os.path.dirname(os.path.abspath(t.sserelay)))

    def ignore(d, names):
        d = os.path.abspath(d)
        out = set()
        for n in names:
            p = os.path.join(d, n)
            if d == SRCDIR and (
                    n in (".git", "autom4te.cache", "node_modules", "_build",
                          "_inst")
                    or re.match(r"^build", n)
                    or re.match(r"^sserelay-[0-9].*", n)
                    or os.path.exists(os.path.join(p, "config.status"))):
                out.add(n)
            elif d == os.path.join(SRCDIR, "debian") and n in (
                    "build", "sserelay", "sserelay-dbgsym", "tmp",
                    ".debhelper", "files", "debhelper-build-stamp"):
                out.add(n)
            elif os.path.abspath(p) == builddir:
                out.add(n)
        return out

    shutil.copytree(SRCDIR, dst, symlinks=True, ignore=ignore)
    # under distcheck the source tree is read-only, and so is the copy
    for root, dirs, files in os.walk(dst):
        for n in dirs + files:
            p = os.path.join(root, n)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o200)
    os.chmod(dst, os.stat(dst).st_mode | 0o200)


def ac_init_version():
    with open(os.path.join(SRCDIR, "configure.ac")) as f:
        m = re.search(r"AC_INIT\(\[sserelay\],\s*\[([^\]]+)\]", f.read())
    return m.group(1) if m else None


def parse_unit(path):
    with open(path) as f:
        return harness.parse_unit(f.read())


class InstalledDaemon(harness.Daemon):
    """The installed binary with the installed configuration."""

    def args(self):
        return [BIN, "-c", CONF,
                "--redis", "redis://127.0.0.1:%d" % self.redis.port,
                "--listen", "127.0.0.1:%d" % self.port]


def preconditions():
    if os.geteuid() != 0:
        t.skip_all_unless_required("not root: installing a package needs "
                                   "root")
    missing = [p for p in ("apt-get", "dpkg-query", "dpkg-buildpackage",
                           "dpkg-checkbuilddeps", "dpkg-parsechangelog",
                           "dh", "lintian")
               if not shutil.which(p)]
    if missing:
        t.skip_all_unless_required("%s not found (Debian packages apt, "
                                   "dpkg-dev, debhelper, lintian)"
                                   % ", ".join(missing))
    if not os.path.exists(os.path.join(SRCDIR, "debian", "rules")):
        t._plan_fail("%s/debian/rules is missing (not in the tarball?)"
                     % SRCDIR)


def take_lock():
    """One run at a time on this machine: each installs and purges the same
    package.  The lock goes with the process (the fd is not inherited)."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        t.diag("waiting for another tests/debian.t (%s)" % LOCK)

    def too_long(signum, frame):
        raise TimeoutError()
    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(1800)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except TimeoutError:
        t._plan_fail("another tests/debian.t held %s for 30 minutes" % LOCK)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return fd


def main():
    preconditions()
    take_lock()
    before = snapshot()
    there = sorted(k for k, v in before.items()
                   if v and k != "accounts")
    if there:
        # an installed package, a make install --prefix=/usr, a unit
        # copied by hand...: the install and purge would change them
        what = ("the package is installed (dpkg: %s)" % before["dpkg status"]
                if before["dpkg status"] else "found " + ", ".join(there))
        t._skip_all("sserelay is already on this machine (%s): not "
                    "touching it" % what)
    # _apt, which apt-get install ./x.deb reads the file as, must reach it
    os.chmod(t.tmp, 0o755)

    # ---- 1. build, once, and lintian ----------------------------------
    src = t.path("sserelay")
    copy_tree(src)
    rc, out = run(["dpkg-checkbuilddeps"], cwd=src)
    if rc != 0:
        t.skip_all_unless_required("the build dependencies are not "
                                   "installed: %s" % out.strip())
    rc, out = run(["dpkg-parsechangelog", "-S", "Version"], cwd=src)
    version = out.strip()
    upstream = ac_init_version()
    t.eq(re.sub(r"-[^-]*$", "", version), upstream,
         "debian/changelog's version %s is configure.ac's %s plus a Debian "
         "revision" % (version, upstream))
    arch = run(["dpkg", "--print-architecture"])[1].strip()

    # Not the make that runs this test: its jobserver is not ours.
    env = {k: "" for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                           "MAKEOVERRIDES", "GNUMAKEFLAGS")}
    env["LC_ALL"] = "C.UTF-8"
    env["DEB_BUILD_OPTIONS"] = os.environ.get(
        "DEB_BUILD_OPTIONS", "parallel=%d" % (os.cpu_count() or 1))
    t0 = time.monotonic()
    rc, out = run(["dpkg-buildpackage", "-us", "-uc", "-b"], timeout=1800,
                  env=env, cwd=src, log=t.path("dpkg-buildpackage.log"))
    deb = t.path("%s_%s_%s.deb" % (PKG, version, arch))
    changes = t.path("%s_%s_%s.changes" % (PKG, version, arch))
    if not t.ok(rc == 0 and os.path.exists(deb),
                "dpkg-buildpackage -us -uc -b builds %s (%.0f s)"
                % (os.path.basename(deb), time.monotonic() - t0), out):
        return
    rc, out = run(["grep", "-E", r"^(PASS|FAIL|ERROR|# TOTAL|# PASS)",
                   t.path("dpkg-buildpackage.log")])
    if "nocheck" in env["DEB_BUILD_OPTIONS"].split():
        t.skip("the build ran the unit tests", "DEB_BUILD_OPTIONS=nocheck")
    else:
        t.ok(re.search(r"^# TOTAL: [1-9]", out, re.M)
             and re.search(r"^PASS: tests/unit/", out, re.M)
             and not re.search(r"^(PASS|FAIL|ERROR): tests/[^u]", out, re.M),
             "the build ran the unit tests and only them",
             "\n".join(out.splitlines()[-5:]))
    rc, out = run(["lintian", "--fail-on", "error", changes], timeout=600)
    tags = [line for line in out.splitlines() if re.match(r"^[EWIPX]: ", line)]
    t.ok(rc == 0 and not [x for x in tags if x.startswith("E: ")],
         "lintian %s: no error (%d tags, see below)"
         % (os.path.basename(changes), len(tags)), out)
    if tags:
        t.diag("lintian:\n" + "\n".join(tags))

    # ---- 2. install -----------------------------------------------------
    t.cleanups.append(purge)
    # --no-install-recommends: apt would install redis-server, which the
    # purge does not remove.
    rc, out = run(["apt-get", "install", "--no-install-recommends"]
                  + APT_OPTS + [deb], timeout=900, env=APT_ENV)
    if not t.ok(rc == 0 and dpkg_status() == "install ok installed",
                "apt-get install %s" % os.path.basename(deb), out):
        return
    m = re.search(r"NEW packages will be installed:\n((?:  .*\n)+)", out)
    new = m.group(1).split() if m else []
    t.eq(new, [PKG], "apt-get installed sserelay and nothing else (its "
         "dependencies were there), so the purge can undo it")

    rc, listing = run(["dpkg", "-L", PKG])
    files = sorted(p for p in listing.splitlines()
                   if p.startswith("/") and not os.path.isdir(p))
    top = os.path.join(SRCDIR, "examples")
    examples = sorted(os.path.relpath(os.path.join(d, f), top)
                      for d, _, fs in os.walk(top) for f in fs)
    want = sorted([BIN, CONF, UNIT,
                   "/usr/share/man/man8/sserelay.8.gz",
                   "/usr/share/man/man5/sserelay.conf.5.gz",
                   DOC + "/README.Debian", DOC + "/README.md.gz",
                   DOC + "/changelog.Debian.gz", DOC + "/copyright"]
                  + [DOC + "/examples/" + e for e in examples])
    t.eq(files, want, "dpkg -L: the binary, the conffile, the unit, both "
         "man pages, the docs and each of the %d examples once"
         % len(examples))
    rc, out = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG])
    t.eq([line.split()[0] for line in out.splitlines() if line.strip()],
         [CONF], "the conffile is %s" % CONF)
    rc, out = run(["dpkg", "--verify", PKG])
    t.ok(rc == 0 and not out.strip(), "dpkg --verify: every file as "
         "shipped", out)
    for page, sect in (("sserelay", "8"), ("sserelay.conf", "5")):
        if shutil.which("man"):
            rc, out = run(["man", "-w", sect, page])
            t.eq(out.strip(), "/usr/share/man/man%s/%s.%s.gz"
                 % (sect, page, sect), "man -w %s %s" % (sect, page))
        else:
            t.skip_unless_required("man -w %s %s" % (sect, page),
                                   "man not found (Debian package man-db)")

    for path in (CONF, UNIT):
        with open(path) as f:
            text = f.read()
        t.ok("/usr/local" not in text, "%s names no /usr/local path"
             % path, "\n".join(x for x in text.splitlines()
                               if "/usr/local" in x))
    u = parse_unit(UNIT)
    t.eq(u.get(("Service", "ExecStart")), [BIN + " -c " + CONF],
         "the unit runs %s -c %s" % (BIN, CONF))
    t.eq(u.get(("Service", "ExecStartPre")), [BIN + " -t -c " + CONF],
         "the unit checks the file before it starts")
    t.eq(os.readlink(WANTS) if os.path.islink(WANTS) else None, UNIT,
         "enabled on installation, like redis-server (%s)" % WANTS)
    if os.path.isdir("/run/systemd/system"):
        rc, out = run(["systemctl", "is-enabled", "sserelay"])
        t.eq(out.strip(), "enabled", "systemctl is-enabled sserelay")
    analyze = shutil.which("systemd-analyze")
    if analyze:
        rc, out = run([analyze, "verify", UNIT])
        t.ok(rc == 0 and not out.strip(), "systemd-analyze verify %s (man "
             "pages of Documentation= included)" % UNIT, out)
    else:
        t.skip_unless_required("systemd-analyze verify", "systemd-analyze "
                               "not found (Debian package systemd)")

    # ---- 3. the installed binary and configuration ------------------------
    rc, out = run([BIN, "--version"])
    t.eq(out.strip(), "sserelay " + str(upstream), BIN + " --version")
    rc, out = run([BIN, "--help"])
    t.ok(re.search(r"\[" + re.escape(CONF) + r"\b", out),
         "--help names %s as the default configuration" % CONF, out)
    rc, out = run([BIN, "-t"])
    t.ok(rc == 0 and out == "configuration OK\n",
         "sserelay -t (no argument) passes", out)
    with open(CONF, "rb") as f:
        shipped = f.read()
    st = os.stat(CONF)
    try:
        with open(CONF, "ab") as f:
            f.write(b"heartbeat not-a-number\n")
        rc, out = run([BIN, "-t"])
        t.ok(rc == 1 and CONF + ":" in out and "heartbeat" in out,
             "sserelay -t reads %s: an error appended to it is reported "
             "there" % CONF, out)
    finally:
        with open(CONF, "wb") as f:
            f.write(shipped)
        os.utime(CONF, ns=(st.st_atime_ns, st.st_mtime_ns))
    rc, out = run([BIN, "-t", "-c", CONF])
    t.ok(rc == 0 and out == "configuration OK\n",
         "sserelay -t -c %s passes (what ExecStartPre runs)" % CONF, out)

    r = t.redis()
    d = InstalledDaemon(t, r, name="installed-sserelay")
    t.daemons.append(d)
    d.start()
    t.ok(d.wait_log(r"configuration read from " + re.escape(CONF)),
         "the daemon logs that it read %s" % CONF)
    s = d.stream("/events?user=alice&upload=u7")
    t.ok(s.wait_opened(15) and s.status == 200, "a stream opens (HTTP %s)"
         % s.status)
    c = r.client()
    n = c.publish("upload:u7", '{"pct":40}')
    t.eq(n, 1, "PUBLISH reached the installed daemon's one subscription")
    t.ok(s.wait_events(1, 15), "the stream receives the message")
    evs = harness.message_events(s)
    t.eq(evs[0].json() if evs else None,
         {"channel": "upload:u7", "data": {"pct": 40}},
         "the event carries the channel and the payload")
    c.close()
    s.close()
    d.stop(check=True)

    # ---- 4. purge ---------------------------------------------------------
    rc, out = run(["apt-get", "purge"] + APT_OPTS + [PKG], timeout=900,
                  env=APT_ENV)
    t.ok(rc == 0, "apt-get purge -y sserelay", out)
    after = snapshot()
    for key in sorted(before, key=str):
        t.eq(after[key], before[key], "after the purge, as before: %s" % key)


t.run(main)
