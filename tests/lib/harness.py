"""Integration test harness for sserelay (Python 3 standard library only).

Each tests/*.t script does:

    import harness

    t = harness.Test()
    def main():
        r = t.redis()
        d = t.daemon(r)
        ...
    t.run(main)

What it provides:
- TAP output (ok/not ok, diag, plan printed at the end, exit status 1 on
  any failure); "1..0 # SKIP" only when redis-server (or another required
  program) is missing and SSERELAY_REQUIRE_ALL is not set.
- a temporary directory per test, removed at exit (nothing is ever written
  into the source tree); free loopback ports (bind to port 0).
- redis-server and sserelay processes that are always stopped at exit;
  the daemon log is dumped as TAP diagnostics when a test fails, and a
  sanitizer report in it ("ERROR: AddressSanitizer", "runtime error:",
  "LeakSanitizer") fails the test.
- a minimal Redis client (RESP), an HTTP client, an SSE client over raw
  sockets (chunked decoding, WHATWG line parsing on bytes), a helper to
  pump many streams at once with selectors, and /proc fd/RSS readers.

Environment: SSERELAY (daemon binary), REDIS_SERVER (redis-server path),
TESTS_SRCDIR, SSERELAY_REQUIRE_ALL (missing programs fail instead of skip),
SSERELAY_TEST_KEEP (keep the temporary directory).  make check sets
PYTHONPATH to this directory (Makefile.am, AM_TESTS_ENVIRONMENT) and
PYTHONDONTWRITEBYTECODE, so that nothing is written into the source tree;
by hand, from a build directory:

    PYTHONPATH=$srcdir/tests/lib PYTHONDONTWRITEBYTECODE=1 \
        SSERELAY=src/sserelay $srcdir/tests/curl.t
"""

import atexit
import itertools
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from urllib.parse import quote

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:",
                      "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                      "AddressSanitizer:DEADLYSIGNAL")

LOG_LINE_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) .+$")
ID_RE = re.compile(r"^([0-9a-f]{8})-(\d+)$")


# --------------------------------------------------------------------------
# small helpers

def system_module(name):
    """Imports module `name` and returns it.  python3 on PATH may be a
    private interpreter (pyenv, venv) without Debian's python3-* packages:
    then the test runs again, once, under /usr/bin/python3.  None when the
    module is in neither."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        pass
    sysp = "/usr/bin/python3"
    if (os.access(sysp, os.X_OK)
            and os.path.realpath(sys.executable) != os.path.realpath(sysp)
            and not os.environ.get("SSERELAY_SYSTEM_PYTHON")):
        os.environ["SSERELAY_SYSTEM_PYTHON"] = "1"
        sys.stdout.flush()
        os.execv(sysp, [sysp] + sys.argv)
    return None


def parse_unit(text):
    """A systemd unit's text as {(section, key): [values]} (a repeated key
    keeps every value)."""
    out = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            section = m.group(1)
            continue
        k, _, v = line.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def redis_answers(port):
    """A Redis server (or sentinel) answers PING on 127.0.0.1:port: +PONG,
    or an error such as -NOAUTH, which also says it is there.  Not
    -LOADING: a server still reading its AOF or RDB refuses every command
    until it has, and a test that goes on at once gets that error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            data = s.recv(100)
            return data.startswith(b"+") or (data.startswith(b"-") and
                                             not data.startswith(b"-LOADING"))
    except OSError:
        return False


def wait_for(pred, timeout, interval=0.02):
    """Poll pred() until true or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def find_program(name, env=None):
    path = os.environ.get(env) if env else None
    if path:
        if os.path.isabs(path):
            return path if os.access(path, os.X_OK) else None
        return shutil.which(path)
    return shutil.which(name)


def proc_fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def parse_id(s):
    """'0badf00d-42' -> ('0badf00d', 42) or None."""
    if s is None:
        return None
    m = ID_RE.match(s)
    if not m:
        return None
    return m.group(1), int(m.group(2))


def seq_of(event_id):
    """'0badf00d-42' -> 42, or None for anything that is not an id."""
    p = parse_id(event_id)
    return p[1] if p else None


def payload_n(e):
    """The "n" of an event whose payload is the JSON {"n": ...} (as the
    tests publish it), or None."""
    try:
        return e.json()["data"]["n"]
    except (ValueError, KeyError, TypeError):
        return None


_sanitized = {}


def binary_is_sanitized(path):
    if path not in _sanitized:
        try:
            with open(path, "rb") as f:
                data = f.read()
            _sanitized[path] = (b"__asan_init" in data or b"__ubsan_" in data
                                or b"__tsan_init" in data)
        except OSError:
            _sanitized[path] = False
    return _sanitized[path]


# --------------------------------------------------------------------------
# TAP

class Test:
    """One TAP test script: assertions, temp dir, processes, cleanup."""

    def __init__(self, require=("redis-server",)):
        self.n = 0
        self.failed = 0
        self.finished = False
        self.cleanups = []
        self.daemons = []
        self.redises = []
        self.tmp = tempfile.mkdtemp(prefix="sserelay-test-")
        self.t0 = time.monotonic()
        atexit.register(self._atexit)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sserelay = os.environ.get("SSERELAY")
        self.redis_server = find_program("redis-server", "REDIS_SERVER")
        self.require_all = bool(os.environ.get("SSERELAY_REQUIRE_ALL"))
        self.sanitized = False
        if not self.sserelay or not os.access(self.sserelay, os.X_OK):
            self._plan_fail("SSERELAY is not set to an executable sserelay "
                            "binary (got %r)" % self.sserelay)
        self.sanitized = binary_is_sanitized(self.sserelay)
        for prog in require:
            if prog == "redis-server":
                found = self.redis_server
            else:
                found = shutil.which(prog)
            if not found:
                if self.require_all:
                    self._plan_fail("%s not found and SSERELAY_REQUIRE_ALL "
                                    "is set" % prog)
                self._skip_all("%s not found" % prog)

    # -- output
    def _out(self, s):
        sys.stdout.write(s + "\n")
        sys.stdout.flush()

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            self._out("# " + line)

    def ok(self, cond, name, diag=None):
        self.n += 1
        name = name.replace("#", "\\#").replace("\n", " ")
        if cond:
            self._out("ok %d - %s" % (self.n, name))
        else:
            self.failed += 1
            self._out("not ok %d - %s" % (self.n, name))
            if diag is not None:
                self.diag(diag)
        return bool(cond)

    def eq(self, got, expected, name):
        good = got == expected
        d = None
        if not good:
            d = "     got: %s\nexpected: %s" % (_short(got), _short(expected))
        return self.ok(good, name, d)

    def skip(self, name, reason):
        self.n += 1
        self._out("ok %d - %s # SKIP %s" % (self.n, name, reason))

    def skip_all_unless_required(self, reason):
        """Something the whole test needs is missing (reason says what):
        skip it, or fail it when SSERELAY_REQUIRE_ALL is set."""
        if self.require_all:
            self._plan_fail(reason + " and SSERELAY_REQUIRE_ALL is set")
        self._skip_all(reason)

    def skip_unless_required(self, name, reason):
        """The same for one check: `name` skipped, or not ok when
        SSERELAY_REQUIRE_ALL is set."""
        if self.require_all:
            self.ok(False, "%s: %s and SSERELAY_REQUIRE_ALL is set"
                    % (name, reason))
        else:
            self.skip(name, reason)

    def _skip_all(self, reason):
        self.finished = True
        self._out("1..0 # SKIP " + reason)
        self._cleanup()
        sys.exit(0)

    def _plan_fail(self, reason):
        self.finished = True
        self._out("1..1")
        self._out("not ok 1 - " + reason)
        self._cleanup()
        sys.exit(1)

    # -- processes
    def redis(self, **kw):
        r = RedisServer(self, **kw)
        self.redises.append(r)
        r.start()
        return r

    def daemon(self, redis=None, extra=(), **kw):
        d = Daemon(self, redis, extra, **kw)
        self.daemons.append(d)
        d.start()
        return d

    def path(self, name):
        return os.path.join(self.tmp, name)

    def parts(self, redis, parts):
        """Run each part(redis) in turn: an exception fails that part only
        (the next ones still run), and a Redis a part left stopped is
        started again for the next."""
        for part in parts:
            try:
                part(redis)
            except Exception:
                self.ok(False, "%s ran without an exception" % part.__name__,
                        traceback.format_exc())
            if not redis.running():
                redis.start()

    def elapsed(self):
        return time.monotonic() - self.t0

    # -- end
    def run(self, main):
        try:
            main()
        except SystemExit:
            raise
        except BaseException:
            self.ok(False, "test body ran without an exception",
                    traceback.format_exc())
        self.done()

    def done(self):
        if self.finished:
            return
        for d in self.daemons:
            if d.running():
                d.stop(check=True)
        for d in self.daemons:
            reports = d.sanitizer_lines()
            self.ok(not reports, "%s log has no sanitizer report" % d.name,
                    "\n".join(reports[:40]) if reports else None)
        self.finished = True
        if self.failed:
            for d in self.daemons:
                d.dump_log()
        self._out("1..%d" % self.n)
        self.diag("%d/%d failed, %.1f s" % (self.failed, self.n,
                                             self.elapsed()))
        self._cleanup()
        sys.stdout.flush()
        os._exit(1 if self.failed or self.n == 0 else 0)

    def _cleanup(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:
                pass
        self.cleanups = []
        for d in self.daemons:
            d.kill()
        for r in self.redises:
            r.kill()
        if os.environ.get("SSERELAY_TEST_KEEP"):
            sys.stderr.write("kept %s\n" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _atexit(self):
        if not self.finished:
            self.finished = True
            self.ok(False, "test script reached done()")
            for d in self.daemons:
                d.dump_log()
            self._out("1..%d" % self.n)
        self._cleanup()

    def _on_signal(self, signum, frame):
        self._cleanup()
        os._exit(128 + signum)


def _short(v, n=300):
    s = repr(v)
    if len(s) > n:
        s = s[:n] + "...(%d chars)" % len(s)
    return s


# --------------------------------------------------------------------------
# redis-server

class RedisServer:
    def __init__(self, t, password=None, port=None, extra=()):
        self.t = t
        self.password = password
        self.port = port
        self.extra = list(extra)
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=t.tmp)
        self.logfile = os.path.join(self.dir, "redis.log")

    def start(self, timeout=10):
        fixed = self.port is not None
        for attempt in range(5):
            if not fixed:
                self.port = free_port()
            args = [self.t.redis_server, "--port", str(self.port),
                    "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", self.dir,
                    "--daemonize", "no", "--logfile", self.logfile]
            if self.password:
                args += ["--requirepass", self.password]
            args += self.extra
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            if wait_for(self._answers, timeout if fixed else 5, 0.02):
                return self
            self.kill()
            if fixed and attempt >= 2:
                break
            time.sleep(0.1)
        raise RuntimeError("redis-server did not answer PING on port %d: %s"
                           % (self.port, self.log_tail()))

    def _answers(self):
        return self.proc.poll() is None and redis_answers(self.port)

    def log_tail(self, n=20):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def client(self, password=None):
        return RedisClient(self.port, password or self.password)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait()

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class RedisError(Exception):
    pass


class RedisClient:
    """Just enough RESP2 for PUBLISH (binary-safe), AUTH and friends."""

    def __init__(self, port, password=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""
        if password:
            self.cmd("AUTH", password)

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        raise RedisError("bad reply %r" % line)

    def cmd(self, *args):
        self.sock.sendall(self.encode(args))
        r = self.read_reply()
        if isinstance(r, RedisError):
            raise r
        return r

    def publish(self, channel, payload):
        return self.cmd("PUBLISH", channel, payload)

    def publish_many(self, items, batch=500):
        """Pipelined PUBLISHes; returns the list of receiver counts."""
        out = []
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            self.sock.sendall(b"".join(self.encode(("PUBLISH", c, p))
                                       for c, p in chunk))
            for _ in chunk:
                r = self.read_reply()
                if isinstance(r, RedisError):
                    raise r
                out.append(r)
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# sserelay

class Daemon:
    def __init__(self, t, redis=None, extra=(), redis_url=None, env=None,
                 wait_redis=True, name=None, no_redis_arg=False,
                 log_level="debug"):
        self.t = t
        self.redis = redis
        self.extra = list(extra)
        self.redis_url = redis_url
        self.env = env or {}
        self.wait_redis = wait_redis
        self.no_redis_arg = no_redis_arg
        self.log_level = log_level
        self.name = name or "sserelay-%d" % (len(t.daemons) + 1)
        self.logfile = t.path("%s.log" % self.name)
        self.proc = None
        self.port = None
        self.returncode = None
        self.dumped = False

    @property
    def pid(self):
        return self.proc.pid

    def args(self):
        # An empty configuration unless the test names its own (a later
        # -c wins): the host's SYSCONFDIR/sserelay.conf must not leak in.
        a = [self.t.sserelay, "-c", "/dev/null",
             "--listen", "127.0.0.1:%d" % self.port]
        if not self.no_redis_arg:
            url = self.redis_url
            if url is None and self.redis is not None:
                url = "redis://127.0.0.1:%d" % self.redis.port
            if url is not None:
                a += ["--redis", url]
        if self.log_level:
            a += ["--log-level", self.log_level]
        return a + self.extra

    def start(self, timeout=None):
        if timeout is None:
            timeout = 30 if self.t.sanitized else 15
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.update(self.env)
        for attempt in range(4):
            self.port = free_port()
            log = open(self.logfile, "ab")
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env)
            log.close()
            self.returncode = None
            if self._wait_listening(timeout):
                break
            text = self.log_text()
            if self.proc.poll() is not None and re.search(
                    r"in use|EADDRINUSE|bind", text, re.I) and attempt < 3:
                continue   # lost a port race with a parallel test
            self.kill()
            raise RuntimeError("sserelay did not start listening (exit %r)"
                               % self.proc.poll())
        if self.wait_redis:
            if not wait_for(lambda: self._redis_up(), timeout, 0.05):
                raise RuntimeError("sserelay /healthz never said redis up")
        return self

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if "listening on" in self.log_text():
                return True
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=0.5):
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _redis_up(self):
        if self.proc.poll() is not None:
            raise RuntimeError("sserelay exited with %r" % self.proc.poll())
        try:
            st, js = self.healthz(timeout=2)
            return st == 200 and js.get("redis") == "up"
        except (OSError, ValueError):
            return False

    def healthz(self, timeout=5):
        r = http_request(self.port, "GET", "/healthz", timeout=timeout)
        return r.status, json.loads(r.body.decode())

    def stream(self, path, **kw):
        return SSEStream(self.port, path, **kw)

    def resume(self, path, last_id, query=False, **kw):
        """A stream resumed from last_id: sent as the Last-Event-ID header
        (what browsers do), or with query=True as ?lastEventId= (what
        polyfills and first connections do)."""
        if query:
            sep = "&" if "?" in path else "?"
            return SSEStream(self.port, path + sep + "lastEventId=" +
                             quote(last_id, safe=""), **kw)
        headers = dict(kw.pop("headers", None) or {})
        headers["Last-Event-ID"] = last_id
        return SSEStream(self.port, path, headers=headers, **kw)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def log_text(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self):
        return self.log_text().splitlines()

    def wait_log(self, pattern, timeout=5, start=0):
        """Wait for a log line matching regex pattern (after char start)."""
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log_text()[start:]),
                        timeout, 0.02)

    def sanitizer_lines(self):
        lines = self.log_lines()
        out = []
        for i, line in enumerate(lines):
            if any(p in line for p in SANITIZER_PATTERNS):
                out.extend(lines[i:i + 30])
                break
        return out

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=None, check=True):
        """SIGTERM, wait, then SIGKILL.  With check, asserts exit status 0."""
        if self.proc is None:
            return None
        if timeout is None:
            timeout = 10 if self.t.sanitized else 5
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    self.t.ok(False, "%s exited within %d s of SIGTERM"
                              % (self.name, timeout))
                    check = False
        self.returncode = self.proc.returncode
        if check:
            self.t.eq(self.returncode, 0,
                      "%s exited with status 0 after SIGTERM" % self.name)
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def dump_log(self, max_lines=150):
        if self.dumped:
            return
        self.dumped = True
        lines = self.log_lines()
        self.t.diag("---- %s log (%s, %d lines, showing last %d) ----"
                    % (self.name, " ".join(self.args()[1:]), len(lines),
                       min(len(lines), max_lines)))
        for line in lines[-max_lines:]:
            self.t.diag("  " + line[:400])


# --------------------------------------------------------------------------
# HTTP

class Response:
    def __init__(self):
        self.status = None
        self.reason = ""
        self.version = ""
        self.header_list = []   # [(lower-name, value)]
        self.headers = {}       # lower-name -> last value
        self.body = b""
        self.extra = b""        # bytes seen after a HEAD/204 response
        self.closed = False

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)


def _parse_head(raw, resp):
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    resp.version = parts[0]
    resp.status = int(parts[1])
    resp.reason = parts[2] if len(parts) > 2 else ""
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        resp.header_list.append((k.strip().lower(), v.strip()))
        resp.headers[k.strip().lower()] = v.strip()


def _connect(port, timeout, source=None):
    """A TCP connection to 127.0.0.1:port, from the local address source
    (e.g. "127.0.0.2", to be another client IP) when given."""
    if source is None:
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def http_request(port, method, path, headers=None, body=b"", timeout=5,
                 raw=None, source=None):
    """One request on a new connection (Connection: close); source: the
    local address to connect from (default: chosen by the kernel)."""
    if raw is None:
        h = {"Host": "127.0.0.1:%d" % port, "Connection": "close"}
        if body:
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        raw = ("%s %s HTTP/1.1\r\n" % (method, path)
               + "".join("%s: %s\r\n" % kv for kv in h.items())
               + "\r\n").encode("latin-1") + body
    resp = Response()
    deadline = time.monotonic() + timeout
    with _connect(port, timeout, source) as s:
        s.sendall(raw)
        buf = b""
        while b"\r\n\r\n" not in buf:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            data = s.recv(65536)
            if not data:
                raise ConnectionError("connection closed before headers: %r"
                                      % buf[:200])
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        _parse_head(head, resp)
        no_body = method == "HEAD" or resp.status in (204, 304) \
            or 100 <= resp.status < 200
        if no_body:
            # Anything that follows is a protocol error: look for 1 s.
            extra = rest
            end = min(deadline, time.monotonic() + 1.0)
            try:
                while time.monotonic() < end:
                    s.settimeout(max(0.01, end - time.monotonic()))
                    data = s.recv(65536)
                    if not data:
                        resp.closed = True
                        break
                    extra += data
            except (socket.timeout, OSError):
                pass
            resp.extra = extra
            return resp
        te = resp.header("transfer-encoding", "").lower()
        cl = resp.header("content-length")
        dech = Dechunker() if "chunked" in te else None
        body = bytearray()
        pending = rest
        while True:
            if dech is not None:
                body += dech.feed(pending)
                if dech.error:
                    raise ValueError("bad chunked body: " + dech.error)
                if dech.done:
                    break
            else:
                body += pending
                if cl is not None and len(body) >= int(cl):
                    del body[int(cl):]
                    break
            s.settimeout(max(0.01, deadline - time.monotonic()))
            pending = s.recv(65536)
            if not pending:
                resp.closed = True
                if dech is not None or cl is not None:
                    raise ConnectionError("body truncated")
                break
        resp.body = bytes(body)
    return resp


class Dechunker:
    """Incremental HTTP/1.1 chunked transfer decoding."""

    def __init__(self):
        self.buf = b""
        self.state = "size"
        self.remaining = 0
        self.done = False
        self.error = None
        self.chunks = 0

    def feed(self, data):
        self.buf += data
        out = bytearray()
        while not self.error and not self.done:
            if self.state == "size":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    if len(self.buf) > 1024:
                        self.error = "chunk size line too long"
                    break
                line = self.buf[:i].split(b";")[0].strip()
                self.buf = self.buf[i + 2:]
                try:
                    n = int(line, 16)
                except ValueError:
                    self.error = "bad chunk size %r" % line[:40]
                    break
                if n == 0:
                    self.state = "trailer"
                else:
                    self.remaining = n
                    self.chunks += 1
                    self.state = "data"
            elif self.state == "data":
                if not self.buf:
                    break
                take = self.buf[:self.remaining]
                out += take
                self.buf = self.buf[len(take):]
                self.remaining -= len(take)
                if self.remaining == 0:
                    self.state = "crlf"
            elif self.state == "crlf":
                if len(self.buf) < 2:
                    break
                if self.buf[:2] != b"\r\n":
                    self.error = "missing CRLF after chunk data"
                    break
                self.buf = self.buf[2:]
                self.state = "size"
            elif self.state == "trailer":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                line = self.buf[:i]
                self.buf = self.buf[i + 2:]
                if not line:
                    self.done = True
        return bytes(out)


# --------------------------------------------------------------------------
# SSE

class Event:
    __slots__ = ("id", "data_lines", "event", "time", "lines")

    def __init__(self):
        self.id = None
        self.data_lines = []
        self.event = None
        self.time = None
        self.lines = []

    @property
    def data_bytes(self):
        return b"\n".join(self.data_lines)

    @property
    def data(self):
        return self.data_bytes.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "Event(id=%r, data=%s)" % (self.id, _short(self.data_bytes, 120))


class SSEParser:
    """Parses an event stream on bytes (WHATWG line rules: CRLF, LF, CR)."""

    LINE_RE = re.compile(b"\r\n|\n|\r")

    def __init__(self):
        self.buf = b""
        self.raw = bytearray()
        self.events = []
        self.comments = []      # (monotonic time, text after ": ")
        self.retries = []       # every valid retry: value, in order
        self.blocks = 0         # blank lines seen (dispatch points)
        self.lines = 0
        self.cur = Event()
        self.cur_has_field = False
        self.other_fields = []  # unknown field names seen

    def feed(self, data):
        if not data:
            return
        self.raw += data
        self.buf += data
        pos = 0
        buf = self.buf
        while True:
            m = self.LINE_RE.search(buf, pos)
            if not m:
                break
            if m.group() == b"\r" and m.end() == len(buf):
                break   # could be the first half of a CRLF
            self._line(buf[pos:m.start()])
            pos = m.end()
        self.buf = buf[pos:]

    def _line(self, line):
        self.lines += 1
        now = time.monotonic()
        if line == b"":
            self.blocks += 1
            if self.cur_has_field:
                self.cur.time = now
                self.events.append(self.cur)
            self.cur = Event()
            self.cur_has_field = False
            return
        if line.startswith(b":"):
            text = line[1:]
            if text.startswith(b" "):
                text = text[1:]
            self.comments.append((now, text.decode("utf-8", "replace")))
            return
        self.cur.lines.append(line)
        field, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self.cur.data_lines.append(value)
            self.cur_has_field = True
        elif field == b"id":
            if b"\0" not in value:
                self.cur.id = value.decode("utf-8", "replace")
            self.cur_has_field = True
        elif field == b"event":
            self.cur.event = value.decode("utf-8", "replace")
            self.cur_has_field = True
        elif field == b"retry":
            if value.isdigit():
                self.retries.append(int(value))
        else:
            self.other_fields.append(field)

    def pings(self):
        return [c for c in self.comments if c[1] == "ping"]


class SSEStream:
    """GET a stream over a raw socket; non-blocking after the request."""

    def __init__(self, port, path, headers=None, method="GET",
                 connect_timeout=5, rcvbuf=None, source=None):
        self.port = port
        self.path = path
        self.method = method
        if rcvbuf is None:
            self.sock = _connect(port, connect_timeout, source)
        else:
            # A small receive buffer set before connect() (so the TCP
            # window stays small): a client that stops reading stalls the
            # daemon's writes after a few KB instead of a few MB.
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(connect_timeout)
            if source is not None:
                self.sock.bind((source, 0))
            self.sock.connect(("127.0.0.1", port))
        h = {"Host": "127.0.0.1:%d" % port, "Accept": "text/event-stream",
             "Cache-Control": "no-cache"}
        h.update(headers or {})
        req = ("%s %s HTTP/1.1\r\n" % (method, path)
               + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n")
        self.sock.sendall(req.encode("latin-1"))
        self.sock.setblocking(False)
        self.hbuf = b""
        self.resp = None
        self.dech = None
        self.sse = SSEParser()
        self.eof = False
        self.reset = False
        self.closed = False
        self.body_bytes = 0
        self.error = None

    def fileno(self):
        return self.sock.fileno()

    @property
    def status(self):
        return self.resp.status if self.resp else None

    @property
    def events(self):
        return self.sse.events

    @property
    def ended_cleanly(self):
        """The chunked body ended with its last-chunk."""
        return self.dech is not None and self.dech.done

    @property
    def opened(self):
        return self.resp is not None and self.sse.blocks >= 1

    def recv_once(self, size=1 << 16):
        if self.eof or self.closed:
            return False
        try:
            data = self.sock.recv(size)
        except (BlockingIOError, InterruptedError):
            return True
        except ConnectionResetError:
            self.eof = True
            self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self._feed(data)
        return True

    def _feed(self, data):
        if self.resp is None:
            self.hbuf += data
            if b"\r\n\r\n" not in self.hbuf:
                return
            head, data = self.hbuf.split(b"\r\n\r\n", 1)
            self.resp = Response()
            _parse_head(head, self.resp)
            if "chunked" in self.resp.header("transfer-encoding", "").lower():
                self.dech = Dechunker()
        if self.dech is not None:
            data = self.dech.feed(data)
            if self.dech.error and not self.error:
                self.error = self.dech.error
        self.body_bytes += len(data)
        self.sse.feed(data)

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if pred():
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self.eof or self.closed:
                return bool(pred())
            import select
            r, _, _ = select.select([self.sock], [], [], min(left, 0.5))
            if r:
                self.recv_once()

    def wait_opened(self, timeout=10):
        return self.wait(lambda: self.opened, timeout)

    def wait_events(self, n, timeout=10):
        return self.wait(lambda: len(self.sse.events) >= n, timeout)

    def read_for(self, seconds):
        """Keep reading for a while (collects heartbeats)."""
        self.wait(lambda: False, seconds)

    def settle(self, publish, channel, timeout=10):
        """'Nothing more arrives', proven by a marker, not by time:
        publishes a marker on `channel` (a channel this stream has) after
        whatever must not arrive, and reads until the marker is in.  The
        daemon writes a stream's events in the order they were published
        (a replay's before the live ones), so anything still to come before
        the marker has come by then.  Every marker is then taken out of
        self.events (a replay may bring back older ones), so that the
        caller's checks see the rest as it came.  Returns the marker's
        Event, or None if it did not come within timeout.

        publish(channel, payload): e.g. a RedisClient's publish."""
        return settle([self], publish, {id(self): channel}, timeout)[0]

    def close(self, rst=False):
        if self.closed:
            return
        self.closed = True
        try:
            if rst:
                import struct
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass


MARKER_KEY = "sserelay-test-marker"
_markers = itertools.count(1)


def marker_of(e):
    """The number of a settle() marker event, or None."""
    if MARKER_KEY.encode() not in e.data_bytes:
        return None
    try:
        j = e.json()
    except ValueError:
        return None
    for v in (j, j.get("data") if isinstance(j, dict) else None):
        if isinstance(v, dict) and MARKER_KEY in v:
            return v[MARKER_KEY]
    return None


def settle(streams, publish, channels, timeout=10):
    """SSEStream.settle for several streams at once: channels maps
    id(stream) to a channel it has; one marker per distinct channel.
    Returns each stream's marker Event (None where it did not come)."""
    sent = {}
    for ch in dict.fromkeys(channels[id(s)] for s in streams):
        k = next(_markers)
        publish(ch, json.dumps({MARKER_KEY: k}))
        sent[ch] = k

    def mine(s):
        k = sent[channels[id(s)]]
        return next((e for e in s.events if marker_of(e) == k), None)
    pump(streams, lambda: all(mine(s) for s in streams), timeout)
    out = [mine(s) for s in streams]
    for s in streams:
        s.sse.events[:] = [e for e in s.sse.events if marker_of(e) is None]
    return out


def reset_events(stream):
    """The `event: reset` events of a stream (see hub.c)."""
    return [e for e in stream.events if e.event == "reset"]


def message_events(stream):
    """The events without an event: field (published messages)."""
    return [e for e in stream.events if e.event is None]


def open_streams(port, paths, timeout=20):
    """Open many streams concurrently and wait until all got the opening."""
    streams = [SSEStream(port, p) for p in paths]
    pump(streams, lambda: all(s.opened or s.eof for s in streams), timeout)
    return streams


def pump(streams, pred, timeout):
    """Read from all streams with a selector until pred() or timeout."""
    sel = selectors.DefaultSelector()
    live = 0
    for s in streams:
        if not s.eof and not s.closed:
            sel.register(s.sock, selectors.EVENT_READ, s)
            live += 1
    deadline = time.monotonic() + timeout
    try:
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0 or live == 0:
                break
            for key, _ in sel.select(min(left, 0.2)):
                s = key.data
                if not s.recv_once():
                    sel.unregister(s.sock)
                    live -= 1
        return bool(pred())
    finally:
        sel.close()


class CurlStream:
    """`curl -N` as a subprocess; its stdout is parsed as an event stream."""

    def __init__(self, t, url, extra=()):
        self.hdrfile = t.path("curl-headers-%d-%d" % (os.getpid(),
                                                        id(self)))
        self.errfile = t.path("curl-stderr-%d" % id(self))
        self.err = open(self.errfile, "wb")
        self.proc = subprocess.Popen(
            ["curl", "-sS", "-N", "-D", self.hdrfile] + list(extra) + [url],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self.err)
        self.sse = SSEParser()
        self.lock = threading.Lock()
        self.eof = False
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()
        t.cleanups.append(self.kill)

    def _reader(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            with self.lock:
                self.sse.feed(data)
        self.eof = True

    def wait(self, pred, timeout):
        def p():
            with self.lock:
                return pred()
        return wait_for(p, timeout, 0.01)

    def wait_opened(self, timeout=10):
        return self.wait(lambda: self.sse.blocks >= 1, timeout)

    def headers(self):
        """(status, Response) from the -D file once complete, else None."""
        try:
            with open(self.hdrfile, "rb") as f:
                raw = f.read()
        except OSError:
            return None
        if b"\r\n\r\n" not in raw:
            return None
        resp = Response()
        _parse_head(raw.split(b"\r\n\r\n", 1)[0], resp)
        return resp

    def stderr(self):
        try:
            with open(self.errfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(timeout=2)
        try:
            self.err.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# Prometheus text format (tests/metrics.t checks it with prometheus_client's
# parser; this is the quick reader the other tests use)

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_samples(port, path="/metrics", timeout=5):
    """GET /metrics: {(name, ((label, value), ...)): float}."""
    r = http_request(port, "GET", path, timeout=timeout)
    if r.status != 200:
        raise ValueError("GET %s -> %r" % (path, r.status))
    out = {}
    for line in r.body.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        labels = tuple(sorted(_LABEL_RE.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(samples, name, **labels):
    """One sample's value from metric_samples(), 0 when absent."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
