#!/usr/bin/python3
"""publish.py: simulate an upload with redis-py, the way an application would
report progress to sserelay: PUBLISH upload:<id> {"pct":0} .. {"pct":100} in
steps of 10, then PUBLISH user:<id> a notification that it finished.  With
-r ROOM it then says so in a chat room too, PUBLISH chat:room:<ROOM>
{"type":"chat","user":USER,"text":...} (the channel of ?room=ROOM with
sserelay --channel room=chat:room:), and with -b TEXT it ends with a banner
for every browser, PUBLISH notifications:broadcast {"type":"broadcast",
"text":TEXT} (sserelay --broadcast notifications:broadcast).  -R PREFIX and
-B CHANNEL change those channels.

    examples/publish.py [-D] [-u URL] [-d DELAY_MS] [-r ROOM] [-R PREFIX]
        [-b TEXT] [-B CHANNEL] [UPLOAD] [USER]

-D publishes durably, for sserelay --history redis: FCALL sserelay_publish
1 <channel> <payload>, kept in Redis so a client resumes on any instance.

UPLOAD defaults to u7, USER to alice. The Redis server is -u URL, else
REDIS_URL, else redis://127.0.0.1:6379. DELAY_MS (-d or env, default 300) is
the pause between two progress steps. Needs redis-py (Debian: apt-get install
python3-redis; the #! line names Debian's /usr/bin/python3 on purpose, run it
with another interpreter only if that one has redis-py too).
Watch it with `sserelay --demo` and http://127.0.0.1:8080/?user=alice&upload=u7
Exits non-zero on any error (Redis unreachable, error reply, bad argument).
"""

import argparse
import json
import os
import re
import sys
import time

ID_RE = re.compile(r"[A-Za-z0-9._:@-]{1,128}")  # the ids sserelay accepts


def main():
    prog = os.path.basename(sys.argv[0])
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Publish a simulated upload's progress and a final "
                    "notification for sserelay.")
    ap.add_argument("-u", "--url",
                    default=os.environ.get("REDIS_URL",
                                           "redis://127.0.0.1:6379"),
                    help="Redis URL [REDIS_URL or redis://127.0.0.1:6379]")
    ap.add_argument("-d", "--delay-ms", type=int,
                    default=os.environ.get("DELAY_MS", "300"),
                    help="pause between progress steps in ms [DELAY_MS or 300]")
    ap.add_argument("-D", "--durable", action="store_true",
                    help="FCALL sserelay_publish (--history redis) instead "
                    "of PUBLISH")
    ap.add_argument("-r", "--room",
                    help="also post to this chat room [none]")
    ap.add_argument("-R", "--room-prefix", default="chat:room:",
                    help="channel prefix of the rooms [chat:room:]")
    ap.add_argument("-b", "--broadcast", metavar="TEXT",
                    help="end with this banner for every browser [none]")
    ap.add_argument("-B", "--broadcast-channel",
                    default="notifications:broadcast",
                    help="the broadcast channel [notifications:broadcast]")
    ap.add_argument("upload", nargs="?", default="u7", help="upload id [u7]")
    ap.add_argument("user", nargs="?", default="alice", help="user id [alice]")
    args = ap.parse_args()
    for what in ("upload", "user", "room"):
        v = getattr(args, what)
        if (v is not None or what != "room") and not ID_RE.fullmatch(v):
            ap.error("invalid %s id %r (1..128 of A-Za-z0-9._:@-)"
                     % (what, v))
    if not args.broadcast_channel:
        ap.error("the broadcast channel must not be empty")
    if args.delay_ms < 0:
        ap.error("DELAY_MS must not be negative")

    try:
        import redis
    except ImportError:
        sys.exit("%s: redis-py not found for %s (Debian: apt-get install "
                 "python3-redis)" % (prog, sys.executable))

    # Never print the password.
    where = re.sub(r"^([a-z]+://[^:/@]*):[^@/]*@", r"\1:***@", args.url)
    print("%s: upload %s of user %s on %s, %d ms per step"
          % (prog, args.upload, args.user, where, args.delay_ms),
          flush=True)
    try:
        r = redis.Redis.from_url(args.url, socket_connect_timeout=5,
                                 socket_timeout=5)

        def publish(channel, payload):
            # UTF-8 as it is, like publish.sh and publish.js
            msg = json.dumps(payload, separators=(",", ":"),
                             ensure_ascii=False)
            if args.durable:
                pos = r.fcall("sserelay_publish", 1, channel, msg)
                print("FCALL sserelay_publish 1 %s %s -> position %s"
                      % (channel, msg, pos.decode()), flush=True)
                return
            n = r.publish(channel, msg)
            print("PUBLISH %s %s -> %d subscriber(s)" % (channel, msg, n),
                  flush=True)

        for pct in range(0, 101, 10):
            publish("upload:" + args.upload, {"pct": pct})
            if pct < 100:
                time.sleep(args.delay_ms / 1000)
        publish("user:" + args.user,
                {"type": "notification",
                 "text": "Upload %s finished" % args.upload})
        if args.room is not None:
            publish(args.room_prefix + args.room,
                    {"type": "chat", "user": args.user,
                     "text": "Upload %s finished" % args.upload})
        if args.broadcast is not None:
            publish(args.broadcast_channel,
                    {"type": "broadcast", "text": args.broadcast})
        r.close()
    except (redis.RedisError, ValueError) as e:
        sys.exit("%s: %s: %s" % (prog, where, e))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
