#!/usr/bin/env python3
# Kinds of channel and broadcast channels (issue 15): --channel NAME=PREFIX,
# --channel-max NAME=N, --broadcast CHANNEL, and the file's "channel NAME
# PREFIX [MAX]" and "broadcast CHANNEL" lines, with a real redis-server.
# - /events?user=alice&room=general&room=random with --channel
#   room=chat:room: gets the messages of chat:room:general, chat:room:random,
#   user:alice and the broadcast channels, in order, and nothing else;
#   another user's stream gets the broadcasts too;
# - both --subscribe pattern (PSUBSCRIBE each PREFIX* and each broadcast
#   channel, its glob characters escaped: PUBSUB NUMPAT, and a PUBLISH that
#   the unescaped glob would match reaches nobody) and --subscribe exact
#   (SUBSCRIBE per channel: PUBSUB NUMSUB, no pattern);
# - over a kind's maximum, and a typo (uplaod=u7): 400 with the reason;
#   lastEventId and _ are still taken;
# - --auth jwt (tokens made with Debian's python3-jwt, as tests/auth.t):
#   an allowed room, a room allowed by a prefix*, a refused room (403
#   naming it), uploads still under "uploads", and the broadcast channels
#   needing no claim;
# - startup errors: exit 1 with one line naming the option.
# "Nothing else" is checked without waiting for silence: each stream's last
# message is published after the others, and Redis and the daemon keep the
# order, so once it has arrived everything before it has been handled.
import os
import subprocess
import sys
import time

import harness  # noqa: E402

# Debian's python3-jwt, maybe under /usr/bin/python3 (system_module)
jwt = harness.system_module("jwt")

t = harness.Test()

# a broadcast channel with glob characters: PSUBSCRIBEd escaped, it is
# itself only; unescaped, "alerts[1]*" would match "alerts1x"
GLOBBY = "alerts[1]*"
KINDS = ["--channel", "room=chat:room:", "--channel-max", "room=2",
         "--broadcast", "notifications:broadcast", "--broadcast", GLOBBY]
SECRET = "channels-test-secret-0123456789abcdef"


def payloads(s):
    """(channel, data) of each message event of s."""
    out = []
    for e in harness.message_events(s):
        try:
            js = e.json()
            out.append((js["channel"], js["data"]))
        except (ValueError, KeyError, TypeError):
            out.append((None, e.data))
    return out


def opened(d, path, headers=None):
    s = d.stream(path, headers=headers)
    t.ok(s.wait_opened(10) and s.status == 200, "%s -> 200, the stream "
         "opens" % path, "status %r, body %r" % (s.status,
                                                  bytes(s.sse.raw[:200])))
    return s


def until(s, last):
    """Read s until the message (channel, data) == last has come."""
    return s.wait(lambda: last in payloads(s), 10)


def refused(d, path, status, text, name, headers=None):
    r = harness.http_request(d.port, "GET", path, headers=headers)
    body = r.body.decode("utf-8", "replace").rstrip("\r\n")
    t.ok(r.status == status and body == text,
         "%s: %s -> %d %r" % (name, path, status, text),
         "status %r, body %r" % (r.status, body[:300]))


def deliveries(r, d, mode):
    """The stream of alice with two rooms, and bob's, on one daemon."""
    c = r.client()
    s1 = opened(d, "/events?user=alice&room=general&room=random")
    s2 = opened(d, "/events?user=bob&_=1712345678901")
    if mode == "pattern":
        t.eq(c.cmd("PUBSUB", "NUMPAT"), 5, "pattern: 5 patterns, user:*, "
             "upload:*, chat:room:* and the two broadcast channels")
        t.eq(c.publish("alerts1x", "x"), 0, "pattern: the broadcast "
             "channel alerts[1]* is escaped: a PUBLISH to alerts1x, which "
             "the glob would match, reaches nobody")
    else:
        chans = ["user:alice", "chat:room:general", "chat:room:random",
                 "notifications:broadcast", GLOBBY, "user:bob"]
        r0 = c.cmd("PUBSUB", "NUMSUB", *chans)
        got = {r0[i].decode(): r0[i + 1] for i in range(0, len(r0), 2)}
        t.eq(got, {ch: 1 for ch in chans}, "exact: each channel of the two "
             "streams SUBSCRIBEd once, the broadcast channels too (PUBSUB "
             "NUMSUB)")
        t.eq(c.cmd("PUBSUB", "NUMPAT"), 0, "exact: no pattern")

    # what alice's stream must get, in order, among what it must not
    sent = [("chat:room:general", "g1"), ("chat:room:other", "no"),
            ("chat:room:random", "r1"), ("user:alice", "a1"),
            ("user:bob", "b1"), ("upload:u7", "no"),
            ("notifications:broadcast", "n1"), ("chat:roomx", "no"),
            ("notifications:broadcastx", "no"), ("chat:room:", "no"),
            ("alerts1x", "no"), (GLOBBY, "glob"), ("user:alicex", "no"),
            ("user:alice", "end"), ("user:bob", "end")]
    for ch, data in sent:
        c.publish(ch, data)
    mine = [("chat:room:general", "g1"), ("chat:room:random", "r1"),
            ("user:alice", "a1"), ("notifications:broadcast", "n1"),
            (GLOBBY, "glob"), ("user:alice", "end")]
    bobs = [("user:bob", "b1"), ("notifications:broadcast", "n1"),
            (GLOBBY, "glob"), ("user:bob", "end")]
    until(s1, ("user:alice", "end"))
    until(s2, ("user:bob", "end"))
    t.eq(payloads(s1), mine, "%s: user=alice&room=general&room=random gets "
         "its two rooms, its user and the broadcast channels, in order, and "
         "nothing else" % mode)
    t.eq(payloads(s2), bobs, "%s: bob's stream gets the broadcast channels "
         "too" % mode)

    refused(d, "/events?user=alice&room=a&room=b&room=c", 400,
            "too many room parameters (max 2)", mode + ": three rooms")
    refused(d, "/events?user=alice&uplaod=u7", 400,
            "unknown parameter 'uplaod' (channels: user, upload or room)",
            mode + ": a typo")
    s3 = opened(d, "/events?room=general&room=general&lastEventId=x-1")
    c.publish("notifications:broadcast", "n2")
    c.publish("chat:room:general", "g2")
    until(s3, ("chat:room:general", "g2"))
    t.eq(payloads(s3), [("notifications:broadcast", "n2"),
                        ("chat:room:general", "g2")],
         "%s: a room given twice counts once, a stream without a user "
         "opens, lastEventId is taken" % mode)
    for s in (s1, s2, s3):
        s.close()
    c.close()


def tokens_test(r):
    if jwt is None:
        t.skip_unless_required("--auth jwt with a room claim",
                               "python3-jwt for /usr/bin/python3 not found")
        return
    secret = t.path("jwt.secret")
    with open(secret, "w") as f:
        f.write(SECRET + "\n")
    # the kinds from a configuration file this time
    conf = t.path("channels.conf")
    with open(conf, "w") as f:
        f.write("auth jwt\njwt-key-file %s\nchannel room chat:room: 3\n"
                "broadcast notifications:broadcast\n" % secret)
    d = t.daemon(r, extra=["-c", conf], name="jwt")

    def tok(claim=None, sub="alice"):
        p = {"sub": sub, "exp": int(time.time()) + 600}
        if claim is not None:
            p["sserelay"] = claim
        v = jwt.encode(p, SECRET, algorithm="HS256")
        return {"Authorization": "Bearer " + (v.decode() if isinstance(
            v, bytes) else v)}

    c = r.client()
    rooms = tok({"room": ["general", "team-*"], "uploads": ["u7"]})
    s1 = opened(d, "/events?user=alice&room=general&room=team-42&upload=u7",
                headers=rooms)
    sent = [("chat:room:general", "g"), ("chat:room:team-42", "t"),
            ("upload:u7", "u"), ("chat:room:secret", "no"),
            ("notifications:broadcast", "n"), ("user:alice", "end")]
    for ch, data in sent:
        c.publish(ch, data)
    until(s1, ("user:alice", "end"))
    t.eq(payloads(s1), [x for x in sent if x[1] != "no"],
         "jwt: room general (allowed), team-42 (by team-*), upload u7 "
         "(\"uploads\") and the broadcast channel")
    s1.close()
    refused(d, "/events?user=alice&room=general&room=secret", 403,
            "room not allowed: secret", "jwt: a room the claim does not "
            "allow", headers=rooms)
    refused(d, "/events?user=alice&room=general", 403,
            "room not allowed: general", "jwt: a token without a room list",
            headers=tok({"uploads": ["*"]}))
    refused(d, "/events?user=alice&upload=u9", 403, "upload not allowed: u9",
            "jwt: an upload only under \"upload\" (the kind's list is "
            "\"uploads\")", headers=tok({"upload": ["u9"]}))
    # no claim at all: the user's own channel and the broadcast channel
    s2 = opened(d, "/events?user=alice", headers=tok())
    c.publish("notifications:broadcast", "n2")
    c.publish("user:alice", "end2")
    until(s2, ("user:alice", "end2"))
    t.eq(payloads(s2), [("notifications:broadcast", "n2"),
                        ("user:alice", "end2")],
         "jwt: a token without the claim gets the broadcast channel")
    s2.close()
    st, js = d.healthz()
    t.eq(js.get("auth_refusals", {}).get("channel"), 2,
         "/healthz counts the refused rooms under reason channel")
    c.close()
    d.stop()


def startup_errors():
    cases = [
        (["--channel", "room=user:room:"], "--channel: the prefix of user "
         "('user:') begins that of room ('user:room:')"),
        (["--channel", "room=x:", "--channel", "team=x:"],
         "--channel: the kinds room and team have the same prefix 'x:'"),
        (["--channel", "last=x:"], "--channel: 'last': reserved"),
        (["--channel", "room"], "--channel: expected NAME=PREFIX"),
        (["--channel", "room=x:", "--channel-max", "room=48"],
         "--channel-max, --broadcast: a stream could have 65 channels"),
        (["--channel-max", "room=2"], "--channel-max room: no such kind"),
        (["--broadcast", "user:all"], "--broadcast user:all: a channel of "
         "the kind user"),
    ]
    for args, want in cases:
        res = subprocess.run([t.sserelay, "-c", "/dev/null", "--listen",
                              "127.0.0.1:%d" % harness.free_port(),
                              "--redis", "redis://127.0.0.1:1"] + args,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=30)
        err = res.stderr.decode("utf-8", "replace")
        t.ok(res.returncode == 1 and err.startswith("sserelay: " + want)
             and len(err.splitlines()) == 1,
             "%s: exit 1, one line: %s..." % (" ".join(args), want),
             "exit %r, stderr %r" % (res.returncode, err[:300]))


def main():
    r = t.redis()
    d = t.daemon(r, extra=KINDS, name="pattern")
    t.ok(d.wait_log(r"redis: subscribed to user:\*, upload:\*, chat:room:\*, "
                    r"notifications:broadcast and alerts\[1\]\* on ", 5),
         "pattern: the log names what is subscribed")
    deliveries(r, d, "pattern")
    d.stop()
    d = t.daemon(r, extra=KINDS + ["--subscribe", "exact"], name="exact")
    deliveries(r, d, "exact")
    d.stop()
    tokens_test(r)
    startup_errors()


t.run(main)
