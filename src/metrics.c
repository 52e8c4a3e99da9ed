/*
 * metrics.c - Prometheus text exposition (format 0.0.4).  See metrics.h.
 */
#include "autoconf.h"

#include <stdatomic.h>
#include <stdio.h>

#include "metrics.h"
#include "sse.h"

/* upper bounds of the delivery latency buckets, in µs */
static const uint64_t metrics_bounds[METRICS_BUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000,
};

static atomic_ulong	 metrics_hist[METRICS_BUCKETS + 1];
static atomic_ulong	 metrics_hist_sum_us;
static atomic_ulong	 metrics_events;
static atomic_ulong	 metrics_bytes;

void
metrics_delivered(uint64_t us, int live)
{
	size_t	 i;

	atomic_fetch_add_explicit(&metrics_events, 1, memory_order_relaxed);
	if (!live)
		return;
	for (i = 0; i < METRICS_BUCKETS && us > metrics_bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&metrics_hist[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&metrics_hist_sum_us, us,
	    memory_order_relaxed);
}

void
metrics_written(size_t bytes)
{
	atomic_fetch_add_explicit(&metrics_bytes, bytes, memory_order_relaxed);
}

static int
metrics_one(struct sbuf *b, const char *name, const char *type,
    const char *help, uint64_t v)
{
	return sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name,
	    help, name, type, name, (unsigned long long)v);
}

static int
metrics_labeled(struct sbuf *b, const char *name, const char *help,
    const char *label, const struct metrics_labeled *v, size_t n)
{
	size_t	 i;

	if (sbuf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help,
	    name) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (sbuf_printf(b, "%s{%s=\"%s\"} %llu\n", name, label,
		    v[i].name, (unsigned long long)v[i].value) == -1)
			return -1;
	return 0;
}

int
metrics_render(struct sbuf *b, const struct metrics_snapshot *s)
{
	uint64_t	 cum = 0, count;
	size_t		 i;
	int		 r = 0;

#define C(name, help, v) r |= metrics_one(b, name, "counter", help, v)
#define G(name, help, v) r |= metrics_one(b, name, "gauge", help, v)
	G("sserelay_streams_open", "Streams open now.", s->streams_open);
	C("sserelay_streams_opened_total", "Streams opened.",
	    s->streams_opened);
	C("sserelay_events_delivered_total",
	    "Message events whose last byte was handed to a socket.",
	    atomic_load(&metrics_events));
	C("sserelay_bytes_written_total", "Bytes handed to sockets.",
	    atomic_load(&metrics_bytes));
	C("sserelay_heartbeats_total", "Heartbeat comments queued.",
	    s->heartbeats);
	C("sserelay_slow_closes_total",
	    "Streams closed because their client did not read.",
	    s->slow_closes);
	C("sserelay_resumes_total", "Last-Event-ID resumes replayed whole.",
	    s->resumes);
	C("sserelay_resume_events_total", "Events replayed by resumes.",
	    s->resume_events);
	r |= metrics_labeled(b, "sserelay_resets_total",
	    "Reset events sent, by reason.", "reason", s->resets, s->nresets);
	G("sserelay_redis_up", "1 while subscribed to Redis.", s->redis_up);
	C("sserelay_redis_reconnects_total", "Redis connections lost.",
	    s->redis_reconnects);
	C("sserelay_redis_messages_total", "Messages received from Redis.",
	    s->redis_messages);
	G("sserelay_history_messages", "Messages kept for resume.",
	    s->history_messages);
	G("sserelay_history_bytes", "Memory the resume history holds.",
	    s->history_bytes);
	r |= metrics_labeled(b, "sserelay_auth_refusals_total",
	    "Streams refused by access control, by reason.", "reason",
	    s->auth, s->nauth);
	r |= metrics_labeled(b, "sserelay_limit_refusals_total",
	    "Streams refused by a connection limit, by limit.", "limit",
	    s->limits, s->nlimits);
#undef C
#undef G
	r |= sbuf_printf(b, "# HELP sserelay_delivery_seconds Time from "
	    "receiving a message from Redis to handing its event's last byte "
	    "to a socket.\n# TYPE sserelay_delivery_seconds histogram\n");
	for (i = 0; i < METRICS_BUCKETS; i++) {
		cum += atomic_load(&metrics_hist[i]);
		r |= sbuf_printf(b, "sserelay_delivery_seconds_bucket"
		    "{le=\"%g\"} %llu\n", (double)metrics_bounds[i] / 1e6,
		    (unsigned long long)cum);
	}
	count = cum + atomic_load(&metrics_hist[METRICS_BUCKETS]);
	r |= sbuf_printf(b, "sserelay_delivery_seconds_bucket{le=\"+Inf\"} "
	    "%llu\nsserelay_delivery_seconds_sum %.6f\n"
	    "sserelay_delivery_seconds_count %llu\n", (unsigned long long)count,
	    (double)atomic_load(&metrics_hist_sum_us) / 1e6,
	    (unsigned long long)count);
	return r ? -1 : 0;
}
