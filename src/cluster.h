/*
 * cluster.h - a Redis Cluster's slot map: which primary serves each of the
 * 16384 slots, read from CLUSTER SLOTS.
 *
 * hiredis has no cluster support and Debian packages no C cluster client,
 * so this is the small part sserelay needs: the map, kept apart from the
 * connections (broker.c holds one per primary that serves a subscribed
 * slot) and from the slot arithmetic (slot.c).
 *
 * Pure: built from a parsed reply, no I/O, so the unit tests feed it
 * replies of their own making.  THREADS: the broker thread only.
 */
#ifndef SSERELAY_CLUSTER_H
#define SSERELAY_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "slot.h"
#include "util.h"

struct redisReply;

#define CLUSTER_NONE		0xffff	/* a slot no primary serves */

struct cluster_map {
	uint16_t		 slot[SLOT_COUNT];	/* index, or CLUSTER_NONE */
	struct util_addr	*primaries;
	size_t			 nprimaries;
	size_t			 covered;		/* slots served */
};

void	cluster_map_init(struct cluster_map *);
void	cluster_map_free(struct cluster_map *);
/*
 * Read a CLUSTER SLOTS reply into m (replacing what it held).  asked_host
 * stands for a primary whose address the reply leaves empty (Redis says
 * "the node you asked").  0, or -1 with err set (m unchanged).
 */
int	cluster_map_read(struct cluster_map *, const struct redisReply *,
	    const char *asked_host, char *err, size_t errlen);
/* the primary serving a channel's slot: an index, or -1 */
int	cluster_map_primary(const struct cluster_map *, const char *, size_t);
/* the index of host:port among the primaries, or -1 */
int	cluster_map_find(const struct cluster_map *, const char *host,
	    int port);


#endif
