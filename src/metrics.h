/*
 * metrics.h - what /metrics reports, in the Prometheus text format.
 *
 * The delivery counters and the latency histogram are process-wide
 * atomics, fed by the HTTP workers as they hand bytes to sockets; the
 * rest is read from the hub, the broker and http.c into a snapshot, and
 * metrics_render() turns a snapshot into text (pure, for tests).
 */
#ifndef SSERELAY_METRICS_H
#define SSERELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct sbuf;

#define METRICS_BUCKETS	14	/* finite upper bounds, then +Inf */

/*
 * The workers' side: one event's last byte handed over, us µs after it
 * came from Redis; only live events (not replays) go into the histogram.
 */
void	metrics_delivered(uint64_t us, int live);
void	metrics_written(size_t bytes);

struct metrics_labeled {
	const char	*name;		/* the label's value */
	uint64_t	 value;
};

struct metrics_snapshot {
	uint64_t	 streams_open, streams_opened, heartbeats, slow_closes;
	uint64_t	 resumes, resume_events;
	uint64_t	 redis_up, redis_reconnects, redis_messages;
	uint64_t	 history_messages, history_bytes;
	const struct metrics_labeled *resets;	/* reason="" */
	size_t		 nresets;
	const struct metrics_labeled *auth;	/* reason="" */
	size_t		 nauth;
	const struct metrics_labeled *limits;	/* limit="" */
	size_t		 nlimits;
};

/* the snapshot and the process-wide counters, as text; -1 out of memory */
int	metrics_render(struct sbuf *, const struct metrics_snapshot *);

#endif
