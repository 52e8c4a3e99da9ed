/*
 * broker_cluster.c - Redis Cluster (--redis-cluster).
 *
 * The slot map comes from CLUSTER SLOTS (answers.c reads it into
 * cluster.c's map), asked of a seed or a known primary by a short-lived
 * control connection, on start, after any error that says the map
 * changed (MOVED, a channel the server let go of), after a node is lost,
 * and every BROKER_CLUSTER_REFRESH_MS.  Sharded: one node per primary
 * that serves a subscribed slot, each channel SSUBSCRIBEd on its slot's
 * primary, one command per slot.  Classic: one node, any node, SUBSCRIBE,
 * since a classic PUBLISH reaches every node.  Both keep the history
 * library on every primary and read a channel's history on its slot's.
 *
 * THREADS: the broker thread only (the check: main, before it starts).
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "answers.h"
#include "broker_int.h"
#include "cmdlink.h"
#include "config.h"
#include "log.h"
#include "slot.h"

/* read the slot map again soon (now, if nothing is under way) */
static void
broker_cluster_refresh(struct broker *b, uint64_t now)
{
	if (b->control == NULL && b->next_refresh_ms > now)
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
		if (!n->stale && (n->wanted || n->history != NULL) &&
		    (n->health == BROKER_NODE_FAILED || (n->history != NULL &&
		    !cmdlink_ready(n->history) && n->link == NULL)))
			return 1;
	return 0;
}

/* the node for primary i of the map, made when first needed */
static struct broker_node *
broker_cluster_node(struct broker *b, size_t i)
{
	const struct util_addr	*p = &b->map.primaries[i];
	struct broker_node	*n;

	if ((n = broker_node_find(b, p->host, p->port)) == NULL &&
	    (n = broker_node_new(b, p->host, p->port)) != NULL)
		n->wanted = 0;	/* until a channel of its slots is */
	if (n != NULL)
		n->stale = 0;
	return n;
}

/* the nodes the map does not name any more, and the classic node */
static void
broker_cluster_apply(struct broker *b)
{
	struct broker_node	*n, *next;
	size_t			 i;

	for (n = TAILQ_FIRST(&b->nodes); n != NULL; n = next) {
		next = TAILQ_NEXT(n, entry);
		if (n == b->classic)
			continue;
		n->stale = cluster_map_find(&b->map, n->host,
		    n->target.port) == -1;
		if (!n->stale)
			continue;
		if (n->link != NULL) {
			log_kv(LOG_LEVEL_INFO, LINK_FIELDS(n->link),
			    "redis: %s is not a primary any more",
			    link_name(n->link));
			n->kill = 1;	/* its channels go where they belong */
		} else
			broker_node_free(b, n);
	}
	/* the history: the library on every primary, reads on theirs */
	for (i = 0; b->library != NULL && i < b->map.nprimaries; i++)
		if ((n = broker_cluster_node(b, i)) != NULL)
			broker_history_connect(b, n);
	/* classic: any node will do, a PUBLISH reaches them all */
	if (b->topo == &broker_cluster_classic && b->classic == NULL &&
	    b->map.nprimaries > 0)
		b->classic = broker_node_new(b, b->map.primaries[0].host,
		    b->map.primaries[0].port);
}

static void
broker_cluster_map_reply(void *arg, struct link *l, redisReply *r)
{
	struct broker	*b = arg;
	char		 err[256];

	if (answers_cluster_slots(&b->map, r, b->control_host, err,
	    sizeof(err)) == -1) {
		log_kv(LOG_LEVEL_WARN, LINK_FIELDS(l),
		    "redis: cluster map from %s: %s", link_name(l), err);
	} else {
		if (!b->map_ok || b->map_failing)
			log_kv(LOG_LEVEL_INFO, LINK_FIELDS(l),
			    "redis: cluster map from %s: %zu primaries, "
			    "%zu of %d slots served", link_name(l),
			    b->map.nprimaries, b->map.covered, SLOT_COUNT);
		b->map_ok = 1;
		b->map_failing = 0;
		broker_cluster_apply(b);
		b->next_refresh_ms = util_now_ms() + (broker_cluster_failing(b) ?
		    BROKER_CLUSTER_FAILING_MS : BROKER_CLUSTER_REFRESH_MS);
	}
	b->control_q = LINK_ANSWERED;
	freeReplyObject(r);
}

/* a seed or a known primary to ask for the map, in turn */
static void
broker_cluster_ask(struct broker *b)
{
	const struct util_addr	*p;
	struct link_target	 t;
	size_t			 ncand = b->nseeds + b->map.nprimaries;

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
	b->control_q = LINK_TO_ASK;
	b->control = link_new(&t, b->cfg->redis_timeout_ms,
	    broker_cluster_map_reply, b);
}

/* the control connection: connect, ask, go */
static void
broker_cluster_step(struct broker *b, uint64_t now)
{
	static const char *argv[2] = { "CLUSTER", "SLOTS" };
	static const size_t lens[2] = { 7, 5 };

	if (b->control == NULL) {
		if (now >= b->next_refresh_ms)
			broker_cluster_ask(b);
		return;
	}
	if (link_ask(b->control, &b->control_q, 2, argv, lens, now) ==
	    LINK_DEAD) {
		link_lost(&b->control, &b->map_failing,
		    "cannot read the cluster map from", "trying the next node");
		/* every candidate in turn, then a pause */
		b->next_refresh_ms = b->control_next == 0 ?
		    now + BROKER_BACKOFF_MAX_MS / 5 : now;
		return;
	}
	if (b->control_q == LINK_ANSWERED) {
		link_free(b->control);
		b->control = NULL;
	}
}

static size_t
broker_cluster_pollfds(struct broker *b, struct pollfd *pfd, uint64_t now,
    uint64_t *wait)
{
	uint64_t	 v;

	if (b->control == NULL) {
		v = b->next_refresh_ms > now ? b->next_refresh_ms - now : 0;
		if (v < *wait)
			*wait = v;
		return 0;
	}
	pfd[0].fd = link_fd(b->control);
	pfd[0].events = link_events(b->control);
	pfd[0].revents = 0;
	if ((v = link_next_ms(b->control, now)) < *wait)
		*wait = v;
	return 1;
}

static void
broker_cluster_handle(struct broker *b, const struct pollfd *pfd, size_t n,
    uint64_t now)
{
	if (n == 1 && b->control != NULL && link_fd(b->control) == pfd[0].fd)
		link_handle(b->control, pfd[0].revents, now);
}

static int
broker_cluster_start(struct broker *b, char *err, size_t errlen)
{
	return util_parse_addrs(b->cfg->redis_cluster, b->seeds,
	    UTIL_SEEDS_MAX, &b->nseeds, err, errlen);
}

/*
 * A seed that answers CLUSTER SLOTS with an error says it is no cluster
 * node: a mistake in the configuration, said now rather than retried.
 */
static int
broker_cluster_check(const struct config *cfg, char *err, size_t errlen)
{
	struct util_addr	 seeds[UTIL_SEEDS_MAX];
	const struct redis_url	*u = &cfg->redis_url;
	struct timeval		 tv;
	redisContext		*c;
	redisReply		*r;
	size_t			 n, i;
	int			 good = 0, bad = -1;
	char			 why[256] = "";

	if (util_parse_addrs(cfg->redis_cluster, seeds, UTIL_SEEDS_MAX,
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
	if (!good && bad != -1)
		return util_err(err, errlen, "--redis-cluster: %s:%d is not a "
		    "cluster node: %s", seeds[bad].host, seeds[bad].port, why);
	return 0;
}

/* sharded: a channel on its slot's primary, one command per slot */
static struct broker_node *
broker_cluster_route_sharded(struct broker *b, const char *name, size_t len,
    unsigned *group)
{
	struct broker_node	*n;
	int			 p;

	if (!b->map_ok || (p = cluster_map_primary(&b->map, name, len)) ==
	    -1 || (n = broker_cluster_node(b, (size_t)p)) == NULL)
		return NULL;
	n->wanted = 1;
	/* one SSUBSCRIBE names channels of one slot only */
	*group = slot_of(name, len);
	return n;
}

static struct broker_node *
broker_cluster_route_classic(struct broker *b, const char *name, size_t len,
    unsigned *group)
{
	*group = 0;
	return b->classic;
}

static struct broker_node *
broker_cluster_history_node(struct broker *b, const char *name, size_t len)
{
	int	 p;

	if (!b->map_ok || (p = cluster_map_primary(&b->map, name, len)) == -1)
		return NULL;
	return broker_node_find(b, b->map.primaries[p].host,
	    b->map.primaries[p].port);
}

static void
broker_cluster_down(struct broker *b, struct broker_node *n, uint64_t now)
{
	broker_cluster_refresh(b, now);		/* a failover, perhaps */
}

/*
 * Up once the map is read and no node it needs has failed (a node being
 * connected for its first channels is not down).
 */
static int
broker_cluster_up(struct broker *b)
{
	struct broker_node	*n;

	if (!b->map_ok)
		return 0;
	TAILQ_FOREACH(n, &b->nodes, entry)
		if (n->wanted && n->health == BROKER_NODE_FAILED)
			return 0;
	return 1;
}

/* what sharded and classic share: all but the route and the commands */
#define BROKER_CLUSTER_OPS						\
	.name = "cluster",						\
	.kill_is_outage = 0,	/* a kill is a demoted primary */	\
	.start = broker_cluster_start,					\
	.check = broker_cluster_check,					\
	.history_node = broker_cluster_history_node,			\
	.ready = broker_subs_start,					\
	.checked = NULL,						\
	.down = broker_cluster_down,					\
	.reroute = broker_cluster_refresh,				\
	.up = broker_cluster_up,					\
	.step = broker_cluster_step,					\
	.pollfds = broker_cluster_pollfds,				\
	.handle = broker_cluster_handle

const struct broker_topology broker_cluster_sharded = {
	BROKER_CLUSTER_OPS,
	.subscribe = "SSUBSCRIBE",
	.unsubscribe = "SUNSUBSCRIBE",
	.label = "cluster, sharded",
	.spublish = 1,
	.route = broker_cluster_route_sharded,
};

const struct broker_topology broker_cluster_classic = {
	BROKER_CLUSTER_OPS,
	.subscribe = "SUBSCRIBE",
	.unsubscribe = "UNSUBSCRIBE",
	.label = "cluster, classic",
	.spublish = 0,
	.route = broker_cluster_route_classic,
};
