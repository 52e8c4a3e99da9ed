/*
 * broker.c - the Redis thread.
 *
 * DESIGN
 * One thread owns every Redis connection (link.c); nothing else touches
 * them.  Its loop is redis-py's get_message(timeout) over all of them at
 * once: poll the connections and the mailbox's eventfd for at most
 * --poll-timeout, read what came, hand each batch of messages to the hub
 * in one call (broker_batch.c), which ids, encodes, keeps and fans out
 * each message and wakes each stream once.  Nothing here waits for a
 * client, and no connection waits for another: connects, handshakes and
 * writes never block.  Heartbeats are not queued here (main.c does it) so
 * that they go on whatever Redis does.
 *
 * Where it subscribes is the topology's (struct broker_topology, chosen
 * once at start, see broker_int.h): one Redis (broker_single.c), Sentinel
 * (broker_sentinel.c), Cluster sharded or classic (broker_cluster.c).
 * Each Redis server subscribed on is a node (broker_node.c); what a node
 * subscribes and what Redis answers is broker_subs.c's; the history reads
 * of --history redis broker_history.c's.
 *
 * One pass: connect the nodes whose backoff ended, check the ones that
 * became ready or died; the topology's step; route waiting history reads;
 * send the (un)subscribe commands subs.c wants; say redis_up; poll; read
 * the mail, the subscribed connections, hand their batch over, then the
 * history connections (reads after the messages read with them), then
 * the topology's own connections; check the nodes again.
 */
#include "autoconf.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "broker_int.h"
#include "cmdlink.h"
#include "config.h"
#include "durable.h"
#include "hub.h"
#include "log.h"
#include "mailbox.h"
#include "sentinel.h"
#include "stats.h"

/* the topology a configuration asks for */
static const struct broker_topology *
broker_topology_of(const struct config *cfg)
{
	if (cfg->redis_cluster != NULL)
		return cfg->cluster_classic ? &broker_cluster_classic :
		    &broker_cluster_sharded;
	if (cfg->redis_sentinel != NULL)
		return &broker_sentinel;
	return &broker_single;
}

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
			broker_history_post(b, it->ptr);
			it->ptr = NULL;		/* ours now */
		} else if (it->op == MAILBOX_HUB_WORK)
			hub_work(b->hub);
		else if (it->op != MAILBOX_WAKE && b->subs != NULL &&
		    subs_want(b->subs, it->channel, it->len,
		    it->op == MAILBOX_INTEREST, now) == -1)
			log_kv(LOG_LEVEL_WARN, LOG_FIELDS(LOG_MEM("channel",
			    it->channel, it->len)), "out of memory: channel %s "
			    "not (un)subscribed", it->channel);
	}
	mailbox_items_free(&items);
}

/*
 * Redis is up when the subscriptions can be made: with patterns once
 * confirmed (broker_subs.c), exact as the topology says (its up).
 */
static void
broker_state(struct broker *b)
{
	struct broker_node	*n;
	struct subs_stats	 ss;
	int			 up;

	if (b->subs == NULL) {
		n = TAILQ_FIRST(&b->nodes);
		up = n->ready && n->patterns_waiting == 0;
	} else {
		up = b->topo->up(b);
		subs_get_stats(b->subs, &ss);
		STATS_SET(redis_channels, ss.channels);
		STATS_SET(redis_subscribes, ss.subscribe_cmds);
		STATS_SET(redis_unsubscribes, ss.unsubscribe_cmds);
	}
	if (up == b->up)
		return;
	b->up = up;
	stats_redis(up, util_now_ms());
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
	BROKER_FD_HISTORY,	/* a node's command connection */
};

/* the work before poll; the number of nodes */
static size_t
broker_prepare(struct broker *b, uint64_t now)
{
	struct broker_node	*n, *next;
	size_t			 count = 0;

	for (n = TAILQ_FIRST(&b->nodes); n != NULL; n = next) {
		next = TAILQ_NEXT(n, entry);
		broker_node_connect(b, n, now);
		broker_node_check(b, n, now);
		/* a cluster node no primary any more, once it left */
		if (n->stale && n->link == NULL)
			broker_node_free(b, n);
		else
			count++;
	}
	b->topo->step(b, now);
	broker_history_retry(b);
	if (b->subs != NULL)
		subs_flush(b->subs, now);
	broker_state(b);
	return count;
}

static void
broker_step(struct broker *b)
{
	struct broker_node	*n;
	struct pollfd		*pfd;
	enum broker_fd		*kind;
	struct broker_node	**owner;
	uint64_t		 now = util_now_ms(), wait;
	nfds_t			 np = 1, nmax, ns, k;

	/* mailbox, two per node, the topology's */
	nmax = 1 + 2 * broker_prepare(b, now) + BROKER_TOPOLOGY_FDS;
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
		} else if (broker_node_may_connect(n))
			wait = broker_min(wait, n->next_attempt_ms > now ?
			    n->next_attempt_ms - now : 0);
		if (n->history != NULL) {
			if (cmdlink_pollfd(n->history, &pfd[np]) == 1) {
				kind[np] = BROKER_FD_HISTORY;
				owner[np++] = n;
			}
			wait = broker_min(wait, cmdlink_next_ms(n->history,
			    now));
		}
	}
	ns = np;
	np += (nfds_t)b->topo->pollfds(b, pfd + np, now, &wait);
	if (b->subs != NULL)
		wait = broker_min(wait, subs_next_ms(b->subs, now));
	if (poll(pfd, np, (int)wait) == -1 && errno != EINTR) {
		log_warn("broker: poll");
		goto done;
	}
	now = util_now_ms();
	if (pfd[0].revents != 0)
		broker_mail(b, now);
	for (k = 1; k < ns; k++)
		if (kind[k] == BROKER_FD_NODE && owner[k]->link != NULL)
			link_handle(owner[k]->link, pfd[k].revents, now);
	broker_batch_flush(b);
	broker_batch_events(b);
	/* the history reads after the messages read with them */
	for (k = 1; k < ns; k++)
		if (kind[k] == BROKER_FD_HISTORY && owner[k]->history != NULL)
			cmdlink_handle(owner[k]->history, pfd[k].revents, now);
	TAILQ_FOREACH(n, &b->nodes, entry)
		if (n->history != NULL)
			cmdlink_handle(n->history, 0, now);	/* timers */
	/* last: a new cluster map may free nodes the entries above name */
	b->topo->handle(b, pfd + ns, (size_t)(np - ns), now);
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

	/* for ps -L and top -H; MHD names its own "MHD-worker" */
	pthread_setname_np(pthread_self(), "sserelay-redis");
	while (!atomic_load(&b->stop))
		broker_step(b);
	broker_batch_flush(b);
	broker_batch_events(b);
	/* every read is answered, failed: the hub frees them */
	broker_history_fail(b);
	TAILQ_FOREACH(n, &b->nodes, entry)
		broker_node_close(n);
	link_free(b->control);
	b->control = NULL;
	stats_redis(0, util_now_ms());
	return NULL;
}

static void
broker_free(struct broker *b)
{
	struct broker_node	*n;

	while ((n = TAILQ_FIRST(&b->nodes)) != NULL)
		broker_node_free(b, n);
	link_free(b->control);
	cluster_map_free(&b->map);
	sentinel_free(b->sentinel);
	free(b->library);
	free(b->library_version);
	subs_free(b->subs);
	broker_batch_free(b);
	free(b);
}

struct broker *
broker_start(const struct config *cfg, struct hub *hub, struct mailbox *mb,
    char *err, size_t errlen)
{
	struct broker		*b;
	int			 e;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->cfg = cfg;
	b->topo = broker_topology_of(cfg);
	b->hub = hub;
	b->mailbox = mb;
	TAILQ_INIT(&b->nodes);
	TAILQ_INIT(&b->unrouted);
	cluster_map_init(&b->map);
	if (cfg->history_redis && (b->library = durable_library(
	    cfg->history_size, cfg->history_ttl_s, b->topo->spublish,
	    &b->library_version)) == NULL)
		goto nomem;
	if (b->topo->start(b, err, errlen) == -1)
		goto bad;
	if (broker_batch_init(b) == -1)
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

int
broker_check(const struct config *cfg, char *err, size_t errlen)
{
	return broker_topology_of(cfg)->check(cfg, err, errlen);
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
