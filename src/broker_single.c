/*
 * broker_single.c - one Redis (--redis): one node at a fixed address, a
 * TCP host or a unix socket, every channel subscribed there.
 *
 * Its one-node functions serve Sentinel too, whose one node only moves.
 * THREADS: the broker thread only.
 */
#include "autoconf.h"

#include <stdio.h>

#include "broker_int.h"
#include "config.h"

static int
broker_single_start(struct broker *b, char *err, size_t errlen)
{
	const struct redis_url	*u = &b->cfg->redis_url;
	struct broker_node	*n;

	if ((n = broker_node_new(b, u->is_unix ? NULL : u->host,
	    u->port)) == NULL)
		return util_err(err, errlen, "out of memory");
	n->target.path = u->is_unix ? u->path : NULL;
	broker_history_connect(b, n);
	return 0;
}

/* unreachable is no error: it may be starting */
static int
broker_single_check(const struct config *cfg, char *err, size_t errlen)
{
	return 0;
}

struct broker_node *
broker_single_route(struct broker *b, const char *name, size_t len,
    unsigned *group)
{
	*group = 0;
	return TAILQ_FIRST(&b->nodes);
}

struct broker_node *
broker_single_history_node(struct broker *b, const char *name, size_t len)
{
	return TAILQ_FIRST(&b->nodes);
}

/* exact: up while the node is subscribed */
int
broker_single_up(struct broker *b)
{
	struct broker_node	*n;
	int			 any = 0;

	TAILQ_FOREACH(n, &b->nodes, entry) {
		any = 1;
		if (!n->ready)
			return 0;
	}
	return any;
}

void
broker_single_nothing(struct broker *b, uint64_t now)
{
}

static void
broker_single_down(struct broker *b, struct broker_node *n, uint64_t now)
{
}

static size_t
broker_single_pollfds(struct broker *b, struct pollfd *pfd, uint64_t now,
    uint64_t *wait)
{
	return 0;
}

static void
broker_single_handle(struct broker *b, const struct pollfd *pfd, size_t n,
    uint64_t now)
{
}

const struct broker_topology broker_single = {
	.name = "single",
	.subscribe = "SUBSCRIBE",
	.unsubscribe = "UNSUBSCRIBE",
	.label = NULL,
	.kill_is_outage = 0,
	.spublish = 0,
	.start = broker_single_start,
	.check = broker_single_check,
	.route = broker_single_route,
	.history_node = broker_single_history_node,
	.ready = broker_subs_start,
	.checked = NULL,		/* nothing asked */
	.down = broker_single_down,
	.reroute = NULL,
	.up = broker_single_up,
	.step = broker_single_nothing,
	.pollfds = broker_single_pollfds,
	.handle = broker_single_handle,
};
