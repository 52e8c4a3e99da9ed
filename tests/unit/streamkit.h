/*
 * streamkit.h - streams without MHD or writer threads, for the unit tests
 * of the hub and the history (test_hub.c, test_history.c).  Header only.
 *
 * A simulated writer (struct conn, reached through s->conn) stands in
 * for writer.c: the stream is attached to it, its wake hook records every
 * wake and flags a wake of a stream that is not attached or is awaiting (the
 * hub must never ask for one), and kit_drain() takes frames out the way a
 * writer does (stream_read: stream_out then stream_sent) until there is
 * nothing more (the writer then goes idle: "suspended" here, and only a
 * wake makes it look again) or the body ends.  kit_events() splits what
 * it read into events the way a browser does (enough of it for our
 * frames).  The streams are not chunked and have no head: what is read
 * is the frames' own bytes.
 */
#ifndef SSERELAY_STREAMKIT_H
#define SSERELAY_STREAMKIT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "hub.h"
#include "sse.h"
#include "stats.h"
#include "stream.h"
#include "tap.h"

#define L(s)	(s), (sizeof(s) - 1)

struct conn {
	int	 suspended;	/* the writer is idle: it waits for a wake */
	int	 suspends;	/* drains that found nothing more */
	int	 resumes;	/* wakes */
	int	 errors;	/* wakes the hub must not ask for */
	int	 unlocked;	/* (kept for the tests' sums: always 0) */
	int	 use_sem;
	sem_t	 sem;		/* posted by a wake */
};

static TAP_UNUSED void
kit_wakeup(struct stream *s)
{
	struct conn *c = s->conn;

	pthread_mutex_lock(&s->lock);
	if (!s->attached || s->awaiting)
		c->errors++;
	pthread_mutex_unlock(&s->lock);
	c->suspended = 0;
	c->resumes++;
	if (c->use_sem)
		sem_post(&c->sem);
}

static struct stream_out kit_out;

static TAP_UNUSED struct stream_out *
kit_stream_out(void)
{
	if (kit_out.scratch == NULL && stream_out_init(&kit_out) == -1) {
		printf("Bail out! stream_out_init failed\n");
		exit(1);
	}
	return &kit_out;
}

static TAP_UNUSED struct stream *
kit_stream(size_t cap, struct conn *c)
{
	struct stream *s;

	memset(c, 0, sizeof(*c));
	if ((s = stream_new(cap, 17, 0)) == NULL) {
		printf("Bail out! stream_new failed\n");
		exit(1);
	}
	s->conn = c;
	s->wakeup = kit_wakeup;
	stream_attach(s, 1);	/* as its writer takes it */
	return s;
}

/* a hub with the given history, raw format (data: is the payload) */
static TAP_UNUSED struct hub *
kit_hub(size_t size, unsigned ttl_s, size_t bytes, struct mailbox *mb)
{
	struct hub_config hc;
	struct hub *h;

	memset(&hc, 0, sizeof(hc));
	hc.history_size = size;
	hc.history_ttl_s = ttl_s;
	hc.history_bytes = bytes;
	hc.format = FRAME_FORMAT_RAW;
	hc.mailbox = mb;
	hc.exact = mb != NULL;	/* the broker hears of channels then */
	if ((h = hub_new(&hc)) == NULL) {
		printf("Bail out! hub_new failed\n");
		exit(1);
	}
	return h;
}

static TAP_UNUSED int
kit_add(struct hub *h, struct stream *s, const char *ch, const char *last)
{
	const char *chs[1] = { ch };
	size_t lens[1] = { strlen(ch) };

	return hub_add(h, s, chs, lens, 1, last, 0, NULL);
}

/* one message, as the broker hands it over */
static TAP_UNUSED void
kit_publish(struct hub *h, const char *ch, const char *payload)
{
	struct hub_message m;

	m.channel = ch;
	m.channel_len = strlen(ch);
	m.payload = payload;
	m.payload_len = strlen(payload);
	hub_publish(h, &m, 1, 0);
}

static TAP_UNUSED size_t
kit_count(struct stream *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = ring_count(&s->ring);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/*
 * Take what s has out, max bytes at a time, as a writer does, until
 * there is nothing more (0: the writer goes idle) or the body ends (-1);
 * append the bytes to out.  Counts protocol slips in *slips: a read above
 * max, a 0 that left a wake outstanding (the next push would not wake
 * the writer), a 0 or -1 that is not the last call.
 */
static TAP_UNUSED ssize_t
kit_drain_with(struct stream *s, struct stream_out *o, size_t max,
    struct sbuf *out, int *slips)
{
	char buf[65536];
	struct conn *c = s->conn;
	ssize_t n = 0;
	int calls;

	for (calls = 0; calls < 100000; calls++) {
		n = stream_read(s, o, buf, max);
		if (n > 0) {
			if ((size_t)n > max)
				(*slips)++;
			sbuf_add(out, buf, (size_t)n);
			continue;
		}
		if (n == 0) {
			pthread_mutex_lock(&s->lock);
			if (s->woken && !s->awaiting)
				(*slips)++;
			pthread_mutex_unlock(&s->lock);
			c->suspended = 1;
			c->suspends++;
		}
		break;
	}
	stats_local_flush(&o->stats);
	return n;
}

static TAP_UNUSED ssize_t
kit_drain(struct stream *s, size_t max, struct sbuf *out, int *slips)
{
	return kit_drain_with(s, kit_stream_out(), max, out, slips);
}

#define KIT_MAXEV	4096

struct kit_event {
	char	 id[64];
	char	 event[32];
	char	 data[256];	/* data lines joined by \n */
};

/*
 * The events in b (frames of our own making: "field: value" lines, a
 * blank line ends an event; comments and retry: are skipped).  Returns
 * how many, at most max.
 */
static TAP_UNUSED size_t
kit_events(const struct sbuf *b, struct kit_event *ev, size_t max)
{
	const char *p = b->data, *end = b->data + b->len, *nl;
	struct kit_event cur;
	size_t n = 0, len;
	int any = 0;

	memset(&cur, 0, sizeof(cur));
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		len = (size_t)(nl - p);
		if (len == 0) {
			if (any && cur.data[0] != '\0' && n < max)
				ev[n++] = cur;
			memset(&cur, 0, sizeof(cur));
			any = 0;
			continue;
		}
		if (len > 4 && memcmp(p, "id: ", 4) == 0)
			snprintf(cur.id, sizeof(cur.id), "%.*s", (int)len - 4,
			    p + 4);
		else if (len > 7 && memcmp(p, "event: ", 7) == 0)
			snprintf(cur.event, sizeof(cur.event), "%.*s",
			    (int)len - 7, p + 7);
		else if (len >= 6 && memcmp(p, "data: ", 6) == 0) {
			size_t have = strlen(cur.data);

			snprintf(cur.data + have, sizeof(cur.data) - have,
			    "%s%.*s", have ? "\n" : "", (int)len - 6, p + 6);
		} else
			continue;
		any = 1;
	}
	return n;
}

/* drain s and return its events */
static TAP_UNUSED size_t
kit_read_events(struct stream *s, struct kit_event *ev, size_t max,
    int *slips)
{
	struct sbuf got;
	size_t n;

	sbuf_init(&got);
	kit_drain(s, 4096, &got, slips);
	n = kit_events(&got, ev, max);
	sbuf_free(&got);
	return n;
}

/* what the stream's writer would see of it now: 1 waiting for a wake */
static TAP_UNUSED int
kit_idle(struct stream *s)
{
	int idle;

	pthread_mutex_lock(&s->lock);
	idle = !s->woken;
	pthread_mutex_unlock(&s->lock);
	return idle;
}

static TAP_UNUSED unsigned long
kit_stat(atomic_ulong *v)
{
	return atomic_load(v);
}

#endif
