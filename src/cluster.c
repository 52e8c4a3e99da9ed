/*
 * cluster.c - the slot map of a Redis Cluster.  See cluster.h; the
 * CLUSTER SLOTS reply that fills it is read in answers.c.
 */
#include "autoconf.h"

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
cluster_map_add(struct cluster_map *m, unsigned start, unsigned end,
    const char *host, int port)
{
	struct util_addr	*grown;
	unsigned		 s;
	int			 idx;

	if ((idx = cluster_map_find(m, host, port)) == -1) {
		if ((grown = reallocarray(m->primaries, m->nprimaries + 1,
		    sizeof(*grown))) == NULL)
			return -1;
		m->primaries = grown;
		idx = (int)m->nprimaries;
		memset(&m->primaries[idx], 0, sizeof(m->primaries[idx]));
		snprintf(m->primaries[idx].host, sizeof(m->primaries[idx].host),
		    "%s", host);
		m->primaries[idx].port = port;
		m->nprimaries++;
	}
	for (s = start; s <= end && s < SLOT_COUNT; s++) {
		if (m->slot[s] == CLUSTER_NONE)
			m->covered++;
		m->slot[s] = (uint16_t)idx;
	}
	return 0;
}

int
cluster_map_primary(const struct cluster_map *m, const char *name,
    size_t len)
{
	uint16_t	 i = m->slot[slot_of(name, len)];

	return i == CLUSTER_NONE ? -1 : (int)i;
}
