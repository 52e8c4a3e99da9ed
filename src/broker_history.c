/*
 * broker_history.c - the history in Redis (--history redis): reads routed
 * to the server that serves their channel.
 *
 * Each node has a command connection (cmdlink.c) beside its subscribed
 * one; the hub posts a read (durable.h) through the mailbox, each of its
 * channels goes to the node the topology names (history_node), or waits
 * in b->unrouted until there is one (a cluster map, a sentinel's answer).
 * A read is handed back once every channel is answered and every
 * subscribed connection involved has read what Redis sent before the
 * answer (a barrier): no message is then missed or sent twice.
 *
 * THREADS: the broker thread only.
 */
#include "autoconf.h"

#include <stdlib.h>

#include "broker_int.h"
#include "cmdlink.h"
#include "config.h"
#include "durable.h"
#include "hub.h"
#include "log.h"

static void
broker_history_barrier(void *arg, int ok)
{
	struct durable_read	*r = arg;
	struct broker		*b = r->owner;

	/*
	 * Called as the PING's answer is read: the messages read before it
	 * are still in the batch, and must reach the hub first.
	 */
	broker_batch_flush(b);
	broker_batch_events(b);
	if (--r->barriers == 0)
		hub_recovered(b->hub, r);
}

/*
 * Every channel of a read is answered.  Before the hub hears of it, each
 * subscribed connection involved reads everything Redis sent it before it
 * answered (a PING there, see link_barrier): the messages published
 * before the read are then all in, so none is missed or sent twice.
 */
static void
broker_history_answered(struct durable_read *r)
{
	struct broker_node	*n, *seen[r->n > 0 ? r->n : 1];
	size_t			 i, k, nseen = 0;

	r->barriers = 1;	/* held until the loop below is done */
	for (i = 0; i < r->n; i++) {
		if ((n = r->chans[i].node) == NULL || n->link == NULL ||
		    link_state(n->link) != LINK_READY)
			continue;
		for (k = 0; k < nseen && seen[k] != n; k++)
			;
		if (k < nseen)
			continue;
		seen[nseen++] = n;
		if (link_barrier(n->link, broker_history_barrier, r) == 0)
			r->barriers++;
	}
	broker_history_barrier(r, 1);
}

/* cmdlink.h's done: one channel of r answered */
static void
broker_history_done(void *arg, struct durable_read *r, size_t i)
{
	if (++r->answered == r->n)
		broker_history_answered(r);
}

/* channel i of r waits for a node to read it from */
static void
broker_history_park(struct broker *b, struct durable_read *r, size_t i)
{
	struct broker_history_wait	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_warnx("out of memory: a history read fails");
		r->chans[i].status = DURABLE_FAILED;
		broker_history_done(b, r, i);
		return;
	}
	w->r = r;
	w->i = i;
	TAILQ_INSERT_TAIL(&b->unrouted, w, entry);
}

/* send channel i of r to its node, or keep it until there is one */
static void
broker_history_route(struct broker *b, struct durable_read *r, size_t i)
{
	struct broker_node	*n;

	if ((n = b->topo->history_node(b, r->chans[i].name,
	    r->chans[i].len)) != NULL && n->history != NULL &&
	    cmdlink_read(n->history, r, i) == 0) {
		r->chans[i].node = n;
		return;
	}
	broker_history_park(b, r, i);
}

/* a read from the hub (the mailbox): ours until handed back */
void
broker_history_post(struct broker *b, struct durable_read *r)
{
	size_t	 i;

	r->owner = b;
	if (r->n == 0) {
		hub_recovered(b->hub, r);
		return;
	}
	for (i = 0; i < r->n; i++)
		broker_history_route(b, r, i);
}

/* cmdlink_drain's fn: the read waits to be routed again */
void
broker_history_unroute(void *arg, struct durable_read *r, size_t i)
{
	r->chans[i].node = NULL;
	broker_history_park(arg, r, i);
}

/* reads that waited for a node (a cluster map, a sentinel's answer) */
void
broker_history_retry(struct broker *b)
{
	struct broker_history_waits	 l;
	struct broker_history_wait	*w;

	if (TAILQ_EMPTY(&b->unrouted))
		return;
	TAILQ_INIT(&l);
	TAILQ_CONCAT(&l, &b->unrouted, entry);
	while ((w = TAILQ_FIRST(&l)) != NULL) {
		TAILQ_REMOVE(&l, w, entry);
		broker_history_route(b, w->r, w->i);
		free(w);
	}
}

/* at the end: every read still waiting is answered, failed */
void
broker_history_fail(struct broker *b)
{
	struct broker_history_wait	*w;

	while ((w = TAILQ_FIRST(&b->unrouted)) != NULL) {
		TAILQ_REMOVE(&b->unrouted, w, entry);
		w->r->chans[w->i].status = DURABLE_FAILED;
		broker_history_done(b, w->r, w->i);
		free(w);
	}
}

/* a node's command connection, for the library and the reads */
void
broker_history_connect(struct broker *b, struct broker_node *n)
{
	if (b->library == NULL || n->history != NULL || !n->known)
		return;
	if ((n->history = cmdlink_new(&n->target, b->cfg->redis_timeout_ms,
	    b->library, b->library_version, broker_history_done, b)) == NULL)
		log_warnx("redis: out of memory for a command connection");
}
