/*
 * hub_history.c - ids, resets and the history in memory: every message's
 * id (this run's epoch and a sequence), its place in the history, and a
 * new stream's start from there (a Last-Event-ID's resume, ?last=N's
 * backlog), or the reset that says why it cannot have one.
 *
 * DESIGN
 * The hub owns ids and history because a resume must read the history
 * and join the subscriber lists in one step under the lock that
 * publishing holds: that is what makes the switch from replay to live
 * exact.  With --history redis (hub_durable.c) the history is Redis's and
 * ids are positions: only the resets are from here.
 *
 * THREADS: the hub lock (hub_int.h).
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "history.h"
#include "hub.h"
#include "hub_int.h"
#include "log.h"
#include "stats.h"
#include "stream.h"

/* the reasons as clients and /healthz see them, in enum hub_reset order */
static const char *const hub_reset_names[HUB_NRESETS] = {
	"malformed-id",
	"unknown-epoch",
	"unknown-id",
	"history-exceeded",
	"redis-outage",
	"history-disabled",
	"out-of-memory",
	"not-subscribed",
	"epoch-changed",
	"unknown-channels",
};

const char *
hub_reset_name(enum hub_reset r)
{
	return (unsigned)r < HUB_NRESETS ? hub_reset_names[r] : "unknown";
}

int
hub_parse_id(const char *epoch, uint64_t last_seq, const char *id,
    uint64_t *seq, enum hub_reset *why)
{
	const char	*p;
	uint64_t	 v = 0;
	size_t		 i;

	if (strlen(id) < 10 || id[8] != '-')
		goto malformed;
	for (i = 0; i < 8; i++)
		if (strchr("0123456789abcdef", id[i]) == NULL || id[i] == '\0')
			goto malformed;
	for (p = id + 9; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || p - (id + 9) >= 20)
			goto malformed;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			goto malformed;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (memcmp(id, epoch, 8) != 0) {
		*why = HUB_RESET_UNKNOWN_EPOCH;
		return -1;
	}
	if (v > last_seq) {
		*why = HUB_RESET_UNKNOWN_ID;
		return -1;
	}
	*seq = v;
	return 0;
malformed:
	*why = HUB_RESET_MALFORMED_ID;
	return -1;
}

static void
hub_event_id(struct hub *h, uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%" PRIu64, h->epoch, seq);
}

/*
 * The reset event: a fresh id (a later resume starts from here) and why.
 * With the history in Redis the id is each stream's own positions.
 */
struct frame *
hub_reset_frame(struct hub *h, enum hub_reset why)
{
	char	 id[40];

	STATS_ADD(resets[why], 1);
	if (h->durable)
		return frame_reset(NULL, hub_reset_names[why]);
	hub_event_id(h, ++h->seq, id, sizeof(id));
	return frame_reset(id, hub_reset_names[why]);
}

/* a history gap, by what caused it */
static enum hub_reset
hub_gap_reason(struct hub *h, enum history_verdict v, uint64_t after)
{
	switch (v) {
	case HISTORY_OUTAGE:
		return after <= h->unsubscribed_upto ?
		    HUB_RESET_NOT_SUBSCRIBED : HUB_RESET_REDIS_OUTAGE;
	case HISTORY_DISABLED:
		return HUB_RESET_HISTORY_DISABLED;
	case HISTORY_NOMEM:
		return HUB_RESET_OUT_OF_MEMORY;
	case HISTORY_NOT_SUBSCRIBED:
		return HUB_RESET_NOT_SUBSCRIBED;
	case HISTORY_TOO_OLD:
	case HISTORY_COMPLETE:
		break;
	}
	return HUB_RESET_HISTORY_EXCEEDED;
}

/*
 * Queue, in a stream no one else sees yet, what the client missed since
 * last_event_id: the history's frames, or a reset.  Under the hub lock, so
 * nothing published meanwhile is missed or queued twice.
 */
static int
hub_resume(struct hub *h, struct stream *s, const char **channels,
    const size_t *lens, size_t n, const char *last_event_id,
    struct hub_resume *res)
{
	enum history_verdict	 v;
	struct frame		**frames, *f;
	uint64_t		 after = 0;
	size_t			 nframes = 0, i;
	enum hub_reset		 why;
	int			 r;

	if (hub_parse_id(h->epoch, h->seq, last_event_id, &after,
	    &why) == 0) {
		v = history_replay(&h->history, channels, lens, n, after,
		    &frames, &nframes);
		if (v == HISTORY_COMPLETE) {
			r = stream_replay(s, frames, nframes);
			for (i = 0; i < nframes; i++)
				frame_unref(frames[i]);
			free(frames);
			if (r == 0) {
				res->replayed = nframes;
				STATS_ADD(resumes, 1);
				STATS_ADD(replayed, nframes);
				return 0;
			}
			why = HUB_RESET_OUT_OF_MEMORY;
		} else
			why = hub_gap_reason(h, v, after);
	}
	if ((f = hub_reset_frame(h, why)) == NULL ||
	    stream_push(s, f) != STREAM_PUSH_QUEUED) {
		frame_unref(f);
		return -1;
	}
	frame_unref(f);
	res->reset = why;
	return 0;
}

/*
 * ?last=N, with the history in memory: queue, in a stream no one else sees
 * yet, the newest `last` messages of each channel, under the hub lock like
 * a resume.  Out of memory it starts live, without them.
 */
static void
hub_backlog(struct hub *h, struct stream *s, const char **channels,
    const size_t *lens, size_t n, unsigned last, struct hub_resume *res)
{
	struct frame	**frames;
	size_t		 nframes = 0, i;
	int		 r;

	if (history_last(&h->history, channels, lens, n, last, &frames,
	    &nframes) == -1) {
		log_warnx("out of memory for a backlog: the stream starts live");
		return;
	}
	r = stream_replay(s, frames, nframes);
	for (i = 0; i < nframes; i++)
		frame_unref(frames[i]);
	free(frames);
	if (r == -1) {
		log_warnx("out of memory for a backlog: the stream starts live");
		return;
	}
	res->backlog = nframes;
	STATS_ADD(backlogs, 1);
	STATS_ADD(backlog_events, nframes);
}

/* the history's numbers, for /healthz and /metrics */
void
hub_history_publish(struct hub *h)
{
	const struct history_stats *hs = &h->history.stats;

	STATS_SET(history_messages, hs->messages);
	STATS_SET(history_bytes, hs->bytes);
	STATS_SET(history_channels, hs->channels);
	STATS_SET(history_evicted, hs->evicted_count + hs->evicted_ttl +
	    hs->evicted_memory);
}

/* a message: its id, its frame, its place in the history, its fan-out */
void
hub_history_message(struct hub *h, const struct hub_message *m,
    uint64_t now_ms, uint64_t recv_us)
{
	struct frame	*f;
	uint64_t	 seq;
	char		 id[40];

	seq = ++h->seq;
	hub_event_id(h, seq, id, sizeof(id));
	/* encoded even with no subscriber: a resume may want it */
	f = frame_message(id, m->channel, m->channel_len, m->payload,
	    m->payload_len, h->format);
	if (f == NULL) {
		/* not silently: resumes from before it will get a reset */
		history_lost(&h->history, seq);
		log_kv(LOG_LEVEL_WARN, HUB_CHANNEL(m->channel, m->channel_len),
		    "out of memory encoding a message on %.*s: dropped",
		    (int)m->channel_len, m->channel);
		return;
	}
	f->recv_us = recv_us;
	if (history_add(&h->history, m->channel, m->channel_len, seq, now_ms,
	    f) == -1)
		log_warnx("history: out of memory; a resume past seq %" PRIu64
		    " will get a reset", seq);
	STATS_ADD(events_queued, hub_fanout(h, m->channel, m->channel_len,
	    f));
	frame_unref(f);
}

/*
 * A new stream's start, in a stream no one else sees yet: what a
 * Last-Event-ID missed, or ?last=N's backlog.  -1 if not even a reset
 * could be queued.
 */
int
hub_history_start(struct hub *h, struct stream *s, const char **channels,
    const size_t *lens, size_t n, const char *last_event_id, unsigned last,
    struct hub_resume *res)
{
	if (last_event_id != NULL && *last_event_id != '\0')
		return hub_resume(h, s, channels, lens, n, last_event_id, res);
	if (last > 0)
		hub_backlog(h, s, channels, lens, n, last, res);
	return 0;
}

/*
 * Redis confirmed the subscription: what was published while we were not
 * subscribed never reached us, so the history has a gap there and every
 * open stream gets a reset (not-subscribed the first time, redis-outage
 * after).
 */
void
hub_history_subscribed(struct hub *h)
{
	struct stream	*s;
	struct frame	*f;
	enum hub_reset	 why;
	size_t		 n = 0;

	history_outage(&h->history, h->seq);
	if (!h->subscribed_once) {
		h->subscribed_once = 1;
		h->unsubscribed_upto = h->seq;
		why = HUB_RESET_NOT_SUBSCRIBED;
	} else
		why = HUB_RESET_REDIS_OUTAGE;
	if (TAILQ_EMPTY(&h->streams))
		return;
	if ((f = hub_reset_frame(h, why)) == NULL) {
		log_warnx("out of memory: open streams get no reset after the "
		    "Redis subscription");
		return;
	}
	TAILQ_FOREACH(s, &h->streams, all)
		n += hub_push(h, s, f);
	frame_unref(f);
	if (why == HUB_RESET_NOT_SUBSCRIBED)
		log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_NUM("count", n),
		    LOG_STR("reason", hub_reset_name(why))), "redis: told %zu "
		    "streams opened before the first subscription to refetch "
		    "(event: reset)", n);
	else
		log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_NUM("count", n),
		    LOG_STR("reason", hub_reset_name(why))), "redis: told %zu "
		    "open streams to refetch (event: reset)", n);
}
