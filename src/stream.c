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
stream_new(size_t ring_cap, size_t maxsubs)
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
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		ring_free(&s->ring);
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
	frame_unref(s->cur);
	frame_unref(s->final);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

enum stream_push_result
stream_push(struct stream *s, struct frame *f)
{
	enum stream_push_result r;

	pthread_mutex_lock(&s->lock);
	if (s->closing)
		r = STREAM_PUSH_CLOSED;
	else if (ring_push(&s->ring, f) == -1) {
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
	if (s->ring.cap < had + n + 1)
		s->ring.cap = had + n + 1;
	for (i = 0; i < n; i++)
		if (ring_push(&s->ring, frames[i]) == -1)
			break;
	if (i < n) {
		/* a half replay must not look whole */
		while (ring_count(&s->ring) > had)
			frame_unref(ring_pop_newest(&s->ring));
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
