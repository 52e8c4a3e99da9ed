/*
 * writer_timer.c - each stream's deadlines, in its writer's heap: its
 * next heartbeat, its token's expiry, the end of its drain.
 *
 * DESIGN
 * One deadline per stream, the earliest of its next heartbeat (its last
 * write + --heartbeat, first one jittered), its token's expiry and,
 * closing, the end of its drain.  A deadline may be early (a write moved
 * the heartbeat on): it is then set again.  A stream whose output is
 * pending needs no heartbeat: its output is one.  An expired token ends
 * the stream with the writers' retry frame (writers_set_retry), like a
 * slow client's.
 *
 * THREADS: under the writer's run lock (writer.h), but the retry frame
 * (its own lock).
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "heap.h"
#include "log.h"
#include "stream.h"
#include "writer.h"
#include "writer_int.h"

#define WRITER_TIMERS		1024	/* timers run per round at most */

void
writers_set_retry(struct writers *ws, struct frame *f)
{
	pthread_mutex_lock(&ws->retry_lock);
	frame_unref(ws->retry);
	ws->retry = frame_ref(f);
	pthread_mutex_unlock(&ws->retry_lock);
}

static struct frame *
writers_retry(struct writers *ws)
{
	struct frame	*f;

	pthread_mutex_lock(&ws->retry_lock);
	f = ws->retry != NULL ? frame_ref(ws->retry) : NULL;
	pthread_mutex_unlock(&ws->retry_lock);
	return f;
}

unsigned
writer_heartbeat(struct writer *w)
{
	return atomic_load_explicit(w->ws->cfg->heartbeat_ms,
	    memory_order_relaxed);
}

/* the stream's next deadline: heartbeat, token expiry, end of drain */
uint64_t
writer_deadline(struct writer *w, struct stream *s)
{
	uint64_t	 t = s->last_write_ms + writer_heartbeat(w);

	if (s->token_ms != 0 && s->token_ms < t)
		t = s->token_ms;
	if (s->drain_by_ms != 0 && s->drain_by_ms < t)
		t = s->drain_by_ms;
	return t;
}

void
writer_set_timer(struct writer *w, struct stream *s, uint64_t t)
{
	if (heap_set(&w->timers, &s->timer, t) == -1)
		fatalx("writer: out of memory for a timer");
}

/* a deadline came: the drain is over, the token expired, or a heartbeat */
static void
writer_timer(struct writer *w, struct stream *s)
{
	struct frame	*f;
	uint64_t	 t;

	if (s->drain_by_ms != 0 && w->now >= s->drain_by_ms) {
		log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_NUM("stream", s->id)),
		    "writer: a closing stream did not drain in %u ms: dropped",
		    w->ws->cfg->drain_ms);
		writer_end(w, s);
		return;
	}
	if (s->token_ms != 0 && w->now >= s->token_ms) {
		s->token_ms = 0;
		log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_NUM("stream", s->id),
		    LOG_STR("reason", "expired")),
		    "auth: a stream ended: its token expired");
		f = writers_retry(w->ws);
		stream_close(s, f);
		frame_unref(f);
		if (!s->want_out && !s->tls_pending) {
			writer_flush(w, s);	/* may end it */
			return;
		}
	}
	t = s->last_write_ms + writer_heartbeat(w);
	if (w->now >= t) {
		if (!s->want_out && !s->tls_pending &&
		    stream_ping(s, w->ping)) {
			w->out.stats.heartbeats++;
			writer_flush(w, s);	/* may end it */
			return;
		}
		/* busy: its output is its heartbeat */
		s->last_write_ms = w->now;
	}
	writer_set_timer(w, s, writer_deadline(w, s));
}

/* --heartbeat changed (SIGHUP): every deadline again */
static void
writer_rekey(struct writer *w)
{
	struct heap_node	**all;
	struct stream		*s;
	size_t			  i, n = heap_count(&w->timers);

	w->hb_seen = writer_heartbeat(w);
	if (n == 0 || (all = calloc(n, sizeof(*all))) == NULL)
		return;
	memcpy(all, w->timers.node, n * sizeof(*all));
	for (i = 0; i < n; i++) {
		s = (struct stream *)((char *)all[i] -
		    offsetof(struct stream, timer));
		writer_set_timer(w, s, writer_deadline(w, s));
	}
	free(all);
}

void
writer_timers(struct writer *w)
{
	struct heap_node	*hn;
	unsigned		 n;

	if (writer_heartbeat(w) != w->hb_seen)
		writer_rekey(w);
	for (n = 0; n < WRITER_TIMERS &&
	    (hn = heap_first(&w->timers)) != NULL && hn->key <= w->now; n++)
		writer_timer(w, (struct stream *)((char *)hn -
		    offsetof(struct stream, timer)));
}

/* ms to the next deadline for epoll_wait: -1 none, 0 work waiting */
int
writer_timeout(struct writer *w)
{
	struct heap_node	*hn;

	if ((hn = heap_first(&w->timers)) == NULL)
		return -1;
	if (hn->key <= w->now)
		return 0;
	return hn->key - w->now > 60000 ? 60000 : (int)(hn->key - w->now);
}
