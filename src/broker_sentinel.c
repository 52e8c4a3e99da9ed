/*
 * broker_sentinel.c - Redis Sentinel (--redis-sentinel): one node, whose
 * address sentinel.c finds, and finds again after every loss.  A
 * +switch-master drops it at once for the new master, and a server the
 * sentinels name must answer ROLE "master" before anything is subscribed
 * on it (what they say may be a moment old).
 *
 * THREADS: the broker thread only (the check: main, before it starts).
 */
#include "autoconf.h"

#include <string.h>

#include "answers.h"
#include "broker_int.h"
#include "cmdlink.h"
#include "config.h"
#include "log.h"
#include "sentinel.h"

static void
broker_sentinel_master(void *arg, const char *host, int port)
{
	struct broker		*b = arg;
	struct broker_node	*n = TAILQ_FIRST(&b->nodes);
	int			 moved = strcmp(n->host, host) != 0 ||
				    n->target.port != port;

	if (!n->known || moved)
		log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("master",
		    b->cfg->redis_sentinel_master)), "sentinel: %s is at %s:%d",
		    b->cfg->redis_sentinel_master, host, port);
	/* when to connect is the backoff's business */
	if (n->history != NULL && moved) {
		cmdlink_free(n->history);  /* its reads are answered, failed */
		n->history = NULL;
	}
	broker_node_address(n, host, port);
	broker_history_connect(b, n);
}

static void
broker_sentinel_switched(void *arg, const char *host, int port)
{
	struct broker		*b = arg;
	struct broker_node	*n = TAILQ_FIRST(&b->nodes);

	cmdlink_free(n->history);	/* its reads are answered, failed */
	n->history = NULL;
	broker_node_address(n, host, port);
	broker_history_connect(b, n);
	if (n->link != NULL)
		n->kill = 1;		/* an outage: see broker_node_down */
	else
		n->next_attempt_ms = 0;
}

static const struct sentinel_ops broker_sentinel_ops = {
	broker_sentinel_master, broker_sentinel_switched,
};

static int
broker_sentinel_start(struct broker *b, char *err, size_t errlen)
{
	const struct config	*cfg = b->cfg;
	struct broker_node	*n;

	if ((b->sentinel = sentinel_new(cfg->redis_sentinel,
	    cfg->redis_sentinel_master, cfg->sentinel_password,
	    cfg->redis_timeout_ms, &broker_sentinel_ops, b, err,
	    errlen)) == NULL)
		return -1;
	if ((n = broker_node_new(b, NULL, 0)) == NULL)
		return util_err(err, errlen, "out of memory");
	n->known = 0;		/* until the sentinels say */
	sentinel_resolve(b->sentinel);
	return 0;
}

static int
broker_sentinel_check(const struct config *cfg, char *err, size_t errlen)
{
	return sentinel_probe(cfg->redis_sentinel, cfg->redis_sentinel_master,
	    cfg->sentinel_password, cfg->redis_timeout_ms, err, errlen);
}

/* what the sentinels say may be a moment old: ask the server */
static void
broker_sentinel_ready(struct broker *b, struct broker_node *n)
{
	static const char *role[1] = { "ROLE" };
	static const size_t role_len[1] = { 4 };

	if (link_command(n->link, 1, role, role_len) == 0)
		n->role_check = 1;
}

/* the answer to ROLE: a master goes on, anything else is dropped */
static void
broker_sentinel_checked(struct broker *b, struct broker_node *n,
    redisReply *r)
{
	const char	*said;

	if (answers_role_master(r, &said) == 0) {
		broker_subs_start(b, n);
		return;
	}
	log_kv(LOG_LEVEL_WARN, LINK_FIELDS(n->link), "redis: %s, named by "
	    "the sentinels, is not a master (%s); asking them again",
	    link_name(n->link), said);
	n->known = 0;		/* not there: ask the sentinels again */
	n->kill = 1;
}

static void
broker_sentinel_down(struct broker *b, struct broker_node *n, uint64_t now)
{
	if (n->kill && n->known)
		n->next_attempt_ms = now;	/* a failover: go now */
	else {
		/* ask where the master is before trying again */
		n->known = 0;
		sentinel_resolve(b->sentinel);
	}
}

static size_t
broker_sentinel_pollfds(struct broker *b, struct pollfd *pfd, uint64_t now,
    uint64_t *wait)
{
	uint64_t	 v = sentinel_next_ms(b->sentinel, now);

	if (v < *wait)
		*wait = v;
	return sentinel_pollfds(b->sentinel, pfd);
}

static void
broker_sentinel_handle(struct broker *b, const struct pollfd *pfd, size_t n,
    uint64_t now)
{
	sentinel_handle(b->sentinel, pfd, n, now);
}

const struct broker_topology broker_sentinel = {
	.name = "sentinel",
	.subscribe = "SUBSCRIBE",
	.unsubscribe = "UNSUBSCRIBE",
	.label = NULL,
	.kill_is_outage = 1,	/* a kill is a +switch-master */
	.spublish = 0,
	.start = broker_sentinel_start,
	.check = broker_sentinel_check,
	.route = broker_single_route,
	.history_node = broker_single_history_node,
	.ready = broker_sentinel_ready,
	.checked = broker_sentinel_checked,
	.down = broker_sentinel_down,
	.reroute = NULL,
	.up = broker_single_up,
	.step = broker_single_nothing,
	.pollfds = broker_sentinel_pollfds,
	.handle = broker_sentinel_handle,
};
