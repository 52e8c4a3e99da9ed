#!/usr/bin/env python3
# The daemon starts before Redis is up.  A stream opened then is told, once
# the first subscription is made, that it may have missed messages: a reset
# with reason "not-subscribed", not "redis-outage"; /healthz counts no
# reconnect and no outage; after that, messages flow.
import harness

t = harness.Test()


def main():
    r = harness.RedisServer(t, port=harness.free_port())
    t.redises.append(r)
    d = t.daemon(r, wait_redis=False)
    st, js = d.healthz()
    t.eq((st, js.get("redis")), (503, "down"),
         "Redis not started yet: /healthz 503, redis down")
    s = d.stream("/events?user=early")
    t.ok(s.wait_opened(), "a stream opens while Redis is not up")
    r.start()
    t.ok(s.wait(lambda: harness.reset_events(s), 15),
         "once subscribed, the early stream gets a reset")
    resets = harness.reset_events(s)
    t.eq([e.json().get("reason") for e in resets], ["not-subscribed"],
         "its reason is not-subscribed, not redis-outage")
    st, js = d.healthz()
    t.eq(st, 200, "/healthz 200 once subscribed")
    t.eq(js.get("redis_reconnects"), 0,
         "no reconnect counted: the connection was never lost")
    t.eq((js.get("resets") or {}).get("not-subscribed"), 1,
         "resets counts one not-subscribed")
    t.eq((js.get("resets") or {}).get("redis-outage"), 0,
         "and no redis-outage")
    c = r.client()
    t.eq(c.publish("user:early", "hello"), 1, "PUBLISH reaches the daemon")
    t.ok(s.wait(lambda: harness.message_events(s), 10),
         "the message arrives on the early stream")
    t.eq([e.json().get("data") for e in harness.message_events(s)],
         ["hello"], "it is the message published")
    # a stream opened now gets no reset at all
    s2 = d.stream("/events?user=late")
    t.ok(s2.wait_opened(), "a stream opened after the subscription")
    t.eq(c.publish("user:late", "x"), 1, "PUBLISH to it")
    t.ok(s2.wait(lambda: harness.message_events(s2), 10), "it receives")
    t.eq(harness.reset_events(s2), [], "and got no reset")
    t.ok(d.wait_log(r"info .*before the first subscription", 5),
         "the log says why those streams were reset")
    c.close()


t.run(main)
