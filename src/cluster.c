/*
 * cluster.c - the slot map of a Redis Cluster.  See cluster.h.
 *
 * CLUSTER SLOTS answers one entry per range: [start, end, [host, port,
 * id, ...], replicas...].  Only the first node, the primary, matters:
 * sharded pub/sub is served by primaries.  An empty host means the node
 * that was asked; "?" (an unknown endpoint) makes the range unusable
 * until the next read.
 */
#include "autoconf.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

void
cluster_map_init(struct cluster_map *m)
{
	memset(m, 0, sizeof(*m));
	memset(m->slot, 0xff, sizeof(m->slot));
}

void
cluster_map_free(struct cluster_map *m)
{
	free(m->primaries);
	cluster_map_init(m);
}

int
cluster_map_find(const struct cluster_map *m, const char *host, int port)
{
	size_t	 i;

	for (i = 0; i < m->nprimaries; i++)
		if (m->primaries[i].port == port &&
		    strcmp(m->primaries[i].host, host) == 0)
			return (int)i;
	return -1;
}

int
cluster_map_read(struct cluster_map *m, const redisReply *r,
    const char *asked_host, char *err, size_t errlen)
{
	struct cluster_map	 next;
	const redisReply	*e, *node;
	struct util_addr	 p, *grown;
	long long		 start, end, s;
	size_t			 i;
	int			 idx;

	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s", r->str);
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "CLUSTER SLOTS: not an array");
		return -1;
	}
	cluster_map_init(&next);
	for (i = 0; i < r->elements; i++) {
		e = r->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
		    e->element[0]->type != REDIS_REPLY_INTEGER ||
		    e->element[1]->type != REDIS_REPLY_INTEGER ||
		    e->element[2]->type != REDIS_REPLY_ARRAY ||
		    e->element[2]->elements < 2)
			goto bad;
		start = e->element[0]->integer;
		end = e->element[1]->integer;
		node = e->element[2];
		if (start < 0 || end >= SLOT_COUNT || start > end ||
		    node->element[0]->type != REDIS_REPLY_STRING ||
		    node->element[1]->type != REDIS_REPLY_INTEGER ||
		    node->element[0]->len >= UTIL_HOST_MAX)
			goto bad;
		if (node->element[0]->len == 1 && node->element[0]->str[0] ==
		    '?')
			continue;	/* no endpoint known yet */
		memset(&p, 0, sizeof(p));
		snprintf(p.host, sizeof(p.host), "%s", node->element[0]->len ?
		    node->element[0]->str : asked_host);
		p.port = (int)node->element[1]->integer;
		if ((idx = cluster_map_find(&next, p.host, p.port)) == -1) {
			if ((grown = reallocarray(next.primaries,
			    next.nprimaries + 1, sizeof(*grown))) == NULL) {
				snprintf(err, errlen, "out of memory");
				cluster_map_free(&next);
				return -1;
			}
			next.primaries = grown;
			idx = (int)next.nprimaries;
			next.primaries[next.nprimaries++] = p;
		}
		for (s = start; s <= end; s++) {
			if (next.slot[s] == CLUSTER_NONE)
				next.covered++;
			next.slot[s] = (uint16_t)idx;
		}
	}
	cluster_map_free(m);
	*m = next;
	return 0;
bad:
	snprintf(err, errlen, "CLUSTER SLOTS: an entry not of the form "
	    "[start, end, [host, port, ...], ...]");
	cluster_map_free(&next);
	return -1;
}

int
cluster_map_primary(const struct cluster_map *m, const char *name,
    size_t len)
{
	uint16_t	 i = m->slot[slot_of(name, len)];

	return i == CLUSTER_NONE ? -1 : (int)i;
}
