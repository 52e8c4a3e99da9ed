/*
 * hub.c - channels, their subscribers, the fan-out and the wakes; a
 * stream's joining and leaving.
 *
 * DESIGN
 * Channels live in a hash table (table.c) keyed by their binary name; a
 * channel exists only while it has subscribers.  Each stream embeds its
 * memberships (struct hub_sub), so subscribing allocates nothing per
 * subscriber beyond a new channel.  Every stream is also on one list
 * (shutdown closes them all).  Heartbeats and token expiry are the
 * writers' (writer.c): each times its own streams.
 *
 * A message's life is behind hub_publish(): its id and its place in the
 * history (hub_history.c, or Redis's: hub_durable.c), its one encoding
 * into a frame, the fan-out to the subscribers' rings (here) and, once
 * per batch, the wake of every stream that was waiting: each goes on its
 * writer's dirty list, and each writer that got one is signalled once
 * (wake_flush).  A new stream joins under the same lock: its start
 * (a resume, a backlog, a read of Redis's history) and its memberships in
 * one step, so nothing published meanwhile is missed or queued twice.
 * With exact subscriptions it may wait for them first (hub_exact.c).
 *
 * With a mailbox, a channel that gets its first stream and one that loses
 * its last are posted to the broker (channel interest), under the hub
 * lock, so the broker sees them in the order they happened.
 *
 * Thread and lock rules are in hub.h.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "frame.h"
#include "history.h"
#include "hub.h"
#include "hub_int.h"
#include "log.h"
#include "mailbox.h"
#include "stats.h"
#include "stream.h"
#include "table.h"
#include "util.h"

struct hub *
hub_new(const struct hub_config *cfg)
{
	struct hub	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if (table_init(&h->chans) == -1)
		goto bad;
	if (history_init(&h->history, cfg->history_size, cfg->history_ttl_s,
	    cfg->history_bytes, cfg->exact) == -1) {
		table_free(&h->chans);
		goto bad;
	}
	h->format = cfg->format;
	h->mailbox = cfg->mailbox;
	h->exact = cfg->exact;
	h->durable = cfg->durable;
	h->presence = cfg->presence;
	TAILQ_INIT(&h->owed);
	if (table_init(&h->by_id) == -1) {
		history_free(&h->history);
		table_free(&h->chans);
		goto bad;
	}
	h->await_ms = cfg->await_ms;
	TAILQ_INIT(&h->awaiting);
	TAILQ_INIT(&h->streams);
	TAILQ_INIT(&h->catchups);
	STAILQ_INIT(&h->wakes);
	h->wake_flush = cfg->wake_flush;
	h->wake_arg = cfg->wake_arg;
	snprintf(h->epoch, sizeof(h->epoch), "%08" PRIx32, util_random());
	pthread_mutex_init(&h->lock, NULL);
	return h;
bad:
	free(h);
	return NULL;
}

void
hub_free(struct hub *h)
{
	if (h == NULL)
		return;
	if (h->nstreams != 0 || h->chans.count != 0)
		fatalx("hub_free with %zu streams still registered",
		    h->nstreams);
	hub_catchup_free(h);
	pthread_mutex_destroy(&h->lock);
	frame_unref(h->retry);
	history_free(&h->history);
	table_free(&h->chans);
	table_free(&h->by_id);
	free(h);
}

void
hub_set_retry(struct hub *h, struct frame *f)
{
	pthread_mutex_lock(&h->lock);
	frame_unref(h->retry);
	h->retry = f != NULL ? frame_ref(f) : NULL;
	pthread_mutex_unlock(&h->lock);
}

struct hub_channel *
hub_find(struct hub *h, const char *name, size_t len)
{
	struct table_entry	*e;

	e = table_find(&h->chans, name, len);
	return e != NULL ? e->value : NULL;
}

/* the broker may want to know; it must not miss an interest it acts on */
static int
hub_interest(struct hub *h, enum mailbox_op op, const char *name, size_t len)
{
	if (h->mailbox == NULL || !h->exact)
		return 0;
	if (mailbox_post(h->mailbox, op, name, len) == -1) {
		log_kv(LOG_LEVEL_WARN, HUB_CHANNEL(name, len), "out of memory "
		    "telling the broker about channel %.*s", (int)len, name);
		return -1;
	}
	return 0;
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
	if (hub_interest(h, MAILBOX_INTEREST, name, len) == -1) {
		table_remove(&h->chans, c->entry);
		free(c);
		return NULL;
	}
	c->entry->value = c;
	LIST_INIT(&c->subs);
	return c;
}

static void
hub_unsubscribe(struct hub *h, struct hub_sub *sub)
{
	struct hub_channel	*c = sub->channel;

	hub_presence_forget(h, sub);
	LIST_REMOVE(sub, entry);
	sub->channel = NULL;
	if (--c->nsubs == 0) {
		hub_interest(h, MAILBOX_NO_INTEREST, c->entry->key,
		    c->entry->len);
		table_remove(&h->chans, c->entry);
		free(c);
	}
}

void
hub_queue_wake(struct hub *h, struct stream *s)
{
	if (s->wake_queued)
		return;
	s->wake_queued = 1;
	STAILQ_INSERT_TAIL(&h->wakes, s, wake);
}

/* queue f to s; 1 if it was queued */
int
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
		STATS_ADD(slow_closes, 1);
		if (stream_close(s, h->retry))
			hub_queue_wake(h, s);
		return 0;
	case STREAM_PUSH_CLOSED:
	case STREAM_PUSH_DUPLICATE:
		break;
	}
	return 0;
}

/*
 * Wake every stream queued to during this batch, each once (onto its
 * writer's dirty list), then signal each writer that got one, once.
 */
void
hub_wake(struct hub *h)
{
	struct stream	*s;
	int		 any = 0;

	while ((s = STAILQ_FIRST(&h->wakes)) != NULL) {
		STAILQ_REMOVE_HEAD(&h->wakes, wake);
		s->wake_queued = 0;
		stream_wake(s);
		any = 1;
	}
	if (any && h->wake_flush != NULL)
		h->wake_flush(h->wake_arg);
}

int
hub_add(struct hub *h, struct stream *s, const char **channels0,
    const size_t *lens0, size_t n, const char *last_event_id,
    unsigned last, struct hub_resume *res)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	struct hub_resume	 dummy;
	const char		*channels[n > 0 ? n : 1];
	size_t			 lens[n > 0 ? n : 1];
	size_t			 i;

	if (n > s->maxsubs)
		return -1;
	memcpy(channels, channels0, n * sizeof(*channels));
	memcpy(lens, lens0, n * sizeof(*lens));
	if (h->durable)
		hub_durable_sort(channels, lens, n);

	if (res == NULL)
		res = &dummy;
	res->replayed = res->backlog = 0;
	res->reset = -1;
	res->awaiting = 0;
	pthread_mutex_lock(&h->lock);
	if (h->closing)
		goto bad;
	if (!h->durable && hub_history_start(h, s, channels, lens, n,
	    last_event_id, last, res) == -1)
		goto bad;
	for (i = 0; i < n; i++) {
		if ((c = hub_channel_get(h, channels[i], lens[i])) == NULL) {
			while (i-- > 0)
				hub_unsubscribe(h, &s->subs[i]);
			goto bad;
		}
		sub = &s->subs[i];
		sub->stream = s;
		sub->channel = c;
		LIST_INSERT_HEAD(&c->subs, sub, entry);
		c->nsubs++;
		hub_presence_owe(h, sub);
	}
	s->nsubs = n;
	if (h->exact)
		hub_exact_await(h, s, res);
	s->id = ++h->next_id;	/* for the logs too (http_events.c) */
	if (h->durable && hub_durable_start(h, s, channels, lens, n,
	    last_event_id, last, res) == -1)
		goto unsubscribe;

	TAILQ_INSERT_TAIL(&h->streams, s, all);
	h->nstreams++;
	s->registered = 1;
	s->opened_us = util_now_us();
	pthread_mutex_unlock(&h->lock);
	STATS_ADD(streams_open, 1);
	STATS_ADD(streams_opened, 1);
	return 0;
unsubscribe:
	hub_exact_forget(h, s);
	(void)stream_await_end(s);	/* not attached: no wake */
	for (i = 0; i < n; i++)
		hub_unsubscribe(h, &s->subs[i]);
	s->nsubs = 0;
bad:
	pthread_mutex_unlock(&h->lock);
	return -1;
}

void
hub_remove(struct hub *h, struct stream *s)
{
	size_t	 i;

	pthread_mutex_lock(&h->lock);
	if (!s->registered) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	/* wakes are done before the lock is let go of */
	if (s->wake_queued)
		fatalx("hub_remove: stream on the wake list");
	for (i = 0; i < s->nsubs; i++)
		hub_unsubscribe(h, &s->subs[i]);
	s->nsubs = 0;
	TAILQ_REMOVE(&h->streams, s, all);
	h->nstreams--;
	hub_exact_forget(h, s);
	if (h->durable)
		hub_durable_forget(h, s);
	s->registered = 0;
	pthread_mutex_unlock(&h->lock);
	STATS_SUB(streams_open, 1);
}

/* queue f to every subscriber of the channel; returns how many */
size_t
hub_fanout(struct hub *h, const char *name, size_t len, struct frame *f)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	size_t			 n = 0;

	if ((c = hub_find(h, name, len)) == NULL)
		return 0;
	LIST_FOREACH(sub, &c->subs, entry)
		n += hub_push(h, sub->stream, f);
	return n;
}

void
hub_publish(struct hub *h, const struct hub_message *m, size_t n,
    uint64_t recv_us)
{
	uint64_t	 now_ms = util_now_ms();
	size_t		 i;

	pthread_mutex_lock(&h->lock);
	history_expire(&h->history, now_ms);
	for (i = 0; i < n; i++) {
		if (h->durable)
			hub_durable_message(h, &m[i], recv_us);
		else
			hub_history_message(h, &m[i], now_ms, recv_us);
	}
	hub_history_publish(h);
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_subscribed(struct hub *h)
{
	pthread_mutex_lock(&h->lock);
	if (h->durable) {
		/* Redis kept it: every open stream catches up, no reset */
		h->subscribed_once = 1;
		hub_catchup_start(h, NULL, NULL, 0);
	} else
		hub_history_subscribed(h);
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_tick(struct hub *h, uint64_t now_ms)
{
	pthread_mutex_lock(&h->lock);
	hub_exact_tick(h, now_ms);
	history_expire(&h->history, now_ms);
	hub_history_publish(h);
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_close_all(struct hub *h, struct frame *(*make_final)(void *), void *arg)
{
	struct stream	*s;
	struct frame	*f;

	pthread_mutex_lock(&h->lock);
	h->closing = 1;
	hub_exact_open_all(h);
	TAILQ_FOREACH(s, &h->streams, all) {
		f = make_final != NULL ? make_final(arg) : NULL;
		if (stream_close(s, f))
			hub_queue_wake(h, s);
		frame_unref(f);
	}
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_history_stats(struct hub *h, struct history_stats *out)
{
	pthread_mutex_lock(&h->lock);
	*out = h->history.stats;
	pthread_mutex_unlock(&h->lock);
}
