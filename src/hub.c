/*
 * hub.c - channel table, subscriber lists, history, ids, heartbeats, wakes.
 *
 * DESIGN
 * Channels live in a hash table (table.c) keyed by their binary name; a
 * channel exists only while it has subscribers.  Each stream embeds its
 * memberships (struct hub_sub), so subscribing allocates nothing per
 * subscriber beyond a new channel.  Every stream is also on one list in
 * arrival order; the heartbeat walks it with a cursor, a share of it per
 * tick, so pings are spread evenly over the interval.
 *
 * The hub gives every message its id (this run's epoch and a sequence)
 * and owns the history, because a resume must read the history and join
 * the subscriber lists in one step under the lock that publishing holds:
 * that is what makes the switch from replay to live exact.
 * Thread and lock rules are in hub.h.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "history.h"
#include "hub.h"
#include "log.h"
#include "stream.h"
#include "table.h"
#include "util.h"

const char *const hub_reset_reasons[HUB_RESET_REASONS] = {
	"malformed-id", "unknown-epoch", "unknown-id", "history-exceeded",
	"redis-outage", "history-disabled", "out-of-memory",
};

struct hub_channel {
	struct table_entry	*entry;		/* its name, in hub->chans */
	struct hub_sub		*subs;
	size_t			 nsubs;
};

struct hub {
	pthread_mutex_t		 lock;
	struct table		 chans;		/* of struct hub_channel */
	struct history		 history;
	char			 epoch[9];	/* this run, in every id */
	uint64_t		 seq;		/* last id given */
	struct stream		*head, *tail;	/* every stream */
	size_t			 nstreams;
	struct stream		*cursor;	/* next heartbeat, NULL: head */
	uint64_t		 hb_credit;	/* stream-ms owed to heartbeats */
	struct stream		*wake;		/* to wake at the batch end */
	int			 closing;
	struct frame		*slow_final;
	struct hub_stats	 stats;
};

struct hub *
hub_new(size_t history_size, unsigned history_ttl_s, size_t history_bytes)
{
	struct hub	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if (table_init(&h->chans) == -1) {
		free(h);
		return NULL;
	}
	if (history_init(&h->history, history_size, history_ttl_s,
	    history_bytes) == -1) {
		table_free(&h->chans);
		free(h);
		return NULL;
	}
	snprintf(h->epoch, sizeof(h->epoch), "%08" PRIx32, util_random());
	pthread_mutex_init(&h->lock, NULL);
	return h;
}

void
hub_free(struct hub *h)
{
	if (h == NULL)
		return;
	if (h->nstreams != 0 || h->chans.count != 0)
		fatalx("hub_free with %zu streams still registered",
		    h->nstreams);
	pthread_mutex_destroy(&h->lock);
	frame_unref(h->slow_final);
	history_free(&h->history);
	table_free(&h->chans);
	free(h);
}

struct hub_stats *
hub_stats(struct hub *h)
{
	return &h->stats;
}

void
hub_set_slow_final(struct hub *h, struct frame *f)
{
	hub_lock(h);
	frame_unref(h->slow_final);
	h->slow_final = f != NULL ? frame_ref(f) : NULL;
	hub_unlock(h);
}

void
hub_lock(struct hub *h)
{
	pthread_mutex_lock(&h->lock);
}

void
hub_unlock(struct hub *h)
{
	pthread_mutex_unlock(&h->lock);
}

static struct hub_channel *
hub_find(struct hub *h, const char *name, size_t len)
{
	struct table_entry	*e;

	e = table_find(&h->chans, name, len);
	return e != NULL ? e->value : NULL;
}

static struct hub_channel *
hub_channel_get(struct hub *h, const char *name, size_t len)
{
	struct hub_channel	*c;

	if ((c = hub_find(h, name, len)) != NULL)
		return c;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->entry = table_insert(&h->chans, name, len)) == NULL) {
		free(c);
		return NULL;
	}
	c->entry->value = c;
	return c;
}

static void
hub_unsubscribe(struct hub *h, struct hub_sub *sub)
{
	struct hub_channel	*c = sub->channel;

	if (sub->prev != NULL)
		sub->prev->next = sub->next;
	else
		c->subs = sub->next;
	if (sub->next != NULL)
		sub->next->prev = sub->prev;
	sub->prev = sub->next = NULL;
	sub->channel = NULL;
	if (--c->nsubs == 0) {
		table_remove(&h->chans, c->entry);
		free(c);
	}
}

const char *
hub_parse_id(const char *epoch, uint64_t last_seq, const char *id,
    uint64_t *seq)
{
	const char	*p;
	uint64_t	 v = 0;
	size_t		 i;

	if (strlen(id) < 10 || id[8] != '-')
		return "malformed-id";
	for (i = 0; i < 8; i++)
		if (strchr("0123456789abcdef", id[i]) == NULL || id[i] == '\0')
			return "malformed-id";
	for (p = id + 9; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || p - (id + 9) >= 20)
			return "malformed-id";
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return "malformed-id";
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (memcmp(id, epoch, 8) != 0)
		return "unknown-epoch";
	if (v > last_seq)
		return "unknown-id";
	*seq = v;
	return NULL;
}

static void
hub_count_reset(struct hub *h, const char *reason)
{
	size_t	 i;

	for (i = 0; i < HUB_RESET_REASONS; i++)
		if (strcmp(hub_reset_reasons[i], reason) == 0) {
			atomic_fetch_add(&h->stats.resets[i], 1);
			return;
		}
}

/* the reset event: an id (so a later resume starts from here) and why */
static struct frame *
hub_reset_frame(struct hub *h, uint64_t seq, const char *reason)
{
	char	 id[40];

	hub_event_id(h, seq, id, sizeof(id));
	hub_count_reset(h, reason);
	return frame_reset(id, reason);
}

/*
 * Queue, in a stream no one else sees yet, what the client missed since
 * last_event_id: the history's frames, or a reset.  Under the hub lock, so
 * nothing published meanwhile is missed or queued twice.
 */
static int
hub_resume_locked(struct hub *h, struct stream *s, const char **channels,
    const size_t *lens, size_t n, const char *last_event_id,
    struct hub_resume *res)
{
	enum history_verdict	 v;
	struct frame		**frames, *f;
	const char		*why;
	uint64_t		 after = 0;
	size_t			 nframes = 0, i;

	if ((why = hub_parse_id(h->epoch, h->seq, last_event_id, &after)) ==
	    NULL) {
		v = history_replay(&h->history, channels, lens, n, after,
		    &frames, &nframes);
		if (v == HISTORY_COMPLETE) {
			/* the replay must fit whatever the ring size */
			if (s->ring.cap < nframes + s->ring.count + 1)
				s->ring.cap = nframes + s->ring.count + 1;
			for (i = 0; i < nframes; i++) {
				if (ring_push(&s->ring, frames[i]) == -1)
					why = "out-of-memory";
				frame_unref(frames[i]);
			}
			free(frames);
			if (why == NULL) {
				res->replayed = nframes;
				atomic_fetch_add(&h->stats.resumes, 1);
				atomic_fetch_add(&h->stats.replayed, nframes);
				return 0;
			}
			/* a half replay must not look whole: reset the rest */
			while (ring_count(&s->ring) > 1)
				frame_unref(ring_pop(&s->ring));
		} else
			why = history_verdict_reason(v);
	}
	/* a fresh id: a resume from it starts after whatever caused this */
	if ((f = hub_reset_frame(h, hub_next_seq_locked(h), why)) == NULL ||
	    ring_push(&s->ring, f) == -1) {
		frame_unref(f);
		return -1;
	}
	frame_unref(f);
	res->reset = why;
	return 0;
}

int
hub_add(struct hub *h, struct stream *s, const char **channels,
    const size_t *lens, size_t n, const char *last_event_id,
    struct hub_resume *res)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	struct hub_resume	 dummy;
	size_t			 i;

	if (res == NULL)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	if (n > s->maxsubs)
		return -1;
	hub_lock(h);
	if (h->closing) {
		hub_unlock(h);
		return -1;
	}
	if (last_event_id != NULL && *last_event_id != '\0' &&
	    hub_resume_locked(h, s, channels, lens, n, last_event_id,
	    res) == -1) {
		hub_unlock(h);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((c = hub_channel_get(h, channels[i], lens[i])) == NULL) {
			while (i-- > 0)
				hub_unsubscribe(h, &s->subs[i]);
			s->nsubs = 0;
			hub_unlock(h);
			return -1;
		}
		sub = &s->subs[i];
		sub->stream = s;
		sub->channel = c;
		sub->prev = NULL;
		sub->next = c->subs;
		if (c->subs != NULL)
			c->subs->prev = sub;
		c->subs = sub;
		c->nsubs++;
	}
	s->nsubs = n;

	/* behind the heartbeat cursor: its first ping a full turn away */
	if (h->cursor != NULL) {
		s->all_next = h->cursor;
		s->all_prev = h->cursor->all_prev;
	} else {
		s->all_next = NULL;
		s->all_prev = h->tail;
	}
	if (s->all_prev != NULL)
		s->all_prev->all_next = s;
	else
		h->head = s;
	if (s->all_next != NULL)
		s->all_next->all_prev = s;
	else
		h->tail = s;
	h->nstreams++;
	s->registered = 1;
	s->opened_us = util_now_us();
	hub_unlock(h);
	atomic_fetch_add(&h->stats.streams_open, 1);
	atomic_fetch_add(&h->stats.streams_total, 1);
	return 0;
}

void
hub_remove(struct hub *h, struct stream *s)
{
	size_t	 i;

	hub_lock(h);
	if (!s->registered) {
		hub_unlock(h);
		return;
	}
	/* the broker empties the wake list before it lets go of the lock */
	if (s->wake_queued)
		fatalx("hub_remove: stream on the wake list");
	for (i = 0; i < s->nsubs; i++)
		hub_unsubscribe(h, &s->subs[i]);
	s->nsubs = 0;
	if (h->cursor == s)
		h->cursor = s->all_next;
	if (s->all_prev != NULL)
		s->all_prev->all_next = s->all_next;
	else
		h->head = s->all_next;
	if (s->all_next != NULL)
		s->all_next->all_prev = s->all_prev;
	else
		h->tail = s->all_prev;
	s->all_prev = s->all_next = NULL;
	h->nstreams--;
	s->registered = 0;
	hub_unlock(h);
	atomic_fetch_sub(&h->stats.streams_open, 1);
}

int
hub_has_locked(struct hub *h, const char *name, size_t len)
{
	return hub_find(h, name, len) != NULL;
}

static void
hub_queue_wake(struct hub *h, struct stream *s)
{
	if (s->wake_queued)
		return;
	s->wake_queued = 1;
	s->wake_next = h->wake;
	h->wake = s;
}

/* queue f to s; 1 if it was queued */
static int
hub_push(struct hub *h, struct stream *s, struct frame *f)
{
	switch (stream_push(s, f)) {
	case STREAM_PUSH_QUEUED:
		return 1;
	case STREAM_PUSH_WAKE:
		hub_queue_wake(h, s);
		return 1;
	case STREAM_PUSH_OVERFLOW:
		/* the client does not read: end it once its ring drains */
		atomic_fetch_add(&h->stats.slow_closes, 1);
		log_debug("stream closed: %zu events queued and not read",
		    s->ring.cap);
		if (stream_close(s, h->slow_final))
			hub_queue_wake(h, s);
		return 0;
	case STREAM_PUSH_CLOSED:
		break;
	}
	return 0;
}

size_t
hub_fanout_locked(struct hub *h, const char *name, size_t len,
    struct frame *f)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	size_t			 n = 0;

	if ((c = hub_find(h, name, len)) == NULL)
		return 0;
	for (sub = c->subs; sub != NULL; sub = sub->next)
		n += hub_push(h, sub->stream, f);
	atomic_fetch_add_explicit(&h->stats.events, n, memory_order_relaxed);
	return n;
}

uint64_t
hub_next_seq_locked(struct hub *h)
{
	return ++h->seq;
}

void
hub_event_id(struct hub *h, uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%" PRIu64, h->epoch, seq);
}

size_t
hub_publish_locked(struct hub *h, const char *name, size_t len, uint64_t seq,
    uint64_t now_ms, struct frame *f)
{
	history_expire(&h->history, now_ms);
	if (history_add(&h->history, name, len, seq, now_ms, f) == -1)
		log_warnx("history: out of memory; a resume past seq %" PRIu64
		    " will get a reset", seq);
	return hub_fanout_locked(h, name, len, f);
}

void
hub_lost_locked(struct hub *h, uint64_t seq)
{
	history_lost(&h->history, seq);
}

void
hub_expire_locked(struct hub *h, uint64_t now_ms)
{
	history_expire(&h->history, now_ms);
}

void
hub_outage_locked(struct hub *h)
{
	struct stream	*s;
	struct frame	*f;
	uint64_t	 seq;
	size_t		 n = 0;

	/* messages published while Redis was away never reached us */
	history_outage(&h->history, h->seq);
	if (h->head == NULL)
		return;
	seq = hub_next_seq_locked(h);
	if ((f = hub_reset_frame(h, seq, "redis-outage")) == NULL) {
		log_warnx("out of memory: open streams get no reset after the "
		    "Redis outage");
		return;
	}
	for (s = h->head; s != NULL; s = s->all_next)
		n += hub_push(h, s, f);
	frame_unref(f);
	log_info("redis: told %zu open streams to refetch (event: reset)", n);
}

void
hub_history_stats(struct hub *h, struct history_stats *out)
{
	hub_lock(h);
	*out = h->history.stats;
	hub_unlock(h);
}

size_t
hub_heartbeat_locked(struct hub *h, uint64_t elapsed_ms, uint64_t interval_ms,
    struct frame *ping)
{
	size_t	 due, n = 0;

	if (h->nstreams == 0 || interval_ms == 0) {
		h->hb_credit = 0;
		return 0;
	}
	h->hb_credit += (uint64_t)h->nstreams * elapsed_ms;
	due = (size_t)(h->hb_credit / interval_ms);
	if (due > h->nstreams) {
		/* late ticks: one ping each, not a burst of them */
		due = h->nstreams;
		h->hb_credit = 0;
	} else
		h->hb_credit -= (uint64_t)due * interval_ms;
	while (due-- > 0) {
		if (h->cursor == NULL)
			h->cursor = h->head;
		n += hub_push(h, h->cursor, ping);
		h->cursor = h->cursor->all_next;
	}
	atomic_fetch_add_explicit(&h->stats.heartbeats, n,
	    memory_order_relaxed);
	return n;
}

void
hub_close_all_locked(struct hub *h, struct frame *(*make_final)(void *),
    void *arg)
{
	struct stream	*s;
	struct frame	*f;

	h->closing = 1;
	for (s = h->head; s != NULL; s = s->all_next) {
		f = make_final != NULL ? make_final(arg) : NULL;
		if (stream_close(s, f))
			hub_queue_wake(h, s);
		frame_unref(f);
	}
}

size_t
hub_expire_tokens_locked(struct hub *h, time_t now)
{
	struct stream	*s;
	size_t		 n = 0;

	for (s = h->head; s != NULL; s = s->all_next)
		if (s->expires != 0 && s->expires <= now) {
			s->expires = 0;		/* once */
			if (stream_close(s, h->slow_final))
				hub_queue_wake(h, s);
			n++;
		}
	if (n > 0)
		log_debug("auth: %zu streams ended: their tokens expired", n);
	return n;
}

void
hub_wake_locked(struct hub *h)
{
	struct stream	*s;

	while ((s = h->wake) != NULL) {
		h->wake = s->wake_next;
		s->wake_next = NULL;
		s->wake_queued = 0;
		stream_wake(s);
	}
}
