#!/usr/bin/env python3
# The configuration file (-c), its check (-t) and SIGHUP reload:
# - -t prints "configuration OK" for a good file and for examples/sserelay.conf
#   (as shipped and with every default uncommented), and for a file that
#   sets every key of --help;
# - each kind of error is one line "FILE:LINE: ..." naming the key, exit 1,
#   and the daemon refuses to start on it too; a missing -c file exits 1;
# - the example names every key of --help, with the default --help shows;
# - examples/sserelay-production.conf passes -t with its key and certificate
#   paths pointed at files made here (openssl);
# - a file value takes effect (retry: on a real stream), flags override it
#   (heartbeat), also across a reload;
# - SIGHUP: a live key (retry, heartbeat) changes for new and open streams,
#   listen is reported as needing a restart and the old port stays, and a
#   broken file is rejected whole with FILE:LINE in the log.
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import harness

t = harness.Test()

SRCDIR = os.path.join(os.environ.get("TESTS_SRCDIR")
                      or os.path.dirname(os.path.abspath(__file__)), "..")
EXAMPLE = os.path.join(SRCDIR, "examples", "sserelay.conf")
PRODUCTION = os.path.join(SRCDIR, "examples", "sserelay-production.conf")
NOT_KEYS = ("config", "check-config", "version", "help")


def run(*args):
    res = subprocess.run([t.sserelay] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=60)
    return (res.returncode, res.stdout.decode("utf-8", "replace"),
            res.stderr.decode("utf-8", "replace"))


def write(name, text):
    path = t.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def help_options():
    """{long option: (takes a value, default in [] or None)} from --help."""
    rc, out, _ = run("--help")
    opts = {}
    cur = None
    for line in out.splitlines():
        m = re.match(r"^\s+(?:-\w, )?--([a-z-]+)(?: (\S+))?(.*)$", line)
        if m:
            cur = m.group(1)
            opts[cur] = [m.group(2) is not None, m.group(3)]
        elif cur and line.startswith("      ") and line.strip():
            opts[cur][1] += " " + line.strip()
        else:
            cur = None
    result = {}
    for name, (has_arg, desc) in opts.items():
        # the last [...] that is not a placeholder like [IPV6]
        brackets = [b for b in re.findall(r"\[([^\]]*)\]", desc)
                    if not re.match(r"^[A-Z0-9]+$", b)]
        default = brackets[-1] if brackets else None
        if default is not None:
            m = re.match(r"^(\d+): ", default)
            if m:
                default = m.group(1)          # "0: from the open-file limit"
            elif default == "off":
                # "off" is the default of a yes/no option (--demo); for one
                # that takes a value (--metrics-listen) it means unset
                default = None if has_arg else "no"
            elif " " in default:
                default = None                # "number of cores"
        result[name] = (has_arg, default)
    return result


class FileDaemon(harness.Daemon):
    """sserelay -c FILE [extra]: listen, redis and log-level in the file."""

    def __init__(self, t, redis, lines, extra=(), name=None):
        super().__init__(t, redis, extra, name=name)
        self.conf = t.path("%s.conf" % self.name)
        self.lines = list(lines)
        self.listen_port = None     # None: the harness's port

    def file_text(self, lines=None, listen_port=None):
        lines = list(self.lines if lines is None else lines)
        base = ["# written by tests/config.t",
                "listen 127.0.0.1:%d" % (listen_port or self.port),
                'redis "redis://127.0.0.1:%d"' % self.redis.port]
        if not any(l.startswith("log-level ") for l in lines):
            base.append("log-level debug")
        return "\n".join(base + lines) + "\n"

    def rewrite(self, lines, listen_port=None, raw=None):
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(raw if raw is not None else
                    self.file_text(lines, listen_port))
        os.rename(tmp, self.conf)

    def args(self):
        self.rewrite(None)
        return [self.t.sserelay, "-c", self.conf] + self.extra


def key_files():
    """Files for the keys that name one: {key: path}.  The PEMs are made
    with openssl, like an operator would (-t does not read them yet, but
    startup does)."""
    files = {
        "redis-password-file": write("redis-password", "secret\n"),
        "redis-sentinel-password-file": write("sentinel-password",
                                              "sentinel-secret\n"),
        "jwt-secret": write("jwt.secret", "0123456789abcdef0123456789abcdef\n"),
    }
    pub, crt, key = (t.path(n) for n in ("jwt-public.pem", "tls.crt",
                                         "tls.key"))
    if shutil.which("openssl"):
        def ossl(*args):
            return subprocess.run(["openssl"] + list(args),
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=60)
        priv = t.path("jwt-private.pem")
        res = [ossl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", priv),
               ossl("pkey", "-in", priv, "-pubout", "-out", pub),
               ossl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", crt)]
        bad = [r.stdout.decode("utf-8", "replace") for r in res
               if r.returncode != 0]
        t.ok(not bad, "openssl made an RSA public key and a certificate",
             "\n".join(bad))
    else:
        # -t does not read them: placeholders keep the other checks going
        if t.require_all:
            t.ok(False, "openssl not found and SSERELAY_REQUIRE_ALL is set")
        else:
            t.diag("openssl not found: placeholder PEM files")
        for path, kind in ((pub, "PUBLIC KEY"), (crt, "CERTIFICATE"),
                           (key, "PRIVATE KEY")):
            write(os.path.basename(path), "-----BEGIN %s-----\n"
                  "-----END %s-----\n" % (kind, kind))
    files.update({"jwt-key-file": pub, "tls-cert": crt, "tls-key": key})
    return files


def file_daemon(r, lines, extra=()):
    d = FileDaemon(t, r, lines, extra)
    t.daemons.append(d)
    d.start()
    return d


def stream_retry(d, path="/events?user=cfg"):
    s = d.stream(path)
    ok = s.wait_opened(10)
    retry = s.sse.retries[0] if ok and s.sse.retries else None
    return s, retry


def wait_retry(d, want, path, timeout=5):
    """Open streams on path until one starts with retry: want, and return
    the last retry: seen.  A reload swaps the frame new streams open with
    just after it logs its changes, so the log line alone is too early."""
    seen = [None]

    def attempt():
        s, seen[0] = stream_retry(d, path)
        s.close()
        return seen[0] == want
    harness.wait_for(attempt, timeout, 0.05)
    return seen[0]


def streams_open(d):
    try:
        return d.healthz()[1].get("streams")
    except (OSError, ValueError):
        return None


def sighup(d, pattern):
    pos = len(d.log_text())
    d.signal(signal.SIGHUP)
    return d.wait_log(pattern, 5, pos), pos


def main():
    # ---------------------------------------------------------------- -t
    good = write("good.conf", "\r\n".join([
        "# a comment",
        "",
        "   # an indented comment",
        "listen 127.0.0.1:18080",
        'user-prefix "u:"',
        "upload-prefix   up:   ",
        "\theartbeat\t0.5",
        'format "raw"',
        "demo yes",
        ""]))
    rc, out, err = run("-t", "-c", good)
    t.ok(rc == 0 and out == "configuration OK\n" and err == "",
         "-t on a good file (comments, blanks, tabs, quotes, CRLF): "
         "'configuration OK', exit 0", "rc %r out %r err %r" % (rc, out, err))
    rc, out, err = run("--check-config", "--config", good)
    t.ok(rc == 0 and out == "configuration OK\n",
         "--check-config --config: the same", "rc %r err %r" % (rc, err))

    rc, out, err = run("-t", "-c", EXAMPLE)
    t.ok(rc == 0 and out == "configuration OK\n" and err == "",
         "-t passes on examples/sserelay.conf as shipped",
         "rc %r out %r err %r" % (rc, out, err))

    opts = help_options()
    keys = {k: v for k, v in opts.items() if k not in NOT_KEYS}
    t.ok(len(keys) >= 18 and "heartbeat" in keys and "demo" in keys,
         "--help lists the settings (%d keys)" % len(keys), repr(opts))

    # the example: every key once, as "# key default"
    with open(EXAMPLE) as f:
        example = f.read()
    settings = {}
    for line in example.splitlines():
        m = re.match(r"^#\s?([a-z][a-z-]*) (\S.*)$", line)
        if m and m.group(1) in keys:
            settings.setdefault(m.group(1), []).append(m.group(2))
    missing = sorted(set(keys) - set(settings))
    t.ok(not missing, "examples/sserelay.conf names every key of --help",
         "missing: %s" % " ".join(missing))
    twice = sorted(k for k, v in settings.items() if len(v) > 1)
    t.ok(not twice, "each key appears once in the example",
         "twice: %s" % " ".join(twice))
    active = [l for l in example.splitlines()
              if l.strip() and not l.lstrip().startswith("#")]
    t.ok(not active, "every setting in the example is commented out",
         "\n".join(active))
    wrong = []
    for k, (has_arg, default) in sorted(keys.items()):
        if default is None or k not in settings:
            continue
        v = settings[k][0]
        if v.startswith('"') and v.endswith('"'):
            v = v[1:-1]
        if v != default:
            wrong.append("%s: example %r, --help [%s]" % (k, v, default))
    t.ok(not wrong, "the example shows the defaults --help shows",
         "\n".join(wrong))
    # uncommented, it is a valid file that changes nothing
    files = key_files()
    pwfile = files["redis-password-file"]
    lines = []
    for line in example.splitlines():
        m = re.match(r"^#\s?([a-z][a-z-]*) (\S.*)$", line)
        if m and m.group(1) in keys:
            value = files.get(m.group(1), m.group(2))
            lines.append("%s %s" % (m.group(1), value))
        else:
            lines.append(line)
    uncommented = write("example-uncommented.conf", "\n".join(lines) + "\n")
    rc, out, err = run("-t", "-c", uncommented)
    t.ok(rc == 0 and out == "configuration OK\n",
         "-t passes on the example with every setting uncommented",
         "rc %r out %r err %r" % (rc, out, err))

    # every key of --help is accepted in a file (values other than defaults)
    values = {
        "listen": "127.0.0.1:18081", "redis": "redis://127.0.0.1:6390/2",
        "redis-password-file": pwfile, "redis-timeout": "500",
        "poll-timeout": "50", "threads": "2", "heartbeat": "2.5",
        "retry": "100", "ring-size": "64", "format": "raw",
        "user-prefix": "usr.", "upload-prefix": "upl.", "max-uploads": "4",
        "channel": "room chat:room:", "channel-max": "room 8",
        "broadcast": '"site all"',
        "max-connections": "100", "conn-memory": "16384",
        "client-timeout": "0", "demo": "yes", "log-level": "warn",
        "history-size": "10", "history-ttl": "60", "history-memory": "8M",
        "auth": "jwt", "jwt-algorithm": "HS384",
        "jwt-key-file": files["jwt-secret"], "jwt-cookie": "tok",
        "jwt-issuer": "https://issuer.example", "jwt-audience": "sserelay",
        "jwt-claim": "app", "jwt-leeway": "5",
        "cors-origin": '"http://127.0.0.1:9000,https://app.example"',
        "trusted-proxy": '"127.0.0.1,10.0.0.0/8,::1"',
        "max-streams": "1000", "max-streams-per-ip": "50",
        "max-streams-per-user": "10", "tls-cert": files["tls-cert"],
        "tls-key": files["tls-key"], "metrics-listen": "127.0.0.1:19100"}
    # a key not listed here gets the example's value (its default), so
    # that a new setting needs no edit of this test to be checked in a file
    for k in keys:
        if k not in values and k in settings:
            values[k] = files.get(k, settings[k][0])
    unknown = sorted(set(keys) - set(values))
    t.ok(not unknown, "a value for every key of --help (this test's, or "
         "the example's)", "no value for: %s" % " ".join(unknown))
    allkeys = write("all-keys.conf", "".join(
        "%s %s\n" % (k, values.get(k, "1")) for k in sorted(keys)))
    rc, out, err = run("-t", "-c", allkeys)
    t.ok(rc == 0 and out == "configuration OK\n",
         "a file setting every key of --help passes -t",
         "rc %r out %r err %r" % (rc, out, err))

    # the production example: only known keys, each once, valid values;
    # its files (which -t does not read) pointed at ours
    with open(PRODUCTION) as f:
        production = f.read()
    lines, unknown = [], []
    for line in production.splitlines():
        m = re.match(r"^\s*([a-z][a-z-]*)\s+(\S.*)$", line)
        if m and not line.lstrip().startswith("#"):
            if m.group(1) not in keys:
                unknown.append(m.group(1))
            line = "%s %s" % (m.group(1), files.get(m.group(1), m.group(2)))
        lines.append(line)
    t.ok(not unknown, "examples/sserelay-production.conf uses only keys of "
         "--help", "unknown: %s" % " ".join(unknown))
    prod = write("production.conf", "\n".join(lines) + "\n")
    rc, out, err = run("-t", "-c", prod)
    t.ok(rc == 0 and out == "configuration OK\n",
         "-t passes on examples/sserelay-production.conf (its files made "
         "here)", "rc %r out %r err %r" % (rc, out, err))

    # errors: one line "FILE:LINE: ...", the first error only, exit 1
    cases = [
        ("unknown key", ["retry 100", "hearbeat 10"], 2,
         r"unknown key 'hearbeat'"),
        ("duplicate key", ["retry 100", "# x", "heartbeat 3", "retry 200"], 4,
         r"duplicate key 'retry'.*\bline 1\b"),
        ("bad value", ["format xml"], 1, r"format: .*'xml'"),
        ("bad number", ["retry 10ms"], 1, r"retry: .*'10ms'"),
        ("bad yes/no", ["demo maybe"], 1, r"demo: .*'maybe'"),
        ("bad listen", ["listen 127.0.0.1"], 1, r"listen: "),
        ("bad redis URL", ["redis http://x"], 1, r"redis: "),
        ("out of range max-uploads 17", ["", "max-uploads 17"], 2,
         r"max-uploads: .*\b16\b.*'17'"),
        ("out of range heartbeat 0.01", ["heartbeat 0.01"], 1,
         r"heartbeat: .*'0\.01'"),
        ("out of range threads 257", ["threads 257"], 1,
         r"threads: .*'257'"),
        ("negative retry", ["retry -1"], 1, r"retry: .*'-1'"),
        ("missing value", ["heartbeat 3", "retry"], 2,
         r"retry: missing value"),
        ("missing value after blanks", ["ring-size   "], 1,
         r"ring-size: missing value"),
        ("unterminated quote", ['user-prefix "u:'], 1,
         r"user-prefix: .*quote"),
        ("text after the closing quote", ['user-prefix "u:" x'], 1,
         r"user-prefix: .*quote"),
        ("first error only", ["bogus 1", "retry x"], 1,
         r"unknown key 'bogus'$"),
    ]
    for i, (what, lines, lineno, rx) in enumerate(cases):
        path = write("bad-%d.conf" % i, "\n".join(lines) + "\n")
        rc, out, err = run("-t", "-c", path)
        errlines = err.splitlines()
        prefix = "%s:%d: " % (path, lineno)
        good_line = (len(errlines) == 1 and errlines[0].startswith(prefix)
                     and re.search(rx, errlines[0][len(prefix):]))
        t.ok(rc == 1 and out == "" and good_line,
             "-t, %s: exit 1, one line FILE:%d: ..." % (what, lineno),
             "rc %r out %r\nstderr %r\nwant %r + /%s/"
             % (rc, out, err, prefix, rx))
        if i == 0:
            t.diag("e.g. " + err.strip())

    # the daemon itself refuses a bad file the same way
    bad = write("bad-start.conf", "heartbeat 3\nretry soon\n")
    rc, out, err = run("-c", bad, "--listen", "127.0.0.1:%d"
                       % harness.free_port())
    t.ok(rc == 1 and err.startswith("%s:2: retry: " % bad)
         and len(err.splitlines()) == 1,
         "starting on a bad file: exit 1 with the same FILE:LINE line",
         "rc %r err %r" % (rc, err))

    missing_path = t.path("no-such.conf")
    rc, out, err = run("-t", "-c", missing_path)
    t.ok(rc == 1 and missing_path in err and out == "",
         "-t -c on a missing file: exit 1 naming it",
         "rc %r err %r" % (rc, err))
    rc, out, err = run("-c", missing_path)
    t.ok(rc == 1 and missing_path in err,
         "starting with -c on a missing file: exit 1 naming it",
         "rc %r err %r" % (rc, err))

    # flags are checked after the file, and override it
    rc, out, err = run("-t", "-c", good, "--heartbeat", "0")
    t.ok(rc == 1 and "--heartbeat" in err,
         "-t checks the flags too (--heartbeat 0 with a good file)", err)
    rc, out, err = run("-t", "-c", write("range.conf", "max-uploads 3\n"),
                       "--max-uploads", "16")
    t.ok(rc == 0, "a flag replaces the file's value before it is checked")

    # address lists: -t reads them with the parser the daemon starts with,
    # and the message names the entry at fault
    for flag, value, names in (
            ("--redis-cluster", "a:b,,:7000", "'a:b'"),
            ("--redis-cluster", "h:7000,,h:7001", "entry 2 is empty"),
            ("--redis-cluster", "h:7000,:7001", "':7001'"),
            ("--redis-cluster", "h:7000,", "entry 2 is empty"),
            ("--redis-sentinel", "s:26379,s:0", "'s:0'"),
            ("--redis-sentinel", "s:26379,s", "'s'")):
        more = (["--redis-sentinel-master", "m"]
                if flag == "--redis-sentinel" else [])
        rc, out, err = run("-t", "-c", good, flag, value, *more)
        t.ok(rc == 1 and out == "" and flag in err and names in err,
             "-t %s '%s': exit 1 naming %s" % (flag, value, names),
             "rc %r err %r" % (rc, err))
    rc, out, err = run("-t", "-c", good, "--redis-cluster",
                       "h:7000, [::1]:7001", "--redis", "redis://x:6379")
    t.ok(rc == 0 and out == "configuration OK\n",
         "-t --redis-cluster with a good list: configuration OK",
         "rc %r err %r" % (rc, err))
    rc, out, err = run("-t", "-c", write("cluster.conf",
                                         "redis-cluster a:1,,b:2\n"))
    t.ok(rc == 1 and "redis-cluster" in err and "entry 2 is empty" in err,
         "-t: a bad list in the file is said the same way", err)

    # --------------------------------------------------------- a real daemon
    r = t.redis()
    d = file_daemon(r, ["retry 1234", "heartbeat 10"],
                    extra=["--heartbeat", "0.3"])
    t.ok(d.wait_log(r"info configuration read from " + re.escape(d.conf), 2),
         "the daemon logs the file it read")
    s1, retry = stream_retry(d)
    t.eq(retry, 1234, "file value takes effect: the stream opens with "
         "retry: 1234")
    t0 = time.monotonic()
    s1.read_for(1.6)
    n = len(s1.sse.pings())
    t.ok(4 <= n <= 8, "flag overrides file: --heartbeat 0.3 over "
         "'heartbeat 10' (%d pings in %.1f s)" % (n, time.monotonic() - t0))
    c = r.client()
    t.eq(c.publish("user:cfg", "x"), 1, "the stream is subscribed")
    t.ok(s1.wait_events(1, 5), "and receives")

    # SIGHUP: a live change
    d.rewrite(["retry 4321", "heartbeat 20"])
    found, pos = sighup(d, r"info reload: 'retry' changed")
    t.ok(found, "SIGHUP with a new retry: info line \"reload: 'retry' "
         "changed\"", d.log_text()[pos:])
    later = d.log_text()[pos:]
    t.ok("'heartbeat' changed" not in later,
         "the --heartbeat flag still overrides the file after a reload",
         later)
    t.eq(wait_retry(d, 4321, "/events?user=cfg2"), 4321,
         "a stream opened after the reload gets retry: 4321")
    pings = len(s1.sse.pings())
    s1.read_for(1.0)
    t.ok(not s1.eof and len(s1.sse.pings()) - pings >= 2,
         "the open stream stays open, still pinged every 0.3 s")

    # SIGHUP: listen cannot change live
    old = d.port
    new = harness.free_port()
    d.rewrite(["retry 4321", "heartbeat 20"], listen_port=new)
    found, pos = sighup(d, r"warn reload: 'listen' changed.*restart")
    t.ok(found, "SIGHUP with a new listen: warn line says it needs a restart",
         d.log_text()[pos:])
    t.ok(d.wait_log(r"info reload: nothing changed that can change live", 5,
                    pos), "and the reload ends: nothing changed that can "
         "change live", d.log_text()[pos:])
    st, js = d.healthz()
    t.eq(st, 200, "still serving on the old port %d" % old)
    try:
        socket.create_connection(("127.0.0.1", new), timeout=1).close()
        on_new = True
    except OSError:
        on_new = False
    t.ok(not on_new, "nothing listens on the new port %d" % new)

    # SIGHUP: a broken file is rejected whole
    d.rewrite(["retry 999", "heartbeat 20", "max-uploads 99"])
    found, pos = sighup(d, r"error reload: ")
    text = d.log_text()[pos:]
    lineno = 4 + 3    # the header lines, then the third test line
    want = "error reload: %s:%d: max-uploads: " % (d.conf, lineno)
    t.ok(found and want in text and "keeping the running configuration"
         in text, "SIGHUP with a bad file: error line with FILE:LINE that "
         "keeps the running configuration", "want %r in\n%s" % (want, text))
    t.ok("'retry' changed" not in text,
         "no setting of the rejected file is applied", text)
    t.ok(d.running(), "the daemon keeps running")
    s3, retry = stream_retry(d, "/events?user=cfg3")
    t.eq(retry, 4321, "a new stream still gets the old retry: 4321")
    t.eq(c.publish("user:cfg3", "y"), 1, "and is subscribed")
    t.ok(s3.wait_events(1, 5), "and receives")
    s3.close()

    d.rewrite(None, raw="retry 5\n")   # no listen/redis in it any more
    # logged in the table's order: listen before retry
    found, pos = sighup(d, r"info reload: 'retry' changed")
    text = d.log_text()[pos:]
    t.ok(found and "'listen' changed" in text,
         "a good file after a bad one is applied (missing keys go back to "
         "their defaults, reported like any change)", text)
    t.eq(wait_retry(d, 5, "/events?user=cfg4"), 5, "new streams get retry: 5")
    s1.close()

    # live heartbeat change on an open stream (no flag this time)
    d2 = file_daemon(r, ["heartbeat 30"])
    s, _ = stream_retry(d2, "/events?user=hb")
    s.read_for(0.5)
    before = len(s.sse.pings())
    d2.rewrite(["heartbeat 0.2"])
    found, pos = sighup(d2, r"info reload: 'heartbeat' changed")
    t.ok(found, "SIGHUP: \"reload: 'heartbeat' changed\"")
    s.read_for(1.5)
    n = len(s.sse.pings()) - before
    t.ok(n >= 4, "an open stream gets pings at the new 0.2 s interval "
         "(%d in 1.5 s)" % n)
    d2.rewrite(["heartbeat 0.2", "log-level info"])
    found, pos = sighup(d2, r"info reload: 'log-level' changed")
    t.ok(found, "SIGHUP with log-level debug -> info: \"reload: "
         "'log-level' changed\"")
    # the daemon sees the close at the stream's next ping, which libmicrohttpd
    # logs at debug ("Failed to send ..."); /healthz counts it once handled
    s.close()
    t.ok(harness.wait_for(lambda: streams_open(d2) == 0, 5),
         "the closed stream is gone", "streams: %r" % streams_open(d2))
    t.ok(not re.search(r" debug ", d2.log_text()[pos:]),
         "no debug line after that", d2.log_text()[pos:])
    # two reloads at log-level warn, each seen applied through retry:
    pos = len(d2.log_text())
    d2.rewrite(["heartbeat 0.2", "log-level warn", "retry 66"])
    d2.signal(signal.SIGHUP)
    t.eq(wait_retry(d2, 66, "/events?user=hb2"), 66,
         "the reload to log-level warn was applied (retry: 66)")
    d2.rewrite(["heartbeat 0.2", "log-level warn", "retry 77"])
    d2.signal(signal.SIGHUP)
    t.eq(wait_retry(d2, 77, "/events?user=hb3"), 77,
         "the next reload was applied (retry: 77)")
    text = d2.log_text()[pos:]
    t.ok(d2.running() and not re.search(r" (info|debug) ", text),
         "at log-level warn a reload logs no info line, the one that sets "
         "warn included", text)


t.run(main)
