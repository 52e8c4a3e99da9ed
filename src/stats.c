/*
 * stats.c - the counters and their snapshot.  See stats.h.  Pure: the
 * unit tests of any module that counts link it alone.
 */
#include "autoconf.h"

#include <string.h>

#include "stats.h"

struct stats	 stats;

/* upper bounds of the delivery latency buckets, in µs */
const uint64_t	 stats_bounds[STATS_BUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000,
};

void
stats_local_delivered(struct stats_local *l, uint64_t us, int live)
{
	size_t	 i;

	l->delivered++;
	l->dirty = 1;
	if (!live)
		return;
	for (i = 0; i < STATS_BUCKETS && us > stats_bounds[i]; i++)
		;
	l->delivery[i]++;
	l->delivery_sum_us += us;
}

void
stats_local_flush(struct stats_local *l)
{
	size_t	 i;

	if (!l->dirty && l->written == 0 && l->heartbeats == 0)
		return;
	if (l->delivered)
		STATS_ADD(events_delivered, l->delivered);
	if (l->written)
		STATS_ADD(bytes_written, l->written);
	if (l->heartbeats)
		STATS_ADD(heartbeats, l->heartbeats);
	for (i = 0; i <= STATS_BUCKETS; i++)
		if (l->delivery[i])
			STATS_ADD(delivery[i], l->delivery[i]);
	if (l->delivery_sum_us)
		STATS_ADD(delivery_sum_us, l->delivery_sum_us);
	memset(l, 0, sizeof(*l));
}

#define STATS_LOAD(v)	atomic_load_explicit(&(v), memory_order_relaxed)

void
stats_redis(int up, uint64_t now_ms)
{
	if (atomic_exchange_explicit(&stats.redis_up, (unsigned long)up,
	    memory_order_relaxed) != (unsigned long)up)
		atomic_store_explicit(&stats.redis_changed_ms, now_ms,
		    memory_order_relaxed);
}

void
stats_snapshot(struct stats_snapshot *s, uint64_t uptime_s, uint64_t now_ms)
{
	uint64_t	 changed;
	size_t		 i;

#define STATS_READ(f, type, group, key, name, help)	\
	s->f = STATS_LOAD(stats.f);
	STATS_FIELDS(STATS_READ)
#undef STATS_READ
#define STATS_READ(f, key, name, label, first, n, help)		\
	for (i = 0; i < n; i++)						\
		s->f[i] = STATS_LOAD(stats.f[i]);
	STATS_FAMILIES(STATS_READ)
#undef STATS_READ
	for (i = 0; i <= STATS_BUCKETS; i++)
		s->delivery[i] = STATS_LOAD(stats.delivery[i]);
	s->delivery_sum_us = STATS_LOAD(stats.delivery_sum_us);
	s->uptime_s = uptime_s;
	changed = STATS_LOAD(stats.redis_changed_ms);
	s->redis_since_s = changed == 0 ? uptime_s : changed < now_ms ?
	    (now_ms - changed) / 1000 : 0;
	s->version = PACKAGE_VERSION;
	s->groups = STATS_GROUP(STATS_ALWAYS);
}
