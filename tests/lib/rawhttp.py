"""Raw-socket HTTP helpers for the hostile-input and churn tests.

harness.http_request() speaks well-formed HTTP/1.1; these send exactly the
bytes given (over-long lines, NUL bytes, half requests, pipelines) and say
what came back: a response, a close (and after how long), or nothing.
Python 3 standard library only; kept apart from harness.py so that the
harness stays the one place for well-behaved clients.
"""

import socket
import time

import harness


class Outcome:
    """What the daemon did with one raw request on one connection."""

    def __init__(self):
        self.responses = []     # harness.Response, in order
        self.closed = False     # EOF or reset seen
        self.reset = False      # ... and it was a reset
        self.elapsed = None     # seconds from connect to close (if closed)
        self.send_error = None  # the daemon closed before we sent it all
        self.rest = b""         # bytes after the last complete response

    @property
    def status(self):
        return self.responses[0].status if self.responses else None

    @property
    def first(self):
        return self.responses[0] if self.responses else None

    def describe(self):
        parts = ["statuses %r" % [r.status for r in self.responses]]
        if self.responses:
            parts.append("first body %r" % self.responses[0].body[:200])
        parts.append("closed %r after %s s" % (
            self.closed, None if self.elapsed is None
            else "%.2f" % self.elapsed))
        if self.reset:
            parts.append("(reset)")
        if self.send_error:
            parts.append("send error %r" % self.send_error)
        if self.rest:
            parts.append("rest %r" % self.rest[:200])
        return ", ".join(parts)


def _take_response(buf, head_method="GET"):
    """(Response, remaining bytes) for one complete response in buf, or
    (None, buf) when it is not complete yet.  Streams (chunked bodies that
    never end, or no length) count as complete after their headers, with
    what arrived so far as body."""
    if b"\r\n\r\n" not in buf:
        return None, buf
    head, rest = buf.split(b"\r\n\r\n", 1)
    resp = harness.Response()
    harness._parse_head(head, resp)
    if head_method == "HEAD" or resp.status in (204, 304):
        return resp, rest
    cl = resp.header("content-length")
    if cl is not None:
        n = int(cl)
        if len(rest) < n:
            return None, buf
        resp.body = rest[:n]
        return resp, rest[n:]
    if "chunked" in resp.header("transfer-encoding", "").lower():
        dech = harness.Dechunker()
        body = dech.feed(rest)
        if dech.done:
            resp.body = body
            return resp, dech.buf
        # an endless stream: hand back what we have
        resp.body = body
        resp.streaming = True
        return resp, b""
    resp.body = rest
    resp.streaming = True
    return resp, b""


def exchange(port, data, timeout=5.0, want=1, methods=None,
             until_close=False, chunk=65536):
    """Connect, send data (the daemon may close early: that is recorded),
    and read until `want` responses arrived (or, with until_close, until
    the daemon closes), or timeout.  Returns an Outcome."""
    out = Outcome()
    t0 = time.monotonic()
    deadline = t0 + timeout
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.settimeout(timeout)
        try:
            for i in range(0, len(data), chunk):
                s.sendall(data[i:i + chunk])
        except OSError as e:
            out.send_error = e
        buf = b""
        methods = list(methods or [])
        while True:
            while len(out.responses) < want:
                m = methods[len(out.responses)] if len(methods) > len(
                    out.responses) else "GET"
                resp, buf2 = _take_response(buf, m)
                if resp is None:
                    break
                out.responses.append(resp)
                buf = buf2
                if getattr(resp, "streaming", False):
                    break
            if len(out.responses) >= want and not until_close:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                out.closed = out.reset = True
                out.elapsed = time.monotonic() - t0
                break
            except OSError:
                out.closed = True
                out.elapsed = time.monotonic() - t0
                break
            if not d:
                out.closed = True
                out.elapsed = time.monotonic() - t0
                break
            if out.responses and getattr(out.responses[-1], "streaming",
                                         False):
                out.responses[-1].body += d
            else:
                buf += d
        if not out.responses or not getattr(out.responses[-1], "streaming",
                                            False):
            out.rest = buf
    finally:
        s.close()
    return out


def one_line(body):
    """A reason fit for a human: non-empty, one line (a trailing newline
    is fine)."""
    text = body.decode("utf-8", "replace").rstrip("\r\n")
    return text != "" and "\n" not in text and "\r" not in text


class RawSSEStream(harness.SSEStream):
    """An SSEStream whose request is exactly the bytes given (HTTP/1.0,
    odd headers): same parsing, waiting and closing as SSEStream."""

    def __init__(self, port, raw, connect_timeout=5, rcvbuf=None):
        self.port = port
        self.path = None
        self.method = "GET"
        if rcvbuf is None:
            self.sock = socket.create_connection(("127.0.0.1", port),
                                                 timeout=connect_timeout)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(connect_timeout)
            self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(raw)
        self.sock.setblocking(False)
        self.hbuf = b""
        self.resp = None
        self.dech = None
        self.sse = harness.SSEParser()
        self.eof = False
        self.reset = False
        self.closed = False
        self.body_bytes = 0
        self.error = None
