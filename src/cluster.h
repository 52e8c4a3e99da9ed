/*
 * cluster.h - a Redis Cluster's slot map: which primary serves each of the
 * 16384 slots, read from CLUSTER SLOTS.
 *
 * hiredis has no cluster support and Debian packages no C cluster client,
 * so this is the small part sserelay needs: the map, kept apart from the
 * connections (broker_cluster.c holds one per primary that serves a
 * subscribed slot) and from the slot arithmetic (slot.c).
 *
 * Pure: no I/O and no hiredis (answers.c reads CLUSTER SLOTS into it), so
 * the unit tests build maps of their own.  THREADS: the broker thread
 * only.
 */
#ifndef SSERELAY_CLUSTER_H
#define SSERELAY_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "slot.h"
#include "util.h"

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
 * Slots start..end (at most SLOT_COUNT - 1) are served by host:port, added
 * to the primaries if new (answers_cluster_slots reads CLUSTER SLOTS with
 * it).  0, or -1 out of memory (m unchanged but for the slots).
 */
int	cluster_map_add(struct cluster_map *, unsigned start, unsigned end,
	    const char *host, int port);
/* the primary serving a channel's slot: an index, or -1 */
int	cluster_map_primary(const struct cluster_map *, const char *, size_t);
/* the index of host:port among the primaries, or -1 */
int	cluster_map_find(const struct cluster_map *, const char *host,
	    int port);


#endif
