/*
 * broker_subs.c - what a node subscribes, and what Redis answers.
 *
 * With --subscribe pattern the one node does PSUBSCRIBE to each kind's
 * prefix and each broadcast channel (its glob characters escaped: one
 * command and one kind of message for all, rather than a SUBSCRIBE beside
 * it); once all are confirmed the hub is told (hub_subscribed) that what
 * was published before is lost to the open streams, which get a reset.
 * With --subscribe exact (and always in a cluster) subs.c decides which
 * channels to (S)SUBSCRIBE and (S)UNSUBSCRIBE from the hub's channel
 * interest (posted to the mailbox), where the topology routes them, and
 * each confirmation is passed to the hub per channel (hub_channels).
 *
 * Each node keeps the commands it sent in order (struct broker_sent):
 * Redis answers them in order, so the first unanswered one is the one an
 * answer or an error belongs to; an "unsubscribe" for a channel that
 * command does not name is Redis letting go by itself (a sharded slot
 * that moved, a primary that was demoted).  A channel Redis refused is
 * tried again after a pause.  THREADS: the broker thread only.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "broker_int.h"
#include "channel.h"
#include "config.h"
#include "hub.h"
#include "log.h"
#include "stats.h"

static void
broker_sent_free(struct broker_sent *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	free(c->lens);
	free(c);
}

/* forget the commands sent: their connection is gone */
void
broker_subs_clear(struct broker_node *n)
{
	struct broker_sent	*c;

	while ((c = TAILQ_FIRST(&n->sent)) != NULL) {
		TAILQ_REMOVE(&n->sent, c, entry);
		broker_sent_free(c);
	}
}

/* a node may carry subscriptions now: subscribe what it should */
void
broker_subs_start(struct broker *b, struct broker_node *n)
{
	struct channel_patterns	 p;

	n->attempts = 0;
	n->health = BROKER_NODE_NEW;
	if (b->subs != NULL) {
		/* exact: subs_flush sends the channels */
		n->ready = 1;
		if (b->topo->label != NULL)
			log_kv(LOG_LEVEL_INFO, LINK_FIELDS(n->link),
			    "redis: subscribing on %s (%s)",
			    link_name(n->link), b->topo->label);
		else
			log_kv(LOG_LEVEL_INFO, LINK_FIELDS(n->link),
			    "redis: subscribed on %s (exact channels: %zu "
			    "wanted)", link_name(n->link),
			    subs_count(b->subs));
		return;
	}
	if (channel_patterns(&b->cfg->channels, "PSUBSCRIBE", &p) == -1) {
		log_warnx("redis: out of memory for PSUBSCRIBE; reconnecting");
		n->kill = 1;
		return;
	}
	/* one answer per pattern */
	if (link_command(n->link, (int)p.argc, p.argv, p.lens) == 0)
		n->patterns_waiting = (unsigned)p.argc - 1;
	channel_patterns_free(&p);
}

static void
broker_subs_patterns_done(struct broker *b, struct broker_node *n)
{
	const struct channel_table *t = &b->cfg->channels;
	char			 list[512];
	size_t			 i, len = 0, all = t->nkinds + t->nbroadcasts;

	n->ready = 1;
	/* "user:*, upload:*, chat:room:* and notifications:broadcast" */
	list[0] = '\0';
	for (i = 0; i < all && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len,
		    "%s%s%s", i == 0 ? "" : i + 1 == all ? " and " : ", ",
		    i < t->nkinds ? t->kinds[i].prefix :
		    t->broadcasts[i - t->nkinds], i < t->nkinds ? "*" : "");
	log_kv(LOG_LEVEL_INFO, LINK_FIELDS(n->link),
	    "redis: subscribed to %s on %s", list, link_name(n->link));
	/* up before the resets go out: a client told may look */
	stats_redis(1, util_now_ms());
	b->up = 1;
	hub_subscribed(b->hub);
}

/* subs.h's route: the node a channel is subscribed on now, if ready */
static int
broker_subs_route(void *arg, const char *name, size_t len, int *node,
    unsigned *group)
{
	struct broker		*b = arg;
	struct broker_node	*n;

	*group = 0;
	if ((n = b->topo->route(b, name, len, group)) == NULL || !n->ready)
		return -1;
	*node = n->id;
	return 0;
}

/* subs.h's emit: one (un)subscribe command to a node */
static int
broker_subs_emit(void *arg, int node, int subscribe, const char **names,
    const size_t *lens, size_t n)
{
	struct broker		*b = arg;
	struct broker_node	*bn = broker_node_by_id(b, node);
	struct broker_sent	*c;
	const char		**argv = NULL;
	size_t			*alens = NULL, i;
	int			 r = -1;

	if (bn == NULL || !bn->ready || bn->link == NULL)
		return -1;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->names = calloc(n, sizeof(*c->names))) == NULL ||
	    (c->lens = calloc(n, sizeof(*c->lens))) == NULL ||
	    (argv = calloc(n + 1, sizeof(*argv))) == NULL ||
	    (alens = calloc(n + 1, sizeof(*alens))) == NULL)
		goto done;
	c->subscribe = subscribe;
	for (c->n = 0; c->n < n; c->n++) {
		if ((c->names[c->n] = malloc(lens[c->n] + 1)) == NULL)
			goto done;
		memcpy(c->names[c->n], names[c->n], lens[c->n]);
		c->names[c->n][lens[c->n]] = '\0';
		c->lens[c->n] = lens[c->n];
	}
	argv[0] = subscribe ? b->topo->subscribe : b->topo->unsubscribe;
	alens[0] = strlen(argv[0]);
	for (i = 0; i < n; i++) {
		argv[i + 1] = names[i];
		alens[i + 1] = lens[i];
	}
	if (link_command(bn->link, (int)n + 1, argv, alens) == -1)
		goto done;
	TAILQ_INSERT_TAIL(&bn->sent, c, entry);
	c = NULL;
	r = 0;
done:
	broker_sent_free(c);
	free(argv);
	free(alens);
	return r;
}

const struct subs_ops broker_subs_ops = {
	broker_subs_route, broker_subs_emit, broker_batch_notify,
};

/* an answer to one channel of an (un)subscribe command */
static void
broker_subs_answer(struct broker *b, struct broker_node *n,
    const char *ch, size_t len, int subscribe)
{
	struct broker_sent	*c = TAILQ_FIRST(&n->sent);
	size_t			 i;
	int			 ours = 0;

	if (c != NULL && c->subscribe == subscribe) {
		/* ours if the oldest command names it; else Redis's own */
		for (i = 0; i < c->n && !ours; i++)
			ours = c->lens[i] == len &&
			    memcmp(c->names[i], ch, len) == 0;
	}
	if (ours && ++c->answered == c->n) {
		TAILQ_REMOVE(&n->sent, c, entry);
		broker_sent_free(c);
	}
	if (!ours && !subscribe && b->topo->reroute != NULL) {
		/* a slot moved or its primary stepped down */
		log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("redis",
		    link_name(n->link)), LOG_MEM("channel", ch, len)),
		    "redis: %s let go of %.*s; following its slot",
		    link_name(n->link), (int)len, ch);
		b->topo->reroute(b, util_now_ms());
	}
	if (b->subs != NULL && subs_confirmed(b->subs, n->id, ch, len,
	    subscribe) == -1)
		log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_STR("redis",
		    link_name(n->link)), LOG_MEM("channel", ch, len)),
		    "redis: unexpected %ssubscribe for %.*s",
		    subscribe ? "" : "un", (int)len, ch);
}

/* an error: the oldest unanswered command was refused */
static void
broker_subs_refused(struct broker *b, struct broker_node *n, redisReply *r)
{
	struct broker_sent	*c = TAILQ_FIRST(&n->sent);
	struct answers_refusal	 a;
	uint64_t		 now = util_now_ms(), retry = BROKER_RETRY_MS;

	answers_refusal(r, &a);
	if (c == NULL) {
		log_kv(LOG_LEVEL_WARN, LINK_FIELDS(n->link),
		    "redis: error reply from %s: %s", link_name(n->link),
		    a.text);
		return;
	}
	if (a.kind != ANSWERS_REFUSED) {
		/* the map is old: read it, then send them where they go */
		log_kv(LOG_LEVEL_INFO, LINK_FIELDS(n->link),
		    "redis: %s: %s; reading the slot map again",
		    link_name(n->link), a.text);
		if (b->topo->reroute != NULL)
			b->topo->reroute(b, now);
		retry = BROKER_MOVED_RETRY_MS;
	} else
		log_kv(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("redis",
		    link_name(n->link)), LOG_NUM("count", c->n)),
		    "redis: %s of %zu channels refused by %s: %s; retrying",
		    c->subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", c->n,
		    link_name(n->link), a.text);
	TAILQ_REMOVE(&n->sent, c, entry);
	if (b->subs != NULL)
		subs_refused(b->subs, c->subscribe, (const char **)c->names,
		    c->lens, c->n, now + retry);
	broker_sent_free(c);
}

/* link.h's reply fn for a node: messages and subscription answers */
void
broker_subs_reply(void *arg, struct link *l, redisReply *r)
{
	struct broker_node	*n = arg;
	struct broker		*b = n->b;
	struct answers_pubsub	 a;

	if (n->role_check) {
		n->role_check = 0;
		b->topo->checked(b, n, r);
		freeReplyObject(r);
		return;
	}
	if (answers_pubsub(r, &a) == -1) {
		if (a.word != NULL)
			log_debug("redis: %s reply", a.word);
		freeReplyObject(r);
		return;
	}
	switch (a.kind) {
	case ANSWERS_MESSAGE:
		broker_batch_message(b, r, a.channel, a.channel_len,
		    a.payload, a.payload_len);
		return;		/* the batch's now */
	case ANSWERS_ERROR:
		broker_subs_refused(b, n, r);
		break;
	case ANSWERS_PSUBSCRIBED:
		if (n->patterns_waiting > 0 && --n->patterns_waiting == 0)
			broker_subs_patterns_done(b, n);
		break;
	case ANSWERS_SUBSCRIBED:
	case ANSWERS_UNSUBSCRIBED:
		broker_subs_answer(b, n, a.channel, a.channel_len,
		    a.kind == ANSWERS_SUBSCRIBED);
		break;
	default:
		break;
	}
	freeReplyObject(r);
}
