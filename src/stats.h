/*
 * stats.h - the daemon's counters, one snapshot of them, two renderers.
 *
 * Every module that counts something adds to the one process-wide
 * struct stats (like memcached's stats): the hub its streams and events,
 * the broker its Redis state, the HTTP side its refusals, the workers what
 * they hand to sockets.  /healthz and /metrics both read one snapshot of
 * it (stats_snapshot) and render it, as JSON (stats_render_json) or in
 * the Prometheus text format 0.0.4 (stats_render_prometheus), in
 * stats_render.c; the renderers are pure.
 *
 * STATS_FIELDS is the list of plain numbers: one row each, with the
 * snapshot field, the /healthz key and the /metrics name.  tests/docs.t
 * reads these rows to check that every one is documented; adding a number
 * is one row and the STATS_ADD() where it is counted.
 *
 * THREADS: every field is a C11 atomic, written with relaxed order by
 * whichever thread counts it, so no lock is taken and a snapshot is a set
 * of independent reads (two related numbers may be a moment apart).
 */
#ifndef SSERELAY_STATS_H
#define SSERELAY_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "hub.h"
#include "quota.h"

struct sbuf;

/*
 * X(field, type, healthz key, metrics name, help).  A type is
 * STATS_GAUGE or STATS_COUNTER; a NULL key or name leaves the number out
 * of that renderer (redis_up is "redis":"up" in /healthz).
 */
#define STATS_FIELDS(X)							\
	X(streams_open, STATS_GAUGE, "streams",				\
	    "sserelay_streams_open", "Streams open now.")		\
	X(streams_opened, STATS_COUNTER, "streams_total",		\
	    "sserelay_streams_opened_total", "Streams opened.")		\
	X(events_queued, STATS_COUNTER, "events",			\
	    "sserelay_events_queued_total",				\
	    "Message events queued to streams live.")			\
	X(events_delivered, STATS_COUNTER, "events_delivered",		\
	    "sserelay_events_delivered_total",				\
	    "Message events whose last byte was handed to a socket.")	\
	X(bytes_written, STATS_COUNTER, "bytes_written",		\
	    "sserelay_bytes_written_total", "Bytes handed to sockets.")	\
	X(heartbeats, STATS_COUNTER, "heartbeats",			\
	    "sserelay_heartbeats_total", "Heartbeat comments queued.")	\
	X(slow_closes, STATS_COUNTER, "slow_closes",			\
	    "sserelay_slow_closes_total",				\
	    "Streams closed because their client did not read.")	\
	X(resumes, STATS_COUNTER, "resumes",				\
	    "sserelay_resumes_total",					\
	    "Last-Event-ID resumes replayed whole.")			\
	X(replayed, STATS_COUNTER, "replayed",				\
	    "sserelay_resume_events_total", "Events replayed by resumes.") \
	X(backlogs, STATS_COUNTER, "backlogs",				\
	    "sserelay_backlogs_total",					\
	    "Streams opened with a backlog (?last=N).")		\
	X(backlog_events, STATS_COUNTER, "backlog_events",		\
	    "sserelay_backlog_events_total",				\
	    "Events of those backlogs.")				\
	X(redis_up, STATS_GAUGE, NULL,					\
	    "sserelay_redis_up", "1 while subscribed to Redis.")	\
	X(redis_reconnects, STATS_COUNTER, "redis_reconnects",		\
	    "sserelay_redis_reconnects_total", "Redis connections lost.") \
	X(redis_messages, STATS_COUNTER, "redis_messages",		\
	    "sserelay_redis_messages_total",				\
	    "Messages received from Redis.")				\
	X(redis_channels, STATS_GAUGE, "redis_channels",		\
	    "sserelay_redis_channels",					\
	    "Channels subscribed exactly now (--subscribe exact).")	\
	X(redis_subscribes, STATS_COUNTER, "redis_subscribes",		\
	    "sserelay_redis_subscribe_commands_total",			\
	    "SUBSCRIBE commands sent, each for one or more channels.")	\
	X(redis_unsubscribes, STATS_COUNTER, "redis_unsubscribes",	\
	    "sserelay_redis_unsubscribe_commands_total",		\
	    "UNSUBSCRIBE commands sent, each for one or more channels.") \
	X(history_messages, STATS_GAUGE, "history_messages",		\
	    "sserelay_history_messages", "Messages kept for resume.")	\
	X(history_bytes, STATS_GAUGE, "history_bytes",			\
	    "sserelay_history_bytes",					\
	    "Memory the resume history holds.")				\
	X(history_channels, STATS_GAUGE, "history_channels",		\
	    "sserelay_history_channels",				\
	    "Channels with messages kept for resume.")			\
	X(history_evicted, STATS_COUNTER, "history_evicted",		\
	    "sserelay_history_evicted_total",				\
	    "Messages dropped from the resume history (count, TTL or "	\
	    "memory cap).")

/*
 * The labelled counters: X(field, healthz key, metrics name, label, first,
 * count, label value, help).  Each is an array in struct stats indexed by
 * its owner's enum, whose names give the label values (hub_reset_name,
 * auth_name, quota_limit_name); entries before first mean "not refused"
 * and are not shown.
 */
#define STATS_FAMILIES(X)						\
	X(resets, "resets", "sserelay_resets_total", "reason", 0,	\
	    HUB_NRESETS, hub_reset_name, "Reset events sent, by reason.") \
	X(auth_refusals, "auth_refusals", "sserelay_auth_refusals_total", \
	    "reason", AUTH_OK + 1, AUTH_NRESULTS, auth_name,		\
	    "Streams refused by access control, by reason.")		\
	X(limit_refusals, "limit_refusals",				\
	    "sserelay_limit_refusals_total", "limit", QUOTA_OK + 1,	\
	    QUOTA_NLIMITS, quota_limit_name,				\
	    "Streams refused by a connection limit, by limit.")

#define STATS_BUCKETS	14	/* finite latency bounds, then +Inf */

enum stats_type {
	STATS_GAUGE,
	STATS_COUNTER,
};

struct stats {
#define STATS_ATOMIC(f, type, key, name, help)	atomic_ulong f;
	STATS_FIELDS(STATS_ATOMIC)
#undef STATS_ATOMIC
#define STATS_ATOMICS(f, key, name, label, first, n, namer, help)	\
	atomic_ulong f[n];
	STATS_FAMILIES(STATS_ATOMICS)
#undef STATS_ATOMICS
	atomic_ulong	 delivery[STATS_BUCKETS + 1];	/* latency histogram */
	atomic_ulong	 delivery_sum_us;
};

extern struct stats stats;

#define STATS_ADD(f, n)	atomic_fetch_add_explicit(&stats.f, (n),	\
			    memory_order_relaxed)
#define STATS_SUB(f, n)	atomic_fetch_sub_explicit(&stats.f, (n),	\
			    memory_order_relaxed)
#define STATS_SET(f, v)	atomic_store_explicit(&stats.f, (v),		\
			    memory_order_relaxed)

/* what /healthz and /metrics show: plain numbers read at one moment */
struct stats_snapshot {
#define STATS_PLAIN(f, type, key, name, help)	uint64_t f;
	STATS_FIELDS(STATS_PLAIN)
#undef STATS_PLAIN
#define STATS_ARRAYS(f, key, name, label, first, n, namer, help)	\
	uint64_t f[n];
	STATS_FAMILIES(STATS_ARRAYS)
#undef STATS_ARRAYS
	uint64_t	 delivery[STATS_BUCKETS + 1];	/* not cumulative */
	uint64_t	 delivery_sum_us;
	uint64_t	 uptime_s;
	const char	*version;
};

/*
 * The workers' side: a message event's last byte handed over, us µs after
 * it came from Redis; only live events (not replays) go into the latency
 * histogram.
 */
void	stats_delivered(uint64_t us, int live);
void	stats_written(size_t bytes);

void	stats_snapshot(struct stats_snapshot *, uint64_t uptime_s);
/* upper bounds of the latency buckets, in µs */
extern const uint64_t stats_bounds[STATS_BUCKETS];

/* stats_render.c: /healthz's one line of JSON; -1 if out of memory */
int	stats_render_json(struct sbuf *, const struct stats_snapshot *);
/* /metrics: the Prometheus text format 0.0.4; -1 if out of memory */
int	stats_render_prometheus(struct sbuf *, const struct stats_snapshot *);

#endif
