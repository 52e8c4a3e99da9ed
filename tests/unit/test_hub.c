/*
 * test_hub.c - a message's path through the hub (hub.h): publish, fan-out,
 * wakes, heartbeats, shutdown, channel interest, Redis subscription
 * resets; and the stream state machine they drive (stream.h), without MHD.
 *
 * Messages go in through hub_publish(), the call the broker makes, and
 * come out through stream_read() (stream_out and stream_sent, the calls
 * a writer makes).  The wake hook is a simulated writer (streamkit.h)
 * that flags the wakes the hub must not ask for.  The last test runs a
 * publisher and four readers on real threads, with the readers blocked
 * while idle until the wake hook posts them, so a lost wake-up hangs (the
 * harness times out) and a data race or a refcount slip shows in the
 * sanitizer and thread-sanitizer builds.  Heartbeats and token expiry
 * are the writers' (test_writer.c).
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "hub.h"
#include "hub_presence.h"
#include "mailbox.h"
#include "ring.h"
#include "sse.h"
#include "stats.h"
#include "stream.h"
#include "util.h"
#include "tap.h"
#include "streamkit.h"

static unsigned
refs(struct frame *f)
{
	return atomic_load(&f->refs);
}

static struct frame *
mkframe(const char *text)
{
	return frame_new(text, strlen(text));
}

static void
cat(struct sbuf *b, struct frame *f)
{
	sbuf_add(b, f->data, f->len);
}

/* the mailbox's requests as "+chan" / "-chan" words, oldest first */
static void
interest(struct mailbox *mb, char *out, size_t len)
{
	struct mailbox_items items = STAILQ_HEAD_INITIALIZER(items);
	struct mailbox_item *it;
	size_t n = 0;

	out[0] = '\0';
	mailbox_take(mb, &items);
	STAILQ_FOREACH(it, &items, entry)
		n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%c%s",
		    n ? " " : "", it->op == MAILBOX_INTEREST ? '+' : '-',
		    it->channel);
	mailbox_items_free(&items);
}

static void
test_fanout(void)
{
	struct hub *h;
	struct mailbox *mb;
	struct stream *s1, *s2, *s3, *s4;
	struct conn c1, c2, c3, c4;
	struct kit_event ev[16];
	struct hub_message batch[3];
	const char *ch1[2] = { "user:a", "upload:u1" };
	size_t len1[2] = { 6, 9 };
	const char *ch2[2] = { "A", "B" };
	size_t len2[2] = { 1, 1 };
	const char *ch4[1] = { "bin\0x" };
	size_t len4[1] = { 5 };
	char words[256];
	int slips = 0;
	size_t n;

	memset(&stats, 0, sizeof(stats));
	mb = mailbox_new();
	h = kit_hub(100, 300, 64 << 20, mb);
	is_int(kit_stat(&stats.streams_open), 0, "stats: no stream open");

	s1 = kit_stream(8, &c1);
	s2 = kit_stream(8, &c2);
	s3 = kit_stream(8, &c3);
	s4 = kit_stream(8, &c4);
	is_int(hub_add(h, s1, ch1, len1, 2, NULL, 0, NULL), 0,
	    "hub_add two channels: 0");
	is_int(kit_stat(&stats.streams_open), 1, "stats: one stream open");
	is_int(kit_stat(&stats.streams_opened), 1, "stats: one in total");
	is_int(hub_add(h, s2, ch2, len2, 2, NULL, 0, NULL), 0, "hub_add A and B");
	is_int(kit_add(h, s3, "user:a", NULL), 0, "a second user:a stream");
	is_int(hub_add(h, s4, ch4, len4, 1, NULL, 0, NULL), 0,
	    "hub_add a channel with NUL");
	is_int(kit_stat(&stats.streams_open), 4, "stats: four open");
	interest(mb, words, sizeof(words));
	is_str(words, "+user:a +upload:u1 +A +B +bin",
	    "the broker hears of each channel's first stream, once, in order");

	kit_publish(h, "upload:u1", "one");
	kit_publish(h, "nobody", "two");
	kit_publish(h, "user:a", "three");
	kit_publish(h, "A", "four");
	kit_publish(h, "B", "five");
	is_int(kit_stat(&stats.events_queued), 5,
	    "stats: upload:u1 1 + nobody 0 + user:a 2 + A 1 + B 1 queued");
	is_int(kit_count(s1), 2, "s1: upload:u1 and user:a");
	is_int(kit_count(s2), 2, "s2 on A and B: one each");
	is_int(kit_count(s3), 1, "s3: user:a");
	{
		struct hub_message m[3] = {
			{ L("bin"), L("no") },
			{ L("bin\0y"), L("no") },
			{ L("bin\0x"), L("yes") },
		};

		hub_publish(h, m, 3, 0);
	}
	n = kit_read_events(s4, ev, 16, &slips);
	ok(n == 1 && strcmp(ev[0].data, "yes") == 0,
	    "binary channel names match by length: \"bin\\0x\" only");
	is_int(c1.resumes + c2.resumes + c3.resumes + c4.resumes, 0,
	    "no writer was idle: no wake");

	/* reading: the events in order, ids increasing, then idle */
	n = kit_read_events(s1, ev, 16, &slips);
	ok(n == 2 && strcmp(ev[0].data, "one") == 0 &&
	    strcmp(ev[1].data, "three") == 0, "s1: its two events, in order");
	ok(n == 2 && strlen(ev[0].id) > 9 && strcmp(ev[0].id, ev[1].id) < 0 &&
	    strncmp(ev[0].id, ev[1].id, 9) == 0,
	    "ids: one epoch, increasing (%s, %s)", ev[0].id, ev[1].id);
	is_int(slips, 0, "s1: the drain that found nothing cleared its wake");
	is_int(c1.suspends, 1, "s1: one drain found nothing more");
	ok(kit_idle(s1), "s1: idle (the next push wakes it)");

	/* a batch of several messages wakes an idle stream once */
	batch[0] = (struct hub_message){ L("user:a"), L("b1") };
	batch[1] = (struct hub_message){ L("user:a"), L("b2") };
	batch[2] = (struct hub_message){ L("upload:u1"), L("b3") };
	hub_publish(h, batch, 3, 0);
	is_int(c1.resumes, 1, "a batch of three: s1 woken exactly once");
	ok(!kit_idle(s1), "s1: a wake outstanding");
	is_int(c3.resumes, 0, "s3 (never idle) not woken");
	n = kit_read_events(s1, ev, 16, &slips);
	ok(n == 3 && strcmp(ev[0].data, "b1") == 0 &&
	    strcmp(ev[1].data, "b2") == 0 && strcmp(ev[2].data, "b3") == 0,
	    "s1: the batch, in order");

	/* awake with frames queued: a new batch must not wake again */
	kit_publish(h, "user:a", "x");
	is_int(c1.resumes, 2, "idle again: the next message wakes it");
	kit_publish(h, "user:a", "y");
	is_int(c1.resumes, 2, "a wake outstanding: not woken again");

	/* hub_remove: nothing more is queued, the broker hears of it */
	hub_remove(h, s3);
	is_int(kit_stat(&stats.streams_open), 3, "stats: hub_remove closes");
	is_int(kit_stat(&stats.streams_opened), 4, "stats: total unchanged");
	interest(mb, words, sizeof(words));
	is_str(words, "", "user:a still has s1: no word to the broker");
	hub_remove(h, s1);
	interest(mb, words, sizeof(words));
	is_str(words, "-user:a -upload:u1",
	    "s1 gone: both its channels have no stream left");
	kit_count(s1);
	n = kit_stat(&stats.events_queued);
	kit_publish(h, "user:a", "z");
	is_int(kit_stat(&stats.events_queued), n,
	    "removed: publishing queues nothing");
	hub_remove(h, s1);
	ok(!s1->registered, "hub_remove twice is harmless");

	hub_remove(h, s2);
	hub_remove(h, s4);
	is_int(kit_stat(&stats.streams_open), 0, "stats: all closed");
	is_int(c1.errors + c2.errors + c3.errors + c4.errors, 0,
	    "no wake of an awaiting or unattached stream");
	stream_free(s1);
	stream_free(s2);
	stream_free(s3);
	stream_free(s4);
	hub_free(h);
	mailbox_free(mb);

	/* a stream that was never added */
	h = kit_hub(100, 300, 64 << 20, NULL);
	s1 = kit_stream(2, &c1);
	hub_remove(h, s1);
	ok(!s1->registered, "hub_remove of a stream never added is harmless");
	stream_free(s1);
	hub_free(h);
}

static void
test_stream(void)
{
	struct stream *s;
	struct conn c;
	struct frame *a, *b, *d, *fin;
	struct sbuf got, exp;
	int slips = 0;
	size_t max;
	ssize_t rc;
	char big[100];
	size_t i;

	sbuf_init(&got);
	sbuf_init(&exp);
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	a = frame_new(big, sizeof(big));
	b = frame_new(L("B"));
	d = frame_new(L("0123456789abcdefghijklmnopqrstuvwxyz!"));
	fin = mkframe("retry: 1234\n\n");

	s = kit_stream(4, &c);
	is_int(stream_push(s, a), STREAM_PUSH_QUEUED,
	    "push on an awake stream: QUEUED");
	is_int(refs(a), 2, "push takes a reference");
	rc = kit_drain(s, 4096, &got, &slips);
	is_int(rc, 0, "drained: 0");
	is_mem(got.data, got.len, a->data, a->len, "drained: a's bytes");
	ok(kit_idle(s), "drained: idle");
	is_int(stream_push(s, b), STREAM_PUSH_WAKE,
	    "push on an idle stream: WAKE");
	is_int(c.resumes, 0, "stream_push does not wake by itself");
	ok(!kit_idle(s), "WAKE leaves a wake outstanding");
	is_int(stream_push(s, d), STREAM_PUSH_QUEUED,
	    "the next push: QUEUED (one wake is enough)");
	stream_wake(s);
	is_int(c.resumes, 1, "stream_wake: the writer's hook, once");
	sbuf_reset(&got);
	kit_drain(s, 4096, &got, &slips);
	sbuf_reset(&exp);
	cat(&exp, b);
	cat(&exp, d);
	is_mem(got.data, got.len, exp.data, exp.len,
	    "after the wake: b's and d's bytes");
	stream_free(s);

	/* partial reads resume at the right offset, for several sizes */
	for (max = 1; max <= 41; max += 4) {
		s = kit_stream(8, &c);
		stream_push(s, a);
		stream_push(s, b);
		stream_push(s, d);
		stream_push(s, a);
		sbuf_reset(&got);
		sbuf_reset(&exp);
		cat(&exp, a);
		cat(&exp, b);
		cat(&exp, d);
		cat(&exp, a);
		rc = kit_drain(s, max, &got, &slips);
		is_int(rc, 0, "max %zu: drained to 0", max);
		is_mem(got.data, got.len, exp.data, exp.len,
		    "max %zu: partial reads concatenate to the frames", max);
		stream_free(s);
	}
	is_int(slips, 0, "partial reads: never above max, wake cleared on 0");

	/* a half-written frame stays pinned */
	s = kit_stream(8, &c);
	stream_push(s, a);
	frame_ref(a);			/* hold it twice: see the stream's ref */
	{
		char buf[7];

		rc = stream_read(s, kit_stream_out(), buf, sizeof(buf));
		is_int(rc, 7, "7 of 100 bytes read");
		is_int(refs(a), 3, "half-written frame still referenced");
		is_int(kit_count(s), 0, "and out of the ring");
	}
	sbuf_reset(&got);
	kit_drain(s, 4096, &got, &slips);
	is_mem(got.data, got.len, big + 7, sizeof(big) - 7,
	    "the rest of the frame from byte 7");
	frame_unref(a);
	stream_free(s);
	is_int(refs(a), 1, "pinned frame released");

	/* overflow: closing, then -1 without ever going idle */
	s = kit_stream(2, &c);
	is_int(stream_push(s, a), STREAM_PUSH_QUEUED, "cap 2: 1st queued");
	is_int(stream_push(s, b), STREAM_PUSH_QUEUED, "cap 2: 2nd queued");
	is_int(stream_push(s, d), STREAM_PUSH_OVERFLOW, "cap 2: 3rd OVERFLOW");
	is_int(refs(d), 1, "overflowing frame: no reference kept");
	ok(s->closing && s->overflowed, "overflow: closing and overflowed");
	is_int(stream_push(s, d), STREAM_PUSH_CLOSED, "then CLOSED");
	is_int(refs(d), 1, "CLOSED: no reference kept");
	sbuf_reset(&got);
	rc = kit_drain(s, 4096, &got, &slips);
	is_int(rc, -1, "overflowed stream: stream_read ends with -1");
	is_int(c.suspends, 0, "overflowed stream: never idle");
	stream_free(s);

	/* close with a final frame: queued data, final, -1 */
	s = kit_stream(8, &c);
	stream_push(s, a);
	stream_push(s, b);
	is_int(stream_close(s, fin), 1, "stream_close asks for a wake even "
	    "with one outstanding (a writer waiting for room must know)");
	is_int(refs(fin), 2, "stream_close takes a reference on final");
	is_int(stream_push(s, d), STREAM_PUSH_CLOSED, "push after close");
	is_int(refs(d), 1, "push after close: no reference");
	sbuf_reset(&got);
	sbuf_reset(&exp);
	cat(&exp, a);
	cat(&exp, b);
	cat(&exp, fin);
	rc = kit_drain(s, 5, &got, &slips);
	is_int(rc, -1, "closed: ends with -1");
	is_mem(got.data, got.len, exp.data, exp.len,
	    "closed: queued frames, then final, in 5-byte reads");
	stream_free(s);
	is_int(refs(fin), 1, "final released by stream_free");

	/* close an idle stream: needs a wake */
	s = kit_stream(8, &c);
	sbuf_reset(&got);
	kit_drain(s, 4096, &got, &slips);
	ok(kit_idle(s), "empty stream: idle");
	is_int(stream_close(s, fin), 1, "stream_close of an idle one: 1");
	stream_wake(s);
	is_int(c.resumes, 1, "woken once");
	sbuf_reset(&got);
	rc = kit_drain(s, 4096, &got, &slips);
	is_int(rc, -1, "then -1");
	is_mem(got.data, got.len, fin->data, fin->len, "after the final");
	stream_free(s);

	/* close without a final frame */
	s = kit_stream(8, &c);
	stream_push(s, b);
	stream_close(s, NULL);
	sbuf_reset(&got);
	rc = kit_drain(s, 4096, &got, &slips);
	is_int(rc, -1, "close(NULL): -1 after the queue");
	is_mem(got.data, got.len, L("B"), "close(NULL): the queued bytes");
	is_int(c.suspends, 0, "close(NULL): never idle");
	stream_free(s);

	/* freeing with frames still queued drops their refs */
	s = kit_stream(8, &c);
	stream_push(s, a);
	stream_push(s, a);
	stream_close(s, fin);
	is_int(refs(a), 3, "two queued refs");
	stream_free(s);
	is_int(refs(a), 1, "stream_free drops queued refs");
	is_int(refs(fin), 1, "stream_free drops final");

	is_int(slips, 0, "stream_read protocol kept in all the above");
	is_int(c.errors, 0, "no forbidden hook call (last stream)");
	frame_unref(a);
	frame_unref(b);
	frame_unref(d);
	frame_unref(fin);
	sbuf_free(&got);
	sbuf_free(&exp);
}


/*
 * A replay from the memory history (a resume, or ?last=N) longer than the
 * ring is queued whole, and the stream still has its ring's room after it.
 */
static void
test_replay_room(void)
{
	struct stream *s;
	struct frame *replay[10], *f;
	size_t i;
	int r, queued;

	f = mkframe("data: x\n\n");
	for (i = 0; i < 10; i++)
		replay[i] = f;
	if ((s = stream_new(4, 1, 0)) == NULL) {
		printf("Bail out! stream_new failed\n");
		exit(1);
	}
	is_int(stream_push(s, f), STREAM_PUSH_QUEUED, "one queued before");
	is_int(stream_replay(s, replay, 10), 0, "a replay of 10 in a ring of 4");
	is_int(kit_count(s), 11, "all of it queued");
	for (i = 0, queued = 0; i < 3; i++)
		if (stream_push(s, f) == STREAM_PUSH_QUEUED)
			queued++;
	is_int(queued, 3, "then 3 live after it (the ring's room, as "
	    "before the replay), not a slow close");
	for (i = 0, r = 0; i < 4 && r != STREAM_PUSH_OVERFLOW; i++)
		r = (int)stream_push(s, f);
	is_int(r, STREAM_PUSH_OVERFLOW, "and a stream that does not read is "
	    "still closed as slow");
	stream_free(s);
	is_int(refs(f), 1, "no reference kept");
	frame_unref(f);
}

/*
 * --history redis: a replay longer than the ring is queued whole, and
 * the stream still has its ring's room for what comes live while its
 * client reads the replay (before, 3 live messages closed it as slow).
 */
static void
test_recovered(void)
{
	struct stream *s;
	struct frame *replay[10], *f;
	struct position start[1];
	size_t i;
	int r, queued;

	memset(start, 0, sizeof(start));
	f = mkframe("data: x\n\n");
	for (i = 0; i < 10; i++)
		replay[i] = f;
	if ((s = stream_new(4, 1, 1)) == NULL) {
		printf("Bail out! stream_new failed\n");
		exit(1);
	}
	stream_recovering(s);
	is_int(stream_push(s, f), STREAM_PUSH_QUEUED, "recovering: kept aside");
	is_int(stream_push(s, f), STREAM_PUSH_QUEUED, "recovering: kept aside");
	stream_recovered(s, start, 1, NULL, replay, 10);
	is_int(kit_count(s), 12, "recovered: 10 replayed and 2 kept aside, "
	    "in a ring of 4");
	for (i = 0, queued = 0; i < 4; i++)
		if (stream_push(s, f) == STREAM_PUSH_QUEUED)
			queued++;
	is_int(queued, 4, "then 4 live (the ring size) queued after them, "
	    "not a slow close");
	for (i = 0, r = 0; i < 4 && r != STREAM_PUSH_OVERFLOW; i++)
		r = (int)stream_push(s, f);
	is_int(r, STREAM_PUSH_OVERFLOW, "and a stream that does not read "
	    "is still closed as slow");
	stream_free(s);
	is_int(refs(f), 1, "no reference kept");
	frame_unref(f);
}

static void
test_overflow_hub(void)
{
	struct hub *h;
	struct stream *s, *t;
	struct conn c, ct;
	struct sbuf got;
	struct frame *fin;
	int slips = 0;
	ssize_t rc;

	memset(&stats, 0, sizeof(stats));
	h = kit_hub(100, 300, 64 << 20, NULL);
	fin = mkframe("retry: 777\n\n");
	hub_set_retry(h, fin);
	s = kit_stream(2, &c);
	t = kit_stream(2, &ct);
	kit_add(h, s, "slow", NULL);
	kit_add(h, t, "slow2", NULL);
	sbuf_init(&got);

	kit_publish(h, "slow", "1");
	kit_publish(h, "slow", "2");
	is_int(kit_count(s), 2, "slow: two queued on a 2-slot ring");
	kit_publish(h, "slow", "3");
	ok(s->closing && s->overflowed, "3rd message on a 2-slot ring: closing");
	is_int(kit_stat(&stats.slow_closes), 1, "stats: one slow close");
	kit_publish(h, "slow", "4");
	is_int(kit_count(s), 2, "closing stream: nothing more queued");
	rc = kit_drain(s, 4096, &got, &slips);
	is_int(rc, -1, "slow stream: stream_read eventually -1");
	is_int(c.suspends, 0, "slow stream: never idle");
	ok(got.len >= fin->len && memcmp(got.data + got.len - fin->len,
	    fin->data, fin->len) == 0, "slow stream ends with the slow final");

	/* idle, then overflowed within one batch: one wake */
	kit_drain(t, 4096, &got, &slips);
	ok(kit_idle(t), "t idle");
	{
		struct hub_message m[3] = {
			{ L("slow2"), L("a") }, { L("slow2"), L("b") },
			{ L("slow2"), L("c") },
		};

		hub_publish(h, m, 3, 0);
	}
	ok(t->closing, "t overflowed while idle: closing");
	is_int(ct.resumes, 1, "overflowed idle stream: woken once");
	rc = kit_drain(t, 4096, &got, &slips);
	is_int(rc, -1, "then it ends with -1");
	is_int(slips, 0, "overflow: stream_read protocol kept");
	is_int(c.errors + ct.errors, 0, "overflow: no forbidden hook call");

	hub_remove(h, s);
	hub_remove(h, t);
	stream_free(s);
	stream_free(t);
	hub_free(h);
	is_int(refs(fin), 1, "slow final: the hub let go of it");
	frame_unref(fin);
	sbuf_free(&got);
}

struct finals {
	struct frame	*f[8];
	int		 n;
};

static struct frame *
make_final(void *arg)
{
	struct finals *fs = arg;
	char buf[32];
	int len;
	struct frame *f;

	len = snprintf(buf, sizeof(buf), "retry: %d\n\n", 1000 + fs->n);
	f = frame_new(buf, (size_t)len);
	if (fs->n < 8)
		fs->f[fs->n++] = frame_ref(f);	/* the test's own ref */
	return f;
}

static void
test_close_all(void)
{
	struct hub *h;
	struct stream *s[3], *late;
	struct conn c[3], cl;
	struct finals fs;
	struct sbuf got;
	int i, j, slips = 0;
	ssize_t rc;

	memset(&fs, 0, sizeof(fs));
	h = kit_hub(100, 300, 64 << 20, NULL);
	sbuf_init(&got);
	for (i = 0; i < 3; i++) {
		s[i] = kit_stream(8, &c[i]);
		kit_add(h, s[i], "all", NULL);
	}
	kit_drain(s[1], 4096, &got, &slips);		/* s1 idle */
	kit_publish(h, "all", "m");			/* and woken */
	kit_drain(s[2], 4096, &got, &slips);		/* s2 read m, idle */

	hub_close_all(h, make_final, &fs);
	is_int(fs.n, 3, "close_all: one final per stream");
	is_int(c[2].resumes, 1, "close_all: idle stream woken once");
	is_int(c[0].resumes, 1, "close_all: a stream with a wake outstanding "
	    "is woken too (its writer may wait for room: it must know)");
	late = kit_stream(8, &cl);
	is_int(kit_add(h, late, "all", NULL), -1,
	    "after close_all no stream is added");
	stream_free(late);

	for (i = 0; i < 3; i++) {
		sbuf_reset(&got);
		rc = kit_drain(s[i], 4096, &got, &slips);
		is_int(rc, -1, "close_all: stream %d ends with -1", i);
		/* which final went to which stream is the hub's choice */
		for (j = 0; j < fs.n; j++)
			if (got.len >= fs.f[j]->len &&
			    memcmp(got.data + got.len - fs.f[j]->len,
			    fs.f[j]->data, fs.f[j]->len) == 0)
				break;
		ok(j < fs.n, "close_all: stream %d ends with a final", i);
	}
	for (i = 0; i < 3; i++) {
		hub_remove(h, s[i]);
		stream_free(s[i]);
	}
	for (i = 0; i < fs.n; i++) {
		is_int(refs(fs.f[i]), 1,
		    "final %d: only the test's ref left (hub dropped its own)",
		    i);
		frame_unref(fs.f[i]);
	}
	is_int(slips, 0, "close_all: stream_read protocol kept");
	hub_free(h);
	sbuf_free(&got);
}

/* Redis subscription: the first one and every one after an outage */
static void
test_subscribed(void)
{
	struct hub *h;
	struct stream *s, *r0, *r1, *r2, *r3;
	struct conn c, c0, c1, c2, c3;
	struct kit_event ev[8], early, first;
	int slips = 0;
	size_t n;

	memset(&stats, 0, sizeof(stats));
	h = kit_hub(100, 300, 64 << 20, NULL);
	s = kit_stream(8, &c);
	kit_add(h, s, "ch", NULL);
	/* before any subscription: an id of another run gets its reset */
	r0 = kit_stream(8, &c0);
	kit_add(h, r0, "ch", "deadbeef-5");
	n = kit_read_events(r0, ev, 8, &slips);
	ok(n == 1 && strcmp(ev[0].data, "{\"reason\":\"unknown-epoch\"}") == 0,
	    "before the first subscription: a foreign id, unknown-epoch");
	early = ev[0];

	hub_subscribed(h);
	n = kit_read_events(s, ev, 8, &slips);
	ok(n == 1 && strcmp(ev[0].event, "reset") == 0 &&
	    strcmp(ev[0].data, "{\"reason\":\"not-subscribed\"}") == 0,
	    "a stream opened before the first subscription: reset "
	    "not-subscribed (%s)", n ? ev[0].data : "nothing");
	is_int(kit_stat(&stats.resets[HUB_RESET_NOT_SUBSCRIBED]), 1,
	    "counted as not-subscribed");
	is_int(kit_stat(&stats.resets[HUB_RESET_REDIS_OUTAGE]), 0,
	    "not as an outage");
	first = ev[0];

	r1 = kit_stream(8, &c1);
	kit_add(h, r1, "ch", early.id);
	n = kit_read_events(r1, ev, 8, &slips);
	ok(n == 1 && strcmp(ev[0].data, "{\"reason\":\"not-subscribed\"}") == 0,
	    "a resume from an id given before the first subscription: "
	    "not-subscribed (%s)", n ? ev[0].data : "nothing");
	r2 = kit_stream(8, &c2);
	kit_add(h, r2, "ch", first.id);
	n = kit_read_events(r2, ev, 8, &slips);
	is_int(n, 0, "a resume from the subscription's reset: nothing missed");

	kit_publish(h, "ch", "m1");
	hub_subscribed(h);
	n = kit_read_events(s, ev, 8, &slips);
	ok(n == 2 && strcmp(ev[0].data, "m1") == 0 &&
	    strcmp(ev[1].data, "{\"reason\":\"redis-outage\"}") == 0,
	    "after a later subscription: the message, then reset redis-outage");
	is_int(kit_stat(&stats.resets[HUB_RESET_REDIS_OUTAGE]), 1,
	    "counted as an outage");
	r3 = kit_stream(8, &c3);
	kit_add(h, r3, "ch", first.id);
	n = kit_read_events(r3, ev, 8, &slips);
	ok(n == 1 && strcmp(ev[0].data, "{\"reason\":\"redis-outage\"}") == 0,
	    "a resume from before the outage: redis-outage (%s)",
	    n ? ev[0].data : "nothing");
	is_int(slips, 0, "stream_read protocol kept");
	hub_remove(h, s);
	hub_remove(h, r0);
	hub_remove(h, r1);
	hub_remove(h, r2);
	hub_remove(h, r3);
	stream_free(s);
	stream_free(r0);
	stream_free(r1);
	stream_free(r2);
	stream_free(r3);
	hub_free(h);
}

/* exact subscriptions: awaiting streams, per-channel resets */
static void
test_exact(void)
{
	struct hub_config hc;
	struct hub *h;
	struct stream *s, *t, *u;
	struct conn c, ct, cu;
	struct kit_event ev[8];
	struct hub_resume res;
	const char *ch[2] = { "c1", "c2" };
	size_t lens[2] = { 2, 2 }, n;
	int slips = 0;
	struct sbuf got;

	sbuf_init(&got);
	memset(&stats, 0, sizeof(stats));
	memset(&hc, 0, sizeof(hc));
	hc.history_size = 100;
	hc.history_ttl_s = 300;
	hc.history_bytes = 1 << 20;
	hc.format = FRAME_FORMAT_RAW;
	hc.exact = 1;
	hc.await_ms = 60000;	/* ticks below pass their own clock */
	h = hub_new(&hc);
	hub_redis_state(h, 1);

	s = kit_stream(8, &c);
	hub_add(h, s, ch, lens, 2, NULL, 0, &res);
	is_int(res.awaiting, 1, "channels not subscribed yet: the stream awaits them");
	ok(s->awaiting, "awaiting: its writer writes nothing, not even the head");
	kit_drain(s, 4096, &got, &slips);
	is_int(got.len, 0, "an awaiting stream gives nothing out");
	hub_tick(h, util_now_ms());
	kit_publish(h, "c1", "early");
	is_int(c.resumes, 0, "a message does not open an awaiting stream");
	hub_channels(h, HUB_CHANNEL_SUBSCRIBED, ch, lens, 1);
	is_int(c.resumes, 0, "one of two channels confirmed: still awaiting");
	hub_channels(h, HUB_CHANNEL_SUBSCRIBED, ch + 1, lens + 1, 1);
	is_int(c.resumes, 1, "both confirmed: woken once, to answer");
	ok(!s->awaiting, "and no longer awaiting");
	n = kit_read_events(s, ev, 8, &slips);
	ok(n == 1 && strcmp(ev[0].data, "early") == 0,
	    "what was queued while awaiting is delivered");

	/* the connection lost, then the channel subscribed again */
	hub_channels(h, HUB_CHANNEL_LOST, ch, lens, 2);
	kit_publish(h, "c1", "lost?");
	hub_channels(h, HUB_CHANNEL_SUBSCRIBED, ch, lens, 2);
	n = kit_read_events(s, ev, 8, &slips);
	ok(n == 2 && strcmp(ev[1].data, "{\"reason\":\"redis-outage\"}") == 0,
	    "after a loss: one reset, redis-outage, though two channels were "
	    "lost (%zu events)", n);

	/* opened while Redis is down: not awaiting, told once subscribed */
	hub_redis_state(h, 0);
	t = kit_stream(8, &ct);
	kit_add(h, t, "c3", NULL);
	ok(!t->awaiting, "Redis down: the stream opens at once");
	hub_redis_state(h, 1);
	{
		const char *c3 = "c3";
		size_t l3 = 2;

		hub_channels(h, HUB_CHANNEL_SUBSCRIBED, &c3, &l3, 1);
	}
	n = kit_read_events(t, ev, 8, &slips);
	ok(n == 1 && strcmp(ev[0].data, "{\"reason\":\"not-subscribed\"}") ==
	    0, "then gets a reset, not-subscribed, once subscribed");

	/* awaited too long: opens, and is told later */
	u = kit_stream(8, &cu);
	kit_add(h, u, "c4", NULL);
	ok(u->awaiting, "awaiting");
	kit_drain(u, 4096, &got, &slips);	/* its writer's first look */
	is_int(got.len, 0, "awaiting: nothing given out");
	hub_tick(h, util_now_ms() + 59000);
	is_int(cu.resumes, 0, "short of the longest await: still awaiting");
	hub_tick(h, util_now_ms() + 61000);
	is_int(cu.resumes, 1, "past the longest await: woken to open");
	is_int(slips, 0, "stream_read protocol kept");
	is_int(c.errors + ct.errors + cu.errors, 0, "no forbidden hook call");
	hub_remove(h, s);
	hub_remove(h, t);
	hub_remove(h, u);
	stream_free(s);
	stream_free(t);
	stream_free(u);
	hub_free(h);
	sbuf_free(&got);
}

/* ---- threads --------------------------------------------------------- */

#define NREADERS	4
#define NMSG		20000

struct reader {
	pthread_t	 thread;
	struct stream	*s;
	struct conn	 c;
	struct stream_out out;
	struct sbuf	 got;
	size_t		 max;
	int		 slips;
	ssize_t		 last;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	char buf[4096];
	ssize_t n;

	for (;;) {
		n = stream_read(r->s, &r->out, buf, r->max);
		if (n > 0) {
			if ((size_t)n > r->max)
				r->slips++;
			sbuf_add(&r->got, buf, (size_t)n);
		} else if (n == 0) {
			/* a writer looks again only after a wake */
			while (sem_wait(&r->c.sem) == -1 && errno == EINTR)
				;
		} else
			break;
	}
	r->last = n;
	return NULL;
}

static struct frame *
final_thread(void *arg)
{
	return mkframe("retry: 5000\n\n");
}

static void
test_threads(void)
{
	static struct kit_event ev[NMSG + 8];
	struct hub *h;
	struct reader r[NREADERS];
	struct hub_message m[5];
	char buf[5][32];
	int i, k, b, bad, errors = 0;
	size_t n;

	memset(&stats, 0, sizeof(stats));
	h = kit_hub(100, 300, 64 << 20, NULL);
	for (i = 0; i < NREADERS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].s = kit_stream(NMSG + 16, &r[i].c);
		r[i].c.use_sem = 1;
		sem_init(&r[i].c.sem, 0, 0);
		r[i].max = i == 0 ? 7 : i == 1 ? 64 : 4096;
		if (stream_out_init(&r[i].out) == -1)
			{ printf("Bail out! stream_out_init\n"); exit(1); }
		sbuf_init(&r[i].got);
		kit_add(h, r[i].s, "t", NULL);
		pthread_create(&r[i].thread, NULL, reader_main, &r[i]);
	}
	for (k = 0; k < NMSG;) {
		/* batches of 1 to 5, as the broker's reads come */
		for (b = 0; b < 1 + k % 5 && k < NMSG; b++, k++) {
			snprintf(buf[b], sizeof(buf[b]), "%d", k);
			m[b] = (struct hub_message){ L("t"), buf[b],
			    strlen(buf[b]) };
		}
		hub_publish(h, m, (size_t)b, 0);
	}
	hub_close_all(h, final_thread, NULL);

	for (i = 0; i < NREADERS; i++) {
		pthread_join(r[i].thread, NULL);
		is_int(r[i].last, -1, "thread reader %d: ended with -1", i);
		n = kit_events(&r[i].got, ev, NMSG + 8);
		for (k = 0, bad = 0; k < NMSG && (size_t)k < n; k++)
			bad += atoi(ev[k].data) != k;
		ok(n == NMSG && bad == 0, "thread reader %d (max %zu): all %d "
		    "events in order (got %zu, %d out of place)", i, r[i].max,
		    NMSG, n, bad);
		ok(r[i].got.len > 13 && memcmp(r[i].got.data + r[i].got.len -
		    13, "retry: 5000\n\n", 13) == 0,
		    "thread reader %d: the final last", i);
		is_int(r[i].slips, 0, "thread reader %d: never above max", i);
		errors += r[i].c.errors;
		diag("reader %d: %d idle, %d wakes", i,
		    r[i].c.suspends, r[i].c.resumes);
	}
	is_int(errors, 0, "threads: no wake of an awaiting or unattached stream");
	for (i = 0; i < NREADERS; i++) {
		hub_remove(h, r[i].s);
		stream_free(r[i].s);
		sem_destroy(&r[i].c.sem);
		stream_out_free(&r[i].out);
		sbuf_free(&r[i].got);
	}
	is_int(kit_stat(&stats.events_queued), (unsigned long)NMSG * NREADERS,
	    "threads: stats count every queued event");
	hub_free(h);
}

static void
names_free(char **names, size_t *lens, size_t n)
{
	while (n-- > 0)
		free(names[n]);
	free(names);
	free(lens);
}

/*
 * --presence-events (hub_presence.h): a stream is owed a snapshot from
 * the moment it joins; hub_presence_owed names the channels of those
 * owed one and marks them asked; hub_presence_give gives the frame to
 * the asked only, so that one joining after the ask waits for the next.
 */
static void
test_presence(void)
{
	struct hub_config hc;
	struct hub *h;
	struct stream *s1, *s2, *s3, *s4, *s5;
	struct conn c1, c2, c3, c4, c5;
	struct kit_event ev[8];
	struct frame *f;
	char **names;
	size_t *lens, n;
	int slips = 0;

	memset(&hc, 0, sizeof(hc));
	hc.format = FRAME_FORMAT_RAW;
	hc.presence = 1;
	h = hub_new(&hc);
	f = mkframe("event: presence\ndata: who\n\n");
	s1 = kit_stream(8, &c1);
	s2 = kit_stream(8, &c2);
	s3 = kit_stream(8, &c3);
	s4 = kit_stream(8, &c4);

	is_int(hub_presence_owed(h, &names, &lens, &n), 0, "nothing owed: 0");
	is_int(n, 0, "nothing owed: no channel");
	kit_add(h, s1, "upload:u7", NULL);
	hub_presence_owed(h, &names, &lens, &n);
	ok(n == 1 && lens[0] == 9 && strcmp(names[0], "upload:u7") == 0,
	    "a new stream: its channel is named");
	names_free(names, lens, n);
	kit_add(h, s2, "upload:u7", NULL);	/* after the ask */
	is_int(hub_presence_give(h, "upload:u7", 9, f), 1,
	    "given to the one stream asked for");
	is_int(kit_read_events(s1, ev, 8, &slips), 1, "s1: one event");
	is_str(ev[0].event, "presence", "s1: event: presence");
	is_int(kit_read_events(s2, ev, 8, &slips), 0,
	    "s2 joined after the ask: nothing yet");
	is_int(hub_presence_give(h, "upload:u7", 9, f), 0,
	    "given again before an ask: to nobody");
	hub_presence_owed(h, &names, &lens, &n);
	is_int(n, 1, "s2 is still owed one: its channel named again");
	names_free(names, lens, n);
	is_int(hub_presence_give(h, "upload:u7", 9, f), 1, "s2 gets it");
	is_int(kit_read_events(s2, ev, 8, &slips), 1, "s2: one event");
	is_int(kit_read_events(s1, ev, 8, &slips), 0, "s1: not a second");
	hub_presence_owed(h, &names, &lens, &n);
	is_int(n, 0, "everyone has had one: nothing owed");

	/* a stream that leaves owes nothing: before the ask, or after */
	kit_add(h, s3, "room:r", NULL);
	hub_remove(h, s3);
	hub_presence_owed(h, &names, &lens, &n);
	is_int(n, 0, "left before the ask: its channel is not named");
	kit_add(h, s4, "room:r", NULL);
	hub_presence_owed(h, &names, &lens, &n);
	is_int(n, 1, "a new stream on room:r: named");
	names_free(names, lens, n);
	hub_remove(h, s4);
	is_int(hub_presence_give(h, "room:r", 6, f), 0,
	    "left after the ask: given to nobody");
	hub_presence_owed(h, &names, &lens, &n);
	is_int(n, 0, "and nothing owed");

	hub_remove(h, s1);
	hub_remove(h, s2);
	hub_free(h);

	/* without --presence-events nothing is ever owed */
	hc.presence = 0;
	h = hub_new(&hc);
	s5 = kit_stream(8, &c5);
	kit_add(h, s5, "upload:u7", NULL);
	hub_presence_owed(h, &names, &lens, &n);
	is_int(n, 0, "without --presence-events: nothing owed");
	hub_remove(h, s5);
	hub_free(h);
	stream_free(s5);
	is_int(c1.errors + c2.errors + c3.errors + c4.errors + c5.errors, 0,
	    "no wake of an unattached stream");
	frame_unref(f);
	stream_free(s1);
	stream_free(s2);
	stream_free(s3);
	stream_free(s4);
}

int
main(void)
{
	test_fanout();
	test_stream();
	test_recovered();
	test_replay_room();
	test_overflow_hub();
	test_close_all();
	test_subscribed();
	test_exact();
	test_presence();
	test_threads();
	return done_testing();
}
