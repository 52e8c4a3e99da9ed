#!/usr/bin/python3
"""Write tests/unit/auth_fixtures.h: keys and tokens for test_auth.c.

Run once, offline, with Debian's python3-jwt and python3-cryptography:

    tests/unit/make_auth_fixtures.py > tests/unit/auth_fixtures.h

and commit the result.  Each run makes new keys (the private ones are not
kept: nothing can sign a new token for the committed public keys) and so
new tokens; test_auth.c only depends on the names and the claims below.
Times are fixed: the test passes `now` to auth_check(), so nothing here
ever expires on a real clock.
"""

import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

NOW = 1767225600          # 2026-01-01T00:00:00Z, the test's "now"
FAR = 4102444800          # 2100-01-01T00:00:00Z
HS_SECRET = "sserelay-unit-test-secret-0123456789"
OTHER_SECRET = "another-secret-of-enough-length"


def pub_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unsigned(claims):
    """alg none: no signature at all."""
    head = b64u(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    return "%s.%s." % (head, body)


def hs256_with(secret_bytes, claims):
    """HS256 by hand: PyJWT refuses a PEM public key as an HMAC secret,
    which is the point of the attack this token is for."""
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = hmac.new(secret_bytes, ("%s.%s" % (head, body)).encode(),
                   hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64u(sig))


def main():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_other = rsa.generate_private_key(public_exponent=65537,
                                         key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_pub, ec_pub = pub_pem(rsa_key), pub_pem(ec_key)

    full = {"sub": "alice", "exp": FAR,
            "sserelay": {"uploads": ["u7", "team-4*"]}}

    def hs(claims, secret=HS_SECRET, alg="HS256"):
        return jwt.encode(claims, secret, algorithm=alg)

    tokens = [
        ("HS_OK", "HS256, sub alice, exp 2100, uploads u7 and team-4*",
         hs(full)),
        ("HS_NOCLAIM", "HS256, sub alice, exp 2100, no sserelay claim",
         hs({"sub": "alice", "exp": FAR})),
        ("HS_STAR", "HS256, sub alice, exp 2100, uploads *",
         hs({"sub": "alice", "exp": FAR, "sserelay": {"uploads": ["*"]}})),
        ("HS_APPCLAIM", "HS256, sub alice, exp 2100, app: uploads u7",
         hs({"sub": "alice", "exp": FAR, "app": {"uploads": ["u7"]}})),
        ("HS_KINDS", "HS256, sub alice, exp 2100, uploads u7, upload u9 "
         "(not the upload kind's list), room general and team-*",
         hs({"sub": "alice", "exp": FAR,
             "sserelay": {"uploads": ["u7"], "upload": ["u9"],
                          "room": ["general", "team-*"]}})),
        ("HS_UPLOADS_NOT_ARRAY", "HS256, sserelay.uploads is a string",
         hs({"sub": "alice", "exp": FAR, "sserelay": {"uploads": "u7"}})),
        ("HS_EXP_NOW", "HS256, sub alice, exp = NOW",
         hs({"sub": "alice", "exp": NOW})),
        ("HS_NBF", "HS256, sub alice, exp 2100, nbf = NOW + 100",
         hs({"sub": "alice", "exp": FAR, "nbf": NOW + 100})),
        ("HS_NOEXP", "HS256, sub alice, no exp",
         hs({"sub": "alice"})),
        ("HS_EXP_ZERO", "HS256, sub alice, exp 0",
         hs({"sub": "alice", "exp": 0})),
        ("HS_EXP_STRING", "HS256, sub alice, exp \"4102444800\" (a string)",
         hs({"sub": "alice", "exp": str(FAR)})),
        ("HS_ISS", "HS256, sub alice, exp 2100, iss https://app.example",
         hs({"sub": "alice", "exp": FAR, "iss": "https://app.example"})),
        ("HS_AUD_STR", "HS256, sub alice, exp 2100, aud sserelay",
         hs({"sub": "alice", "exp": FAR, "aud": "sserelay"})),
        ("HS_AUD_ARR", "HS256, sub alice, exp 2100, aud [other, sserelay]",
         hs({"sub": "alice", "exp": FAR, "aud": ["other", "sserelay"]})),
        ("HS_AUD_OTHER", "HS256, sub alice, exp 2100, aud [other]",
         hs({"sub": "alice", "exp": FAR, "aud": ["other"]})),
        ("HS_AUD_NUM", "HS256, sub alice, exp 2100, aud 7",
         hs({"sub": "alice", "exp": FAR, "aud": 7})),
        ("HS_NOSUB", "HS256, exp 2100, no sub",
         hs({"exp": FAR})),
        ("HS_WRONG_SECRET", "HS256 as HS_OK, signed with another secret",
         hs(full, OTHER_SECRET)),
        ("HS384_OK", "HS384 as HS_OK, same secret",
         hs(full, HS_SECRET, "HS384")),
        ("NONE", "alg none as HS_OK, no signature",
         unsigned(full)),
        ("RS_OK", "RS256 as HS_OK",
         jwt.encode(full, rsa_key, algorithm="RS256")),
        ("RS_OTHER_KEY", "RS256 as HS_OK, signed with another RSA key",
         jwt.encode(full, rsa_other, algorithm="RS256")),
        ("HS_RSA_PUB", "HS256 as HS_OK, the RSA public key PEM as secret",
         hs256_with(rsa_pub.encode(), full)),
        ("ES_OK", "ES256 as HS_OK",
         jwt.encode(full, ec_key, algorithm="ES256")),
    ]

    out = sys.stdout
    out.write("/*\n * auth_fixtures.h - keys and tokens for test_auth.c, made "
              "by\n * tests/unit/make_auth_fixtures.py (do not edit; run it "
              "again).\n */\n")
    out.write("#ifndef SSERELAY_AUTH_FIXTURES_H\n"
              "#define SSERELAY_AUTH_FIXTURES_H\n\n")
    out.write("#define TEST_NOW\t%dL\t/* 2026-01-01T00:00:00Z */\n" % NOW)
    out.write("#define TEST_FAR\t%dL\t/* 2100-01-01T00:00:00Z */\n\n" % FAR)
    out.write("#define HS_SECRET\t\"%s\"\n\n" % HS_SECRET)
    for name, pem in (("RSA_PUB_PEM", rsa_pub), ("EC_PUB_PEM", ec_pub)):
        out.write("#define %s \\\n" % name)
        lines = pem.splitlines()
        for i, line in enumerate(lines):
            out.write("\t\"%s\\n\"%s\n" % (line,
                                           " \\" if i < len(lines) - 1
                                           else ""))
        out.write("\n")
    for name, what, tok in tokens:
        out.write("/* %s */\n#define %s \\\n" % (what, name))
        parts = [tok[i:i + 64] for i in range(0, len(tok), 64)]
        for i, p in enumerate(parts):
            out.write("\t\"%s\"%s\n" % (p, " \\" if i < len(parts) - 1
                                         else ""))
        out.write("\n")
    out.write("#endif\n")


if __name__ == "__main__":
    main()
