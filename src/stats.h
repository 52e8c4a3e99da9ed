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

struct sbuf;

/*
 * X(field, type, group, healthz key, metrics name, help).  A type is
 * STATS_GAUGE or STATS_COUNTER; a NULL key or name leaves the number out
 * of that renderer (redis_up is "redis":"up" in /healthz).  A group other
 * than STATS_ALWAYS is a feature that may be off: its rows are shown by
 * both renderers only while it is on (snapshot's groups), so that a
 * number that means nothing is not there at all, and a reader (the
 * /status page) draws a group only when its fields are there.
 */
#define STATS_FIELDS(X)							\
	X(streams_open, STATS_GAUGE, STATS_ALWAYS, "streams",		\
	    "sserelay_streams_open", "Streams open now.")		\
	X(streams_opened, STATS_COUNTER, STATS_ALWAYS, "streams_total",	\
	    "sserelay_streams_opened_total", "Streams opened.")		\
	X(streams_max, STATS_GAUGE, STATS_ALWAYS, "streams_max",	\
	    "sserelay_streams_max",					\
	    "Streams allowed at once (--max-streams); 0: no limit.")	\
	X(connections_max, STATS_GAUGE, STATS_ALWAYS, "connections_max", \
	    "sserelay_connections_max",					\
	    "Connections the main listener accepts at once.")		\
	X(events_queued, STATS_COUNTER, STATS_ALWAYS, "events",		\
	    "sserelay_events_queued_total",				\
	    "Message events queued to streams live.")			\
	X(events_delivered, STATS_COUNTER, STATS_ALWAYS, "events_delivered", \
	    "sserelay_events_delivered_total",				\
	    "Message events whose last byte was handed to a socket.")	\
	X(bytes_written, STATS_COUNTER, STATS_ALWAYS, "bytes_written",	\
	    "sserelay_bytes_written_total", "Bytes handed to sockets.")	\
	X(heartbeats, STATS_COUNTER, STATS_ALWAYS, "heartbeats",	\
	    "sserelay_heartbeats_total", "Heartbeat comments queued.")	\
	X(slow_closes, STATS_COUNTER, STATS_ALWAYS, "slow_closes",	\
	    "sserelay_slow_closes_total",				\
	    "Streams closed because their client did not read.")	\
	X(resumes, STATS_COUNTER, STATS_ALWAYS, "resumes",		\
	    "sserelay_resumes_total",					\
	    "Last-Event-ID resumes replayed whole.")			\
	X(replayed, STATS_COUNTER, STATS_ALWAYS, "replayed",		\
	    "sserelay_resume_events_total", "Events replayed by resumes.") \
	X(recoveries, STATS_COUNTER, STATS_ALWAYS, "recoveries",	\
	    "sserelay_recoveries_total",				\
	    "Open streams brought up to date from the Redis history "	\
	    "after an outage.")						\
	X(recovered, STATS_COUNTER, STATS_ALWAYS, "recovered",		\
	    "sserelay_recovered_events_total",				\
	    "Events those recoveries queued.")				\
	X(backlogs, STATS_COUNTER, STATS_ALWAYS, "backlogs",		\
	    "sserelay_backlogs_total",					\
	    "Streams opened with a backlog (?last=N).")			\
	X(backlog_events, STATS_COUNTER, STATS_ALWAYS, "backlog_events", \
	    "sserelay_backlog_events_total",				\
	    "Events of those backlogs.")				\
	X(redis_up, STATS_GAUGE, STATS_ALWAYS, NULL,			\
	    "sserelay_redis_up", "1 while subscribed to Redis.")	\
	X(redis_reconnects, STATS_COUNTER, STATS_ALWAYS, "redis_reconnects", \
	    "sserelay_redis_reconnects_total", "Redis connections lost.") \
	X(redis_messages, STATS_COUNTER, STATS_ALWAYS, "redis_messages", \
	    "sserelay_redis_messages_total",				\
	    "Messages received from Redis.")				\
	X(redis_channels, STATS_GAUGE, STATS_ALWAYS, "redis_channels",	\
	    "sserelay_redis_channels",					\
	    "Channels subscribed exactly now (--subscribe exact).")	\
	X(redis_subscribes, STATS_COUNTER, STATS_ALWAYS, "redis_subscribes", \
	    "sserelay_redis_subscribe_commands_total",			\
	    "SUBSCRIBE commands sent, each for one or more channels.")	\
	X(redis_unsubscribes, STATS_COUNTER, STATS_ALWAYS,		\
	    "redis_unsubscribes", "sserelay_redis_unsubscribe_commands_total", \
	    "UNSUBSCRIBE commands sent, each for one or more channels.") \
	X(revocations, STATS_COUNTER, STATS_ALWAYS, "revocations",	\
	    "sserelay_revocations_applied_total",			\
	    "Revocations (FCALL sserelay_revoke) this instance applied.") \
	X(revoked_streams, STATS_COUNTER, STATS_ALWAYS, "revoked_streams", \
	    "sserelay_revoked_streams_total",				\
	    "Open streams ended by a revocation.")			\
	X(revoke_refusals, STATS_COUNTER, STATS_ALWAYS, "revoke_refusals", \
	    "sserelay_revoke_refusals_total",				\
	    "New streams refused (403) by a revocation in force.")	\
	X(history_messages, STATS_GAUGE, STATS_HISTORY, "history_messages", \
	    "sserelay_history_messages", "Messages kept for resume.")	\
	X(history_bytes, STATS_GAUGE, STATS_HISTORY, "history_bytes",	\
	    "sserelay_history_bytes",					\
	    "Memory the resume history holds.")				\
	X(history_channels, STATS_GAUGE, STATS_HISTORY, "history_channels", \
	    "sserelay_history_channels",				\
	    "Channels with messages kept for resume.")			\
	X(history_evicted, STATS_COUNTER, STATS_HISTORY, "history_evicted", \
	    "sserelay_history_evicted_total",				\
	    "Messages dropped from the resume history (count, TTL or "	\
	    "memory cap).")

/*
 * The labelled counters: X(field, healthz key, metrics name, label, first,
 * count, help).  Each is an array in struct stats indexed by its owner's
 * enum (the hub's reset reasons, auth's results, quota's limits); entries
 * before first mean "not refused" and are not shown.  Stats knows none of
 * the owners: the counts are numbers here, checked against the owners'
 * enums where the label values are named (http_admin.c), and the values
 * come with the snapshot (struct stats_labels).
 */
#define STATS_NRESETS	10	/* enum hub_reset */
#define STATS_NAUTH	11	/* enum auth_result */
#define STATS_NLIMITS	4	/* enum quota_limit */
#define STATS_FAMILIES(X)						\
	X(resets, "resets", "sserelay_resets_total", "reason", 0,	\
	    STATS_NRESETS, "Reset events sent, by reason.")		\
	X(auth_refusals, "auth_refusals", "sserelay_auth_refusals_total", \
	    "reason", 1, STATS_NAUTH,					\
	    "Streams refused by access control, by reason.")		\
	X(limit_refusals, "limit_refusals",				\
	    "sserelay_limit_refusals_total", "limit", 1, STATS_NLIMITS,	\
	    "Streams refused by a connection limit, by limit.")

/* each family's label values, by index (their owners' names for them) */
struct stats_labels {
#define STATS_LABEL_VALUES(f, key, name, label, first, n, help)	\
	const char	*f[n];
	STATS_FAMILIES(STATS_LABEL_VALUES)
#undef STATS_LABEL_VALUES
};

#define STATS_BUCKETS	14	/* finite latency bounds, then +Inf */

enum stats_type {
	STATS_GAUGE,
	STATS_COUNTER,
};

enum stats_group {
	STATS_ALWAYS = 0,
	STATS_HISTORY,		/* the resume history is kept in memory */
};
#define STATS_GROUP(g)	(1u << (g))	/* in stats_snapshot's groups */

struct stats {
#define STATS_ATOMIC(f, type, group, key, name, help)	atomic_ulong f;
	STATS_FIELDS(STATS_ATOMIC)
#undef STATS_ATOMIC
#define STATS_ATOMICS(f, key, name, label, first, n, help)		\
	atomic_ulong f[n];
	STATS_FAMILIES(STATS_ATOMICS)
#undef STATS_ATOMICS
	atomic_ulong	 delivery[STATS_BUCKETS + 1];	/* latency histogram */
	atomic_ulong	 delivery_sum_us;
	atomic_ulong	 redis_changed_ms;	/* redis_up last changed
						   (util_now_ms); 0: never */
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
#define STATS_PLAIN(f, type, group, key, name, help)	uint64_t f;
	STATS_FIELDS(STATS_PLAIN)
#undef STATS_PLAIN
#define STATS_ARRAYS(f, key, name, label, first, n, help)		\
	uint64_t f[n];
	STATS_FAMILIES(STATS_ARRAYS)
#undef STATS_ARRAYS
	uint64_t	 delivery[STATS_BUCKETS + 1];	/* not cumulative */
	uint64_t	 delivery_sum_us;
	uint64_t	 uptime_s;
	uint64_t	 redis_since_s;	/* how long redis_up has been so */
	const char	*version;
	unsigned	 groups;	/* STATS_GROUP() of each group shown;
					   the caller sets it */
	const struct stats_labels *labels;	/* the caller sets it */
};

/*
 * The writers' side, counted locally and added to the shared counters in
 * one go (stats_local_flush) once per round of a writer's loop: a message
 * event's last byte handed over us µs after it came from Redis (only live
 * events, not replays, go into the latency histogram), bytes written,
 * heartbeats written.  A stats_local belongs to one thread.
 */
struct stats_local {
	uint64_t	 delivered;
	uint64_t	 written;
	uint64_t	 heartbeats;
	uint64_t	 delivery[STATS_BUCKETS + 1];
	uint64_t	 delivery_sum_us;
	int		 dirty;
};
void	stats_local_delivered(struct stats_local *, uint64_t us, int live);
void	stats_local_flush(struct stats_local *);

/*
 * The broker's side: subscribed to Redis (1) or not (0), now_ms from
 * util_now_ms(); a change is timed for /healthz's redis_since_s.
 */
void	stats_redis(int up, uint64_t now_ms);

/* every number at one moment; groups is left STATS_GROUP(STATS_ALWAYS) */
void	stats_snapshot(struct stats_snapshot *, uint64_t uptime_s,
	    uint64_t now_ms);
/* upper bounds of the latency buckets, in µs */
extern const uint64_t stats_bounds[STATS_BUCKETS];

/* stats_render.c: /healthz's one line of JSON; -1 if out of memory */
int	stats_render_json(struct sbuf *, const struct stats_snapshot *);
/* /metrics: the Prometheus text format 0.0.4; -1 if out of memory */
int	stats_render_prometheus(struct sbuf *, const struct stats_snapshot *);

#endif
