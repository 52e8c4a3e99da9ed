/*
 * hub.c - channel table, subscriber lists, heartbeats, wakes.
 *
 * DESIGN
 * Channels live in a chained hash table keyed by their binary name; a
 * channel exists only while it has subscribers.  Each stream embeds its
 * memberships (struct hub_sub), so subscribing allocates nothing per
 * subscriber beyond a new channel.  Every stream is also on one list in
 * arrival order; the heartbeat walks it with a cursor, a share of it per
 * broker tick, so pings are spread evenly over the interval.
 * Thread and lock rules are in hub.h.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "hub.h"
#include "log.h"
#include "stream.h"

struct hub_channel {
	struct hub_channel	*next;		/* hash chain */
	struct hub_sub		*subs;
	size_t			 nsubs;
	uint32_t		 hash;
	size_t			 len;
	char			 name[];
};

struct hub {
	pthread_mutex_t		 lock;
	struct hub_channel	**bucket;
	size_t			 nbuckets;	/* power of two */
	size_t			 nchannels;
	struct stream		*head, *tail;	/* every stream */
	size_t			 nstreams;
	struct stream		*cursor;	/* next heartbeat, NULL: head */
	uint64_t		 hb_credit;	/* stream-ms owed to heartbeats */
	struct stream		*wake;		/* to wake at the batch end */
	int			 closing;
	struct frame		*slow_final;
	struct hub_stats	 stats;
};

static uint32_t
hub_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u;

	while (len--) {
		h ^= (unsigned char)*p++;
		h *= 16777619u;
	}
	return h;
}

struct hub *
hub_new(void)
{
	struct hub	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->nbuckets = 1024;
	if ((h->bucket = calloc(h->nbuckets, sizeof(*h->bucket))) == NULL) {
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	return h;
}

void
hub_free(struct hub *h)
{
	if (h == NULL)
		return;
	if (h->nstreams != 0 || h->nchannels != 0)
		fatalx("hub_free with %zu streams still registered",
		    h->nstreams);
	pthread_mutex_destroy(&h->lock);
	frame_unref(h->slow_final);
	free(h->bucket);
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
hub_find(struct hub *h, const char *name, size_t len, uint32_t hash)
{
	struct hub_channel	*c;

	for (c = h->bucket[hash & (h->nbuckets - 1)]; c != NULL; c = c->next)
		if (c->hash == hash && c->len == len &&
		    memcmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

static void
hub_grow(struct hub *h)
{
	struct hub_channel	**nb, *c, *next;
	size_t			  n = h->nbuckets * 2, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < h->nbuckets; i++)
		for (c = h->bucket[i]; c != NULL; c = next) {
			next = c->next;
			c->next = nb[c->hash & (n - 1)];
			nb[c->hash & (n - 1)] = c;
		}
	free(h->bucket);
	h->bucket = nb;
	h->nbuckets = n;
}

static struct hub_channel *
hub_channel_get(struct hub *h, const char *name, size_t len)
{
	struct hub_channel	*c;
	uint32_t		 hash = hub_hash(name, len);

	if ((c = hub_find(h, name, len, hash)) != NULL)
		return c;
	if ((c = calloc(1, sizeof(*c) + len)) == NULL)
		return NULL;
	c->hash = hash;
	c->len = len;
	memcpy(c->name, name, len);
	if (h->nchannels >= h->nbuckets)
		hub_grow(h);
	c->next = h->bucket[hash & (h->nbuckets - 1)];
	h->bucket[hash & (h->nbuckets - 1)] = c;
	h->nchannels++;
	return c;
}

static void
hub_channel_drop(struct hub *h, struct hub_channel *c)
{
	struct hub_channel	**pp;

	for (pp = &h->bucket[c->hash & (h->nbuckets - 1)]; *pp != c;
	    pp = &(*pp)->next)
		;
	*pp = c->next;
	h->nchannels--;
	free(c);
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
	if (--c->nsubs == 0)
		hub_channel_drop(h, c);
}

int
hub_add(struct hub *h, struct stream *s, const char **channels,
    const size_t *lens, size_t n)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	size_t			 i;

	if (n > sizeof(s->subs) / sizeof(s->subs[0]))
		return -1;
	hub_lock(h);
	if (h->closing) {
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
	return hub_find(h, name, len, hub_hash(name, len)) != NULL;
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

	if ((c = hub_find(h, name, len, hub_hash(name, len))) == NULL)
		return 0;
	for (sub = c->subs; sub != NULL; sub = sub->next)
		n += hub_push(h, sub->stream, f);
	atomic_fetch_add_explicit(&h->stats.events, n, memory_order_relaxed);
	return n;
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
