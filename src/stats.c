/*
 * stats.c - the counters and their snapshot.  See stats.h.  Pure: the
 * unit tests of any module that counts link it alone.
 */
#include "autoconf.h"

#include "stats.h"

struct stats	 stats;

/* upper bounds of the delivery latency buckets, in µs */
const uint64_t	 stats_bounds[STATS_BUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000,
};

void
stats_delivered(uint64_t us, int live)
{
	size_t	 i;

	STATS_ADD(events_delivered, 1);
	if (!live)
		return;
	for (i = 0; i < STATS_BUCKETS && us > stats_bounds[i]; i++)
		;
	STATS_ADD(delivery[i], 1);
	STATS_ADD(delivery_sum_us, us);
}

void
stats_written(size_t bytes)
{
	STATS_ADD(bytes_written, bytes);
}

#define STATS_LOAD(v)	atomic_load_explicit(&(v), memory_order_relaxed)

void
stats_snapshot(struct stats_snapshot *s, uint64_t uptime_s)
{
	size_t	 i;

#define STATS_READ(f, type, key, name, help)	s->f = STATS_LOAD(stats.f);
	STATS_FIELDS(STATS_READ)
#undef STATS_READ
#define STATS_READ(f, key, name, label, first, n, namer, help)		\
	for (i = 0; i < n; i++)						\
		s->f[i] = STATS_LOAD(stats.f[i]);
	STATS_FAMILIES(STATS_READ)
#undef STATS_READ
	for (i = 0; i <= STATS_BUCKETS; i++)
		s->delivery[i] = STATS_LOAD(stats.delivery[i]);
	s->delivery_sum_us = STATS_LOAD(stats.delivery_sum_us);
	s->uptime_s = uptime_s;
	s->version = PACKAGE_VERSION;
}
