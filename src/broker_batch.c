/*
 * broker_batch.c - what one read brought, handed to the hub in order.
 *
 * The messages of one poll pass go to the hub in one call (hub_publish),
 * which wakes each stream once.  Channel events (subscribed, lost,
 * unsubscribed: subs.h's notify) coming one after another of one kind
 * are told in one call too, so a stream on several of the channels gets
 * one reset, not one per channel.  Order is kept: a batch of messages is
 * handed over before an event read after it, and the other way round.
 *
 * Message replies stay alive until their batch is handed over: the hub's
 * messages point into them.  THREADS: the broker thread only.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "broker_int.h"
#include "hub.h"
#include "log.h"
#include "stats.h"

static enum hub_channel_event
broker_batch_kind(enum subs_event ev)
{
	return ev == SUBS_SUBSCRIBED ? HUB_CHANNEL_SUBSCRIBED :
	    ev == SUBS_LOST ? HUB_CHANNEL_LOST : HUB_CHANNEL_UNSUBSCRIBED;
}

/* room for a batch up front: a flushed batch always has room again */
int
broker_batch_init(struct broker *b)
{
	b->batch_cap = 64;
	if ((b->batch = calloc(b->batch_cap, sizeof(*b->batch))) == NULL ||
	    (b->msgs = calloc(b->batch_cap, sizeof(*b->msgs))) == NULL)
		return -1;
	return 0;
}

void
broker_batch_free(struct broker *b)
{
	size_t	 i;

	for (i = 0; i < b->nev; i++)
		free(b->ev_names[i]);
	free(b->ev_names);
	free(b->ev_lens);
	free(b->batch);
	free(b->msgs);
}

/* tell the hub the channel events of the run, in one call */
void
broker_batch_events(struct broker *b)
{
	size_t	 i;

	if (b->nev == 0)
		return;
	hub_channels(b->hub, broker_batch_kind(b->ev),
	    (const char **)b->ev_names, b->ev_lens, b->nev);
	for (i = 0; i < b->nev; i++)
		free(b->ev_names[i]);
	b->nev = 0;
}

/* keep a message reply until the batch is handed over; -1 out of memory */
static int
broker_batch_add(struct broker *b, redisReply *r, const struct hub_message *m)
{
	size_t	 cap;
	void	*p;

	if (b->nbatch == b->batch_cap) {
		cap = b->batch_cap * 2;
		if ((p = reallocarray(b->batch, cap, sizeof(*b->batch))) ==
		    NULL)
			return -1;
		b->batch = p;
		if ((p = reallocarray(b->msgs, cap, sizeof(*b->msgs))) == NULL)
			return -1;
		b->msgs = p;
		b->batch_cap = cap;
	}
	b->batch[b->nbatch] = r;
	b->msgs[b->nbatch] = *m;
	b->nbatch++;
	return 0;
}

/* hand the batch to the hub, then let go of its replies */
void
broker_batch_flush(struct broker *b)
{
	size_t	 i;

	if (b->nbatch == 0)
		return;
	STATS_ADD(redis_messages, b->nbatch);
	hub_publish(b->hub, b->msgs, b->nbatch, util_now_us());
	for (i = 0; i < b->nbatch; i++)
		freeReplyObject(b->batch[i]);
	b->nbatch = 0;
}

/* a message; r is the batch's now, whatever happens */
void
broker_batch_message(struct broker *b, redisReply *r, const char *channel,
    size_t channel_len, const char *payload, size_t payload_len)
{
	struct hub_message	 m;

	m.channel = channel;
	m.channel_len = channel_len;
	m.payload = payload;
	m.payload_len = payload_len;
	/* the hub hears of a subscription before of what came after it */
	broker_batch_events(b);
	if (broker_batch_add(b, r, &m) == 0)
		return;		/* freed after the batch */
	/* the batch has room again once handed over */
	broker_batch_flush(b);
	if (broker_batch_add(b, r, &m) == 0)
		return;
	log_kv(LOG_LEVEL_WARN, LOG_FIELDS(LOG_MEM("channel", channel,
	    channel_len)), "out of memory: a message on %.*s dropped",
	    (int)channel_len, channel);
	freeReplyObject(r);
}

/*
 * subs.h's notify.  The messages read before the events are handed over
 * first, to keep the order.
 */
void
broker_batch_notify(void *arg, enum subs_event ev, const char **names,
    const size_t *lens, size_t n)
{
	struct broker	*b = arg;
	size_t		 i, cap;
	void		*p;

	broker_batch_flush(b);
	if (b->nev > 0 && b->ev != ev)
		broker_batch_events(b);
	b->ev = ev;
	for (i = 0; i < n; i++) {
		if (b->nev == b->ev_cap) {
			cap = b->ev_cap ? b->ev_cap * 2 : 64;
			if ((p = reallocarray(b->ev_names, cap,
			    sizeof(*b->ev_names))) == NULL)
				goto nomem;
			b->ev_names = p;
			if ((p = reallocarray(b->ev_lens, cap,
			    sizeof(*b->ev_lens))) == NULL)
				goto nomem;
			b->ev_lens = p;
			b->ev_cap = cap;
		}
		if ((b->ev_names[b->nev] = malloc(lens[i] + 1)) == NULL)
			goto nomem;
		memcpy(b->ev_names[b->nev], names[i], lens[i]);
		b->ev_names[b->nev][lens[i]] = '\0';
		b->ev_lens[b->nev++] = lens[i];
	}
	return;
nomem:
	/* told now, in smaller calls, rather than not at all */
	broker_batch_events(b);
	hub_channels(b->hub, broker_batch_kind(ev), names + i, lens + i,
	    n - i);
}
