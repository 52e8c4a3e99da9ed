#!/usr/bin/env python3
# --auth jwt (issue 7): tokens made with a second implementation, Debian's
# python3-jwt (PyJWT), with keys made here by python3-cryptography.
# - every algorithm (HS256/384/512, RS256, ES256): a valid token opens a
#   stream of its user and allowed uploads, sent as Authorization: Bearer,
#   as the cookie (default and --jwt-cookie name) or as ?access_token=;
# - every refusal with its status and one-line body, none gets a stream:
#   missing, expired (and expired within the leeway: accepted), nbf ahead,
#   no exp, bad signature / wrong secret / tampered, alg none, another alg,
#   algorithm confusion (HS256 signed with the RSA/EC public key PEM),
#   wrong key type, wrong issuer / audience, another user, an upload the
#   claim does not allow, no user parameter;
# - startup errors (exit 1 naming the option);
# - a stream ends with a final retry: when its token expires;
# - property test: 30 users, random allowed uploads and subscriptions,
#   300 messages: every stream gets exactly its channels' messages;
# - the log never carries a refused token; /metrics counts refusals.
# SSERELAY_TEST_SEED=N repeats a property-test run.
import base64
import hashlib
import hmac
import json
import os
import random
import subprocess
import sys
import time

import harness  # noqa: E402

# Debian's python3-jwt, maybe under /usr/bin/python3 (system_module)
jwt = harness.system_module("jwt")

t = harness.Test()

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
except ImportError:
    serialization = None
if jwt is None or serialization is None:
    what = ("python3-jwt and python3-cryptography (Debian) for "
            "/usr/bin/python3")
    t.skip_all_unless_required(what + " not found")

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None

# the stream every per-algorithm check opens: its user and two uploads,
# one allowed exactly ("u7"), one by a prefix pattern ("pre*")
PATH = "/events?user=alice&upload=u7&upload=pre9"
UPLOADS = ["u7", "pre*"]

REFUSED_TOKENS = []     # every token sent in a refused request
LOG_PROBLEMS = []       # refusals not logged once at info
EXPECT = {}             # daemon name -> {reason: refusals made}


# --------------------------------------------------------------------------
# tokens

def b64url(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def claims(sub="alice", exp_in=60, uploads=UPLOADS, claim="sserelay",
           extra=None, no_exp=False):
    now = int(time.time())
    p = {"sub": sub, "iat": now}
    if not no_exp:
        p["exp"] = now + exp_in
    if uploads is not None:
        p[claim] = {"uploads": list(uploads)}
    p.update(extra or {})
    return p


def token(key, alg, **kw):
    tok = jwt.encode(claims(**kw), key, algorithm=alg)
    return tok.decode() if isinstance(tok, bytes) else tok


def hs_token_raw(secret, header, payload, digest=hashlib.sha256):
    """An HS token made by hand: PyJWT refuses a PEM as an HMAC secret."""
    si = b64url(json.dumps(header, separators=(",", ":"))) + "." + \
        b64url(json.dumps(payload, separators=(",", ":")))
    sig = hmac.new(secret, si.encode(), digest).digest()
    return si + "." + b64url(sig)


def unsigned_token(payload, alg="none", keep_sig=None):
    si = b64url(json.dumps({"alg": alg, "typ": "JWT"})) + "." + \
        b64url(json.dumps(payload, separators=(",", ":")))
    return si + "." + (keep_sig or "")


def flip_signature(tok):
    h, p, s = tok.split(".")
    c = "A" if s[0] != "A" else "B"
    return ".".join((h, p, c + s[1:]))


def with_payload(tok, payload):
    """tok's header and signature around another payload (tampering)."""
    h, _, s = tok.split(".")
    return ".".join((h, b64url(json.dumps(payload, separators=(",", ":"))),
                     s))


# --------------------------------------------------------------------------
# keys

def write(name, data):
    p = t.path(name)
    with open(p, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return p


def pem_private(k):
    return k.private_bytes(serialization.Encoding.PEM,
                           serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def pem_public(k):
    return k.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)


# --------------------------------------------------------------------------
# requests

def how_headers(tok, how, path, cookie="sserelay_token"):
    headers = {}
    if how == "bearer":
        headers["Authorization"] = "Bearer " + tok
    elif how == "cookie":
        headers["Cookie"] = "theme=dark; %s=%s; lang=en" % (cookie, tok)
    elif how == "query":
        path += ("&" if "?" in path else "?") + "access_token=" + tok
    elif how is not None:
        raise ValueError(how)
    return headers, path


def log_len(d):
    return len(d.log_text())


def check_logged_once(d, start, text, reason, name):
    """One new info line naming the refusal (its text or metrics reason)."""
    def lines():
        new = d.log_text()[start:].splitlines()
        return [l for l in new if " info " in l
                and (text.lower() in l.lower() or reason in l)]
    harness.wait_for(lines, 2, 0.02)
    time.sleep(0.05)
    got = lines()
    if len(got) != 1:
        LOG_PROBLEMS.append("%s: %d info lines naming %r/%r: %r"
                            % (name, len(got), text, reason, got[:3]))


def get_once(port, path, headers):
    """GET path: (status, content-type, body).  A 200 (a stream) is read
    for a moment only, so a refusal that is not one fails fast."""
    s = harness.SSEStream(port, path, headers=headers)
    try:
        def complete():
            if s.resp is None:
                return False
            if s.status == 200 or s.ended_cleanly or s.eof:
                return True
            cl = s.resp.header("content-length")
            return cl is not None and s.body_bytes >= int(cl)
        s.wait(complete, 10)
        if s.resp is None:
            raise TimeoutError("no response within 10 s")
        if s.status == 200:
            s.read_for(0.3)
        return s.status, s.resp.header("content-type", ""), bytes(s.sse.raw)
    finally:
        s.close()


def refused(d, tok, how, status, text, reason, name, path=PATH,
            cookie="sserelay_token", headers=None):
    """A request that must be refused: exact status and one-line body,
    text/plain, no event stream; counted under reason, logged once."""
    h, p = how_headers(tok, how, path, cookie)
    h.update(headers or {})
    if tok:
        REFUSED_TOKENS.append((name, tok))
    start = log_len(d)
    try:
        st, ctype, raw = get_once(d.port, p, h)
    except (OSError, ValueError) as e:
        t.ok(False, "%s: refused with a response" % name, repr(e))
        return None
    body = raw.decode("utf-8", "replace")
    line = body.rstrip("\r\n")
    t.ok(st == status and line == text and "\n" not in line
         and "\r" not in line and ctype.startswith("text/plain")
         and b"data:" not in raw,
         "%s -> %d %r" % (name, status, text),
         "status %r, content-type %r, body %r" % (st, ctype, body[:300]))
    if reason is not None:
        e = EXPECT.setdefault(d.name, {})
        e[reason] = e.get(reason, 0) + 1
        check_logged_once(d, start, text, reason, name)
    return st, line


def refused_any(d, tok, name, path=PATH):
    """Odd claims the contract does not name a reason for: refused (401 or
    403, a one-line text/plain body), never a stream."""
    REFUSED_TOKENS.append((name, tok))
    h, p = how_headers(tok, "bearer", path)
    try:
        st, ctype, raw = get_once(d.port, p, h)
    except (OSError, ValueError) as e:
        t.ok(False, "%s: refused with a response" % name, repr(e))
        return
    line = raw.decode("utf-8", "replace").rstrip("\r\n")
    t.ok(st in (401, 403) and line and "\n" not in line
         and ctype.startswith("text/plain") and b"data:" not in raw,
         "%s -> refused (401/403, one line), no stream" % name,
         "status %r, content-type %r, body %r" % (st, ctype, raw[:300]))


def publish_check(r, s, tag, channels):
    """PUBLISH one message per channel; s must receive exactly those."""
    c = r.client()
    try:
        want = []
        for ch in channels:
            payload = "%s %s" % (tag, ch)
            c.publish(ch, payload)
            want.append(payload)
    finally:
        c.close()
    s.wait(lambda: len(harness.message_events(s)) >= len(want), 10)
    # nothing more: a marker on one of them comes after anything else
    c = r.client()
    marker = s.settle(c.publish, channels[0])
    c.close()
    got = [event_payload(e) for e in harness.message_events(s)]
    if marker is None:
        return False, "the marker published after them did not arrive"
    return got == want, "got %r, want %r" % (got[:10], want)


def event_payload(e):
    """An event's published payload; the data is {"channel", "data"}."""
    try:
        return e.json()["data"]
    except (ValueError, KeyError, TypeError):
        return e.data


def accepted(d, r, tok, how, name, path=PATH, cookie="sserelay_token",
             channels=("user:alice", "upload:pre9", "upload:u7")):
    """A valid token: 200, a stream, and the messages of its channels."""
    h, p = how_headers(tok, how, path, cookie)
    s = d.stream(p, headers=h)
    try:
        s.wait(lambda: s.opened or (s.resp is not None and s.status != 200),
               10)
        if not t.ok(s.opened and s.status == 200,
                    "%s: 200 and the stream opens" % name,
                    "status %r, body %r" % (s.status, bytes(s.sse.raw[:200]))):
            return None
        good, diag = publish_check(r, s, name, channels)
        t.ok(good, "%s: receives the PUBLISHes on %s" % (name,
                                                         ", ".join(channels)),
             diag)
        return s
    finally:
        s.close()


def scrape_refusals(d):
    """{reason: count} of sserelay_auth_refusals_total, None without
    /metrics (parsed with prometheus_client's parser when installed)."""
    try:
        resp = harness.http_request(d.port, "GET", "/metrics", timeout=5)
    except (OSError, ValueError):
        return None
    if resp.status != 200:
        return None
    text = resp.body.decode("utf-8", "replace")
    out = {}
    if text_string_to_metric_families is not None:
        for fam in text_string_to_metric_families(text):
            for smp in fam.samples:
                if smp.name == "sserelay_auth_refusals_total":
                    out[smp.labels.get("reason")] = smp.value
        return out
    import re
    for m in re.finditer(r'^sserelay_auth_refusals_total\{reason="([^"]*)"\}'
                         r'\s+(\S+)', text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def check_metrics(d, before, name):
    after = scrape_refusals(d)
    if not t.ok(after is not None, "%s: GET /metrics -> 200 (auth refusals "
                "counted by reason)" % name, "no /metrics on %s" % d.name):
        return
    before = before or {}
    expect = EXPECT.get(d.name, {})
    delta = {k: after.get(k, 0) - before.get(k, 0)
             for k in set(after) | set(before)}
    delta = {k: v for k, v in delta.items() if v}
    t.eq(delta, {k: float(v) for k, v in expect.items()},
         "%s: sserelay_auth_refusals_total{reason} moved by the refusals "
         "made" % name)


# --------------------------------------------------------------------------

def main():
    r = t.redis()

    secret256 = "hs256-secret-%s" % os.urandom(12).hex()
    secret384 = "hs384 secret with spaces %s" % os.urandom(12).hex()
    # any bytes, a NUL in the middle; the last one fixed, since sserelay
    # drops a trailing LF and then a trailing CR (an editor's newline): a
    # random last byte made this a 1-in-256 failure
    secret512 = os.urandom(20) + b"\0" + os.urandom(26) + b"\xff"
    secret512 = secret512.replace(b"\n", b"n")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_other = rsa.generate_private_key(public_exponent=65537,
                                         key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_other = ec.generate_private_key(ec.SECP256R1())
    rsa_pub = pem_public(rsa_key)
    ec_pub = pem_public(ec_key)

    f256 = write("hs256.secret", secret256 + "\n")   # one newline stripped
    f384 = write("hs384.secret", secret384)
    f512 = write("hs512.secret", secret512)
    frsa = write("rsa.pub.pem", rsa_pub)
    fec = write("ec.pub.pem", ec_pub)

    startup_errors(r, f256, frsa, fec)

    # ---- HS256: default cookie, leeway 30, no iss/aud: all refusals ----
    d = t.daemon(r, name="hs256", extra=[
        "--heartbeat", "0.5", "--auth", "jwt", "--jwt-key-file", f256])
    metrics_before = scrape_refusals(d)
    for how in ("bearer", "cookie", "query"):
        accepted(d, r, token(secret256, "HS256"), how, "HS256 via " + how)
    # a secret file's trailing newline is not part of the secret
    refused(d, token(secret256 + "\n", "HS256"), "bearer", 401,
            "invalid token", "invalid",
            "HS256 signed with the secret plus its newline")
    # the first token found wins: header, then cookie, then query
    good = token(secret256, "HS256")
    bad = token("not-the-secret", "HS256")
    s = d.stream(PATH + "&access_token=" + bad,
                 headers={"Authorization": "Bearer " + good,
                          "Cookie": "sserelay_token=" + bad})
    t.ok(s.wait_opened(10) and s.status == 200,
         "Bearer is used before the cookie and access_token", s.status)
    s.close()
    refused(d, bad, "bearer", 401, "invalid token", "invalid",
            "a bad Bearer token with a good access_token",
            path=PATH + "&access_token=" + good)
    refused(d, bad, "cookie", 401, "invalid token", "invalid",
            "a bad cookie token with a good access_token",
            path=PATH + "&access_token=" + good)
    # iss/aud are not checked when not configured; nbf within the leeway
    accepted(d, r, token(secret256, "HS256", extra={
        "iss": "whoever", "aud": ["x", "y"]}), "bearer",
        "HS256 with iss/aud, none configured")
    accepted(d, r, token(secret256, "HS256", extra={
        "nbf": int(time.time()) + 10}), "bearer",
        "HS256 nbf now+10 (leeway 30)")
    # a token without uploads, and "*" allowing all
    accepted(d, r, token(secret256, "HS256", uploads=None), "bearer",
             "HS256 without the sserelay claim, user only",
             path="/events?user=alice", channels=("user:alice",))
    accepted(d, r, token(secret256, "HS256", uploads=["*"]), "bearer",
             "HS256 claim uploads [\"*\"]",
             path="/events?user=alice&upload=anything&upload=u7",
             channels=("user:alice", "upload:anything", "upload:u7"))

    # expired by less than the leeway: accepted
    tok = token(secret256, "HS256", exp_in=-10)
    s = d.stream(PATH, headers={"Authorization": "Bearer " + tok})
    s.wait(lambda: s.opened or (s.resp is not None and s.status != 200), 10)
    t.ok(s.opened and s.status == 200,
         "exp = now-10 with leeway 30 -> 200 stream",
         "status %r body %r" % (s.status, bytes(s.sse.raw[:200])))
    # and not ended at once (a reconnect loop until exp + leeway)
    t0 = time.monotonic()
    s.wait(lambda: s.eof or s.ended_cleanly, 3)
    t.ok(not (s.eof or s.ended_cleanly),
         "exp = now-10 with leeway 30: the stream is still open 3 s later",
         "ended after %.1f s" % (time.monotonic() - t0))
    s.close()

    refused(d, None, None, 401, "missing token", "missing", "no token")
    refused(d, None, None, 401, "missing token", "missing",
            "a cookie of another name only",
            headers={"Cookie": "other_token=" + good})
    refused(d, token(secret256, "HS256", exp_in=-60), "bearer", 401,
            "token expired", "expired", "exp = now-60 (leeway 30)")
    refused(d, token(secret256, "HS256", exp_in=-60), "query", 401,
            "token expired", "expired", "exp = now-60 via access_token")
    refused(d, token(secret256, "HS256", extra={
        "nbf": int(time.time()) + 120}), "bearer", 401,
        "token not yet valid", "not_yet_valid", "nbf = now+120 (leeway 30)")
    refused(d, token(secret256, "HS256", no_exp=True), "bearer", 401,
            "token has no exp", "no_exp", "token without exp")
    refused(d, token("wrong-secret", "HS256"), "bearer", 401,
            "invalid token", "invalid", "HS256 with a wrong secret")
    refused(d, flip_signature(good), "cookie", 401, "invalid token",
            "invalid", "HS256 with a changed signature")
    refused(d, with_payload(good, claims(sub="bob")), "bearer", 401,
            "invalid token", "invalid", "payload changed to sub=bob",
            path="/events?user=bob")
    refused(d, with_payload(good, claims(uploads=["*"])), "bearer", 401,
            "invalid token", "invalid", "payload changed to uploads [*]",
            path="/events?user=alice&upload=u8")
    refused(d, unsigned_token(claims()), "bearer", 401, "invalid token",
            "invalid", "alg none, empty signature")
    refused(d, unsigned_token(claims()), "query", 401, "invalid token",
            "invalid", "alg none via access_token")
    refused(d, unsigned_token(claims(), alg="None"), "bearer", 401,
            "invalid token", "invalid", "alg None, empty signature")
    refused(d, unsigned_token(claims(), keep_sig=good.split(".")[2]),
            "bearer", 401, "invalid token", "invalid",
            "alg none with a signature")
    refused(d, token(secret256, "HS512"), "bearer", 401, "invalid token",
            "invalid", "HS512 token on an HS256 daemon (same secret)")
    refused(d, token(secret256, "HS384"), "bearer", 401, "invalid token",
            "invalid", "HS384 token on an HS256 daemon (same secret)")
    refused(d, "not-a-jwt", "bearer", 401, "invalid token", "invalid",
            "malformed token")
    refused(d, "a.b.c", "query", 401, "invalid token", "invalid",
            "malformed three-part token")
    refused(d, good, "bearer", 403, "token is for another user", "user",
            "sub alice, user=bob", path="/events?user=bob")
    refused(d, good, "cookie", 403, "token is for another user", "user",
            "sub alice, user=Alice", path="/events?user=Alice&upload=u7")
    refused(d, good, "bearer", 403, "upload not allowed: u8", "upload",
            "upload u8 not in the claim",
            path="/events?user=alice&upload=u7&upload=u8")
    refused(d, good, "query", 403, "upload not allowed: u70", "upload",
            "u70 with claim u7 (exact, not a prefix)",
            path="/events?user=alice&upload=u70")
    refused(d, good, "bearer", 403, "upload not allowed: pr", "upload",
            "pr with claim pre*", path="/events?user=alice&upload=pr")
    refused(d, token(secret256, "HS256", uploads=None), "bearer", 403,
            "upload not allowed: u7", "upload",
            "any upload with no sserelay claim")
    refused(d, token(secret256, "HS256", claim="other"), "bearer", 403,
            "upload not allowed: u7", "upload",
            "uploads under another claim name")
    refused(d, good, "bearer", 400,
            "missing user parameter (required with --auth jwt)", None,
            "no user parameter", path="/events?upload=u7")
    # nothing above left a stream open
    t.ok(harness.wait_for(lambda: d.healthz()[1].get("streams") == 0, 5,
                          0.1),
         "hs256: no stream open after the refusals",
         "healthz %r" % (d.healthz()[1],))
    check_metrics(d, metrics_before, "hs256")

    # ---- HS384: --jwt-cookie, --jwt-issuer, --jwt-audience -------------
    d = t.daemon(r, name="hs384", extra=[
        "--auth", "jwt", "--jwt-algorithm", "HS384", "--jwt-key-file", f384,
        "--jwt-cookie", "app_jwt", "--jwt-issuer", "https://issuer.example",
        "--jwt-audience", "sserelay-test"])
    metrics_before = scrape_refusals(d)
    ia = {"iss": "https://issuer.example", "aud": "sserelay-test"}
    for how in ("bearer", "cookie", "query"):
        accepted(d, r, token(secret384, "HS384", extra=ia), how,
                 "HS384 via " + how, cookie="app_jwt")
    accepted(d, r, token(secret384, "HS384", extra={
        "iss": "https://issuer.example",
        "aud": ["other", "sserelay-test"]}), "bearer",
        "HS384 aud as a list containing the audience")
    refused(d, token(secret384, "HS384", extra=ia), "cookie", 401,
            "missing token", "missing",
            "token in the default cookie name with --jwt-cookie app_jwt")
    refused(d, token(secret384, "HS384", extra={
        "iss": "https://evil.example", "aud": "sserelay-test"}), "bearer",
        401, "wrong issuer", "issuer", "wrong iss")
    refused(d, token(secret384, "HS384", extra={"aud": "sserelay-test"}),
            "bearer", 401, "wrong issuer", "issuer",
            "no iss with --jwt-issuer")
    refused(d, token(secret384, "HS384", extra={
        "iss": "https://issuer.example", "aud": "other"}), "cookie", 401,
        "wrong audience", "audience", "wrong aud", cookie="app_jwt")
    refused(d, token(secret384, "HS384", extra={
        "iss": "https://issuer.example", "aud": ["a", "b"]}), "bearer", 401,
        "wrong audience", "audience", "aud list without the audience")
    refused(d, token(secret384, "HS384", extra={
        "iss": "https://issuer.example"}), "bearer", 401,
        "wrong audience", "audience", "no aud with --jwt-audience")
    refused(d, token(secret256, "HS384", extra=ia), "bearer", 401,
            "invalid token", "invalid", "HS384 with another daemon's secret")
    check_metrics(d, metrics_before, "hs384")

    # ---- HS512: a binary secret, --jwt-claim -------------------------
    d = t.daemon(r, name="hs512", extra=[
        "--auth", "jwt", "--jwt-algorithm", "HS512", "--jwt-key-file", f512,
        "--jwt-claim", "app"])
    for how in ("bearer", "cookie", "query"):
        accepted(d, r, token(secret512, "HS512", claim="app"), how,
                 "HS512 via " + how)
    refused(d, token(secret512.split(b"\0")[0], "HS512", claim="app"),
            "bearer", 401, "invalid token", "invalid",
            "HS512 signed with the secret up to its NUL byte")
    refused(d, token(secret512, "HS512"), "bearer", 403,
            "upload not allowed: u7", "upload",
            "uploads under sserelay with --jwt-claim app")
    # odd claims fail closed (no reason named in the contract for them)
    now = int(time.time())
    for payload, what in (
            ({"sub": "alice", "exp": now + 60, "app": {"uploads": "u7"}},
             "uploads a string, not an array"),
            ({"sub": "alice", "exp": now + 60, "app": {"uploads": "*"}},
             "uploads the string \"*\""),
            ({"sub": "alice", "exp": now + 60,
              "app": {"uploads": [7, None, {"u7": 1}, ["u7"]]}},
             "uploads with non-strings"),
            ({"sub": "alice", "exp": now + 60, "app": ["u7", "pre*"]},
             "the claim an array, not an object"),
            ({"sub": "alice", "exp": now + 60, "app": "u7"},
             "the claim a string"),
            ({"sub": "alice", "exp": now + 60,
              "app": {"uploads": ["u7*x", "u"]}},
             "patterns that do not allow u7 and pre9")):
        refused_any(d, jwt.encode(payload, secret512, algorithm="HS512"),
                    "HS512 " + what)
    for payload, what in (
            ({"sub": "alice", "exp": str(now + 60)}, "exp a string"),
            ({"sub": "alice", "exp": None}, "exp null"),
            ({"exp": now + 60}, "no sub"),
            ({"sub": ["alice"], "exp": now + 60}, "sub an array"),
            ({"sub": "", "exp": now + 60}, "sub empty")):
        refused_any(d, jwt.encode(payload, secret512, algorithm="HS512"),
                    "HS512 " + what, path="/events?user=alice")

    # ---- RS256 ---------------------------------------------------------
    d = t.daemon(r, name="rs256", extra=[
        "--auth", "jwt", "--jwt-algorithm", "RS256", "--jwt-key-file", frsa])
    for how in ("bearer", "cookie", "query"):
        accepted(d, r, token(pem_private(rsa_key), "RS256"), how,
                 "RS256 via " + how)
    # a 2 KB token (100 uploads, RSA signature) fits in each place
    big = token(pem_private(rsa_key), "RS256",
                uploads=["upload-%04d" % i for i in range(95)] + UPLOADS)
    t.diag("large token: %d bytes" % len(big))
    for how in ("bearer", "cookie", "query"):
        accepted(d, r, big, how, "RS256 %d-byte token via %s"
                 % (len(big), how))
    refused(d, token(pem_private(rsa_other), "RS256"), "bearer", 401,
            "invalid token", "invalid", "RS256 signed by another RSA key")
    refused(d, flip_signature(token(pem_private(rsa_key), "RS256")),
            "bearer", 401, "invalid token", "invalid",
            "RS256 with a changed signature")
    for pem, what in ((rsa_pub, "PEM file text"),
                      (rsa_pub.rstrip(b"\n"), "PEM without newline")):
        for alg, dg in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
            refused(d, hs_token_raw(pem, {"alg": alg, "typ": "JWT"},
                                    claims(), dg),
                    "bearer", 401, "invalid token", "invalid",
                    "algorithm confusion: %s signed with the RSA public "
                    "key (%s)" % (alg, what))
    refused(d, token(pem_private(ec_key), "ES256"), "bearer", 401,
            "invalid token", "invalid", "ES256 token on an RS256 daemon")
    refused(d, unsigned_token(claims()), "bearer", 401, "invalid token",
            "invalid", "alg none on an RS256 daemon")

    # ---- ES256 ---------------------------------------------------------
    d = t.daemon(r, name="es256", extra=[
        "--auth", "jwt", "--jwt-algorithm", "ES256", "--jwt-key-file", fec])
    for how in ("bearer", "cookie", "query"):
        accepted(d, r, token(pem_private(ec_key), "ES256"), how,
                 "ES256 via " + how)
    refused(d, token(pem_private(rsa_key), "RS256"), "bearer", 401,
            "invalid token", "invalid", "RS256 token on an ES256 daemon")
    refused(d, token(pem_private(ec_other), "ES256"), "bearer", 401,
            "invalid token", "invalid", "ES256 signed by another EC key")
    refused(d, hs_token_raw(ec_pub, {"alg": "HS256", "typ": "JWT"},
                            claims()), "bearer", 401, "invalid token",
            "invalid", "algorithm confusion: HS256 signed with the EC "
            "public key")
    refused(d, token(pem_private(ec_key), "ES256", sub="mallory"), "bearer",
            403, "token is for another user", "user",
            "ES256 sub mallory, user=alice")

    expiry(r, f256, secret256)
    prop(r, f256, secret256)

    # ---- no refused token in any log ------------------------------------
    leaks = []
    for dm in t.daemons:
        text = dm.log_text()
        for name, tok in REFUSED_TOKENS:
            parts = [tok] + [p for p in tok.split(".") if len(p) >= 16]
            if any(p in text for p in parts):
                leaks.append("%s: %s" % (dm.name, name))
    t.ok(not leaks, "no refused token (nor a part of one) in the daemon "
         "logs (%d tokens)" % len(REFUSED_TOKENS), "\n".join(leaks[:20]))
    t.ok(not LOG_PROBLEMS, "each refusal logged once at info",
         "\n".join(LOG_PROBLEMS[:20]))


def startup_errors(r, f256, frsa, fec):
    """Bad JWT configurations: exit status 1, stderr naming the option."""
    notpem = write("not-a-key.pem", "this is not a PEM key\n")
    cases = [
        (["--auth", "jwt"], "jwt-key-file", "--auth jwt without a key file"),
        (["--auth", "jwt", "--jwt-key-file", t.path("missing.secret")],
         "jwt-key-file", "--jwt-key-file of a missing file"),
        (["--auth", "jwt", "--jwt-algorithm", "RS256", "--jwt-key-file",
          notpem], "jwt-key-file", "RS256 with a non-PEM key file"),
        (["--auth", "jwt", "--jwt-algorithm", "ES256", "--jwt-key-file",
          notpem], "jwt-key-file", "ES256 with a non-PEM key file"),
        (["--auth", "jwt", "--jwt-algorithm", "ES256", "--jwt-key-file",
          frsa], "jwt-key-file", "ES256 with an RSA public key"),
        (["--auth", "jwt", "--jwt-algorithm", "RS256", "--jwt-key-file",
          fec], "jwt-key-file", "RS256 with an EC public key"),
        (["--auth", "jwt", "--jwt-algorithm", "XS256", "--jwt-key-file",
          f256], "jwt-algorithm", "an unknown --jwt-algorithm"),
    ]
    port = harness.free_port()
    for extra, opt, name in cases:
        args = [t.sserelay, "-c", "/dev/null", "--listen",
                "127.0.0.1:%d" % port, "--redis",
                "redis://127.0.0.1:%d" % r.port] + extra
        try:
            p = subprocess.run(args, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=15)
            rc, err = p.returncode, (p.stderr + p.stdout).decode(
                "utf-8", "replace")
        except subprocess.TimeoutExpired:
            rc, err = None, "still running after 15 s (killed)"
        t.ok(rc == 1 and opt in err,
             "startup: %s -> exit 1 naming %s" % (name, opt),
             "exit %r, output %r" % (rc, err[-600:]))
        lines = err.splitlines()
        first = [i for i, l in enumerate(lines)
                 if any(s in l for s in harness.SANITIZER_PATTERNS)]
        bad = lines[first[0]:first[0] + 20] if first else []
        if bad:
            t.ok(False, "startup: %s: no sanitizer report" % name,
                 "\n".join(bad[:20]))


def expiry(r, f256, secret256):
    """exp = now+3, leeway 0: events flow, then retry: and the body ends,
    not before exp and within about a second of it."""
    d = t.daemon(r, name="expiry", extra=[
        "--auth", "jwt", "--jwt-key-file", f256, "--jwt-leeway", "0",
        "--heartbeat", "0.5"])
    exp = int(time.time()) + 3
    tok = jwt.encode({"sub": "alice", "exp": exp,
                      "sserelay": {"uploads": ["u7"]}}, secret256,
                     algorithm="HS256")
    s = d.stream("/events?user=alice&upload=u7",
                 headers={"Authorization": "Bearer " + tok})
    if not t.ok(s.wait_opened(10) and s.status == 200,
                "expiry: token with exp in 3 s opens a stream", s.status):
        return
    good, diag = publish_check(r, s, "before-exp", ["user:alice",
                                                    "upload:u7"])
    t.ok(good, "expiry: events arrive before exp", diag)
    retries0 = len(s.sse.retries)
    ended = []

    def done():
        if (s.eof or s.ended_cleanly) and not ended:
            ended.append(time.time())
        return bool(ended)

    # still open one second before exp
    s.wait(done, max(0.0, exp - 1 - time.time()))
    t.ok(not ended, "expiry: the stream is still open 1 s before exp",
         "ended at exp%+.2f s" % ((ended[0] - exp) if ended else 0))
    s.wait(done, max(0.0, exp + 2.5 - time.time()))
    t.ok(ended and ended[0] >= exp - 0.2,
         "expiry: the stream ends at exp (within 2.5 s, not before)",
         "ended %r, exp %d, now %.2f" % (ended, exp, time.time()))
    t.ok(len(s.sse.retries) > retries0,
         "expiry: a final retry: before the end",
         "retries %r, raw tail %r" % (s.sse.retries,
                                      bytes(s.sse.raw[-200:])))
    t.ok(s.ended_cleanly and not s.reset and s.error is None,
         "expiry: the chunked body ends cleanly (last-chunk, no reset)",
         "ended_cleanly %r reset %r error %r" % (s.ended_cleanly, s.reset,
                                                 s.error))
    s.close()
    refused(d, tok, "bearer", 401, "token expired", "expired",
            "expiry: the same token afterwards",
            path="/events?user=alice&upload=u7")


def prop(r, f256, secret256):
    """30 users, random allowed uploads and subscriptions, 300 messages."""
    seed = int(os.environ.get("SSERELAY_TEST_SEED") or
               int.from_bytes(os.urandom(4), "big"))
    t.diag("property test seed %d (SSERELAY_TEST_SEED=%d repeats it)"
           % (seed, seed))
    rnd = random.Random(seed)
    d = t.daemon(r, name="prop", extra=[
        "--auth", "jwt", "--jwt-key-file", f256, "--heartbeat", "1"])
    uploads = ["up%d" % i for i in range(10)]
    users = ["pu%02d" % i for i in range(30)]
    allowed, tokens = {}, {}
    for u in users:
        if rnd.random() < 0.15:
            claim, ok = ["*"], set(uploads)
        else:
            ok = set(rnd.sample(uploads, rnd.randint(0, 10)))
            claim = sorted(ok)
            if "up1" in ok and rnd.random() < 0.5:
                # "up1*" allows up1 (and no other of up0..up9)
                claim = [x for x in claim if x != "up1"] + ["up1*"]
        allowed[u] = ok
        tokens[u] = token(secret256, "HS256", sub=u, uploads=claim,
                          exp_in=300)

    # refusals: uploads not allowed, and other users' streams
    bad_results = []
    for u in users:
        no = sorted(set(uploads) - allowed[u])
        for x in rnd.sample(no, min(2, len(no))):
            subs = rnd.sample(sorted(allowed[u]), min(1, len(allowed[u])))
            path = "/events?user=%s%s&upload=%s" % (
                u, "".join("&upload=" + y for y in subs), x)
            h, p = how_headers(tokens[u], rnd.choice(
                ["bearer", "cookie", "query"]), path)
            resp = harness.http_request(d.port, "GET", p, headers=h)
            want = "upload not allowed: " + x
            if resp.status != 403 or resp.body.decode(
                    "utf-8", "replace").rstrip("\r\n") != want:
                bad_results.append((path, resp.status, resp.body[:100]))
    for _ in range(15):
        u, v = rnd.sample(users, 2)
        h, p = how_headers(tokens[u], "bearer", "/events?user=" + v)
        resp = harness.http_request(d.port, "GET", p, headers=h)
        if resp.status != 403:
            bad_results.append((p, resp.status, resp.body[:100]))
    t.ok(not bad_results, "property: disallowed uploads and other users' "
         "streams always 403", repr(bad_results[:10]))

    streams = []
    for u in users:
        for _ in range(rnd.randint(1, 3)):
            ok = sorted(allowed[u])
            subs = rnd.sample(ok, rnd.randint(0, min(4, len(ok))))
            path = "/events?user=" + u + "".join("&upload=" + x
                                                  for x in subs)
            h, p = how_headers(tokens[u], rnd.choice(
                ["bearer", "cookie", "query"]), path)
            s = harness.SSEStream(d.port, p, headers=h)
            s.user = u
            s.channels = {"user:" + u} | {"upload:" + x for x in subs}
            streams.append(s)
    t.cleanups.append(lambda: [s.close() for s in streams])
    harness.pump(streams, lambda: all(s.opened or s.eof for s in streams),
                 20)
    notopen = [(s.path, s.status) for s in streams
               if not (s.opened and s.status == 200)]
    if not t.ok(not notopen, "property: all %d streams of 30 users open"
                % len(streams), repr(notopen[:10])):
        return

    msgs = []
    for i in range(300):
        if rnd.random() < 0.5:
            ch = "user:" + rnd.choice(users)
        else:
            ch = "upload:" + rnd.choice(uploads)
        msgs.append((ch, "m%d %s" % (i, ch)))
    c = r.client()
    c.publish_many(msgs)
    c.close()
    want = {id(s): [p for ch, p in msgs if ch in s.channels]
            for s in streams}
    harness.pump(streams, lambda: all(
        len(harness.message_events(s)) >= len(want[id(s)])
        for s in streams), 20)
    # anything extra?  A marker on each stream's user channel comes after it
    c = r.client()
    markers = harness.settle(streams, c.publish,
                             {id(s): "user:" + s.user for s in streams})
    c.close()
    t.ok(all(markers), "property: a marker published after the messages "
         "reaches every stream (%d of %d)" % (sum(map(bool, markers)),
                                              len(streams)))
    wrong, foreign = [], []
    for s in streams:
        got = [event_payload(e) for e in harness.message_events(s)]
        if got != want[id(s)]:
            wrong.append("%s: got %d, want %d; extra %r missing %r" % (
                s.path, len(got), len(want[id(s)]),
                sorted(set(got) - set(want[id(s)]))[:3],
                sorted(set(want[id(s)]) - set(got))[:3]))
        for g in got:
            ch = g.split(" ", 1)[1]
            if ch.startswith("user:") and ch != "user:" + s.user:
                foreign.append("%s got %s" % (s.user, g))
    t.ok(not wrong, "property: every stream receives exactly its channels' "
         "messages, in order (%d messages, %d deliveries)"
         % (len(msgs), sum(len(v) for v in want.values())),
         "\n".join(wrong[:10]))
    t.ok(not foreign, "property: no stream receives another user's "
         "user-channel message", "\n".join(foreign[:10]))
    for s in streams:
        s.close()


t.run(main)
