/*
 * stream.c - one /events response: ring of frames, suspend/resume state.
 * Thread and lock rules are in stream.h.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "stats.h"
#include "stream.h"
#include "util.h"

struct stream *
stream_new(size_t ring_cap, size_t maxsubs, int positions)
{
	struct stream	*s;

	if ((s = calloc(1, sizeof(*s) + maxsubs * sizeof(s->subs[0]))) ==
	    NULL)
		return NULL;
	s->maxsubs = maxsubs;
	if (ring_init(&s->ring, ring_cap) == -1) {
		free(s);
		return NULL;
	}
	if (positions && ((s->pos = calloc(maxsubs > 0 ? maxsubs : 1,
	    sizeof(*s->pos))) == NULL || (s->idline =
	    malloc(POSITION_ID_MAX(maxsubs) + 5)) == NULL ||
	    ring_init(&s->holdq, ring_cap) == -1)) {
		free(s->pos);
		free(s->idline);
		ring_free(&s->ring);
		free(s);
		return NULL;
	}
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		ring_free(&s->ring);
		ring_free(&s->holdq);
		free(s->pos);
		free(s->idline);
		free(s);
		return NULL;
	}
	return s;
}

void
stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	if (s->registered)
		fatalx("stream_free: stream still registered in the hub");
	ring_free(&s->ring);
	ring_free(&s->holdq);
	frame_unref(s->cur);
	frame_unref(s->final);
	pthread_mutex_destroy(&s->lock);
	free(s->pos);
	free(s->idline);
	free(s);
}

enum stream_push_result
stream_push(struct stream *s, struct frame *f)
{
	enum stream_push_result r;

	pthread_mutex_lock(&s->lock);
	if (s->closing)
		r = STREAM_PUSH_CLOSED;
	else if (s->recovering) {
		/* kept aside, as bounded as the ring */
		if (ring_push(&s->holdq, f) == -1) {
			s->closing = 1;
			s->overflowed = 1;
			r = STREAM_PUSH_OVERFLOW;
		} else
			r = STREAM_PUSH_QUEUED;
	} else if (ring_push(&s->ring, f) == -1) {
		s->closing = 1;
		s->overflowed = 1;
		r = STREAM_PUSH_OVERFLOW;
		log_debug("stream closed: %zu events queued and not read",
		    s->ring.cap);
	} else
		r = s->suspended && !s->held ? STREAM_PUSH_WAKE :
		    STREAM_PUSH_QUEUED;
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stream_replay(struct stream *s, struct frame **frames, size_t n)
{
	size_t	 i, had;

	pthread_mutex_lock(&s->lock);
	had = ring_count(&s->ring);
	/* room for all of it, and the ring size again after it (see
	   stream_recovered) */
	s->ring.cap += n;
	for (i = 0; i < n; i++)
		if (ring_push(&s->ring, frames[i]) == -1)
			break;
	if (i < n) {
		/* a half replay must not look whole */
		while (ring_count(&s->ring) > had)
			frame_unref(ring_pop_newest(&s->ring));
		s->ring.cap -= n;
	}
	pthread_mutex_unlock(&s->lock);
	return i < n ? -1 : 0;
}

int
stream_close(struct stream *s, struct frame *final)
{
	int	 wake;

	pthread_mutex_lock(&s->lock);
	s->closing = 1;
	if (s->final == NULL && final != NULL)
		s->final = frame_ref(final);
	wake = s->suspended && !s->held;
	pthread_mutex_unlock(&s->lock);
	return wake;
}

void
stream_wake(struct stream *s)
{
	pthread_mutex_lock(&s->lock);
	/* a held response waits for stream_release, whatever is queued */
	if (s->suspended && !s->held) {
		s->suspended = 0;
		if (s->resume != NULL)
			s->resume(s);
	}
	pthread_mutex_unlock(&s->lock);
}

int
stream_hold(struct stream *s)
{
	int	 held;

	pthread_mutex_lock(&s->lock);
	if ((held = s->held) != 0) {
		s->suspended = 1;
		if (s->suspend != NULL)
			s->suspend(s);
	}
	pthread_mutex_unlock(&s->lock);
	return held;
}

int
stream_release(struct stream *s)
{
	int	 wake;

	pthread_mutex_lock(&s->lock);
	s->held = 0;
	wake = s->suspended;
	pthread_mutex_unlock(&s->lock);
	return wake;
}

int
stream_channel(const struct stream *s, const struct frame *f)
{
	size_t	 i;

	for (i = 0; i < s->nsubs; i++)
		if ((const void *)s->subs[i].channel == f->chan)
			return (int)i;
	return -1;
}

/* the id line a frame is written after, from the stream's positions */
static void
stream_stamp(struct stream *s, const struct frame *f)
{
	int	 i;

	s->idlen = s->idoff = 0;
	if (f->stamp == FRAME_STAMP_NONE || s->pos == NULL)
		return;
	if (f->stamp == FRAME_STAMP_MESSAGE && (i = stream_channel(s, f)) !=
	    -1) {
		s->pos[i].epoch = f->epoch;
		s->pos[i].offset = f->offset;
		s->pos[i].known = 1;
	}
	memcpy(s->idline, "id: ", 4);
	s->idlen = 4 + position_encode(s->idline + 4,
	    POSITION_ID_MAX(s->maxsubs), s->fp, s->pos, s->nsubs);
	s->idline[s->idlen++] = '\n';
}

void
stream_recovering(struct stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->recovering = 1;
	pthread_mutex_unlock(&s->lock);
}

int
stream_recovered(struct stream *s, const struct position *start,
    const struct position *seen, int open, struct frame *reset,
    struct frame **replay, size_t nreplay)
{
	struct frame	*f;
	size_t		 i, need;
	int		 c, wake;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nsubs; i++)
		s->pos[i] = start[i];
	if (open) {
		/* a message kept aside was sent after the client came */
		for (i = 0; i < ring_count(&s->holdq); i++) {
			f = s->holdq.slot[(s->holdq.head + i) % s->holdq.size];
			if (f->stamp != FRAME_STAMP_MESSAGE ||
			    (c = stream_channel(s, f)) == -1 ||
			    s->pos[c].offset < f->offset ||
			    s->pos[c].epoch != f->epoch)
				continue;
			s->pos[c].offset = f->offset > 0 ? f->offset - 1 : 0;
		}
	}
	/*
	 * All of it, whatever the ring size, and the ring size again after
	 * it: the client has not read any of it yet, and what comes live
	 * meanwhile must find the room any stream has.  (With only what was
	 * left, a client reading at full speed was closed as too slow by
	 * the few messages that came before its worker got to a long
	 * replay.)
	 */
	need = ring_count(&s->ring) + nreplay + ring_count(&s->holdq) + 1;
	s->ring.cap += need;
	if (reset != NULL && ring_push(&s->ring, reset) == -1)
		goto nomem;
	for (i = 0; i < nreplay; i++)
		if (ring_push(&s->ring, replay[i]) == -1)
			goto nomem;
	while ((f = ring_pop(&s->holdq)) != NULL) {
		c = f->stamp == FRAME_STAMP_MESSAGE ? stream_channel(s, f) : -1;
		if (!open && c != -1 && seen[c].known &&
		    f->epoch == seen[c].epoch && f->offset <= seen[c].offset) {
			frame_unref(f);		/* replayed already */
			continue;
		}
		if (ring_push(&s->ring, f) == -1) {
			frame_unref(f);
			goto nomem;
		}
		frame_unref(f);
	}
	s->recovering = 0;
	wake = s->suspended && !s->held;
	pthread_mutex_unlock(&s->lock);
	return wake;
nomem:
	/* the client must not think it has everything: end, it comes back */
	s->recovering = 0;
	s->closing = 1;
	s->overflowed = 1;
	wake = s->suspended && !s->held;
	pthread_mutex_unlock(&s->lock);
	log_warnx("out of memory replaying to a stream: closing it");
	return wake;
}

ssize_t
stream_read(struct stream *s, char *buf, size_t max)
{
	size_t	 n = 0, take;

	pthread_mutex_lock(&s->lock);
	if (s->suspended)
		fatalx("stream_read on a suspended stream");
	while (n < max) {
		if (s->cur == NULL) {
			s->cur = ring_pop(&s->ring);
			if (s->cur == NULL && s->closing) {
				s->cur = s->final;
				s->final = NULL;
			}
			if (s->cur == NULL)
				break;
			s->off = 0;
			stream_stamp(s, s->cur);
		}
		if (s->idoff < s->idlen) {
			take = s->idlen - s->idoff;
			if (take > max - n)
				take = max - n;
			memcpy(buf + n, s->idline + s->idoff, take);
			n += take;
			s->idoff += take;
			continue;
		}
		take = s->cur->len - s->off;
		if (take > max - n)
			take = max - n;
		memcpy(buf + n, s->cur->data + s->off, take);
		n += take;
		s->off += take;
		if (s->off == s->cur->len) {
			if (s->cur->message)
				stats_delivered(util_now_us() -
				    s->cur->recv_us,
				    s->cur->recv_us >= s->opened_us);
			frame_unref(s->cur);
			s->cur = NULL;
		}
	}
	if (n > 0) {
		pthread_mutex_unlock(&s->lock);
		stats_written(n);
		return (ssize_t)n;
	}
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	/* nothing queued: suspend in the same call that returns 0 */
	s->suspended = 1;
	if (s->suspend != NULL)
		s->suspend(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
