/*
 * stream_recover.c - --history redis: a stream whose history is being
 * read from Redis (a new stream's, or an open one's after an outage)
 * keeps what comes live aside (in its ring s->aside) until the read is
 * queued, then queues what it kept, less what the read held already (stream_queue's
 * duplicates).  Out of memory the stream ends: its client must not think
 * it has everything.
 *
 * THREADS: the stream lock (stream.h); called with the hub lock held.
 */
#include "autoconf.h"

#include <pthread.h>

#include "frame.h"
#include "log.h"
#include "stream.h"
#include "stream_int.h"

int
stream_channel(const struct stream *s, const struct frame *f)
{
	size_t	 i;

	for (i = 0; i < s->nsubs; i++)
		if ((const void *)s->subs[i].channel == f->chan)
			return (int)i;
	return -1;
}

void
stream_recovering(struct stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->recovering = 1;
	pthread_mutex_unlock(&s->lock);
}

/*
 * With s->lock held: what was kept aside, to the ring, the duplicates
 * dropped; the stream is live again.  -1 if the ring cannot take it (out
 * of memory).
 */
static int
stream_queue_aside(struct stream *s)
{
	struct frame	*f;
	int		 r = 0;

	while ((f = ring_pop(&s->aside)) != NULL) {
		if (stream_queue(s, f) == STREAM_PUSH_OVERFLOW)
			r = -1;
		frame_unref(f);
		if (r == -1)
			break;
	}
	s->recovering = 0;
	return r;
}

/* with s->lock held: the stream cannot be caught up; it ends, it comes back */
static int
stream_give_up(struct stream *s)
{
	/* the client must not think it has everything */
	s->recovering = 0;
	s->closing = 1;
	s->overflowed = 1;
	log_warnx("out of memory replaying to a stream: closing it");
	return stream_want_wake(s);
}

/*
 * With s->lock held, which it lets go of: the end of a recovery's
 * queuing.  With release, what was kept aside goes to the ring and the
 * stream is live again; nomem (or no room for what was kept aside) ends
 * the stream instead.  1 if the stream needs a wake.
 */
static int
stream_recover_end(struct stream *s, int release, int nomem)
{
	int	 wake;

	if (!nomem && release && stream_queue_aside(s) == -1)
		nomem = 1;
	wake = nomem ? stream_give_up(s) : stream_want_wake(s);
	pthread_mutex_unlock(&s->lock);
	return wake;
}

int
stream_recovered(struct stream *s, const struct position *start, int open,
    struct frame *reset, struct frame **replay, size_t nreplay)
{
	struct frame	*f;
	size_t		 i;
	int		 c;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nsubs; i++)
		s->pos[i] = start[i];
	s->pos_gen++;
	if (open) {
		/* a message kept aside was sent after the client came */
		for (i = 0; i < ring_count(&s->aside); i++) {
			f = s->aside.slot[(s->aside.head + i) % s->aside.size];
			if (f->stamp != FRAME_STAMP_MESSAGE ||
			    (c = stream_channel(s, f)) == -1 ||
			    s->pos[c].offset < f->offset ||
			    s->pos[c].epoch != f->epoch)
				continue;
			s->pos[c].offset = f->offset > 0 ? f->offset - 1 : 0;
		}
	}
	for (i = 0; i < s->nsubs; i++)
		s->qpos[i] = s->pos[i];
	/*
	 * All of it, whatever the ring size, and the ring size again after
	 * it: the client has not read any of it yet, and what comes live
	 * meanwhile must find the room any stream has.  (With only what was
	 * left, a client reading at full speed was closed as too slow by
	 * the few messages that came before its writer got to a long
	 * replay.)
	 */
	s->ring.cap += ring_count(&s->ring) + nreplay +
	    ring_count(&s->aside) + 1;
	if (reset != NULL && stream_queue(s, reset) == STREAM_PUSH_OVERFLOW)
		return stream_recover_end(s, 0, 1);
	for (i = 0; i < nreplay; i++)
		if (stream_queue(s, replay[i]) == STREAM_PUSH_OVERFLOW)
			return stream_recover_end(s, 0, 1);
	return stream_recover_end(s, 1, 0);
}

int
stream_caught_up(struct stream *s, struct frame **frames, size_t n,
    int release, size_t *queued)
{
	enum stream_push_result r;
	size_t	 i;

	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		s->recovering = 0;
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	/* room for what was missed, as for a replay (stream_recovered) */
	s->ring.cap += n + (release ? ring_count(&s->aside) : 0);
	for (i = 0; i < n; i++) {
		if ((r = stream_queue(s, frames[i])) == STREAM_PUSH_OVERFLOW)
			return stream_recover_end(s, 0, 1);
		if (r == STREAM_PUSH_QUEUED && frames[i]->message)
			(*queued)++;
	}
	return stream_recover_end(s, release, 0);
}

struct position
stream_queued_position(struct stream *s, size_t i)
{
	struct position	 p;

	pthread_mutex_lock(&s->lock);
	p = s->qpos[i];
	pthread_mutex_unlock(&s->lock);
	return p;
}
