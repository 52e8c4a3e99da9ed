/*
 * subs.c - exact subscriptions.  See subs.h.
 *
 * DESIGN
 * One record per channel that is wanted, lingering, or not yet let go of
 * by Redis.  It remembers the last command sent for it (subscribe or
 * unsubscribe), how many of each are still unanswered, and whether Redis
 * has it subscribed now.  Redis answers a node's commands in order, so an
 * "unsubscribe" for a channel while none of our UNSUBSCRIBEs is
 * unanswered is Redis letting go by itself (a sharded slot that moved):
 * the channel is lost and, if still wanted, subscribed again.
 *
 * A record waits on the pending list until a flush sends what it needs,
 * and on the linger list (in expiry order: the linger is the same for
 * every channel, so appending keeps the order) until its linger is over.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "log.h"
#include "subs.h"
#include "table.h"

struct subs_chan {
	struct table_entry	*entry;
	TAILQ_ENTRY(subs_chan)	 pending;
	TAILQ_ENTRY(subs_chan)	 lingering;
	int			 on_pending;
	int			 on_linger;
	uint64_t		 linger_until;
	int			 want;
	int			 active;	/* Redis has it subscribed */
	int			 last_sent;	/* 1 SUB, 0 UNSUB, -1 none */
	unsigned		 unanswered_sub;
	unsigned		 unanswered_unsub;
	int			 node;		/* of the last command */
	uint64_t		 retry_at;	/* refused: not before */
	/* a flush's routing, for sorting into commands */
	int			 route_node;
	unsigned		 route_group;
};

TAILQ_HEAD(subs_list, subs_chan);

struct subs {
	struct table		 chans;
	struct subs_list	 pending;
	struct subs_list	 linger;
	unsigned		 linger_ms;
	size_t			 batch;
	struct subs_ops		 ops;
	void			*arg;
	struct subs_stats	 stats;
};

struct subs *
subs_new(unsigned linger_ms, size_t batch, const struct subs_ops *ops,
    void *arg)
{
	struct subs	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (table_init(&s->chans) == -1) {
		free(s);
		return NULL;
	}
	TAILQ_INIT(&s->pending);
	TAILQ_INIT(&s->linger);
	s->linger_ms = linger_ms;
	s->batch = batch > 0 ? batch : 1;
	s->ops = *ops;
	s->arg = arg;
	return s;
}

static void
subs_drop(struct subs *s, struct subs_chan *c)
{
	if (c->on_pending)
		TAILQ_REMOVE(&s->pending, c, pending);
	if (c->on_linger)
		TAILQ_REMOVE(&s->linger, c, lingering);
	table_remove(&s->chans, c->entry);
	free(c);
}

void
subs_free(struct subs *s)
{
	struct subs_chan	*c;
	size_t			 i;

	if (s == NULL)
		return;
	for (i = 0; i < s->chans.nbuckets; i++)
		while (s->chans.bucket[i] != NULL) {
			c = s->chans.bucket[i]->value;
			subs_drop(s, c);
		}
	table_free(&s->chans);
	free(s);
}

void
subs_set_linger(struct subs *s, unsigned linger_ms)
{
	s->linger_ms = linger_ms;
}

static struct subs_chan *
subs_find(struct subs *s, const char *name, size_t len)
{
	struct table_entry	*e = table_find(&s->chans, name, len);

	return e != NULL ? e->value : NULL;
}

static void
subs_queue(struct subs *s, struct subs_chan *c)
{
	if (!c->on_pending) {
		TAILQ_INSERT_TAIL(&s->pending, c, pending);
		c->on_pending = 1;
	}
}

/* nothing more to do for it: no stream, no linger, Redis let go */
static int
subs_done(const struct subs_chan *c)
{
	return !c->want && !c->on_linger && !c->active &&
	    c->unanswered_sub == 0 && c->unanswered_unsub == 0;
}

/* the command a channel needs now: 1 SUB, 0 UNSUB, -1 none */
static int
subs_needs(const struct subs_chan *c)
{
	if (c->want)
		return c->last_sent == 1 ? -1 : 1;
	if (c->on_linger || c->last_sent != 1)
		return -1;
	return 0;
}

int
subs_want(struct subs *s, const char *name, size_t len, int want,
    uint64_t now_ms)
{
	struct subs_chan	*c;

	if ((c = subs_find(s, name, len)) == NULL) {
		if (!want)
			return 0;
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return -1;
		if ((c->entry = table_insert(&s->chans, name, len)) == NULL) {
			free(c);
			return -1;
		}
		c->entry->value = c;
		c->last_sent = -1;
	}
	c->want = want;
	if (c->on_linger) {
		TAILQ_REMOVE(&s->linger, c, lingering);
		c->on_linger = 0;
	}
	if (want) {
		if (c->last_sent != 1)
			subs_queue(s, c);
	} else if (c->last_sent == 1) {
		c->linger_until = now_ms + s->linger_ms;
		TAILQ_INSERT_TAIL(&s->linger, c, lingering);
		c->on_linger = 1;
	} else if (subs_done(c))
		subs_drop(s, c);
	return 0;
}

static int
subs_cmp(const void *a, const void *b)
{
	const struct subs_chan *x = *(struct subs_chan *const *)a;
	const struct subs_chan *y = *(struct subs_chan *const *)b;

	if (x->route_node != y->route_node)
		return x->route_node < y->route_node ? -1 : 1;
	if (x->route_group != y->route_group)
		return x->route_group < y->route_group ? -1 : 1;
	return 0;
}

/* send one command for run[0..n), all of one node and group */
static void
subs_emit(struct subs *s, int subscribe, struct subs_chan **run, size_t n)
{
	const char	*names[n];
	size_t		 lens[n], i;

	for (i = 0; i < n; i++) {
		names[i] = run[i]->entry->key;
		lens[i] = run[i]->entry->len;
	}
	if (s->ops.emit(s->arg, run[0]->route_node, subscribe, names, lens,
	    n) == -1)
		return;		/* still pending: next flush */
	if (subscribe)
		s->stats.subscribe_cmds++;
	else
		s->stats.unsubscribe_cmds++;
	for (i = 0; i < n; i++) {
		run[i]->last_sent = subscribe;
		run[i]->node = run[i]->route_node;
		if (subscribe)
			run[i]->unanswered_sub++;
		else
			run[i]->unanswered_unsub++;
		TAILQ_REMOVE(&s->pending, run[i], pending);
		run[i]->on_pending = 0;
	}
}

/* the pending channels needing this kind of command, in commands */
static void
subs_send(struct subs *s, int subscribe, uint64_t now_ms)
{
	struct subs_chan	*c, **v;
	size_t			 n = 0, i, j;

	TAILQ_FOREACH(c, &s->pending, pending)
		n++;
	if (n == 0 || (v = calloc(n, sizeof(*v))) == NULL)
		return;
	n = 0;
	TAILQ_FOREACH(c, &s->pending, pending) {
		if (subs_needs(c) != subscribe || c->retry_at > now_ms)
			continue;
		if (s->ops.route(s->arg, c->entry->key, c->entry->len,
		    &c->route_node, &c->route_group) == -1)
			continue;	/* no connection for it yet */
		v[n++] = c;
	}
	qsort(v, n, sizeof(*v), subs_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && j - i < s->batch &&
		    subs_cmp(&v[i], &v[j]) == 0; j++)
			;
		subs_emit(s, subscribe, v + i, j - i);
	}
	free(v);
}

void
subs_flush(struct subs *s, uint64_t now_ms)
{
	struct subs_chan	*c, *next;

	while ((c = TAILQ_FIRST(&s->linger)) != NULL &&
	    c->linger_until <= now_ms) {
		TAILQ_REMOVE(&s->linger, c, lingering);
		c->on_linger = 0;
		if (c->last_sent == 1)
			subs_queue(s, c);
		else if (subs_done(c))
			subs_drop(s, c);
	}
	/* drop what no longer needs a command (wanted again, say) */
	for (c = TAILQ_FIRST(&s->pending); c != NULL; c = next) {
		next = TAILQ_NEXT(c, pending);
		if (subs_needs(c) != -1)
			continue;
		TAILQ_REMOVE(&s->pending, c, pending);
		c->on_pending = 0;
		if (subs_done(c))
			subs_drop(s, c);
	}
	subs_send(s, 1, now_ms);
	subs_send(s, 0, now_ms);
}

uint64_t
subs_next_ms(const struct subs *s, uint64_t now_ms)
{
	const struct subs_chan	*c;
	uint64_t		 at = UINT64_MAX;

	/* a refused channel waits; anything else pending is due now */
	TAILQ_FOREACH(c, &s->pending, pending)
		if (c->retry_at < at)
			at = c->retry_at;
	if ((c = TAILQ_FIRST(&s->linger)) != NULL && c->linger_until < at)
		at = c->linger_until;
	if (at == UINT64_MAX)
		return UINT64_MAX;
	return at > now_ms ? at - now_ms : 0;
}

static void
subs_tell(struct subs *s, enum subs_event ev, struct subs_chan *c)
{
	const char	*name = c->entry->key;
	size_t		 len = c->entry->len;

	s->ops.notify(s->arg, ev, &name, &len, 1);
}

int
subs_confirmed(struct subs *s, int node, const char *name, size_t len,
    int subscribed)
{
	struct subs_chan	*c;

	if ((c = subs_find(s, name, len)) == NULL)
		return -1;
	if (subscribed) {
		if (c->unanswered_sub == 0)
			return -1;
		c->unanswered_sub--;
		if (!c->active) {
			c->active = 1;
			s->stats.channels++;
			subs_tell(s, SUBS_SUBSCRIBED, c);
		}
	} else if (c->unanswered_unsub > 0) {
		c->unanswered_unsub--;
		if (c->active) {
			c->active = 0;
			s->stats.channels--;
			subs_tell(s, SUBS_UNSUBSCRIBED, c);
		}
	} else {
		/* Redis let go by itself: the channel was lost */
		if (node != c->node || !c->active)
			return -1;
		c->active = 0;
		s->stats.channels--;
		c->last_sent = -1;
		subs_tell(s, SUBS_LOST, c);
		if (c->want)
			subs_queue(s, c);
	}
	if (subs_done(c))
		subs_drop(s, c);
	return 0;
}

void
subs_refused(struct subs *s, int subscribe, const char **names,
    const size_t *lens, size_t n, uint64_t retry_ms)
{
	struct subs_chan	*c;
	size_t			 i;

	for (i = 0; i < n; i++) {
		if ((c = subs_find(s, names[i], lens[i])) == NULL)
			continue;
		if (subscribe && c->unanswered_sub > 0)
			c->unanswered_sub--;
		else if (!subscribe && c->unanswered_unsub > 0)
			c->unanswered_unsub--;
		c->last_sent = -1;
		c->retry_at = retry_ms;
		if (c->want || c->active)
			subs_queue(s, c);
		else if (subs_done(c))
			subs_drop(s, c);
	}
}

void
subs_lost(struct subs *s, int node)
{
	struct subs_chan	*c;
	struct table_entry	*e, *next;
	const char		**names;
	size_t			*lens, n = 0, i;

	if ((names = calloc(s->chans.count + 1, sizeof(*names))) == NULL ||
	    (lens = calloc(s->chans.count + 1, sizeof(*lens))) == NULL) {
		free(names);
		fatalx("subs_lost: out of memory");
	}
	for (i = 0; i < s->chans.nbuckets; i++)
		for (e = s->chans.bucket[i]; e != NULL; e = e->next) {
			c = e->value;
			if (node != -1 && c->node != node)
				continue;
			if (c->last_sent == -1 && !c->active)
				continue;	/* never sent anywhere */
			c->unanswered_sub = c->unanswered_unsub = 0;
			c->last_sent = -1;
			if (c->active) {
				c->active = 0;
				s->stats.channels--;
				names[n] = c->entry->key;
				lens[n++] = c->entry->len;
			}
		}
	if (n > 0)
		s->ops.notify(s->arg, SUBS_LOST, names, lens, n);
	free(names);
	free(lens);
	/* then: the wanted ones again, the rest let go */
	for (i = 0; i < s->chans.nbuckets; i++)
		for (e = s->chans.bucket[i]; e != NULL; e = next) {
			next = e->next;
			c = e->value;
			if (c->last_sent != -1)
				continue;
			if (c->on_linger) {
				/* its history is gone: nothing to linger for */
				TAILQ_REMOVE(&s->linger, c, lingering);
				c->on_linger = 0;
			}
			if (c->want)
				subs_queue(s, c);
			else if (subs_done(c))
				subs_drop(s, c);
		}
}

size_t
subs_count(const struct subs *s)
{
	return s->chans.count;
}

void
subs_get_stats(const struct subs *s, struct subs_stats *out)
{
	*out = s->stats;
}
