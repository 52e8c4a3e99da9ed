/*
 * broker.c - the Redis thread.
 *
 * DESIGN
 * One thread owns every Redis connection (link.c); nothing else touches
 * them.  Its loop is redis-py's get_message(timeout) over all of them at
 * once: poll the connections and the mailbox's eventfd for at most
 * --poll-timeout, read what came, hand each batch of messages to the hub
 * in one call (hub_publish), which ids, encodes, keeps and fans out each
 * message and wakes each stream once.  Nothing here waits for a client,
 * and no connection waits for another: connects, handshakes and writes
 * never block.  Heartbeats are not queued here (main.c does it) so that
 * they go on whatever Redis does.
 *
 * Where it subscribes (struct broker_node, one per Redis server):
 * - one Redis (--redis): one node;
 * - Sentinel (--redis-sentinel): one node, whose address sentinel.c finds
 *   and finds again after every loss; a +switch-master drops it at once
 *   for the new master, and a server the sentinels name must answer ROLE
 *   "master" before anything is subscribed on it;
 * - Cluster (--redis-cluster): the slot map comes from CLUSTER SLOTS
 *   (cluster.c), read from a seed or a known primary by a short-lived
 *   control connection, on start, after any error that says the map
 *   changed, and every BROKER_CLUSTER_REFRESH_MS.  Sharded: one node per
 *   primary that serves a subscribed slot, each channel SSUBSCRIBEd on its
 *   slot's primary, one command per slot.  Classic: one node, any node,
 *   SUBSCRIBE, since a classic PUBLISH reaches every node.
 *
 * What it subscribes.  With --subscribe pattern the one node does
 * PSUBSCRIBE to each kind's prefix and each broadcast channel (its glob
 * characters escaped: one command and one kind of message for all, rather
 * than a SUBSCRIBE beside it); once all are confirmed the hub is told
 * (hub_subscribed) that what was published before is lost to the open
 * streams, which get a reset.  With --subscribe exact (and always in a
 * cluster) subs.c decides which channels to (S)SUBSCRIBE and
 * (S)UNSUBSCRIBE from the hub's channel interest (posted to the mailbox),
 * and each confirmation is passed to the hub per channel (hub_channels).
 *
 * Each node keeps its commands in order (struct broker_cmd): Redis answers
 * them in order, so the first unanswered one is the one an answer or an
 * error belongs to; an "unsubscribe" for a channel that command does not
 * name is Redis letting go by itself (a sharded slot that moved, a primary
 * that was demoted).
 *
 * Reconnect: jittered exponential backoff from 100 ms.  A refused
 * connection (Redis restarting on this host) costs Redis nothing, so those
 * retries stay at most 1 s apart and delivery resumes within a second of
 * Redis coming back; other failures (timeouts, AUTH errors) back off up to
 * 5 s.  A channel Redis refused is tried again after a pause.
 */
#include "autoconf.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "broker.h"
#include "channel.h"
#include "cluster.h"
#include "cmdlink.h"
#include "config.h"
#include "durable.h"
#include "hub.h"
#include "link.h"
#include "log.h"
#include "mailbox.h"
#include "sentinel.h"
#include "slot.h"
#include "stats.h"
#include "subs.h"
#include "util.h"

#define BROKER_BACKOFF_MIN_MS		100
#define BROKER_BACKOFF_MAX_MS		5000
#define BROKER_REFUSED_MAX_MS		1000
#define BROKER_BATCH_CHANNELS		500	/* named in one command */
#define BROKER_RETRY_MS			1000	/* a refused channel */
#define BROKER_MOVED_RETRY_MS		50	/* a moved one: after the map */
#define BROKER_CLUSTER_REFRESH_MS	10000
#define BROKER_CLUSTER_FAILING_MS	500	/* while a primary is down */
#define BROKER_SEEDS_MAX		64

/* an (un)subscribe command waiting for its answers */
struct broker_cmd {
	TAILQ_ENTRY(broker_cmd)	 entry;
	int			 subscribe;	/* 1, 0 */
	size_t			 n;		/* channels named */
	size_t			 answered;
	char			**names;
	size_t			*lens;
};

TAILQ_HEAD(broker_cmds, broker_cmd);

/* one Redis server the broker subscribes on */
struct broker_node {
	TAILQ_ENTRY(broker_node) entry;
	struct broker		*b;
	int			 id;		/* subs.h's node */
	struct link_target	 target;
	char			 host[UTIL_HOST_MAX];
	struct link		*link;		/* NULL between attempts */
	int			 ready;		/* subscribed as it should be */
	int			 ever_ready;
	int			 kill;		/* drop the link at the check */
	int			 resolved;	/* sentinel: target is known */
	int			 role_check;	/* sentinel: ROLE asked */
	int			 wanted;	/* cluster: keep it connected */
	int			 stale;		/* cluster: not a primary now */
	unsigned		 attempts;	/* failed connects in a row */
	uint64_t		 next_attempt_ms;
	int			 warned;	/* lost/down already said */
	unsigned		 patterns_waiting; /* PSUBSCRIBE answers */
	struct broker_cmds	 cmds;		/* unanswered, oldest first */
	struct cmdlink		*cmd;		/* --history redis */
};

TAILQ_HEAD(broker_nodes, broker_node);

/* a channel of a history read that waits for its node */
struct broker_read {
	TAILQ_ENTRY(broker_read) entry;
	struct durable_read	*r;
	size_t			 i;
};

TAILQ_HEAD(broker_reads, broker_read);

enum broker_mode {
	BROKER_SINGLE = 0,
	BROKER_SENTINEL,
	BROKER_CLUSTER,
};

struct broker {
	const struct config	*cfg;
	struct hub		*hub;
	struct mailbox		*mailbox;
	pthread_t		 thread;
	atomic_int		 stop;
	enum broker_mode	 mode;
	int			 sharded;	/* cluster: SSUBSCRIBE */

	struct broker_nodes	 nodes;
	int			 next_id;
	struct subs		*subs;		/* exact subscriptions */
	struct sentinel		*sentinel;

	/* cluster */
	struct cluster_map	 map;
	int			 map_ok;
	struct util_addr	 seeds[BROKER_SEEDS_MAX];
	size_t			 nseeds;
	struct link		*control;	/* CLUSTER SLOTS, while asked */
	char			 control_host[UTIL_HOST_MAX];
	size_t			 control_next;	/* candidate to ask next */
	int			 control_sent;
	uint64_t		 next_refresh_ms;
	int			 warned_map;
	struct broker_node	*classic;	/* cluster classic: the node */

	/* --history redis */
	char			*library;
	char			*library_version;
	struct broker_reads	 unrouted;	/* no node for them yet */

	redisReply		**batch;	/* message replies of one read */
	struct hub_message	*msgs;		/* their messages */
	size_t			 nbatch, batch_cap;
	/* channel events of one read, in a run of one kind */
	enum subs_event		 ev;
	char			**ev_names;
	size_t			*ev_lens;
	size_t			 nev, ev_cap;
	int			 up;		/* what redis_up says now */
};

static void	broker_reply(void *, struct link *, redisReply *);

static void
broker_cmd_free(struct broker_cmd *c)
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

static void
broker_cmds_clear(struct broker_cmds *l)
{
	struct broker_cmd	*c;

	while ((c = TAILQ_FIRST(l)) != NULL) {
		TAILQ_REMOVE(l, c, entry);
		broker_cmd_free(c);
	}
}

/* ---- messages and channel events, in the order read ---------------------- */

/* tell the hub the channel events of the run, in one call */
static void
broker_events_flush(struct broker *b)
{
	size_t	 i;

	if (b->nev == 0)
		return;
	hub_channels(b->hub, b->ev == SUBS_SUBSCRIBED ?
	    HUB_CHANNEL_SUBSCRIBED : b->ev == SUBS_LOST ? HUB_CHANNEL_LOST :
	    HUB_CHANNEL_UNSUBSCRIBED, (const char **)b->ev_names, b->ev_lens,
	    b->nev);
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
static void
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

static void
broker_message(struct broker *b, redisReply *r, redisReply *ch,
    redisReply *payload)
{
	struct hub_message	 m;

	if (ch->type != REDIS_REPLY_STRING ||
	    payload->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return;
	}
	m.channel = ch->str;
	m.channel_len = ch->len;
	m.payload = payload->str;
	m.payload_len = payload->len;
	/* the hub hears of a subscription before of what came after it */
	broker_events_flush(b);
	if (broker_batch_add(b, r, &m) == 0)
		return;		/* freed after the batch */
	/* the batch has room again once handed over */
	broker_batch_flush(b);
	if (broker_batch_add(b, r, &m) == 0)
		return;
	log_warnx("out of memory: a message on %.*s dropped", (int)ch->len,
	    ch->str);
	freeReplyObject(r);
}

/*
 * subs.h's notify.  Events of one kind coming one after another (the
 * answers to one SUBSCRIBE, say) are told in one call, so that a stream
 * on several of the channels gets one reset, not one per channel; the
 * messages read before them are handed over first, to keep the order.
 */
static void
broker_notify(void *arg, enum subs_event ev, const char **names,
    const size_t *lens, size_t n)
{
	struct broker	*b = arg;
	size_t		 i, cap;
	void		*p;

	broker_batch_flush(b);
	if (b->nev > 0 && b->ev != ev)
		broker_events_flush(b);
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
	broker_events_flush(b);
	hub_channels(b->hub, ev == SUBS_SUBSCRIBED ? HUB_CHANNEL_SUBSCRIBED :
	    ev == SUBS_LOST ? HUB_CHANNEL_LOST : HUB_CHANNEL_UNSUBSCRIBED,
	    names + i, lens + i, n - i);
}

/* ---- nodes ------------------------------------------------------------- */

static struct broker_node *
broker_node_new(struct broker *b, const char *host, int port)
{
	const struct redis_url	*u = &b->cfg->redis_url;
	struct broker_node	*n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->b = b;
	n->id = b->next_id++;
	if (host != NULL)
		snprintf(n->host, sizeof(n->host), "%s", host);
	n->target.host = host != NULL ? n->host : NULL;
	n->target.port = port;
	n->target.user = u->user;
	n->target.password = u->password;
	n->target.db = u->db;
	TAILQ_INIT(&n->cmds);
	TAILQ_INSERT_TAIL(&b->nodes, n, entry);
	return n;
}

static void	broker_read_unroute(void *, struct durable_read *, size_t);

static void
broker_node_free(struct broker *b, struct broker_node *n)
{
	/* its reads go to whichever server serves their slots now */
	if (n->cmd != NULL)
		cmdlink_drain(n->cmd, broker_read_unroute, b);
	TAILQ_REMOVE(&b->nodes, n, entry);
	if (b->classic == n)
		b->classic = NULL;
	broker_cmds_clear(&n->cmds);
	link_free(n->link);
	cmdlink_free(n->cmd);
	free(n);
}

static struct broker_node *
broker_node_find(struct broker *b, const char *host, int port)
{
	struct broker_node	*n;

	TAILQ_FOREACH(n, &b->nodes, entry)
		if (n->target.port == port && strcmp(n->host, host) == 0)
			return n;
	return NULL;
}

static void
broker_node_address(struct broker_node *n, const char *host, int port)
{
	snprintf(n->host, sizeof(n->host), "%s", host);
	n->target.host = n->host;
	n->target.port = port;
}

/* a node may carry subscriptions now: subscribe what it should */
static void
broker_node_subscribe(struct broker *b, struct broker_node *n)
{
	struct channel_patterns	 p;

	n->attempts = 0;
	n->warned = 0;
	if (b->subs != NULL) {
		/* exact: subs_flush sends the channels */
		n->ready = 1;
		if (b->mode == BROKER_CLUSTER)
			log_info("redis: subscribing on %s (cluster, %s)",
			    link_name(n->link), b->sharded ? "sharded" :
			    "classic");
		else
			log_info("redis: subscribed on %s (exact channels: "
			    "%zu wanted)", link_name(n->link),
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

/* a node's handshake is done */
static void
broker_node_ready(struct broker *b, struct broker_node *n)
{
	static const char *role[1] = { "ROLE" };
	static const size_t role_len[1] = { 4 };

	n->ever_ready = 1;
	if (b->mode != BROKER_SENTINEL) {
		broker_node_subscribe(b, n);
		return;
	}
	/* what the sentinels say may be a moment old: ask the server */
	if (link_command(n->link, 1, role, role_len) == 0)
		n->role_check = 1;
}

/* the answer to ROLE: a master goes on, anything else is dropped */
static void
broker_node_role(struct broker *b, struct broker_node *n, redisReply *r)
{
	n->role_check = 0;
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "master") == 0) {
		broker_node_subscribe(b, n);
		return;
	}
	log_warnx("redis: %s, named by the sentinels, is not a master (%s); "
	    "asking them again", link_name(n->link),
	    r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str :
	    r->type == REDIS_REPLY_ERROR ? r->str : "no ROLE");
	n->resolved = 0;	/* not there: ask the sentinels again */
	n->kill = 1;
}

static void	broker_cluster_refresh(struct broker *, uint64_t);

static void
broker_node_down(struct broker *b, struct broker_node *n, uint64_t now)
{
	unsigned	 cap, base, delay;
	int		 refused = link_refused(n->link);

	if (n->kill && link_state(n->link) != LINK_DEAD)
		log_info("redis: leaving %s", link_name(n->link));
	else if (n->ready || n->ever_ready) {
		if (!n->warned)
			log_warnx("redis: connection to %s lost: %s; "
			    "reconnecting", link_name(n->link),
			    link_error(n->link));
		n->attempts = 0;
	} else if (!n->warned)
		log_warnx("redis: cannot connect to %s: %s; retrying",
		    link_name(n->link), link_error(n->link));
	else
		log_debug("redis: connect to %s: %s", link_name(n->link),
		    link_error(n->link));
	n->warned = 1;
	broker_batch_flush(b);
	broker_events_flush(b);
	if (n->ready) {
		if (!n->kill || b->mode == BROKER_SENTINEL)
			STATS_ADD(redis_reconnects, 1);
		if (b->subs != NULL) {
			subs_lost(b->subs, n->id);
			broker_events_flush(b);
		}
	}
	n->ready = 0;
	n->ever_ready = 0;
	n->patterns_waiting = 0;
	n->role_check = 0;
	broker_cmds_clear(&n->cmds);
	link_free(n->link);
	n->link = NULL;
	cap = refused ? BROKER_REFUSED_MAX_MS : BROKER_BACKOFF_MAX_MS;
	base = BROKER_BACKOFF_MIN_MS << (n->attempts < 6 ? n->attempts : 6);
	if (base > cap)
		base = cap;
	n->attempts++;
	/* half fixed, half random: instances do not retry in step */
	delay = base / 2 + util_random() % (base / 2 + 1);
	n->next_attempt_ms = now + delay;
	if (b->mode == BROKER_SENTINEL) {
		if (n->kill && n->resolved)
			n->next_attempt_ms = now;	/* a failover: go now */
		else {
			/* ask where the master is before trying again */
			n->resolved = 0;
			sentinel_resolve(b->sentinel);
		}
	} else if (b->mode == BROKER_CLUSTER)
		broker_cluster_refresh(b, now);	/* a failover, perhaps */
	n->kill = 0;
}

static void
broker_node_connect(struct broker *b, struct broker_node *n, uint64_t now)
{
	if (n->link != NULL || now < n->next_attempt_ms)
		return;
	if (b->mode == BROKER_SENTINEL && !n->resolved)
		return;
	if (b->mode == BROKER_CLUSTER && (!n->wanted || n->stale))
		return;
	if ((n->link = link_new(&n->target, b->cfg->redis_timeout_ms,
	    broker_reply, n)) == NULL) {
		n->next_attempt_ms = now + BROKER_BACKOFF_MAX_MS;
		log_warnx("redis: out of memory for a connection");
	}
}

/* after I/O: a link that became ready, or died */
static void
broker_node_check(struct broker *b, struct broker_node *n, uint64_t now)
{
	if (n->link == NULL)
		return;
	link_tick(n->link, now);
	if (link_state(n->link) == LINK_DEAD || n->kill)
		broker_node_down(b, n, now);
	else if (link_state(n->link) == LINK_READY && !n->ever_ready)
		broker_node_ready(b, n);
}

/* ---- subscriptions ----------------------------------------------------- */

static void
broker_subscribed_patterns(struct broker *b, struct broker_node *n)
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
	log_info("redis: subscribed to %s on %s", list, link_name(n->link));
	/* up before the resets go out: a client told may look */
	STATS_SET(redis_up, 1);
	b->up = 1;
	hub_subscribed(b->hub);
}

/* the node for a cluster primary, made when first needed */
static struct broker_node *
broker_cluster_node(struct broker *b, int primary)
{
	const struct util_addr	*p = &b->map.primaries[primary];
	struct broker_node		*n;

	if ((n = broker_node_find(b, p->host, p->port)) == NULL &&
	    (n = broker_node_new(b, p->host, p->port)) == NULL)
		return NULL;
	n->stale = 0;
	n->wanted = 1;
	return n;
}

/* subs.h's route: the node a channel is subscribed on now, if ready */
static int
broker_route(void *arg, const char *name, size_t len, int *node,
    unsigned *group)
{
	struct broker		*b = arg;
	struct broker_node	*n;
	int			 p;

	*group = 0;
	if (b->mode != BROKER_CLUSTER)
		n = TAILQ_FIRST(&b->nodes);
	else if (!b->sharded)
		n = b->classic;
	else {
		if (!b->map_ok || (p = cluster_map_primary(&b->map, name,
		    len)) == -1)
			return -1;
		if ((n = broker_cluster_node(b, p)) == NULL)
			return -1;
		/* one SSUBSCRIBE names channels of one slot only */
		*group = slot_of(name, len);
	}
	if (n == NULL || !n->ready)
		return -1;
	*node = n->id;
	return 0;
}

static struct broker_node *
broker_node_by_id(struct broker *b, int id)
{
	struct broker_node	*n;

	TAILQ_FOREACH(n, &b->nodes, entry)
		if (n->id == id)
			return n;
	return NULL;
}

static int
broker_emit(void *arg, int node, int subscribe, const char **names,
    const size_t *lens, size_t n)
{
	struct broker		*b = arg;
	struct broker_node	*bn = broker_node_by_id(b, node);
	struct broker_cmd	*c;
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
	if (b->sharded)
		argv[0] = subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE";
	else
		argv[0] = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
	alens[0] = strlen(argv[0]);
	for (i = 0; i < n; i++) {
		argv[i + 1] = names[i];
		alens[i + 1] = lens[i];
	}
	if (link_command(bn->link, (int)n + 1, argv, alens) == -1)
		goto done;
	TAILQ_INSERT_TAIL(&bn->cmds, c, entry);
	c = NULL;
	r = 0;
done:
	broker_cmd_free(c);
	free(argv);
	free(alens);
	return r;
}

/* an answer to one channel of an (un)subscribe command */
static void
broker_answer(struct broker *b, struct broker_node *n, redisReply *ch,
    int subscribe)
{
	struct broker_cmd	*c = TAILQ_FIRST(&n->cmds);
	size_t			 i;
	int			 ours = 0;

	if (ch->type != REDIS_REPLY_STRING)
		return;
	if (c != NULL && c->subscribe == subscribe) {
		/* ours if the oldest command names it; else Redis's own */
		for (i = 0; i < c->n && !ours; i++)
			ours = c->lens[i] == ch->len &&
			    memcmp(c->names[i], ch->str, ch->len) == 0;
	}
	if (ours && ++c->answered == c->n) {
		TAILQ_REMOVE(&n->cmds, c, entry);
		broker_cmd_free(c);
	}
	if (!ours && !subscribe && b->mode == BROKER_CLUSTER) {
		/* a slot moved or its primary stepped down */
		log_info("redis: %s let go of %.*s; following its slot",
		    link_name(n->link), (int)ch->len, ch->str);
		broker_cluster_refresh(b, util_now_ms());
	}
	if (b->subs != NULL && subs_confirmed(b->subs, n->id, ch->str,
	    ch->len, subscribe) == -1)
		log_debug("redis: unexpected %ssubscribe for %.*s",
		    subscribe ? "" : "un", (int)ch->len, ch->str);
}

/* an error: the oldest unanswered command was refused */
static void
broker_refused(struct broker *b, struct broker_node *n, redisReply *r)
{
	struct broker_cmd	*c = TAILQ_FIRST(&n->cmds);
	uint64_t		 now = util_now_ms(), retry = BROKER_RETRY_MS;
	int			 moved;

	moved = strncmp(r->str, "MOVED ", 6) == 0 ||
	    strncmp(r->str, "ASK ", 4) == 0;
	if (c == NULL) {
		log_warnx("redis: error reply from %s: %s", link_name(n->link),
		    r->str);
		return;
	}
	if (moved) {
		/* the map is old: read it, then send them where they go */
		log_info("redis: %s: %s; reading the slot map again",
		    link_name(n->link), r->str);
		broker_cluster_refresh(b, now);
		retry = BROKER_MOVED_RETRY_MS;
	} else
		log_warnx("redis: %s of %zu channels refused by %s: %s; "
		    "retrying", c->subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE",
		    c->n, link_name(n->link), r->str);
	TAILQ_REMOVE(&n->cmds, c, entry);
	if (b->subs != NULL)
		subs_refused(b->subs, c->subscribe, (const char **)c->names,
		    c->lens, c->n, now + retry);
	broker_cmd_free(c);
}

/* every reply of a node's ready link: messages and subscription answers */
static void
broker_reply(void *arg, struct link *l, redisReply *r)
{
	struct broker_node	*n = arg;
	struct broker		*b = n->b;
	const char		*kind;

	if (n->role_check) {
		broker_node_role(b, n, r);
		freeReplyObject(r);
		return;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		broker_refused(b, n, r);
		freeReplyObject(r);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return;
	}
	kind = r->element[0]->str;
	if (strcmp(kind, "pmessage") == 0 && r->elements == 4) {
		broker_message(b, r, r->element[2], r->element[3]);
		return;
	}
	if (strcmp(kind, "message") == 0 || strcmp(kind, "smessage") == 0) {
		broker_message(b, r, r->element[1], r->element[2]);
		return;
	}
	if (strcmp(kind, "psubscribe") == 0) {
		if (n->patterns_waiting > 0 && --n->patterns_waiting == 0)
			broker_subscribed_patterns(b, n);
	} else if (strcmp(kind, "subscribe") == 0 ||
	    strcmp(kind, "ssubscribe") == 0)
		broker_answer(b, n, r->element[1], 1);
	else if (strcmp(kind, "unsubscribe") == 0 ||
	    strcmp(kind, "sunsubscribe") == 0)
		broker_answer(b, n, r->element[1], 0);
	else
		log_debug("redis: %s reply", kind);
	freeReplyObject(r);
}

/* ---- the history in Redis ------------------------------------------------ */

static void
broker_read_barrier(void *arg, int ok)
{
	struct durable_read	*r = arg;
	struct broker		*b = r->owner;

	/*
	 * Called as the PING's answer is read: the messages read before it
	 * are still in the batch, and must reach the hub first.
	 */
	broker_batch_flush(b);
	broker_events_flush(b);
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
broker_read_answered(struct broker *b, struct durable_read *r)
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
		if (link_barrier(n->link, broker_read_barrier, r) == 0)
			r->barriers++;
	}
	broker_read_barrier(r, 1);
}

/* cmdlink.h's done: one channel of r answered */
static void
broker_read_done(void *arg, struct durable_read *r, size_t i)
{
	struct broker	*b = arg;

	if (++r->answered == r->n)
		broker_read_answered(b, r);
}

/* the node that serves a channel's history, or NULL for now */
static struct broker_node *
broker_read_node(struct broker *b, const char *name, size_t len)
{
	struct broker_node	*n;
	int			 p;

	if (b->mode != BROKER_CLUSTER) {
		n = TAILQ_FIRST(&b->nodes);
		return n->cmd != NULL ? n : NULL;
	}
	if (!b->map_ok || (p = cluster_map_primary(&b->map, name, len)) == -1)
		return NULL;
	n = broker_node_find(b, b->map.primaries[p].host,
	    b->map.primaries[p].port);
	return n != NULL && n->cmd != NULL ? n : NULL;
}

/* channel i of r waits for a node to read it from (broker_reads_retry) */
static void
broker_read_park(struct broker *b, struct durable_read *r, size_t i)
{
	struct broker_read	*br;

	if ((br = calloc(1, sizeof(*br))) == NULL) {
		log_warnx("out of memory: a history read fails");
		r->chans[i].status = DURABLE_FAILED;
		broker_read_done(b, r, i);
		return;
	}
	br->r = r;
	br->i = i;
	TAILQ_INSERT_TAIL(&b->unrouted, br, entry);
}

/* send channel i of r to its node, or keep it until there is one */
static void
broker_read_route(struct broker *b, struct durable_read *r, size_t i)
{
	struct broker_node	*n;

	if ((n = broker_read_node(b, r->chans[i].name, r->chans[i].len)) !=
	    NULL && cmdlink_read(n->cmd, r, i) == 0) {
		r->chans[i].node = n;
		return;
	}
	broker_read_park(b, r, i);
}

static void
broker_read(struct broker *b, struct durable_read *r)
{
	size_t	 i;

	r->owner = b;
	if (r->n == 0) {
		hub_recovered(b->hub, r);
		return;
	}
	for (i = 0; i < r->n; i++)
		broker_read_route(b, r, i);
}

/* cmdlink_drain's fn: the read waits to be routed again */
static void
broker_read_unroute(void *arg, struct durable_read *r, size_t i)
{
	r->chans[i].node = NULL;
	broker_read_park(arg, r, i);
}

/* reads that waited for a node (a cluster map, a sentinel's answer) */
static void
broker_reads_retry(struct broker *b)
{
	struct broker_reads	 l;
	struct broker_read	*br;

	if (TAILQ_EMPTY(&b->unrouted))
		return;
	TAILQ_INIT(&l);
	TAILQ_CONCAT(&l, &b->unrouted, entry);
	while ((br = TAILQ_FIRST(&l)) != NULL) {
		TAILQ_REMOVE(&l, br, entry);
		broker_read_route(b, br->r, br->i);
		free(br);
	}
}

/* a node's command connection, for the library and the reads */
static void
broker_node_cmd(struct broker *b, struct broker_node *n)
{
	if (b->library == NULL || n->cmd != NULL ||
	    (b->mode == BROKER_SENTINEL && !n->resolved))
		return;
	if ((n->cmd = cmdlink_new(&n->target, b->cfg->redis_timeout_ms,
	    b->library, b->library_version, broker_read_done, b)) == NULL)
		log_warnx("redis: out of memory for a command connection");
}

/* ---- sentinel ---------------------------------------------------------- */

static void
broker_sentinel_master(void *arg, const char *host, int port)
{
	struct broker		*b = arg;
	struct broker_node	*n = TAILQ_FIRST(&b->nodes);

	if (!n->resolved || strcmp(n->host, host) != 0 ||
	    n->target.port != port)
		log_info("sentinel: %s is at %s:%d",
		    b->cfg->redis_sentinel_master, host, port);
	/* when to connect is the backoff's business */
	if (n->cmd != NULL && (strcmp(n->host, host) != 0 ||
	    n->target.port != port)) {
		cmdlink_free(n->cmd);	/* its reads are answered, failed */
		n->cmd = NULL;
	}
	broker_node_address(n, host, port);
	n->resolved = 1;
	broker_node_cmd(b, n);
}

static void
broker_sentinel_switched(void *arg, const char *host, int port)
{
	struct broker		*b = arg;
	struct broker_node	*n = TAILQ_FIRST(&b->nodes);

	cmdlink_free(n->cmd);		/* its reads are answered, failed */
	n->cmd = NULL;
	broker_node_address(n, host, port);
	n->resolved = 1;
	broker_node_cmd(b, n);
	if (n->link != NULL)
		n->kill = 1;		/* an outage: see broker_node_down */
	else
		n->next_attempt_ms = 0;
}

static const struct sentinel_ops broker_sentinel_ops = {
	broker_sentinel_master, broker_sentinel_switched,
};

/* ---- cluster ----------------------------------------------------------- */

/* read the slot map again soon (now, if nothing is under way) */
static void
broker_cluster_refresh(struct broker *b, uint64_t now)
{
	if (b->mode == BROKER_CLUSTER && b->control == NULL &&
	    b->next_refresh_ms > now)
		b->next_refresh_ms = now;
}

/*
 * A node the map names cannot be reached: a failover is likely under way,
 * and the map is read again every BROKER_CLUSTER_FAILING_MS until it says
 * who serves those slots now.
 */
static int
broker_cluster_failing(struct broker *b)
{
	struct broker_node	*n;

	TAILQ_FOREACH(n, &b->nodes, entry)
		if (!n->stale && (n->wanted || n->cmd != NULL) &&
		    (n->warned || (n->cmd != NULL && !cmdlink_ready(n->cmd) &&
		    n->link == NULL)))
			return 1;
	return 0;
}

/* the nodes the map does not name any more, and the classic node */
static void
broker_cluster_apply(struct broker *b)
{
	struct broker_node	*n, *next;
	int			 p;

	for (n = TAILQ_FIRST(&b->nodes); n != NULL; n = next) {
		next = TAILQ_NEXT(n, entry);
		if (n == b->classic)
			continue;
		p = cluster_map_find(&b->map, n->host, n->target.port);
		n->stale = p == -1;
		if (!n->stale)
			continue;
		if (n->link != NULL) {
			log_info("redis: %s is not a primary any more",
			    link_name(n->link));
			n->kill = 1;	/* its channels go where they belong */
		} else
			broker_node_free(b, n);
	}
	/* the history: the library on every primary, reads on theirs */
	if (b->library != NULL) {
		size_t	 i;

		for (i = 0; i < b->map.nprimaries; i++) {
			if ((n = broker_node_find(b, b->map.primaries[i].host,
			    b->map.primaries[i].port)) == NULL &&
			    (n = broker_node_new(b, b->map.primaries[i].host,
			    b->map.primaries[i].port)) == NULL)
				continue;
			n->stale = 0;
			broker_node_cmd(b, n);
		}
	}
	if (!b->sharded && b->classic == NULL && b->map.nprimaries > 0) {
		/* classic: any node will do, a PUBLISH reaches them all */
		b->classic = broker_node_new(b, b->map.primaries[0].host,
		    b->map.primaries[0].port);
		if (b->classic != NULL)
			b->classic->wanted = 1;
	}
}

static void
broker_control_reply(void *arg, struct link *l, redisReply *r)
{
	struct broker	*b = arg;
	char		 err[256];

	if (cluster_map_read(&b->map, r, b->control_host, err,
	    sizeof(err)) == -1) {
		log_warnx("redis: cluster map from %s: %s", link_name(l), err);
	} else {
		if (!b->map_ok || b->warned_map)
			log_info("redis: cluster map from %s: %zu primaries, "
			    "%zu of %d slots served", link_name(l),
			    b->map.nprimaries, b->map.covered, SLOT_COUNT);
		b->map_ok = 1;
		b->warned_map = 0;
		broker_cluster_apply(b);
		b->next_refresh_ms = util_now_ms() + (broker_cluster_failing(b) ?
		    BROKER_CLUSTER_FAILING_MS : BROKER_CLUSTER_REFRESH_MS);
	}
	b->control_sent = 2;
	freeReplyObject(r);
}

/* a seed or a known primary to ask for the map, in turn */
static void
broker_control_connect(struct broker *b)
{
	const struct util_addr	*p;
	struct link_target		 t;
	size_t				 ncand = b->nseeds +
					    b->map.nprimaries;

	p = b->control_next < b->map.nprimaries ?
	    &b->map.primaries[b->control_next] :
	    &b->seeds[(b->control_next - b->map.nprimaries) % b->nseeds];
	b->control_next = (b->control_next + 1) % ncand;
	memset(&t, 0, sizeof(t));
	t.host = p->host;
	t.port = p->port;
	t.user = b->cfg->redis_url.user;
	t.password = b->cfg->redis_url.password;
	snprintf(b->control_host, sizeof(b->control_host), "%s", p->host);
	b->control_sent = 0;
	b->control = link_new(&t, b->cfg->redis_timeout_ms,
	    broker_control_reply, b);
}

static void
broker_control_step(struct broker *b, uint64_t now)
{
	static const char *argv[2] = { "CLUSTER", "SLOTS" };
	static const size_t lens[2] = { 7, 5 };

	if (b->control == NULL) {
		if (now >= b->next_refresh_ms)
			broker_control_connect(b);
		return;
	}

	link_tick(b->control, now);
	if (link_state(b->control) == LINK_DEAD) {
		if (!b->warned_map)
			log_warnx("redis: cannot read the cluster map from %s: "
			    "%s; trying the next node", link_name(b->control),
			    link_error(b->control));
		b->warned_map = 1;
		link_free(b->control);
		b->control = NULL;
		/* every candidate in turn, then a pause */
		b->next_refresh_ms = b->control_next == 0 ?
		    now + BROKER_BACKOFF_MAX_MS / 5 : now;
		return;
	}
	if (link_state(b->control) == LINK_READY && b->control_sent == 0 &&
	    link_command(b->control, 2, argv, lens) == 0)
		b->control_sent = 1;
	if (b->control_sent == 2) {
		link_free(b->control);
		b->control = NULL;
	}
}

/* ---- the loop ---------------------------------------------------------- */

/*
 * Requests from other threads.  Channel interest matters only to exact
 * subscriptions; with patterns every channel is subscribed already.
 */
static void
broker_mail(struct broker *b, uint64_t now)
{
	struct mailbox_items	 items = STAILQ_HEAD_INITIALIZER(items);
	struct mailbox_item	*it;

	mailbox_take(b->mailbox, &items);
	STAILQ_FOREACH(it, &items, entry) {
		if (it->op == MAILBOX_READ) {
			broker_read(b, it->ptr);
			it->ptr = NULL;		/* ours now */
		} else if (it->op != MAILBOX_WAKE && b->subs != NULL &&
		    subs_want(b->subs, it->channel, it->len,
		    it->op == MAILBOX_INTEREST, now) == -1)
			log_warnx("out of memory: channel %s not "
			    "(un)subscribed", it->channel);
	}
	mailbox_items_free(&items);
}

/*
 * Redis is up when the subscriptions can be made: with patterns once
 * confirmed (broker_subscribed_patterns), exact once the node is ready,
 * in a cluster once the map is read and no node it needs has failed (a
 * node being connected for its first channels is not down).
 */
static void
broker_state(struct broker *b)
{
	struct broker_node	*n;
	struct subs_stats	 ss;
	int			 up = 1, any = 0;

	if (b->subs == NULL) {
		n = TAILQ_FIRST(&b->nodes);
		up = n->ready && n->patterns_waiting == 0;
	} else {
		if (b->mode == BROKER_CLUSTER && !b->map_ok)
			up = 0;
		TAILQ_FOREACH(n, &b->nodes, entry) {
			if (b->mode == BROKER_CLUSTER && !n->wanted)
				continue;
			any = 1;
			if (b->mode == BROKER_CLUSTER ? n->warned : !n->ready)
				up = 0;
		}
		if (b->mode != BROKER_CLUSTER && !any)
			up = 0;
		subs_get_stats(b->subs, &ss);
		STATS_SET(redis_channels, ss.channels);
		STATS_SET(redis_subscribes, ss.subscribe_cmds);
		STATS_SET(redis_unsubscribes, ss.unsubscribe_cmds);
	}
	if (up == b->up)
		return;
	b->up = up;
	STATS_SET(redis_up, up);
	if (b->subs != NULL)
		hub_redis_state(b->hub, up);
}

static uint64_t
broker_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* what each entry of the poll set is */
enum broker_fd {
	BROKER_FD_MAILBOX = 0,
	BROKER_FD_NODE,		/* a node's subscribed connection */
	BROKER_FD_CMD,		/* a node's command connection */
	BROKER_FD_CONTROL,	/* the cluster map's */
	BROKER_FD_SENTINEL,
};

static void
broker_step(struct broker *b)
{
	struct broker_node	*n, *next;
	struct pollfd		*pfd;
	enum broker_fd		*kind;
	struct broker_node	**owner;
	uint64_t		 now = util_now_ms(), wait;
	nfds_t			 np = 1, nmax, ns, k;
	size_t			 count = 0;

	for (n = TAILQ_FIRST(&b->nodes); n != NULL; n = next) {
		next = TAILQ_NEXT(n, entry);
		broker_node_connect(b, n, now);
		broker_node_check(b, n, now);
		if (n->stale && n->link == NULL && b->mode == BROKER_CLUSTER)
			broker_node_free(b, n);
		else
			count++;
	}
	if (b->mode == BROKER_CLUSTER)
		broker_control_step(b, now);
	broker_reads_retry(b);
	if (b->subs != NULL)
		subs_flush(b->subs, now);
	broker_state(b);

	/* mailbox, two per node, control, two sentinel connections */
	nmax = 1 + 2 * count + 1 + 2;
	pfd = calloc(nmax, sizeof(*pfd));
	kind = calloc(nmax, sizeof(*kind));
	owner = calloc(nmax, sizeof(*owner));
	if (pfd == NULL || kind == NULL || owner == NULL) {
		free(pfd);
		free(kind);
		free(owner);
		poll(NULL, 0, (int)b->cfg->poll_ms);
		return;
	}
	wait = b->cfg->poll_ms;
	pfd[0].fd = mailbox_fd(b->mailbox);
	pfd[0].events = POLLIN;
	kind[0] = BROKER_FD_MAILBOX;
	TAILQ_FOREACH(n, &b->nodes, entry) {
		if (n->link != NULL) {
			pfd[np].fd = link_fd(n->link);
			pfd[np].events = link_events(n->link);
			kind[np] = BROKER_FD_NODE;
			owner[np++] = n;
			wait = broker_min(wait, link_next_ms(n->link, now));
		} else if ((b->mode != BROKER_SENTINEL || n->resolved) &&
		    (b->mode != BROKER_CLUSTER || (n->wanted && !n->stale)))
			wait = broker_min(wait, n->next_attempt_ms > now ?
			    n->next_attempt_ms - now : 0);
		if (n->cmd != NULL) {
			if (cmdlink_pollfd(n->cmd, &pfd[np]) == 1) {
				kind[np] = BROKER_FD_CMD;
				owner[np++] = n;
			}
			wait = broker_min(wait, cmdlink_next_ms(n->cmd, now));
		}
	}
	if (b->control != NULL) {
		pfd[np].fd = link_fd(b->control);
		pfd[np].events = link_events(b->control);
		kind[np++] = BROKER_FD_CONTROL;
		wait = broker_min(wait, link_next_ms(b->control, now));
	} else if (b->mode == BROKER_CLUSTER)
		wait = broker_min(wait, b->next_refresh_ms > now ?
		    b->next_refresh_ms - now : 0);
	ns = np;
	if (b->sentinel != NULL) {
		np += (nfds_t)sentinel_pollfds(b->sentinel, pfd + np);
		wait = broker_min(wait, sentinel_next_ms(b->sentinel, now));
	}
	if (b->subs != NULL)
		wait = broker_min(wait, subs_next_ms(b->subs, now));
	if (poll(pfd, np, (int)wait) == -1 && errno != EINTR) {
		log_warn("broker: poll");
		goto done;
	}
	now = util_now_ms();
	if (pfd[0].revents != 0)
		broker_mail(b, now);
	for (k = 1; k < ns; k++) {
		n = owner[k];
		if (kind[k] == BROKER_FD_NODE && n->link != NULL)
			link_handle(n->link, pfd[k].revents, now);
		else if (kind[k] == BROKER_FD_CONTROL && b->control != NULL)
			link_handle(b->control, pfd[k].revents, now);
	}
	broker_batch_flush(b);
	broker_events_flush(b);
	/* the history reads after the messages read with them */
	for (k = 1; k < ns; k++)
		if (kind[k] == BROKER_FD_CMD && owner[k]->cmd != NULL)
			cmdlink_handle(owner[k]->cmd, pfd[k].revents, now);
	TAILQ_FOREACH(n, &b->nodes, entry)
		if (n->cmd != NULL)
			cmdlink_handle(n->cmd, 0, now);	/* its timers */
	if (b->sentinel != NULL)
		sentinel_handle(b->sentinel, pfd + ns, (size_t)(np - ns), now);
	TAILQ_FOREACH(n, &b->nodes, entry)
		broker_node_check(b, n, now);
	broker_state(b);
done:
	free(pfd);
	free(kind);
	free(owner);
}

static void *
broker_main(void *arg)
{
	struct broker		*b = arg;
	struct broker_node	*n;
	struct broker_read	*br;

	/* for ps -L and top -H; MHD names its own "MHD-worker" */
	pthread_setname_np(pthread_self(), "sserelay-redis");
	while (!atomic_load(&b->stop))
		broker_step(b);
	broker_batch_flush(b);
	broker_events_flush(b);
	/* every read is answered, failed: the hub frees them */
	while ((br = TAILQ_FIRST(&b->unrouted)) != NULL) {
		TAILQ_REMOVE(&b->unrouted, br, entry);
		br->r->chans[br->i].status = DURABLE_FAILED;
		broker_read_done(b, br->r, br->i);
		free(br);
	}
	TAILQ_FOREACH(n, &b->nodes, entry) {
		cmdlink_free(n->cmd);
		n->cmd = NULL;
		broker_cmds_clear(&n->cmds);
		link_free(n->link);
		n->link = NULL;
	}
	link_free(b->control);
	b->control = NULL;
	STATS_SET(redis_up, 0);
	return NULL;
}

static const struct subs_ops broker_subs_ops = {
	broker_route, broker_emit, broker_notify,
};

static void
broker_free(struct broker *b)
{
	struct broker_node	*n;
	size_t			 i;

	while ((n = TAILQ_FIRST(&b->nodes)) != NULL)
		broker_node_free(b, n);
	link_free(b->control);
	cluster_map_free(&b->map);
	sentinel_free(b->sentinel);
	free(b->library);
	free(b->library_version);
	subs_free(b->subs);
	for (i = 0; i < b->nev; i++)
		free(b->ev_names[i]);
	free(b->ev_names);
	free(b->ev_lens);
	free(b->batch);
	free(b->msgs);
	free(b);
}

struct broker *
broker_start(const struct config *cfg, struct hub *hub, struct mailbox *mb,
    char *err, size_t errlen)
{
	const struct redis_url	*u = &cfg->redis_url;
	struct broker		*b;
	struct broker_node	*n;
	int			 e;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->cfg = cfg;
	b->hub = hub;
	b->mailbox = mb;
	TAILQ_INIT(&b->nodes);
	TAILQ_INIT(&b->unrouted);
	cluster_map_init(&b->map);
	if (cfg->history_redis && (b->library = durable_library(
	    cfg->history_size, cfg->history_ttl_s, cfg->redis_cluster != NULL &&
	    !cfg->cluster_classic, &b->library_version)) == NULL)
		goto nomem;
	if (cfg->redis_cluster != NULL) {
		b->mode = BROKER_CLUSTER;
		b->sharded = !cfg->cluster_classic;
		if (util_parse_addrs(cfg->redis_cluster, b->seeds,
		    BROKER_SEEDS_MAX, &b->nseeds, err, errlen) == -1)
			goto bad;
	} else if (cfg->redis_sentinel != NULL) {
		b->mode = BROKER_SENTINEL;
		if ((b->sentinel = sentinel_new(cfg->redis_sentinel,
		    cfg->redis_sentinel_master, cfg->sentinel_password,
		    cfg->redis_timeout_ms, &broker_sentinel_ops, b, err,
		    errlen)) == NULL)
			goto bad;
		if (broker_node_new(b, NULL, 0) == NULL)
			goto nomem;
		sentinel_resolve(b->sentinel);
	} else {
		if ((n = broker_node_new(b, u->is_unix ? NULL : u->host,
		    u->port)) == NULL)
			goto nomem;
		n->target.path = u->is_unix ? u->path : NULL;
		broker_node_cmd(b, n);
	}
	/* room for a batch up front: a flushed batch always has room again */
	b->batch_cap = 64;
	if ((b->batch = calloc(b->batch_cap, sizeof(*b->batch))) == NULL ||
	    (b->msgs = calloc(b->batch_cap, sizeof(*b->msgs))) == NULL)
		goto nomem;
	if (cfg->subscribe_exact && (b->subs = subs_new(
	    cfg->subscribe_linger_s * 1000, BROKER_BATCH_CHANNELS,
	    &broker_subs_ops, b)) == NULL)
		goto nomem;
	if ((e = pthread_create(&b->thread, NULL, broker_main, b)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(e));
		goto bad;
	}
	return b;
nomem:
	snprintf(err, errlen, "out of memory");
bad:
	broker_free(b);
	return NULL;
}

/*
 * A seed that answers CLUSTER SLOTS with an error says it is no cluster
 * node: a mistake in the configuration, said now rather than retried.
 */
static int
broker_probe_cluster(const struct config *cfg, char *err, size_t errlen)
{
	struct util_addr	 seeds[BROKER_SEEDS_MAX];
	const struct redis_url	*u = &cfg->redis_url;
	struct timeval		 tv;
	redisContext		*c;
	redisReply		*r;
	size_t			 n, i;
	int			 good = 0, bad = -1;
	char			 why[256] = "";

	if (util_parse_addrs(cfg->redis_cluster, seeds, BROKER_SEEDS_MAX,
	    &n, err, errlen) == -1)
		return -1;
	tv.tv_sec = cfg->redis_timeout_ms / 1000;
	tv.tv_usec = (cfg->redis_timeout_ms % 1000) * 1000;
	for (i = 0; i < n && !good; i++) {
		if ((c = redisConnectWithTimeout(seeds[i].host, seeds[i].port,
		    tv)) == NULL || c->err) {
			if (c != NULL)
				redisFree(c);
			continue;
		}
		redisSetTimeout(c, tv);
		r = NULL;
		if (u->password != NULL) {
			r = u->user != NULL ? redisCommand(c, "AUTH %s %s",
			    u->user, u->password) : redisCommand(c, "AUTH %s",
			    u->password);
			if (r == NULL || r->type == REDIS_REPLY_ERROR) {
				freeReplyObject(r);
				redisFree(c);
				continue;	/* said again at run time */
			}
			freeReplyObject(r);
		}
		r = redisCommand(c, "CLUSTER SLOTS");
		if (r != NULL && r->type == REDIS_REPLY_ARRAY)
			good = 1;
		else if (r != NULL && r->type == REDIS_REPLY_ERROR &&
		    bad == -1) {
			bad = (int)i;
			snprintf(why, sizeof(why), "%s", r->str);
		}
		freeReplyObject(r);
		redisFree(c);
	}
	if (!good && bad != -1) {
		snprintf(err, errlen, "--redis-cluster: %s:%d is not a cluster "
		    "node: %s", seeds[bad].host, seeds[bad].port, why);
		return -1;
	}
	return 0;
}

int
broker_check(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->redis_sentinel != NULL)
		return sentinel_probe(cfg->redis_sentinel,
		    cfg->redis_sentinel_master, cfg->sentinel_password,
		    cfg->redis_timeout_ms, err, errlen);
	if (cfg->redis_cluster != NULL)
		return broker_probe_cluster(cfg, err, errlen);
	return 0;
}

void
broker_stop(struct broker *b)
{
	if (b == NULL)
		return;
	atomic_store(&b->stop, 1);
	mailbox_wake(b->mailbox);
	pthread_join(b->thread, NULL);
	broker_free(b);
}
