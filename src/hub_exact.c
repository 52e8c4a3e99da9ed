/*
 * hub_exact.c - exact subscriptions (--redis-subscribe exact): a new
 * stream waits until Redis has confirmed the subscription of its
 * channels, and a stream whose channels were lost or let go of gets a
 * reset (or, with --history redis, a catch-up) once they are subscribed
 * again.
 *
 * DESIGN
 * Each membership (struct hub_sub) says whether it waits for its channel
 * (awaiting) and, if the stream may have missed messages on it, why
 * (missed: a reset's reason + 1).  A stream that awaits some is itself
 * awaiting (stream.c: it
 * writes nothing, its head included) and on the hub's awaiting list,
 * oldest first, until its last awaiting membership is confirmed, Redis is
 * lost, or it has waited the hub's longest wait (hub_exact_tick): then it
 * opens, and what it still waited for counts as missed.
 *
 * THREADS: the hub lock (hub_int.h); hub_channels and hub_redis_state are
 * the broker's, hub_exact_tick main's.
 */
#include "autoconf.h"

#include <pthread.h>
#include <string.h>
#include <sys/queue.h>

#include "frame.h"
#include "history.h"
#include "hub.h"
#include "hub_int.h"
#include "log.h"
#include "stream.h"
#include "table.h"

/*
 * Exact subscriptions: a new stream waits for the channels not subscribed
 * yet, while Redis is up; while it is down the stream opens now and is
 * told later.  Each awaiting membership is counted in s->nawaiting.
 */
void
hub_exact_await(struct hub *h, struct stream *s, struct hub_resume *res)
{
	struct hub_sub	*sub;
	size_t		 i;

	for (i = 0; i < s->nsubs; i++) {
		sub = &s->subs[i];
		sub->awaiting = sub->missed = 0;
		if (history_is_subscribed(&h->history,
		    sub->channel->entry->key, sub->channel->entry->len))
			continue;
		if (h->redis_up) {
			sub->awaiting = 1;
			s->nawaiting++;
		} else
			sub->missed = HUB_RESET_NOT_SUBSCRIBED + 1;
	}
	if (s->nawaiting > 0) {
		stream_await(s);
		TAILQ_INSERT_TAIL(&h->awaiting, s, awaits);
		res->awaiting = 1;
	}
}

/* let an awaiting stream open: what its memberships still await is missed */
static void
hub_exact_open(struct hub *h, struct stream *s)
{
	size_t	 i;

	for (i = 0; i < s->nsubs; i++)
		if (s->subs[i].awaiting) {
			s->subs[i].awaiting = 0;
			s->subs[i].missed = HUB_RESET_NOT_SUBSCRIBED + 1;
		}
	TAILQ_REMOVE(&h->awaiting, s, awaits);
	s->nawaiting = 0;
	hub_read_post(h, s);
	if (stream_await_end(s))
		hub_queue_wake(h, s);
}

/* open every awaiting stream (Redis is lost, or the daemon stops) */
void
hub_exact_open_all(struct hub *h)
{
	struct stream	*s;

	while ((s = TAILQ_FIRST(&h->awaiting)) != NULL)
		hub_exact_open(h, s);
}

/* s leaves the hub: off the awaiting list, if on it */
void
hub_exact_forget(struct hub *h, struct stream *s)
{
	if (s->nawaiting > 0)
		TAILQ_REMOVE(&h->awaiting, s, awaits);
	s->nawaiting = 0;
}

/* open the streams that awaited their subscriptions await_ms (main's
   clock) */
void
hub_exact_tick(struct hub *h, uint64_t now_ms)
{
	struct stream	*s;
	uint64_t	 now_us = now_ms * 1000;	/* the caller's clock */

	while ((s = TAILQ_FIRST(&h->awaiting)) != NULL &&
	    now_us >= s->opened_us &&
	    now_us - s->opened_us >= (uint64_t)h->await_ms * 1000) {
		log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_NUM("stream", s->id),
		    LOG_STR("reason", hub_reset_name(
		    HUB_RESET_NOT_SUBSCRIBED))), "a stream waited %u ms for "
		    "its subscriptions: it opens, and will get a reset",
		    h->await_ms);
		hub_exact_open(h, s);
	}
}

/* a reset to s for why, at most one per hub_channels call */
static void
hub_stream_reset(struct hub *h, struct stream *s, enum hub_reset why,
    struct frame **cache)
{
	if (s->reset_gen == h->gen)
		return;
	s->reset_gen = h->gen;
	if (cache[why] == NULL && (cache[why] = hub_reset_frame(h, why)) ==
	    NULL) {
		log_warnx("out of memory: a stream gets no reset after a "
		    "Redis subscription");
		return;
	}
	hub_push(h, s, cache[why]);
}

void
hub_channels(struct hub *h, enum hub_channel_event ev, const char **names,
    const size_t *lens, size_t n)
{
	struct frame		*cache[HUB_NRESETS];
	struct hub_channel	*c;
	struct hub_sub		*sub;
	struct stream		*s;
	const char		*catch_names[n > 0 ? n : 1];
	size_t			 catch_lens[n > 0 ? n : 1];
	size_t			 i, k, ncatch;
	unsigned char		 why;

	memset(cache, 0, sizeof(cache));
	why = (ev == HUB_CHANNEL_LOST ? HUB_RESET_REDIS_OUTAGE :
	    HUB_RESET_NOT_SUBSCRIBED) + 1;
	pthread_mutex_lock(&h->lock);
	h->gen++;
	ncatch = 0;
	for (i = 0; i < n; i++) {
		if (ev == HUB_CHANNEL_SUBSCRIBED) {
			/* every id given so far is from before it */
			if (history_subscribed(&h->history, names[i], lens[i],
			    h->seq) == -1)
				log_kv(LOG_LEVEL_WARN, HUB_CHANNEL(names[i],
				    lens[i]), "history: out of memory; resumes "
				    "on %.*s will get a reset", (int)lens[i],
				    names[i]);
		} else
			history_unsubscribed(&h->history, names[i], lens[i]);
		if ((c = hub_find(h, names[i], lens[i])) == NULL)
			continue;
		LIST_FOREACH(sub, &c->subs, entry) {
			s = sub->stream;
			if (ev != HUB_CHANNEL_SUBSCRIBED) {
				if (!sub->awaiting && !sub->missed)
					sub->missed = why;
				continue;
			}
			if (sub->missed && h->durable) {
				/* Redis kept it: the channel's streams catch
				   up (once for all of them), no reset */
				if (ncatch == 0 || catch_names[ncatch - 1] !=
				    names[i]) {
					catch_names[ncatch] = names[i];
					catch_lens[ncatch++] = lens[i];
				}
				sub->missed = 0;
			} else if (sub->missed) {
				hub_stream_reset(h, s,
				    (enum hub_reset)(sub->missed - 1), cache);
				sub->missed = 0;
			}
			if (sub->awaiting) {
				sub->awaiting = 0;
				if (--s->nawaiting == 0)
					hub_exact_open(h, s);
			}
		}
	}
	if (ncatch > 0)
		hub_catchup_start(h, catch_names, catch_lens, ncatch);
	for (k = 0; k < HUB_NRESETS; k++)
		frame_unref(cache[k]);
	hub_history_publish(h);
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_redis_state(struct hub *h, int up)
{
	pthread_mutex_lock(&h->lock);
	h->redis_up = up;
	/* no subscription can come now: awaiting streams open, and are told */
	if (!up)
		hub_exact_open_all(h);
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}
