/*
 * stream.c - one /events response: its ring of frames, what is queued to
 * it and when its writer must be told.  Thread and lock rules are in
 * stream.h; what its writer takes out of it is stream_out.c's, the
 * --history redis recovery stream_recover.c's.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdlib.h>

#include "frame.h"
#include "log.h"
#include "stream.h"
#include "stream_int.h"

struct stream *
stream_new(size_t ring_cap, size_t maxsubs, int positions)
{
	struct stream	*s;

	if ((s = calloc(1, sizeof(*s) + maxsubs * sizeof(s->subs[0]))) ==
	    NULL)
		return NULL;
	s->maxsubs = maxsubs;
	s->fd = -1;
	heap_node_init(&s->timer);
	if (ring_init(&s->ring, ring_cap) == -1) {
		free(s);
		return NULL;
	}
	if (positions && ((s->pos = calloc(maxsubs > 0 ? maxsubs : 1,
	    sizeof(*s->pos))) == NULL || (s->qpos = calloc(maxsubs > 0 ?
	    maxsubs : 1, sizeof(*s->qpos))) == NULL || (s->idline =
	    malloc(POSITION_ID_MAX(maxsubs) + 5)) == NULL ||
	    ring_init(&s->aside, ring_cap) == -1))
		goto bad;
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		goto bad;
	return s;
bad:
	ring_free(&s->ring);
	ring_free(&s->aside);
	free(s->pos);
	free(s->qpos);
	free(s->idline);
	free(s);
	return NULL;
}

void
stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	if (s->registered)
		fatalx("stream_free: stream still registered in the hub");
	ring_free(&s->ring);
	ring_free(&s->aside);
	frame_unref(s->cur);
	frame_unref(s->final);
	pthread_mutex_destroy(&s->lock);
	free(s->pos);
	free(s->qpos);
	free(s->idline);
	free(s);
}

void
stream_set_head(struct stream *s, struct frame *head)
{
	frame_unref(s->cur);
	s->cur = frame_ref(head);
	s->curoff = 0;
	s->cur_raw = 1;
	s->idlen = 0;
}

/* with s->lock held: 1 if the writer must be told (and now it is due) */
int
stream_want_wake(struct stream *s)
{
	if (!s->attached || s->awaiting || s->woken)
		return 0;
	s->woken = 1;
	return 1;
}

/*
 * With s->lock held: f to the ring, unless it is a durable message at or
 * before the channel's queued position (a duplicate: a replay and what
 * came live meanwhile overlap), or a position set, which moves it.
 */
enum stream_push_result
stream_queue(struct stream *s, struct frame *f)
{
	struct position	*q;
	int		 c;

	if (s->qpos != NULL && (f->stamp == FRAME_STAMP_MESSAGE ||
	    f->stamp == FRAME_STAMP_SET) && (c = stream_channel(s, f)) != -1) {
		q = &s->qpos[c];
		if (f->stamp == FRAME_STAMP_MESSAGE && q->known &&
		    q->epoch == f->epoch && f->offset <= q->offset)
			return STREAM_PUSH_DUPLICATE;
		q->epoch = f->epoch;
		q->offset = f->offset;
		q->known = 1;
	}
	if (ring_push(&s->ring, f) == -1) {
		s->closing = 1;
		s->overflowed = 1;
		log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_NUM("stream", s->id),
		    LOG_STR("reason", "slow")),
		    "stream closed: %zu events queued and not read",
		    s->ring.cap);
		return STREAM_PUSH_OVERFLOW;
	}
	return STREAM_PUSH_QUEUED;
}

enum stream_push_result
stream_push(struct stream *s, struct frame *f)
{
	enum stream_push_result r;

	pthread_mutex_lock(&s->lock);
	if (s->closing)
		r = STREAM_PUSH_CLOSED;
	else if (s->recovering) {
		/* kept aside, as bounded as the ring (the duplicates are
		   dropped as it is let out) */
		if (ring_push(&s->aside, f) == -1) {
			s->closing = 1;
			s->overflowed = 1;
			r = STREAM_PUSH_OVERFLOW;
		} else
			r = STREAM_PUSH_QUEUED;
	} else if ((r = stream_queue(s, f)) == STREAM_PUSH_QUEUED &&
	    stream_want_wake(s))
		r = STREAM_PUSH_WAKE;
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
	/*
	 * Even with a wake outstanding: a writer waiting for room in the
	 * socket must learn that the stream now has only a drain's time.
	 */
	wake = s->attached && !s->awaiting;
	s->woken |= wake;
	pthread_mutex_unlock(&s->lock);
	return wake;
}

int
stream_closing(struct stream *s)
{
	int	 closing;

	pthread_mutex_lock(&s->lock);
	closing = s->closing;
	pthread_mutex_unlock(&s->lock);
	return closing;
}

void
stream_wake(struct stream *s)
{
	if (s->wakeup != NULL)
		s->wakeup(s);
}

void
stream_await(struct stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->awaiting = 1;
	pthread_mutex_unlock(&s->lock);
}

int
stream_await_end(struct stream *s)
{
	int	 wake;

	pthread_mutex_lock(&s->lock);
	s->awaiting = 0;
	wake = stream_want_wake(s);
	pthread_mutex_unlock(&s->lock);
	return wake;
}

void
stream_attach(struct stream *s, int on)
{
	pthread_mutex_lock(&s->lock);
	s->attached = on;
	if (on)
		s->woken = 1;	/* the writer looks at it now */
	else
		s->closing = 1;
	pthread_mutex_unlock(&s->lock);
}

int
stream_ping(struct stream *s, struct frame *ping)
{
	int	 queued = 0;

	pthread_mutex_lock(&s->lock);
	if (!s->closing && !s->awaiting && s->cur == NULL &&
	    ring_count(&s->ring) == 0 && ring_push(&s->ring, ping) == 0)
		queued = 1;
	pthread_mutex_unlock(&s->lock);
	return queued;
}
