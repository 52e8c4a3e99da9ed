/*
 * test_history.c - resume from history (history.h) through the paths the
 * daemon takes: messages go in with hub_publish(), as the broker hands
 * them over, and a client comes back with hub_add() and a Last-Event-ID,
 * as an HTTP worker does; what the stream then carries is read with
 * stream_read(), as a writer does.
 *
 * Each case checks what a client would: either every event it missed on
 * its channels, in order, and nothing else, or one reset event with the
 * reason, never a partial replay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "hub.h"
#include "stats.h"
#include "stream.h"
#include "util.h"
#include "tap.h"
#include "streamkit.h"

struct sub {
	struct stream	*s;
	struct conn	 c;
};

/*
 * A stream on the channels (comma-separated) resuming from last, or
 * asking for the newest `backlog` of each channel.
 */
static struct stream *
open_stream(struct hub *h, struct sub *sub, const char *chans,
    const char *last, unsigned backlog)
{
	const char *ch[17];
	size_t lens[17], n = 0;
	char *dup = strdup(chans), *p, *save = NULL;

	sub->s = kit_stream(1024, &sub->c);
	for (p = strtok_r(dup, ",", &save); p != NULL && n < 17;
	    p = strtok_r(NULL, ",", &save)) {
		ch[n] = p;
		lens[n++] = strlen(p);
	}
	if (hub_add(h, sub->s, ch, lens, n, last, backlog, NULL) == -1) {
		printf("Bail out! hub_add failed\n");
		exit(1);
	}
	free(dup);
	return sub->s;
}

static struct stream *
resume(struct hub *h, struct sub *sub, const char *chans, const char *last)
{
	return open_stream(h, sub, chans, last, 0);
}

static void
done(struct hub *h, struct sub *sub)
{
	hub_remove(h, sub->s);
	stream_free(sub->s);
}

/* the data of every event in s, space-separated; or "reset:REASON" */
static void
got(struct stream *s, char *out, size_t len)
{
	static struct kit_event ev[2048];
	size_t n, i, k = 0;
	int slips = 0;

	n = kit_read_events(s, ev, 2048, &slips);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (strcmp(ev[i].event, "reset") == 0) {
			char *r = strstr(ev[i].data, "\"reason\":\"");
			k += (size_t)snprintf(out + k, k < len ? len - k : 0,
			    "%sreset:%.*s", k ? " " : "", r ? (int)strcspn(r +
			    10, "\"") : 0, r ? r + 10 : "");
		} else
			k += (size_t)snprintf(out + k, k < len ? len - k : 0,
			    "%s%s", k ? " " : "", ev[i].data);
	}
	if (slips)
		snprintf(out, len, "protocol slip");
}

/* the id of the newest event a stream on ch has seen, via a watcher */
static void
last_id(struct stream *watch, char *id, size_t len)
{
	struct kit_event ev[256];
	size_t n;
	int slips = 0;

	n = kit_read_events(watch, ev, 256, &slips);
	if (n > 0)
		snprintf(id, len, "%s", ev[n - 1].id);
}

static void
test_replay(void)
{
	struct hub *h;
	struct sub w, a, b, c, d;
	char id[64], id2[64], buf[512], epoch[16];

	h = kit_hub(100, 300, 64 << 20, NULL);
	hub_subscribed(h);
	resume(h, &w, "user:u,upload:x", NULL);
	kit_publish(h, "user:u", "u1");
	kit_publish(h, "upload:x", "x1");
	last_id(w.s, id, sizeof(id));
	kit_publish(h, "upload:y", "y1");
	kit_publish(h, "user:u", "u2");
	kit_publish(h, "upload:x", "x2");
	kit_publish(h, "user:v", "v1");
	kit_publish(h, "user:u", "u3");

	resume(h, &a, "user:u,upload:x", id);
	got(a.s, buf, sizeof(buf));
	is_str(buf, "u2 x2 u3",
	    "resume: what the client missed on its channels, in publish order");
	kit_publish(h, "upload:x", "x3");
	got(a.s, buf, sizeof(buf));
	is_str(buf, "x3", "then live, no gap, no duplicate");

	last_id(w.s, id2, sizeof(id2));
	resume(h, &b, "user:u,upload:x", id2);
	got(b.s, buf, sizeof(buf));
	is_str(buf, "", "resume from the newest id: nothing to replay");

	snprintf(epoch, sizeof(epoch), "%.8s", id);
	snprintf(buf, sizeof(buf), "%s-999999", epoch);
	resume(h, &c, "user:u", buf);
	got(c.s, buf, sizeof(buf));
	is_str(buf, "reset:unknown-id", "an id not given yet: unknown-id");

	resume(h, &d, "user:u", "nonsense");
	got(d.s, buf, sizeof(buf));
	is_str(buf, "reset:malformed-id", "a malformed id: malformed-id");
	done(h, &w);
	done(h, &a);
	done(h, &b);
	done(h, &c);
	done(h, &d);
	hub_free(h);
}

/* the per-channel cap: a resume past what was kept gets the reset */
static void
test_evict(void)
{
	struct hub *h;
	struct sub w, a, b, c;
	char id0[64], id3[64], buf[512];
	struct history_stats hs;

	h = kit_hub(3, 300, 64 << 20, NULL);
	hub_subscribed(h);
	resume(h, &w, "ch,other", NULL);
	kit_publish(h, "ch", "m0");
	last_id(w.s, id0, sizeof(id0));
	kit_publish(h, "ch", "m1");
	kit_publish(h, "ch", "m2");
	kit_publish(h, "ch", "m3");
	last_id(w.s, id3, sizeof(id3));
	kit_publish(h, "other", "o1");
	kit_publish(h, "ch", "m4");
	kit_publish(h, "ch", "m5");
	hub_history_stats(h, &hs);
	is_int(hs.evicted_count, 3, "history-size 3: three of six evicted");

	resume(h, &a, "ch", id0);
	got(a.s, buf, sizeof(buf));
	is_str(buf, "reset:history-exceeded",
	    "missed 5, 3 kept: history-exceeded, no partial replay");
	resume(h, &b, "ch", id3);
	got(b.s, buf, sizeof(buf));
	is_str(buf, "m4 m5", "missed 2, all kept: exact replay");
	resume(h, &c, "other", id0);
	got(c.s, buf, sizeof(buf));
	is_str(buf, "o1", "another channel lost nothing: its replay is whole");
	done(h, &w);
	done(h, &a);
	done(h, &b);
	done(h, &c);
	hub_free(h);
}

static void
test_ttl(void)
{
	struct hub *h;
	struct sub w, a, b;
	char id[64], buf[512];
	struct history_stats hs;
	uint64_t now = util_now_ms();

	h = kit_hub(100, 2, 64 << 20, NULL);
	hub_subscribed(h);
	resume(h, &w, "ch", NULL);
	kit_publish(h, "ch", "m0");
	last_id(w.s, id, sizeof(id));
	kit_publish(h, "ch", "m1");
	hub_tick(h, now + 1000);
	resume(h, &a, "ch", id);
	got(a.s, buf, sizeof(buf));
	is_str(buf, "m1", "within the TTL (2 s): replayed");
	hub_tick(h, now + 2500);
	hub_history_stats(h, &hs);
	is_int(hs.messages, 0, "past the TTL: nothing kept");
	is_int(hs.evicted_ttl, 2, "both counted as TTL evictions");
	resume(h, &b, "ch", id);
	got(b.s, buf, sizeof(buf));
	is_str(buf, "reset:history-exceeded", "past the TTL: history-exceeded");
	done(h, &w);
	done(h, &a);
	done(h, &b);
	hub_free(h);
}

static void
test_memory(void)
{
	struct hub *h;
	struct sub w, a, b;
	char id_first[64], id_late[64], buf[4096], payload[1000];
	struct history_stats hs;
	int i;

	memset(payload, 'p', sizeof(payload) - 1);
	payload[sizeof(payload) - 1] = '\0';
	h = kit_hub(100000, 300, 20000, NULL);	/* about 18 messages */
	hub_subscribed(h);
	resume(h, &w, "a,b", NULL);
	kit_publish(h, "a", "first");
	last_id(w.s, id_first, sizeof(id_first));
	for (i = 0; i < 40; i++)
		kit_publish(h, i % 2 ? "a" : "b", payload);
	last_id(w.s, id_late, sizeof(id_late));
	kit_publish(h, "a", "late");
	hub_history_stats(h, &hs);
	ok(hs.bytes <= 20000, "history within its memory cap (%zu bytes)",
	    hs.bytes);
	ok(hs.evicted_memory > 0, "oldest dropped for memory (%llu)",
	    (unsigned long long)hs.evicted_memory);
	resume(h, &a, "a", id_first);
	got(a.s, buf, sizeof(buf));
	is_str(buf, "reset:history-exceeded",
	    "a resume past the memory cap: history-exceeded");
	resume(h, &b, "a,b", id_late);
	got(b.s, buf, sizeof(buf));
	is_str(buf, "late", "a recent one: exact");
	done(h, &w);
	done(h, &a);
	done(h, &b);
	hub_free(h);
}

static void
test_outage_and_disabled(void)
{
	struct hub *h;
	struct sub w, a, b, c;
	char id[64], id2[64], buf[512];

	h = kit_hub(100, 300, 64 << 20, NULL);
	hub_subscribed(h);
	resume(h, &w, "ch", NULL);
	kit_publish(h, "ch", "m0");
	last_id(w.s, id, sizeof(id));
	hub_subscribed(h);		/* Redis lost and back */
	got(w.s, buf, sizeof(buf));
	is_str(buf, "reset:redis-outage", "open stream: told at once");
	kit_publish(h, "ch", "m1");
	last_id(w.s, id2, sizeof(id2));
	resume(h, &a, "ch", id);
	got(a.s, buf, sizeof(buf));
	is_str(buf, "reset:redis-outage",
	    "a resume from before the outage: redis-outage, even though m1 "
	    "is kept");
	resume(h, &b, "ch", id2);
	got(b.s, buf, sizeof(buf));
	is_str(buf, "", "a resume from after it: complete");
	done(h, &w);
	done(h, &a);
	done(h, &b);
	hub_free(h);

	h = kit_hub(0, 300, 64 << 20, NULL);
	hub_subscribed(h);
	resume(h, &w, "ch", NULL);
	kit_publish(h, "ch", "m0");
	last_id(w.s, id, sizeof(id));
	kit_publish(h, "ch", "m1");
	resume(h, &c, "ch", id);
	got(c.s, buf, sizeof(buf));
	is_str(buf, "reset:history-disabled",
	    "--history-size 0, a message missed: history-disabled");
	done(h, &w);
	done(h, &c);
	hub_free(h);
}

/* ?last=N: the newest N of each channel, merged in publish order */
static void
test_backlog(void)
{
	struct hub *h;
	struct sub a, b, c, d, e, f;
	char buf[512], id[64];
	int i;

	h = kit_hub(5, 300, 64 << 20, NULL);
	hub_subscribed(h);
	kit_publish(h, "user:u", "u1");
	kit_publish(h, "upload:x", "x1");
	kit_publish(h, "user:u", "u2");
	kit_publish(h, "upload:y", "y1");
	kit_publish(h, "upload:x", "x2");
	kit_publish(h, "user:u", "u3");
	kit_publish(h, "user:v", "v1");
	kit_publish(h, "upload:x", "x3");

	open_stream(h, &a, "user:u,upload:x", NULL, 2);
	got(a.s, buf, sizeof(buf));
	is_str(buf, "u2 x2 u3 x3",
	    "last=2: the 2 newest of each channel, in publish order");
	kit_publish(h, "upload:x", "x4");
	kit_publish(h, "user:v", "v2");
	got(a.s, buf, sizeof(buf));
	is_str(buf, "x4", "then live on its channels, no gap, no duplicate");

	open_stream(h, &b, "upload:x,user:u,upload:none", NULL, 10);
	got(b.s, buf, sizeof(buf));
	is_str(buf, "u1 x1 u2 x2 u3 x3 x4",
	    "last over what is kept: what is kept; a channel never "
	    "published to adds nothing");

	open_stream(h, &c, "user:u", NULL, 0);
	got(c.s, buf, sizeof(buf));
	is_str(buf, "", "last=0: live only, as before");

	/* a Last-Event-ID wins: the resume, not the backlog */
	open_stream(h, &e, "upload:x", NULL, 1);
	got(e.s, buf, sizeof(buf));
	is_str(buf, "x4", "last=1: the newest");
	done(h, &e);
	open_stream(h, &e, "upload:x", NULL, 1);
	{
		struct kit_event ev[8];
		int slips = 0;
		size_t n = kit_read_events(e.s, ev, 8, &slips);

		ok(n == 1, "the backlog's event carries its id");
		snprintf(id, sizeof(id), "%s", n ? ev[0].id : "");
		ok(n == 1 && strlen(id) > 9, "an id of its own: %s", id);
	}
	kit_publish(h, "upload:x", "x5");
	open_stream(h, &d, "upload:x", id, 3);
	got(d.s, buf, sizeof(buf));
	is_str(buf, "x5", "Last-Event-ID and last: the resume, not the backlog");

	/* the per-channel cap (5) bounds it too */
	for (i = 1; i <= 7; i++) {
		snprintf(buf, sizeof(buf), "z%d", i);
		kit_publish(h, "upload:z", buf);
	}
	open_stream(h, &f, "upload:z", NULL, 10);
	got(f.s, buf, sizeof(buf));
	is_str(buf, "z3 z4 z5 z6 z7", "last=10 with 5 kept: the 5 kept");
	done(h, &f);

	done(h, &a);
	done(h, &b);
	done(h, &c);
	done(h, &d);
	done(h, &e);
	hub_free(h);
}

int
main(void)
{
	test_replay();
	test_backlog();
	test_evict();
	test_ttl();
	test_memory();
	test_outage_and_disabled();
	return done_testing();
}
