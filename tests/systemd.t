#!/usr/bin/env python3
# examples/sserelay.service: `systemd-analyze verify` accepts a copy whose
# command lines point at the built binary, with no warning at all; the
# hardening the unit promises is there and `systemd-analyze security`
# rates it OK; its command lines are valid sserelay invocations (checked
# with -t against examples/sserelay.conf); the man pages it names exist.
import os
import re
import shutil
import subprocess

import harness

t = harness.Test(require=())

SRCDIR = os.path.join(os.environ.get("TESTS_SRCDIR")
                      or os.path.dirname(os.path.abspath(__file__)), "..")
UNIT = os.path.join(SRCDIR, "examples", "sserelay.service")
CONF = os.path.join(SRCDIR, "examples", "sserelay.conf")
BIN = "/usr/local/bin/sserelay"
ETC_CONF = "/usr/local/etc/sserelay.conf"

ANALYZE = (harness.find_program("systemd-analyze", "SYSTEMD_ANALYZE")
           or ("/usr/bin/systemd-analyze"
               if os.access("/usr/bin/systemd-analyze", os.X_OK) else None))
if ANALYZE is None:
    t.skip_all_unless_required("systemd-analyze not found (Debian package "
                               "systemd)")


def run(args, **kw):
    return subprocess.run(args, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, **kw)


def main():
    with open(UNIT) as f:
        text = f.read()
    u = harness.parse_unit(text)

    def one(section, key):
        v = u.get((section, key))
        return v[-1] if v else None

    # what the issue asks of the unit
    t.ok(one("Service", "Type") in ("exec", "simple"),
         "Type=exec or simple (got %r)" % one("Service", "Type"))
    start = one("Service", "ExecStart") or ""
    t.ok(start.split()[:1] == [BIN] and ETC_CONF in start.split(),
         "ExecStart runs %s with %s" % (BIN, ETC_CONF), start)
    t.ok(any(re.match(r"^/bin/kill -HUP \$MAINPID$", v)
             for v in u.get(("Service", "ExecReload"), [])),
         "ExecReload sends SIGHUP to $MAINPID",
         repr(u.get(("Service", "ExecReload"))))
    t.ok(one("Service", "DynamicUser") == "yes" or one("Service", "User"),
         "DynamicUser=yes or a dedicated User=")
    for key, want in (("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                      ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"),
                      ("PrivateDevices", "yes"),
                      ("ProtectKernelTunables", "yes"),
                      ("ProtectKernelModules", "yes"),
                      ("ProtectControlGroups", "yes"),
                      ("Restart", "on-failure")):
        t.eq(one("Service", key), want, "%s=%s" % (key, want))
    t.eq(sorted((one("Service", "RestrictAddressFamilies") or "").split()),
         ["AF_INET", "AF_INET6", "AF_UNIX"],
         "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX")
    nofile = one("Service", "LimitNOFILE") or "0"
    t.ok(nofile.isdigit() and int(nofile) >= 65536,
         "LimitNOFILE raised to at least 65536 (got %r)" % nofile)
    for key in ("After", "Wants"):
        units = " ".join(u.get(("Unit", key), [])).split()
        t.ok("network-online.target" in units
             and "redis-server.service" in units,
             "%s= names network-online.target and redis-server.service"
             % key, repr(units))
    t.ok(one("Install", "WantedBy") == "multi-user.target",
         "WantedBy=multi-user.target")

    # every sserelay command line of the unit is a valid invocation
    for key in ("ExecStartPre", "ExecStart", "ExecReload"):
        for cmd in u.get(("Service", key), []):
            argv = cmd.split()
            if argv[0] != BIN:
                continue
            argv = [t.sserelay] + [CONF if a == ETC_CONF else a
                                   for a in argv[1:]]
            if "-t" not in argv and "--check-config" not in argv:
                argv.append("-t")
            res = run(argv)
            t.ok(res.returncode == 0
                 and res.stdout == b"configuration OK\n",
                 "%s command line parses (%s, with examples/sserelay.conf)"
                 % (key, " ".join(cmd.split()[1:])),
                 (res.stdout + res.stderr).decode("utf-8", "replace"))

    # the man pages in Documentation= are the project's own
    for doc in " ".join(u.get(("Unit", "Documentation"), [])).split():
        m = re.match(r"^man:([\w.-]+)\((\d)\)$", doc)
        if not m:
            continue
        page = os.path.join(SRCDIR, "man", "%s.%s" % m.groups())
        t.ok(os.path.exists(page), "Documentation=%s is man/%s.%s in the "
             "source tree" % ((doc,) + m.groups()))

    # systemd-analyze verify on a copy that runs the built binary; the
    # man: links are checked above, against the source tree
    copy = t.path("sserelay.service")
    n = text.count(BIN)
    with open(copy, "w") as f:
        f.write(text.replace(BIN, t.sserelay))
    t.ok(n >= 1, "the copy runs the built binary (%d command lines)" % n)
    res = run([ANALYZE, "verify", "--man=no", copy])
    out = (res.stdout + res.stderr).decode("utf-8", "replace").strip()
    t.ok(res.returncode == 0 and out == "",
         "systemd-analyze verify passes without any warning", out)

    # hardening as systemd rates it (0 best .. 10 worst; "OK" is below 2.1)
    res = run([ANALYZE, "security", "--offline=true", "--no-pager", copy])
    out = (res.stdout + res.stderr).decode("utf-8", "replace")
    m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", out)
    if m:
        t.ok(float(m.group(1)) <= 2.0, "systemd-analyze security rates the "
             "unit %s %s (bound 2.0)" % m.groups())
    elif re.search(r"unrecognized option|--offline", out):
        t.skip("systemd-analyze security rating",
               "this systemd has no --offline")
    else:
        t.ok(False, "systemd-analyze security gives a rating", out[-2000:])


t.run(main)
