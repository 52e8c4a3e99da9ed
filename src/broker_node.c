/*
 * broker_node.c - one Redis server the broker subscribes on.
 *
 * A node keeps its address and its connection (link.c), made again after
 * every loss with jittered exponential backoff from 100 ms.  A refused
 * connection (Redis restarting on this host) costs Redis nothing, so those
 * retries stay at most 1 s apart and delivery resumes within a second of
 * Redis coming back; other failures (timeouts, AUTH errors) back off up to
 * 5 s.  What a loss means beyond that (ask the sentinels, read the slot
 * map) is the topology's business (struct broker_topology's down).
 *
 * A node connects when its address is known (a sentinel's answer), it is
 * wanted (a cluster primary with subscribed slots) and not stale (no
 * primary any more): broker_node_may_connect().  THREADS: the broker
 * thread only.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"
#include "cmdlink.h"
#include "config.h"
#include "log.h"
#include "stats.h"

struct broker_node *
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
	n->known = 1;
	n->wanted = 1;
	TAILQ_INIT(&n->sent);
	TAILQ_INSERT_TAIL(&b->nodes, n, entry);
	return n;
}

void
broker_node_free(struct broker *b, struct broker_node *n)
{
	/* its reads go to whichever server serves their slots now */
	if (n->history != NULL)
		cmdlink_drain(n->history, broker_history_unroute, b);
	TAILQ_REMOVE(&b->nodes, n, entry);
	if (b->classic == n)
		b->classic = NULL;
	broker_node_close(n);
	free(n);
}

/* drop both connections, answering the history reads as failed */
void
broker_node_close(struct broker_node *n)
{
	cmdlink_free(n->history);
	n->history = NULL;
	broker_subs_clear(n);
	link_free(n->link);
	n->link = NULL;
}

struct broker_node *
broker_node_find(struct broker *b, const char *host, int port)
{
	struct broker_node	*n;

	TAILQ_FOREACH(n, &b->nodes, entry)
		if (n->target.port == port && strcmp(n->host, host) == 0)
			return n;
	return NULL;
}

struct broker_node *
broker_node_by_id(struct broker *b, int id)
{
	struct broker_node	*n;

	TAILQ_FOREACH(n, &b->nodes, entry)
		if (n->id == id)
			return n;
	return NULL;
}

void
broker_node_address(struct broker_node *n, const char *host, int port)
{
	snprintf(n->host, sizeof(n->host), "%s", host);
	n->target.host = n->host;
	n->target.port = port;
	n->known = 1;
}

/* may it connect (when its backoff allows)? */
int
broker_node_may_connect(const struct broker_node *n)
{
	return n->known && n->wanted && !n->stale;
}

static void
broker_node_down(struct broker *b, struct broker_node *n, uint64_t now)
{
	unsigned	 cap, base, delay;
	int		 refused = link_refused(n->link);
	int		 failed = n->health == BROKER_NODE_FAILED;

	if (n->kill && link_state(n->link) != LINK_DEAD)
		log_kv(LOG_LEVEL_INFO, LINK_FIELDS(n->link), "redis: leaving %s",
		    link_name(n->link));
	else if (n->ready || n->ever_ready) {
		if (!failed)
			log_kv(LOG_LEVEL_WARN, LINK_FIELDS(n->link),
			    "redis: connection to %s lost: %s; reconnecting",
			    link_name(n->link), link_error(n->link));
		n->attempts = 0;
	} else if (!failed)
		log_kv(LOG_LEVEL_WARN, LINK_FIELDS(n->link),
		    "redis: cannot connect to %s: %s; retrying",
		    link_name(n->link), link_error(n->link));
	else
		log_kv(LOG_LEVEL_DEBUG, LINK_FIELDS(n->link),
		    "redis: connect to %s: %s", link_name(n->link),
		    link_error(n->link));
	n->health = BROKER_NODE_FAILED;
	broker_batch_flush(b);
	broker_batch_events(b);
	if (n->ready) {
		/* a node dropped on purpose is no outage, but a failover */
		if (!n->kill || b->topo->kill_is_outage)
			STATS_ADD(redis_reconnects, 1);
		if (b->subs != NULL) {
			subs_lost(b->subs, n->id);
			broker_batch_events(b);
		}
	}
	n->ready = 0;
	n->ever_ready = 0;
	n->patterns_waiting = 0;
	n->role_check = 0;
	broker_subs_clear(n);
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
	b->topo->down(b, n, now);
	n->kill = 0;
}

void
broker_node_connect(struct broker *b, struct broker_node *n, uint64_t now)
{
	if (n->link != NULL || now < n->next_attempt_ms ||
	    !broker_node_may_connect(n))
		return;
	if ((n->link = link_new(&n->target, b->cfg->redis_timeout_ms,
	    broker_subs_reply, n)) == NULL) {
		n->next_attempt_ms = now + BROKER_BACKOFF_MAX_MS;
		log_warnx("redis: out of memory for a connection");
	}
}

/* after I/O: a link that became ready, or died */
void
broker_node_check(struct broker *b, struct broker_node *n, uint64_t now)
{
	if (n->link == NULL)
		return;
	link_tick(n->link, now);
	if (link_state(n->link) == LINK_DEAD || n->kill)
		broker_node_down(b, n, now);
	else if (link_state(n->link) == LINK_READY && !n->ever_ready) {
		n->ever_ready = 1;
		b->topo->ready(b, n);
	}
}
