/*
 * test_hub.c - fan-out, wakes, heartbeats (hub.h) and the stream state
 * machine they drive (stream.h), without MHD.
 *
 * The suspend/resume hooks are replaced by a simulated MHD connection
 * (struct conn, reached through s->conn) that records every call and
 * flags the calls MHD forbids: a resume of a connection that is not
 * suspended (undefined behaviour in MHD), a second suspend, and any hook
 * call made without s->lock held.
 *
 * The last test runs the broker and four readers on real threads, with
 * the readers blocked while "suspended" until the resume hook posts them,
 * so a lost wake-up hangs (the harness times out) and a data race or a
 * refcount slip shows in the sanitizer build.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "hub.h"
#include "ring.h"
#include "sse.h"
#include "stream.h"
#include "tap.h"

#define L(s)	(s), (sizeof(s) - 1)

struct conn {
	int	 suspended;	/* as MHD sees it */
	int	 suspends;
	int	 resumes;
	int	 errors;	/* forbidden calls */
	int	 unlocked;	/* hook called without s->lock */
	int	 use_sem;
	sem_t	 sem;		/* posted by resume */
};

static unsigned
refs(struct frame *f)
{
	return atomic_load(&f->refs);
}

static void
hook_check_lock(struct stream *s, struct conn *c)
{
	/* the hooks run with s->lock held: trylock must fail */
	if (pthread_mutex_trylock(&s->lock) == 0) {
		c->unlocked++;
		pthread_mutex_unlock(&s->lock);
	}
}

static void
hook_suspend(struct stream *s)
{
	struct conn *c = s->conn;

	hook_check_lock(s, c);
	if (c->suspended)
		c->errors++;
	c->suspended = 1;
	c->suspends++;
}

static void
hook_resume(struct stream *s)
{
	struct conn *c = s->conn;

	hook_check_lock(s, c);
	if (!c->suspended)
		c->errors++;
	c->suspended = 0;
	c->resumes++;
	if (c->use_sem)
		sem_post(&c->sem);
}

static struct stream *
mkstream(size_t cap, struct conn *c)
{
	struct stream *s;

	memset(c, 0, sizeof(*c));
	s = stream_new(cap, 17);
	if (s == NULL) {
		printf("Bail out! stream_new failed\n");
		exit(1);
	}
	s->conn = c;
	s->suspend = hook_suspend;
	s->resume = hook_resume;
	return s;
}

static struct frame *
mkframe(const char *text)
{
	return frame_new(text, strlen(text));
}

static int
add1(struct hub *h, struct stream *s, const char *ch)
{
	const char *chs[1] = { ch };
	size_t lens[1] = { strlen(ch) };

	return hub_add(h, s, chs, lens, 1, NULL, NULL);
}

static size_t
fanout(struct hub *h, const char *ch, struct frame *f)
{
	return hub_fanout_locked(h, ch, strlen(ch), f);
}

static size_t
count(struct stream *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = ring_count(&s->ring);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/*
 * Call stream_read (max bytes at a time) until it returns 0 or -1 or
 * limit calls; append the bytes to out.  Counts protocol slips in *slips:
 * a 0 without a suspend in that same call, a suspend with a non-zero
 * return, a return above max.
 */
static ssize_t
drain(struct stream *s, size_t max, struct sbuf *out, int *slips)
{
	char buf[65536];
	struct conn *c = s->conn;
	ssize_t n = 0;
	int before, calls;

	for (calls = 0; calls < 100000; calls++) {
		before = c->suspends;
		n = stream_read(s, buf, max);
		if (n > 0) {
			if ((size_t)n > max)
				(*slips)++;
			if (c->suspends != before)
				(*slips)++;
			sbuf_add(out, buf, (size_t)n);
			continue;
		}
		if (n == 0 && c->suspends != before + 1)
			(*slips)++;
		if (n < 0 && c->suspends != before)
			(*slips)++;
		break;
	}
	return n;
}

static void
cat(struct sbuf *b, struct frame *f)
{
	sbuf_add(b, f->data, f->len);
}

static void
test_fanout(void)
{
	struct hub *h;
	struct hub_stats *st;
	struct stream *s1, *s2, *s3, *s4;
	struct conn c1, c2, c3, c4;
	struct frame *f1, *f2, *f3, *f4, *f5;
	struct sbuf got, exp;
	const char *ch1[2] = { "user:a", "upload:u1" };
	size_t len1[2] = { 6, 9 };
	const char *ch2[2] = { "A", "B" };
	size_t len2[2] = { 1, 1 };
	const char *ch4[1] = { "bin\0x" };
	size_t len4[1] = { 5 };
	int slips = 0;
	ssize_t rc;

	h = hub_new(100, 300, 64 << 20);
	ok(h != NULL, "hub_new");
	st = hub_stats(h);
	is_int(atomic_load(&st->streams_open), 0, "stats: no stream open");

	s1 = mkstream(8, &c1);
	s2 = mkstream(8, &c2);
	s3 = mkstream(8, &c3);
	s4 = mkstream(8, &c4);
	f1 = mkframe("id: x-1\ndata: one\n\n");
	f2 = mkframe("id: x-2\ndata: two\n\n");
	f3 = mkframe("id: x-3\ndata: three\n\n");
	f4 = mkframe("id: x-4\ndata: four\n\n");
	f5 = mkframe("id: x-5\ndata: five\n\n");

	is_int(hub_add(h, s1, ch1, len1, 2, NULL, NULL), 0, "hub_add two channels: 0");
	is_int(atomic_load(&st->streams_open), 1, "stats: one stream open");
	is_int(atomic_load(&st->streams_total), 1, "stats: one in total");
	is_int(hub_add(h, s2, ch2, len2, 2, NULL, NULL), 0, "hub_add A and B: 0");
	is_int(add1(h, s3, "user:a"), 0, "hub_add a second user:a stream");
	is_int(hub_add(h, s4, ch4, len4, 1, NULL, NULL), 0, "hub_add a channel with NUL");
	is_int(atomic_load(&st->streams_open), 4, "stats: four open");

	hub_lock(h);
	ok(hub_has_locked(h, L("user:a")), "has user:a");
	ok(hub_has_locked(h, L("upload:u1")), "has upload:u1");
	ok(!hub_has_locked(h, L("upload:u2")), "has not upload:u2");
	ok(!hub_has_locked(h, L("user:a\0")), "has not \"user:a\\0\"");
	ok(!hub_has_locked(h, L("user:")), "has not a prefix");

	is_int(fanout(h, "upload:u1", f1), 1, "fanout upload:u1: one stream");
	is_int(count(s1), 1, "s1 ring: one frame");
	is_int(refs(f1), 2, "f1: creator + one ring slot");
	is_int(fanout(h, "nobody", f2), 0, "fanout unknown channel: 0");
	is_int(refs(f2), 1, "unknown channel: no reference taken");
	is_int(fanout(h, "user:a", f2), 2, "fanout user:a: s1 and s3");
	is_int(refs(f2), 3, "f2: creator + two ring slots");
	is_int(count(s1), 2, "s1 ring: two frames");
	is_int(count(s3), 1, "s3 ring: one frame");

	is_int(fanout(h, "A", f3), 1, "fanout A: one stream");
	is_int(count(s2), 1, "stream on A and B gets a message on A once");
	is_int(fanout(h, "B", f4), 1, "fanout B: one stream");
	is_int(count(s2), 2, "then once more for B");

	is_int(hub_fanout_locked(h, L("bin"), f5), 0,
	    "\"bin\" does not match \"bin\\0x\"");
	is_int(hub_fanout_locked(h, L("bin\0y"), f5), 0,
	    "\"bin\\0y\" does not match \"bin\\0x\"");
	is_int(hub_fanout_locked(h, L("bin\0x"), f5), 1,
	    "binary channel name matches by length");
	hub_wake_locked(h);
	hub_unlock(h);
	is_int(atomic_load(&st->events), 6, "stats: six frames queued");
	is_int(c1.resumes + c2.resumes + c3.resumes + c4.resumes, 0,
	    "no stream was suspended: no resume");

	/* reading: bytes in order, then 0 with a suspend in that call */
	sbuf_init(&got);
	sbuf_init(&exp);
	cat(&exp, f1);
	cat(&exp, f2);
	rc = drain(s1, 4096, &got, &slips);
	is_int(rc, 0, "s1 drained: stream_read returns 0");
	is_mem(got.data, got.len, exp.data, exp.len,
	    "s1: the queued frames' bytes, in order");
	is_int(slips, 0, "s1: 0 only in the call that suspended");
	is_int(c1.suspends, 1, "s1: suspend hook called once");
	is_int(s1->suspended, 1, "s1: suspended == 1");
	is_int(refs(f1), 1, "f1 fully written: the stream let it go");
	is_int(refs(f2), 2, "f2: only s3's slot left");

	/* a batch of several messages wakes a suspended stream once */
	hub_lock(h);
	is_int(fanout(h, "user:a", f5), 2, "batch: 1st fanout");
	is_int(fanout(h, "user:a", f5), 2, "batch: 2nd fanout");
	is_int(fanout(h, "upload:u1", f5), 1, "batch: 3rd fanout");
	is_int(c1.resumes, 0, "wakes wait for the end of the batch");
	hub_wake_locked(h);
	is_int(c1.resumes, 1, "hub_wake_locked: s1 resumed exactly once");
	is_int(s1->suspended, 0, "s1: suspended == 0 after the wake");
	is_int(c3.resumes, 0, "s3 (never suspended) not resumed");
	hub_wake_locked(h);
	is_int(c1.resumes, 1, "a second hub_wake_locked: no more resumes");
	hub_unlock(h);

	/* awake with frames queued: a new batch must not resume again */
	hub_lock(h);
	fanout(h, "user:a", f5);
	hub_wake_locked(h);
	hub_unlock(h);
	is_int(c1.resumes, 1, "not suspended: never resumed");

	sbuf_reset(&got);
	rc = drain(s1, 4096, &got, &slips);
	is_int(rc, 0, "s1 drained again");
	is_int(got.len, 4 * f5->len, "s1: four copies of f5");
	is_int(c1.suspends, 2, "s1: suspended a second time");
	hub_lock(h);
	fanout(h, "upload:u1", f5);
	hub_wake_locked(h);
	hub_unlock(h);
	is_int(c1.resumes, 2, "the next batch wakes it again");

	/* hub_remove: nothing more is queued */
	hub_remove(h, s3);
	is_int(atomic_load(&st->streams_open), 3, "stats: hub_remove closes");
	is_int(atomic_load(&st->streams_total), 4, "stats: total unchanged");
	hub_lock(h);
	is_int(fanout(h, "user:a", f1), 1, "after removing s3: only s1");
	hub_unlock(h);
	hub_remove(h, s1);
	hub_lock(h);
	ok(!hub_has_locked(h, L("user:a")),
	    "no subscriber left: channel gone");
	is_int(fanout(h, "user:a", f1), 0, "removed: fanout queues nothing");
	is_int(fanout(h, "upload:u1", f1), 0, "removed: other channel too");
	hub_unlock(h);
	hub_remove(h, s1);
	ok(1, "hub_remove twice is harmless");

	hub_remove(h, s2);
	hub_remove(h, s4);
	is_int(atomic_load(&st->streams_open), 0, "stats: all closed");
	is_int(c1.errors + c2.errors + c3.errors + c4.errors, 0,
	    "no resume of a non-suspended connection, no double suspend");
	is_int(c1.unlocked + c2.unlocked + c3.unlocked + c4.unlocked, 0,
	    "hooks always called with s->lock held");
	stream_free(s1);
	stream_free(s2);
	stream_free(s3);
	stream_free(s4);
	is_int(refs(f1), 1, "after stream_free: f1 back to 1");
	is_int(refs(f2), 1, "after stream_free: f2 back to 1");
	is_int(refs(f3), 1, "after stream_free: f3 back to 1");
	is_int(refs(f4), 1, "after stream_free: f4 back to 1");
	is_int(refs(f5), 1, "after stream_free: f5 back to 1");
	hub_free(h);
	frame_unref(f1);
	frame_unref(f2);
	frame_unref(f3);
	frame_unref(f4);
	frame_unref(f5);
	sbuf_free(&got);
	sbuf_free(&exp);

	/* a stream that was never added */
	h = hub_new(100, 300, 64 << 20);
	s1 = mkstream(2, &c1);
	hub_remove(h, s1);
	ok(1, "hub_remove of a stream never added is harmless");
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

	s = mkstream(4, &c);
	is_int(stream_push(s, a), STREAM_PUSH_QUEUED,
	    "push on an awake stream: QUEUED");
	is_int(refs(a), 2, "push takes a reference");
	rc = drain(s, 4096, &got, &slips);
	is_int(rc, 0, "drained: 0");
	is_mem(got.data, got.len, a->data, a->len, "drained: a's bytes");
	is_int(s->suspended, 1, "drained: suspended");
	is_int(stream_push(s, b), STREAM_PUSH_WAKE,
	    "push on a suspended stream: WAKE");
	is_int(c.resumes, 0, "stream_push does not resume by itself");
	stream_wake(s);
	is_int(c.resumes, 1, "stream_wake: resumed once");
	is_int(s->suspended, 0, "stream_wake: suspended == 0");
	stream_wake(s);
	is_int(c.resumes, 1, "stream_wake of an awake stream: nothing");
	sbuf_reset(&got);
	drain(s, 4096, &got, &slips);
	is_mem(got.data, got.len, L("B"), "after the wake: b's bytes");
	stream_free(s);

	/* partial reads resume at the right offset, for several sizes */
	for (max = 1; max <= 41; max += 4) {
		s = mkstream(8, &c);
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
		rc = drain(s, max, &got, &slips);
		is_int(rc, 0, "max %zu: drained to 0", max);
		is_mem(got.data, got.len, exp.data, exp.len,
		    "max %zu: partial reads concatenate to the frames", max);
		stream_free(s);
	}
	is_int(slips, 0, "partial reads: never above max, 0 only on suspend");

	/* a half-written frame stays pinned */
	s = mkstream(8, &c);
	stream_push(s, a);
	frame_ref(a);			/* hold it twice: see the stream's ref */
	{
		char buf[7];

		rc = stream_read(s, buf, sizeof(buf));
		is_int(rc, 7, "7 of 100 bytes read");
		is_int(refs(a), 3, "half-written frame still referenced");
		is_int(count(s), 0, "and out of the ring");
	}
	sbuf_reset(&got);
	drain(s, 4096, &got, &slips);
	is_mem(got.data, got.len, big + 7, sizeof(big) - 7,
	    "the rest of the frame from byte 7");
	frame_unref(a);
	stream_free(s);
	is_int(refs(a), 1, "pinned frame released");

	/* overflow: closing, then -1 without ever suspending */
	s = mkstream(2, &c);
	is_int(stream_push(s, a), STREAM_PUSH_QUEUED, "cap 2: 1st queued");
	is_int(stream_push(s, b), STREAM_PUSH_QUEUED, "cap 2: 2nd queued");
	is_int(stream_push(s, d), STREAM_PUSH_OVERFLOW, "cap 2: 3rd OVERFLOW");
	is_int(refs(d), 1, "overflowing frame: no reference kept");
	ok(s->closing && s->overflowed, "overflow: closing and overflowed");
	is_int(stream_push(s, d), STREAM_PUSH_CLOSED, "then CLOSED");
	is_int(refs(d), 1, "CLOSED: no reference kept");
	sbuf_reset(&got);
	rc = drain(s, 4096, &got, &slips);
	is_int(rc, -1, "overflowed stream: stream_read ends with -1");
	is_int(c.suspends, 0, "overflowed stream: never suspends");
	stream_free(s);

	/* close with a final frame: queued data, final, -1 */
	s = mkstream(8, &c);
	stream_push(s, a);
	stream_push(s, b);
	is_int(stream_close(s, fin), 0, "stream_close of an awake stream: 0");
	is_int(refs(fin), 2, "stream_close takes a reference on final");
	is_int(stream_push(s, d), STREAM_PUSH_CLOSED, "push after close");
	is_int(refs(d), 1, "push after close: no reference");
	sbuf_reset(&got);
	sbuf_reset(&exp);
	cat(&exp, a);
	cat(&exp, b);
	cat(&exp, fin);
	rc = drain(s, 5, &got, &slips);
	is_int(rc, -1, "closed: ends with -1");
	is_mem(got.data, got.len, exp.data, exp.len,
	    "closed: queued frames, then final, in 5-byte reads");
	stream_free(s);
	is_int(refs(fin), 1, "final released by stream_free");

	/* close a suspended stream: needs a wake */
	s = mkstream(8, &c);
	sbuf_reset(&got);
	drain(s, 4096, &got, &slips);
	is_int(s->suspended, 1, "empty stream suspends");
	is_int(stream_close(s, fin), 1, "stream_close of a suspended one: 1");
	stream_wake(s);
	is_int(c.resumes, 1, "woken once");
	sbuf_reset(&got);
	rc = drain(s, 4096, &got, &slips);
	is_int(rc, -1, "then -1");
	is_mem(got.data, got.len, fin->data, fin->len, "after the final");
	stream_free(s);

	/* close without a final frame */
	s = mkstream(8, &c);
	stream_push(s, b);
	stream_close(s, NULL);
	sbuf_reset(&got);
	rc = drain(s, 4096, &got, &slips);
	is_int(rc, -1, "close(NULL): -1 after the queue");
	is_mem(got.data, got.len, L("B"), "close(NULL): the queued bytes");
	is_int(c.suspends, 0, "close(NULL): never suspends");
	stream_free(s);

	/* freeing with frames still queued drops their refs */
	s = mkstream(8, &c);
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

static void
test_overflow_hub(void)
{
	struct hub *h;
	struct stream *s, *t;
	struct conn c, ct;
	struct frame *f;
	struct sbuf got;
	int slips = 0;
	ssize_t rc;

	h = hub_new(100, 300, 64 << 20);
	s = mkstream(2, &c);
	t = mkstream(2, &ct);
	add1(h, s, "slow");
	add1(h, t, "slow2");
	f = mkframe("id: s-1\ndata: x\n\n");
	sbuf_init(&got);

	hub_lock(h);
	is_int(fanout(h, "slow", f), 1, "slow: 1st queued");
	is_int(fanout(h, "slow", f), 1, "slow: 2nd queued");
	fanout(h, "slow", f);
	ok(s->closing && s->overflowed, "3rd frame on a 2-slot ring: closing");
	is_int(atomic_load(&hub_stats(h)->slow_closes), 1,
	    "stats: one slow close");
	is_int(fanout(h, "slow", f), 0, "closing stream: nothing queued");
	hub_wake_locked(h);
	hub_unlock(h);
	rc = drain(s, 4096, &got, &slips);
	is_int(rc, -1, "slow stream: stream_read eventually -1");
	is_int(c.suspends, 0, "slow stream: never suspended");

	/* suspended, then overflowed within one batch: one wake */
	drain(t, 4096, &got, &slips);
	is_int(t->suspended, 1, "t suspended");
	hub_lock(h);
	fanout(h, "slow2", f);
	fanout(h, "slow2", f);
	fanout(h, "slow2", f);
	ok(t->closing, "t overflowed while suspended: closing");
	hub_wake_locked(h);
	hub_unlock(h);
	is_int(ct.resumes, 1, "overflowed suspended stream: resumed once");
	rc = drain(t, 4096, &got, &slips);
	is_int(rc, -1, "then it ends with -1");
	is_int(slips, 0, "overflow: stream_read protocol kept");
	is_int(c.errors + ct.errors, 0, "overflow: no forbidden hook call");

	hub_remove(h, s);
	hub_remove(h, t);
	stream_free(s);
	stream_free(t);
	is_int(refs(f), 1, "overflow: refs back to 1");
	hub_free(h);
	frame_unref(f);
	sbuf_free(&got);
}

#define NHB	100

static void
test_heartbeat(void)
{
	struct hub *h;
	struct stream *s[NHB];
	struct conn c[NHB];
	struct frame *ping;
	char ch[32];
	size_t n, total, lo = (size_t)-1, hi = 0;
	int i, wrong, k;

	h = hub_new(100, 300, 64 << 20);
	ping = mkframe(": ping\n");
	for (i = 0; i < NHB; i++) {
		s[i] = mkstream(64, &c[i]);
		snprintf(ch, sizeof(ch), "hb:%d", i);
		add1(h, s[i], ch);
	}

	hub_lock(h);
	for (k = 0, total = 0; k < 10; k++) {
		n = hub_heartbeat_locked(h, 100, 1000, ping);
		total += n;
		if (n < lo)
			lo = n;
		if (n > hi)
			hi = n;
	}
	hub_unlock(h);
	is_int(total, NHB, "10 x 100 ms of a 1000 ms interval: 100 pings");
	ok(lo >= 5 && hi <= 15,
	    "staggered: every call pings ~10 streams (min %zu, max %zu)",
	    lo, hi);
	for (i = 0, wrong = 0; i < NHB; i++)
		wrong += count(s[i]) != 1;
	is_int(wrong, 0, "each stream got exactly one ping");
	is_int(refs(ping), 1 + NHB, "ping: one reference per stream");
	is_int(atomic_load(&hub_stats(h)->heartbeats), NHB,
	    "stats: 100 heartbeats");

	hub_lock(h);
	for (k = 0, total = 0; k < 10; k++)
		total += hub_heartbeat_locked(h, 100, 1000, ping);
	hub_unlock(h);
	is_int(total, NHB, "the next interval: 100 more");
	for (i = 0, wrong = 0; i < NHB; i++)
		wrong += count(s[i]) != 2;
	is_int(wrong, 0, "each stream has two pings");

	/* a whole interval at once: everybody once */
	hub_lock(h);
	total = hub_heartbeat_locked(h, 1000, 1000, ping);
	hub_unlock(h);
	is_int(total, NHB, "elapsed == interval: every stream in one call");
	for (i = 0, wrong = 0; i < NHB; i++)
		wrong += count(s[i]) != 3;
	is_int(wrong, 0, "each stream has three pings");

	/* a busy broker calls often: 1 ms steps must still add up */
	hub_lock(h);
	for (k = 0, total = 0; k < 1000; k++)
		total += hub_heartbeat_locked(h, 1, 1000, ping);
	hub_unlock(h);
	is_int(total, NHB, "1000 calls of 1 ms: 100 pings, no rounding loss");
	for (i = 0, wrong = 0; i < NHB; i++)
		wrong += count(s[i]) != 4;
	is_int(wrong, 0, "each stream has four pings");

	/* a ping on a suspended stream wakes it, at the end of the batch */
	{
		struct sbuf got;
		int slips = 0;

		sbuf_init(&got);
		drain(s[0], 4096, &got, &slips);
		is_int(got.len, 4 * ping->len, "s0 drained: four pings");
		is_int(s[0]->suspended, 1, "s0 suspended");
		hub_lock(h);
		total = hub_heartbeat_locked(h, 1000, 1000, ping);
		is_int(c[0].resumes, 0, "no resume inside the batch");
		hub_wake_locked(h);
		hub_unlock(h);
		is_int(c[0].resumes, 1, "ping woke the suspended stream once");
		for (i = 1, wrong = 0; i < NHB; i++)
			wrong += c[i].resumes != 0;
		is_int(wrong, 0, "awake streams were not resumed");
		is_int(slips, 0, "heartbeat: stream_read protocol kept");
		sbuf_free(&got);
	}

	/* removed streams get no more pings */
	for (i = 0; i < NHB / 2; i++)
		hub_remove(h, s[i]);
	hub_lock(h);
	total = hub_heartbeat_locked(h, 1000, 1000, ping);
	hub_unlock(h);
	is_int(total, NHB / 2, "after removing half: 50 pings");

	for (i = 0, wrong = 0; i < NHB; i++) {
		wrong += c[i].errors + c[i].unlocked;
		hub_remove(h, s[i]);
		stream_free(s[i]);
	}
	is_int(wrong, 0, "heartbeat: no forbidden hook call");
	is_int(refs(ping), 1, "after stream_free: ping back to 1 ref");
	is_int(atomic_load(&hub_stats(h)->streams_open), 0,
	    "stats: all closed");
	hub_free(h);
	frame_unref(ping);
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
	struct stream *s[3];
	struct conn c[3];
	struct finals fs;
	struct frame *m;
	struct sbuf got;
	int i, j, slips = 0;
	ssize_t rc;

	memset(&fs, 0, sizeof(fs));
	h = hub_new(100, 300, 64 << 20);
	m = mkframe("id: c-1\ndata: m\n\n");
	sbuf_init(&got);
	for (i = 0; i < 3; i++) {
		s[i] = mkstream(8, &c[i]);
		add1(h, s[i], "all");
	}
	drain(s[1], 4096, &got, &slips);		/* s1 suspended */
	hub_lock(h);
	fanout(h, "all", m);
	hub_wake_locked(h);
	hub_unlock(h);
	drain(s[2], 4096, &got, &slips);		/* s2 read m, suspended */

	hub_lock(h);
	hub_close_all_locked(h, make_final, &fs);
	is_int(fs.n, 3, "close_all: one final per stream");
	hub_wake_locked(h);
	hub_unlock(h);
	is_int(c[2].resumes, 1, "close_all: suspended stream woken once");
	is_int(c[0].resumes, 0, "close_all: awake stream not resumed");

	for (i = 0; i < 3; i++) {
		sbuf_reset(&got);
		rc = drain(s[i], 4096, &got, &slips);
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
	is_int(refs(m), 1, "close_all: message refs back to 1");
	is_int(slips, 0, "close_all: stream_read protocol kept");
	hub_free(h);
	frame_unref(m);
	sbuf_free(&got);
}

/* ---- threads --------------------------------------------------------- */

#define NREADERS	4
#define NMSG		20000

struct reader {
	pthread_t	 thread;
	struct stream	*s;
	struct conn	 c;
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
		n = stream_read(r->s, buf, r->max);
		if (n > 0) {
			if ((size_t)n > r->max)
				r->slips++;
			sbuf_add(&r->got, buf, (size_t)n);
		} else if (n == 0) {
			/* MHD calls the reader again only after a resume */
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
	struct hub *h;
	struct reader r[NREADERS];
	struct sbuf exp;
	struct frame *f;
	char buf[64];
	int i, k, len, bad = 0, errors = 0;

	h = hub_new(100, 300, 64 << 20);
	sbuf_init(&exp);
	for (i = 0; i < NREADERS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].s = mkstream(NMSG + 16, &r[i].c);
		r[i].c.use_sem = 1;
		sem_init(&r[i].c.sem, 0, 0);
		r[i].max = i == 0 ? 7 : i == 1 ? 64 : 4096;
		sbuf_init(&r[i].got);
		add1(h, r[i].s, "t");
		pthread_create(&r[i].thread, NULL, reader_main, &r[i]);
	}
	for (k = 0; k < NMSG;) {
		int batch = 1 + k % 5;

		hub_lock(h);
		for (; batch > 0 && k < NMSG; batch--, k++) {
			len = snprintf(buf, sizeof(buf),
			    "id: t-%d\ndata: {\"n\":%d}\n\n", k, k);
			f = frame_new(buf, (size_t)len);
			sbuf_add(&exp, buf, (size_t)len);
			if (hub_fanout_locked(h, L("t"), f) != NREADERS)
				bad++;
			frame_unref(f);
		}
		hub_wake_locked(h);
		hub_unlock(h);
	}
	hub_lock(h);
	hub_close_all_locked(h, final_thread, NULL);
	hub_wake_locked(h);
	hub_unlock(h);
	sbuf_addstr(&exp, "retry: 5000\n\n");

	for (i = 0; i < NREADERS; i++) {
		pthread_join(r[i].thread, NULL);
		is_int(r[i].last, -1, "thread reader %d: ended with -1", i);
		is_mem(r[i].got.data, r[i].got.len, exp.data, exp.len,
		    "thread reader %d (max %zu): every frame in order, final last",
		    i, r[i].max);
		is_int(r[i].slips, 0, "thread reader %d: never above max", i);
		errors += r[i].c.errors + r[i].c.unlocked;
		diag("reader %d: %d suspends, %d resumes", i,
		    r[i].c.suspends, r[i].c.resumes);
	}
	is_int(bad, 0, "threads: every fanout reached every reader");
	is_int(errors, 0,
	    "threads: no resume of a running reader, hooks under s->lock");
	for (i = 0; i < NREADERS; i++) {
		hub_remove(h, r[i].s);
		stream_free(r[i].s);
		sem_destroy(&r[i].c.sem);
		sbuf_free(&r[i].got);
	}
	is_int(atomic_load(&hub_stats(h)->events), (unsigned long)NMSG * NREADERS,
	    "threads: stats count every queued frame");
	hub_free(h);
	sbuf_free(&exp);
}

int
main(void)
{
	test_fanout();
	test_stream();
	test_overflow_hub();
	test_heartbeat();
	test_close_all();
	test_threads();
	return done_testing();
}
