/*
 * hub.c - channels, subscribers, history, ids, heartbeats, wakes.
 *
 * DESIGN
 * Channels live in a hash table (table.c) keyed by their binary name; a
 * channel exists only while it has subscribers.  Each stream embeds its
 * memberships (struct hub_sub), so subscribing allocates nothing per
 * subscriber beyond a new channel.  Every stream is also on one list in
 * arrival order; the heartbeat walks it with a cursor, a share of it per
 * tick, so pings are spread evenly over the interval.
 *
 * A message's life is all here, behind hub_publish(): its id (this run's
 * epoch and a sequence), its one encoding into a frame, its place in the
 * history, the fan-out to the subscribers' rings and, once per batch, the
 * wake of every stream that was waiting.  The hub owns ids and history
 * because a resume must read the history and join the subscriber lists in
 * one step under the lock that publishing holds: that is what makes the
 * switch from replay to live exact.
 *
 * With a mailbox, a channel that gets its first stream and one that loses
 * its last are posted to the broker (channel interest), under the hub
 * lock, so the broker sees them in the order they happened.
 *
 * Thread and lock rules are in hub.h.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "durable.h"
#include "frame.h"
#include "history.h"
#include "hub.h"
#include "log.h"
#include "mailbox.h"
#include "position.h"
#include "stats.h"
#include "stream.h"
#include "table.h"
#include "util.h"

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

struct hub_channel {
	struct table_entry	*entry;		/* its name, in hub->chans */
	LIST_HEAD(, hub_sub)	 subs;
	size_t			 nsubs;
};

TAILQ_HEAD(hub_streams, stream);
STAILQ_HEAD(hub_wakes, stream);

struct hub {
	pthread_mutex_t		 lock;
	struct table		 chans;		/* of struct hub_channel */
	struct history		 history;
	enum frame_format	 format;
	struct mailbox		*mailbox;
	char			 epoch[9];	/* this run, in every id */
	uint64_t		 seq;		/* last id given */
	uint64_t		 unsubscribed_upto; /* ids before the first
						   subscription */
	int			 subscribed_once;
	int			 exact;		/* see hub_channels */
	int			 durable;	/* see hub_recovered */
	uint64_t		 next_id;	/* streams' ids */
	struct table		 by_id;		/* durable: id -> stream */
	int			 redis_up;	/* exact: the broker says */
	unsigned		 hold_ms;
	uint64_t		 gen;		/* one per hub_channels call */
	struct hub_streams	 holding;	/* held, oldest first */
	struct hub_streams	 streams;	/* every stream */
	size_t			 nstreams;
	size_t			 nexpiring;	/* streams with a token expiry */
	struct stream		*cursor;	/* next heartbeat, NULL: head */
	uint64_t		 hb_credit;	/* stream-ms owed to heartbeats */
	uint64_t		 last_tick_ms;
	time_t			 last_token_s;
	struct frame		*ping;
	struct hub_wakes	 wakes;		/* to wake at the batch end */
	int			 closing;
	struct frame		*slow_final;
};

const char *
hub_reset_name(enum hub_reset r)
{
	return (unsigned)r < HUB_NRESETS ? hub_reset_names[r] : "unknown";
}

struct hub *
hub_new(const struct hub_config *cfg)
{
	struct hub	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if (table_init(&h->chans) == -1)
		goto bad;
	if (history_init(&h->history, cfg->history_size, cfg->history_ttl_s,
	    cfg->history_bytes, cfg->exact) == -1) {
		table_free(&h->chans);
		goto bad;
	}
	if ((h->ping = frame_ping()) == NULL) {
		history_free(&h->history);
		table_free(&h->chans);
		goto bad;
	}
	h->format = cfg->format;
	h->mailbox = cfg->mailbox;
	h->exact = cfg->exact;
	h->durable = cfg->durable;
	if (table_init(&h->by_id) == -1) {
		frame_unref(h->ping);
		history_free(&h->history);
		table_free(&h->chans);
		goto bad;
	}
	h->hold_ms = cfg->hold_ms;
	TAILQ_INIT(&h->holding);
	TAILQ_INIT(&h->streams);
	STAILQ_INIT(&h->wakes);
	h->last_tick_ms = util_now_ms();
	snprintf(h->epoch, sizeof(h->epoch), "%08" PRIx32, util_random());
	pthread_mutex_init(&h->lock, NULL);
	return h;
bad:
	free(h);
	return NULL;
}

void
hub_free(struct hub *h)
{
	if (h == NULL)
		return;
	if (h->nstreams != 0 || h->chans.count != 0)
		fatalx("hub_free with %zu streams still registered",
		    h->nstreams);
	pthread_mutex_destroy(&h->lock);
	frame_unref(h->slow_final);
	frame_unref(h->ping);
	history_free(&h->history);
	table_free(&h->chans);
	table_free(&h->by_id);
	free(h);
}

void
hub_set_slow_final(struct hub *h, struct frame *f)
{
	pthread_mutex_lock(&h->lock);
	frame_unref(h->slow_final);
	h->slow_final = f != NULL ? frame_ref(f) : NULL;
	pthread_mutex_unlock(&h->lock);
}

static struct hub_channel *
hub_find(struct hub *h, const char *name, size_t len)
{
	struct table_entry	*e;

	e = table_find(&h->chans, name, len);
	return e != NULL ? e->value : NULL;
}

/* the broker may want to know; it must not miss an interest it acts on */
static int
hub_interest(struct hub *h, enum mailbox_op op, const char *name, size_t len)
{
	if (h->mailbox == NULL || !h->exact)
		return 0;
	if (mailbox_post(h->mailbox, op, name, len) == -1) {
		log_warnx("out of memory telling the broker about channel "
		    "%.*s", (int)len, name);
		return -1;
	}
	return 0;
}

static struct hub_channel *
hub_channel_get(struct hub *h, const char *name, size_t len)
{
	struct hub_channel	*c;

	if ((c = hub_find(h, name, len)) != NULL)
		return c;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->entry = table_insert(&h->chans, name, len)) == NULL) {
		free(c);
		return NULL;
	}
	if (hub_interest(h, MAILBOX_INTEREST, name, len) == -1) {
		table_remove(&h->chans, c->entry);
		free(c);
		return NULL;
	}
	c->entry->value = c;
	LIST_INIT(&c->subs);
	return c;
}

static void
hub_unsubscribe(struct hub *h, struct hub_sub *sub)
{
	struct hub_channel	*c = sub->channel;

	LIST_REMOVE(sub, entry);
	sub->channel = NULL;
	if (--c->nsubs == 0) {
		hub_interest(h, MAILBOX_NO_INTEREST, c->entry->key,
		    c->entry->len);
		table_remove(&h->chans, c->entry);
		free(c);
	}
}

int
hub_parse_id(const char *epoch, uint64_t last_seq, const char *id,
    uint64_t *seq)
{
	const char	*p;
	uint64_t	 v = 0;
	size_t		 i;

	if (strlen(id) < 10 || id[8] != '-')
		return HUB_RESET_MALFORMED_ID;
	for (i = 0; i < 8; i++)
		if (strchr("0123456789abcdef", id[i]) == NULL || id[i] == '\0')
			return HUB_RESET_MALFORMED_ID;
	for (p = id + 9; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || p - (id + 9) >= 20)
			return HUB_RESET_MALFORMED_ID;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return HUB_RESET_MALFORMED_ID;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (memcmp(id, epoch, 8) != 0)
		return HUB_RESET_UNKNOWN_EPOCH;
	if (v > last_seq)
		return HUB_RESET_UNKNOWN_ID;
	*seq = v;
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
static struct frame *
hub_reset_frame(struct hub *h, enum hub_reset why)
{
	char	 id[40];

	STATS_ADD(resets[why], 1);
	if (h->durable)
		return frame_reset(NULL, hub_reset_names[why]);
	hub_event_id(h, ++h->seq, id, sizeof(id));
	return frame_reset(id, hub_reset_names[why]);
}

static void
hub_queue_wake(struct hub *h, struct stream *s)
{
	if (s->wake_queued)
		return;
	s->wake_queued = 1;
	STAILQ_INSERT_TAIL(&h->wakes, s, wake);
}

/* queue f to s; 1 if it was queued */
static int
hub_push(struct hub *h, struct stream *s, struct frame *f)
{
	switch (stream_push(s, f)) {
	case STREAM_PUSH_QUEUED:
		return 1;
	case STREAM_PUSH_WAKE:
		hub_queue_wake(h, s);
		return 1;
	case STREAM_PUSH_OVERFLOW:
		/* the client does not read: end it once its ring drains */
		STATS_ADD(slow_closes, 1);
		if (stream_close(s, h->slow_final))
			hub_queue_wake(h, s);
		return 0;
	case STREAM_PUSH_CLOSED:
		break;
	}
	return 0;
}

/* wake every stream queued to during this batch, each once */
static void
hub_wake(struct hub *h)
{
	struct stream	*s;

	while ((s = STAILQ_FIRST(&h->wakes)) != NULL) {
		STAILQ_REMOVE_HEAD(&h->wakes, wake);
		s->wake_queued = 0;
		stream_wake(s);
	}
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
	int			 why, r;

	why = hub_parse_id(h->epoch, h->seq, last_event_id, &after);
	if (why == -1) {
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
	if ((f = hub_reset_frame(h, (enum hub_reset)why)) == NULL ||
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

/*
 * --history redis: post the read a stream waits for, once its channels
 * are subscribed (at once with patterns); the broker answers through
 * hub_recovered().  Out of memory, the read is lost: the stream is ended
 * rather than left waiting, and its client comes back.
 */
static void
hub_read_free(void *r)
{
	durable_read_free(r);
}

static void
hub_read_post(struct hub *h, struct stream *s)
{
	struct durable_read	*r = s->read;

	if (r == NULL)
		return;
	s->read = NULL;
	if (h->mailbox != NULL && mailbox_post_ptr(h->mailbox, MAILBOX_READ,
	    r, hub_read_free) == 0)
		return;
	durable_read_free(r);
	log_warnx("out of memory asking for a stream's history: ending it");
	if (stream_close(s, h->slow_final))
		hub_queue_wake(h, s);
}

/*
 * --history redis: what a new stream needs read: the positions of its
 * channels, or, with a Last-Event-ID of ours, what it missed after it.
 * An id that cannot be used gets its reset once the positions are known.
 */
static int
hub_recover(struct hub *h, struct stream *s, const char **channels,
    const size_t *lens, size_t n, const char *last_event_id, unsigned last,
    struct hub_resume *res)
{
	struct durable_read	*r;
	struct position		 after[n > 0 ? n : 1];
	enum durable_mode	 mode = DURABLE_OPEN;
	size_t			 i;
	int			 reset = -1;

	s->fp = position_fingerprint(channels, lens, n);
	if (last_event_id != NULL && *last_event_id != '\0') {
		switch (position_parse(last_event_id, s->fp, after, n)) {
		case POSITION_OK:
			mode = DURABLE_AFTER;
			break;
		case POSITION_CHANNELS:
			reset = HUB_RESET_UNKNOWN_CHANNELS;
			break;
		case POSITION_MALFORMED:
			reset = HUB_RESET_MALFORMED_ID;
			break;
		}
	} else if (last > 0)
		mode = DURABLE_LAST;
	if ((r = durable_read_new(s->id, mode, last, channels, lens, n)) == NULL)
		return -1;
	for (i = 0; mode == DURABLE_AFTER && i < n; i++)
		r->chans[i].after = after[i];
	r->reset = reset;
	res->reset = reset;
	s->recovering = 1;		/* nobody else sees s yet */
	s->read = r;
	if (s->waiting == 0)
		hub_read_post(h, s);
	return 0;
}

/*
 * Exact subscriptions: a new stream waits for the channels not subscribed
 * yet, while Redis is up; while it is down the stream opens now and is
 * told later.  Each waiting membership is counted in s->waiting.
 */
static void
hub_hold(struct hub *h, struct stream *s, struct hub_resume *res)
{
	struct hub_sub	*sub;
	size_t		 i;

	for (i = 0; i < s->nsubs; i++) {
		sub = &s->subs[i];
		sub->waiting = sub->missed = 0;
		if (history_is_subscribed(&h->history,
		    sub->channel->entry->key, sub->channel->entry->len))
			continue;
		if (h->redis_up) {
			sub->waiting = 1;
			s->waiting++;
		} else
			sub->missed = HUB_RESET_NOT_SUBSCRIBED + 1;
	}
	if (s->waiting > 0) {
		s->held = 1;		/* nobody else sees s yet */
		TAILQ_INSERT_TAIL(&h->holding, s, holding);
		res->held = 1;
	}
}

/* let a held stream open: what its memberships still wait for is missed */
static void
hub_release(struct hub *h, struct stream *s)
{
	size_t	 i;

	for (i = 0; i < s->nsubs; i++)
		if (s->subs[i].waiting) {
			s->subs[i].waiting = 0;
			s->subs[i].missed = HUB_RESET_NOT_SUBSCRIBED + 1;
		}
	TAILQ_REMOVE(&h->holding, s, holding);
	s->waiting = 0;
	hub_read_post(h, s);
	if (stream_release(s))
		hub_queue_wake(h, s);
}

/*
 * The channels in the order of their names: an id of positions lists
 * them so (position.h), whatever order the request named them in.
 */
static void
hub_sort_channels(const char **names, size_t *lens, size_t n)
{
	const char	*nm;
	size_t		 i, j, l;
	int		 c;

	for (i = 1; i < n; i++) {
		nm = names[i];
		l = lens[i];
		for (j = i; j > 0; j--) {
			c = memcmp(names[j - 1], nm, lens[j - 1] < l ?
			    lens[j - 1] : l);
			if (c < 0 || (c == 0 && lens[j - 1] <= l))
				break;
			names[j] = names[j - 1];
			lens[j] = lens[j - 1];
		}
		names[j] = nm;
		lens[j] = l;
	}
}

int
hub_add(struct hub *h, struct stream *s, const char **channels0,
    const size_t *lens0, size_t n, const char *last_event_id,
    unsigned last, struct hub_resume *res)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	struct hub_resume	 dummy;
	const char		*channels[n > 0 ? n : 1];
	size_t			 lens[n > 0 ? n : 1];
	size_t			 i;

	if (n > s->maxsubs)
		return -1;
	memcpy(channels, channels0, n * sizeof(*channels));
	memcpy(lens, lens0, n * sizeof(*lens));
	if (h->durable)
		hub_sort_channels(channels, lens, n);

	if (res == NULL)
		res = &dummy;
	res->replayed = res->backlog = 0;
	res->reset = -1;
	res->held = 0;
	pthread_mutex_lock(&h->lock);
	if (h->closing)
		goto bad;
	if (!h->durable && last_event_id != NULL && *last_event_id != '\0') {
		if (hub_resume(h, s, channels, lens, n, last_event_id,
		    res) == -1)
			goto bad;
	} else if (!h->durable && last > 0)
		hub_backlog(h, s, channels, lens, n, last, res);
	for (i = 0; i < n; i++) {
		if ((c = hub_channel_get(h, channels[i], lens[i])) == NULL) {
			while (i-- > 0)
				hub_unsubscribe(h, &s->subs[i]);
			goto bad;
		}
		sub = &s->subs[i];
		sub->stream = s;
		sub->channel = c;
		LIST_INSERT_HEAD(&c->subs, sub, entry);
		c->nsubs++;
	}
	s->nsubs = n;
	if (h->exact)
		hub_hold(h, s, res);
	if (h->durable) {
		s->id = ++h->next_id;
		if (table_insert(&h->by_id, (const char *)&s->id,
		    sizeof(s->id)) == NULL)
			goto unsubscribe;
		table_find(&h->by_id, (const char *)&s->id,
		    sizeof(s->id))->value = s;
		if (hub_recover(h, s, channels, lens, n, last_event_id, last,
		    res) == -1) {
			table_remove(&h->by_id, table_find(&h->by_id,
			    (const char *)&s->id, sizeof(s->id)));
			goto unsubscribe;
		}
	}

	/* behind the heartbeat cursor: its first ping a full turn away */
	if (h->cursor != NULL)
		TAILQ_INSERT_BEFORE(h->cursor, s, all);
	else
		TAILQ_INSERT_TAIL(&h->streams, s, all);
	h->nstreams++;
	if (s->expires != 0)
		h->nexpiring++;
	s->registered = 1;
	s->opened_us = util_now_us();
	pthread_mutex_unlock(&h->lock);
	STATS_ADD(streams_open, 1);
	STATS_ADD(streams_opened, 1);
	return 0;
unsubscribe:
	if (s->waiting > 0)
		TAILQ_REMOVE(&h->holding, s, holding);
	s->waiting = 0;
	s->held = 0;
	for (i = 0; i < n; i++)
		hub_unsubscribe(h, &s->subs[i]);
	s->nsubs = 0;
bad:
	pthread_mutex_unlock(&h->lock);
	return -1;
}

void
hub_remove(struct hub *h, struct stream *s)
{
	size_t	 i;

	pthread_mutex_lock(&h->lock);
	if (!s->registered) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	/* wakes are done before the lock is let go of */
	if (s->wake_queued)
		fatalx("hub_remove: stream on the wake list");
	for (i = 0; i < s->nsubs; i++)
		hub_unsubscribe(h, &s->subs[i]);
	s->nsubs = 0;
	if (h->cursor == s)
		h->cursor = TAILQ_NEXT(s, all);
	TAILQ_REMOVE(&h->streams, s, all);
	h->nstreams--;
	if (s->expires != 0)
		h->nexpiring--;
	if (s->waiting > 0) {
		TAILQ_REMOVE(&h->holding, s, holding);
		s->waiting = 0;
	}
	if (h->durable) {
		struct table_entry *e = table_find(&h->by_id,
		    (const char *)&s->id, sizeof(s->id));

		if (e != NULL)
			table_remove(&h->by_id, e);
		durable_read_free(s->read);	/* a read comes back to none */
		s->read = NULL;
	}
	s->registered = 0;
	pthread_mutex_unlock(&h->lock);
	STATS_SUB(streams_open, 1);
}

/* queue f to every subscriber of the channel; returns how many */
static size_t
hub_fanout(struct hub *h, const char *name, size_t len, struct frame *f)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	size_t			 n = 0;

	if ((c = hub_find(h, name, len)) == NULL)
		return 0;
	LIST_FOREACH(sub, &c->subs, entry)
		n += hub_push(h, sub->stream, f);
	return n;
}

/* the history's numbers, for /healthz and /metrics */
static void
hub_history_publish(struct hub *h)
{
	const struct history_stats *hs = &h->history.stats;

	STATS_SET(history_messages, hs->messages);
	STATS_SET(history_bytes, hs->bytes);
	STATS_SET(history_channels, hs->channels);
	STATS_SET(history_evicted, hs->evicted_count + hs->evicted_ttl +
	    hs->evicted_memory);
}

/*
 * --history redis: a message as the Function published it, or a plain
 * PUBLISH (ephemeral: no id); encoded only when a stream here wants it,
 * since nothing of it is kept here.
 */
static void
hub_publish_durable(struct hub *h, const struct hub_message *m,
    uint64_t recv_us)
{
	struct hub_channel	*c;
	struct position		 pos;
	struct frame		*f;
	const char		*data = m->payload;
	size_t			 len = m->payload_len;
	int			 durable;

	if ((c = hub_find(h, m->channel, m->channel_len)) == NULL)
		return;
	if ((durable = position_unwrap(&data, &len, &pos)) == -1) {
		log_debug("a message on %.*s with a broken position: sent as "
		    "it is", (int)m->channel_len, m->channel);
		durable = 0;
	}
	if ((f = frame_message(NULL, m->channel, m->channel_len, data, len,
	    h->format)) == NULL) {
		log_warnx("out of memory encoding a message on %.*s: dropped",
		    (int)m->channel_len, m->channel);
		return;
	}
	f->recv_us = recv_us;
	if (durable) {
		f->stamp = FRAME_STAMP_MESSAGE;
		f->chan = c;
		f->epoch = pos.epoch;
		f->offset = pos.offset;
	}
	STATS_ADD(events_queued, hub_fanout(h, m->channel, m->channel_len,
	    f));
	frame_unref(f);
}

static void
hub_publish_one(struct hub *h, const struct hub_message *m, uint64_t now_ms,
    uint64_t recv_us)
{
	struct frame	*f;
	uint64_t	 seq;
	char		 id[40];

	if (h->durable) {
		hub_publish_durable(h, m, recv_us);
		return;
	}
	seq = ++h->seq;
	hub_event_id(h, seq, id, sizeof(id));
	/* encoded even with no subscriber: a resume may want it */
	f = frame_message(id, m->channel, m->channel_len, m->payload,
	    m->payload_len, h->format);
	if (f == NULL) {
		/* not silently: resumes from before it will get a reset */
		history_lost(&h->history, seq);
		log_warnx("out of memory encoding a message on %.*s: dropped",
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

void
hub_publish(struct hub *h, const struct hub_message *m, size_t n,
    uint64_t recv_us)
{
	uint64_t	 now_ms = util_now_ms();
	size_t		 i;

	pthread_mutex_lock(&h->lock);
	history_expire(&h->history, now_ms);
	for (i = 0; i < n; i++)
		hub_publish_one(h, &m[i], now_ms, recv_us);
	hub_history_publish(h);
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_subscribed(struct hub *h)
{
	struct stream	*s;
	struct frame	*f;
	enum hub_reset	 why;
	size_t		 n = 0;

	pthread_mutex_lock(&h->lock);
	/* what was published while we were not subscribed never reached us */
	history_outage(&h->history, h->seq);
	if (!h->subscribed_once) {
		h->subscribed_once = 1;
		h->unsubscribed_upto = h->seq;
		why = HUB_RESET_NOT_SUBSCRIBED;
	} else
		why = HUB_RESET_REDIS_OUTAGE;
	if (TAILQ_EMPTY(&h->streams))
		goto done;
	if ((f = hub_reset_frame(h, why)) == NULL) {
		log_warnx("out of memory: open streams get no reset after the "
		    "Redis subscription");
		goto done;
	}
	TAILQ_FOREACH(s, &h->streams, all)
		n += hub_push(h, s, f);
	frame_unref(f);
	if (why == HUB_RESET_NOT_SUBSCRIBED)
		log_info("redis: told %zu streams opened before the first "
		    "subscription to refetch (event: reset)", n);
	else
		log_info("redis: told %zu open streams to refetch (event: "
		    "reset)", n);
	hub_wake(h);
done:
	pthread_mutex_unlock(&h->lock);
}

/* a reset to s for why, at most one per hub_channels call */
static void
hub_stream_reset(struct hub *h, struct stream *s, enum hub_reset why,
    struct frame **cache)
{
	if (s->reset_gen == h->gen)
		return;
	s->reset_gen = h->gen;
	if (cache[why] == NULL && (cache[why] = hub_reset_frame(h, why)) ==
	    NULL) {
		log_warnx("out of memory: a stream gets no reset after a "
		    "Redis subscription");
		return;
	}
	hub_push(h, s, cache[why]);
}

void
hub_channels(struct hub *h, enum hub_channel_event ev, const char **names,
    const size_t *lens, size_t n)
{
	struct frame		*cache[HUB_NRESETS];
	struct hub_channel	*c;
	struct hub_sub		*sub;
	struct stream		*s;
	size_t			 i, k;
	unsigned char		 why;

	memset(cache, 0, sizeof(cache));
	why = (ev == HUB_CHANNEL_LOST ? HUB_RESET_REDIS_OUTAGE :
	    HUB_RESET_NOT_SUBSCRIBED) + 1;
	pthread_mutex_lock(&h->lock);
	h->gen++;
	for (i = 0; i < n; i++) {
		if (ev == HUB_CHANNEL_SUBSCRIBED) {
			/* every id given so far is from before it */
			if (history_subscribed(&h->history, names[i], lens[i],
			    h->seq) == -1)
				log_warnx("history: out of memory; resumes on "
				    "%.*s will get a reset", (int)lens[i],
				    names[i]);
		} else
			history_unsubscribed(&h->history, names[i], lens[i]);
		if ((c = hub_find(h, names[i], lens[i])) == NULL)
			continue;
		LIST_FOREACH(sub, &c->subs, entry) {
			s = sub->stream;
			if (ev != HUB_CHANNEL_SUBSCRIBED) {
				if (!sub->waiting && !sub->missed)
					sub->missed = why;
				continue;
			}
			if (sub->missed) {
				hub_stream_reset(h, s,
				    (enum hub_reset)(sub->missed - 1), cache);
				sub->missed = 0;
			}
			if (sub->waiting) {
				sub->waiting = 0;
				if (--s->waiting == 0) {
					TAILQ_REMOVE(&h->holding, s, holding);
					hub_read_post(h, s);
					if (stream_release(s))
						hub_queue_wake(h, s);
				}
			}
		}
	}
	for (k = 0; k < HUB_NRESETS; k++)
		frame_unref(cache[k]);
	hub_history_publish(h);
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_redis_state(struct hub *h, int up)
{
	struct stream	*s;

	pthread_mutex_lock(&h->lock);
	h->redis_up = up;
	/* no subscription can come now: held streams open, and are told */
	if (!up)
		while ((s = TAILQ_FIRST(&h->holding)) != NULL)
			hub_release(h, s);
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

/* queue the pings that are due to the next share of streams */
static void
hub_heartbeat(struct hub *h, uint64_t elapsed_ms, uint64_t interval_ms)
{
	size_t	 due, n = 0;

	if (h->nstreams == 0 || interval_ms == 0) {
		h->hb_credit = 0;
		return;
	}
	h->hb_credit += (uint64_t)h->nstreams * elapsed_ms;
	due = (size_t)(h->hb_credit / interval_ms);
	if (due > h->nstreams) {
		/* late ticks: one ping each, not a burst of them */
		due = h->nstreams;
		h->hb_credit = 0;
	} else
		h->hb_credit -= (uint64_t)due * interval_ms;
	while (due-- > 0) {
		if (h->cursor == NULL)
			h->cursor = TAILQ_FIRST(&h->streams);
		n += hub_push(h, h->cursor, h->ping);
		h->cursor = TAILQ_NEXT(h->cursor, all);
	}
	STATS_ADD(heartbeats, n);
}

/* end every stream whose token expired by now; walks them all */
static void
hub_expire_tokens(struct hub *h, time_t now)
{
	struct stream	*s;
	size_t		 n = 0;

	TAILQ_FOREACH(s, &h->streams, all)
		if (s->expires != 0 && s->expires <= now) {
			s->expires = 0;		/* once */
			h->nexpiring--;
			if (stream_close(s, h->slow_final))
				hub_queue_wake(h, s);
			n++;
		}
	if (n > 0)
		log_debug("auth: %zu streams ended: their tokens expired", n);
}

void
hub_tick(struct hub *h, uint64_t now_ms, time_t now_s, unsigned heartbeat_ms)
{
	struct stream	*s;
	uint64_t	 now_us = util_now_us();

	pthread_mutex_lock(&h->lock);
	while ((s = TAILQ_FIRST(&h->holding)) != NULL &&
	    now_us - s->opened_us >= (uint64_t)h->hold_ms * 1000) {
		log_debug("a stream waited %u ms for its subscriptions: it "
		    "opens, and will get a reset", h->hold_ms);
		hub_release(h, s);
	}
	history_expire(&h->history, now_ms);
	hub_history_publish(h);
	/* once a second is enough for tokens valid for minutes */
	if (h->nexpiring > 0 && now_s != h->last_token_s) {
		h->last_token_s = now_s;
		hub_expire_tokens(h, now_s);
	}
	hub_heartbeat(h, now_ms - h->last_tick_ms, heartbeat_ms);
	h->last_tick_ms = now_ms;
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_close_all(struct hub *h, struct frame *(*make_final)(void *), void *arg)
{
	struct stream	*s;
	struct frame	*f;

	pthread_mutex_lock(&h->lock);
	h->closing = 1;
	while ((s = TAILQ_FIRST(&h->holding)) != NULL)
		hub_release(h, s);
	TAILQ_FOREACH(s, &h->streams, all) {
		f = make_final != NULL ? make_final(arg) : NULL;
		if (stream_close(s, f))
			hub_queue_wake(h, s);
		frame_unref(f);
	}
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_history_stats(struct hub *h, struct history_stats *out)
{
	pthread_mutex_lock(&h->lock);
	*out = h->history.stats;
	pthread_mutex_unlock(&h->lock);
}

/* a replayed entry, to merge the channels in publish order */
struct hub_replay {
	struct durable_entry	*e;
	size_t			 chan;
};

static int
hub_replay_cmp(const void *a, const void *b)
{
	const struct hub_replay *x = a, *y = b;

	if (x->e->time_us != y->e->time_us)
		return x->e->time_us < y->e->time_us ? -1 : 1;
	if (x->chan != y->chan)
		return x->chan < y->chan ? -1 : 1;
	return x->e->offset < y->e->offset ? -1 : x->e->offset > y->e->offset;
}

/* why a channel's read cannot be replayed, or -1 */
static int
hub_read_gap(const struct durable_chan *c)
{
	switch (c->status) {
	case DURABLE_OK:
		return -1;
	case DURABLE_EPOCH:
		return HUB_RESET_EPOCH_CHANGED;
	case DURABLE_TRIMMED:
		return HUB_RESET_HISTORY_EXCEEDED;
	case DURABLE_AHEAD:
		return HUB_RESET_UNKNOWN_ID;
	case DURABLE_PENDING:
	case DURABLE_FAILED:
		break;
	}
	return HUB_RESET_REDIS_OUTAGE;
}

/* the frames of the entries of r, merged; *n of them, NULL and 0 if none */
static struct frame **
hub_replay_frames(struct hub *h, struct stream *s, struct durable_read *r,
    size_t *n)
{
	struct hub_replay	*all;
	struct frame		**frames;
	size_t			 i, k, total = 0;

	*n = 0;
	for (i = 0; i < r->n; i++)
		total += r->chans[i].nentries;
	if (total == 0)
		return NULL;
	if ((all = calloc(total, sizeof(*all))) == NULL ||
	    (frames = calloc(total, sizeof(*frames))) == NULL) {
		free(all);
		return NULL;
	}
	for (i = 0, k = 0; i < r->n; i++) {
		size_t j;

		for (j = 0; j < r->chans[i].nentries; j++, k++) {
			all[k].e = &r->chans[i].entries[j];
			all[k].chan = i;
		}
	}
	qsort(all, total, sizeof(*all), hub_replay_cmp);
	for (k = 0; k < total; k++) {
		struct durable_chan *c = &r->chans[all[k].chan];
		struct frame *f;

		if ((f = frame_message(NULL, c->name, c->len, all[k].e->data,
		    all[k].e->len, h->format)) == NULL)
			break;
		f->stamp = FRAME_STAMP_MESSAGE;
		f->chan = s->subs[all[k].chan].channel;
		f->epoch = c->now.epoch;
		f->offset = all[k].e->offset;
		frames[(*n)++] = f;
	}
	free(all);
	if (*n < total) {
		while (*n > 0)
			frame_unref(frames[--(*n)]);
		free(frames);
		return NULL;
	}
	return frames;
}

void
hub_recovered(struct hub *h, struct durable_read *r)
{
	struct table_entry	*te;
	struct stream		*s;
	struct frame		**replay = NULL, *reset = NULL;
	struct position		 start[r->n > 0 ? r->n : 1];
	struct position		 seen[r->n > 0 ? r->n : 1];
	size_t			 nreplay = 0, i;
	int			 why = r->reset, gap;

	pthread_mutex_lock(&h->lock);
	if ((te = table_find(&h->by_id, (const char *)&r->stream_id,
	    sizeof(r->stream_id))) == NULL)
		goto done;		/* the stream went meanwhile */
	s = te->value;
	if (r->n != s->nsubs)
		fatalx("hub_recovered: a read of %zu channels for a stream of "
		    "%zu", r->n, s->nsubs);
	for (i = 0; i < r->n; i++) {
		seen[i] = r->chans[i].now;
		start[i] = r->chans[i].now;
		if (r->mode == DURABLE_OPEN || why != -1)
			continue;
		if ((gap = hub_read_gap(&r->chans[i])) != -1)
			why = gap;
	}
	if (why == -1 && r->mode != DURABLE_OPEN) {
		/* the replay starts where the client was; its frames advance */
		for (i = 0; i < r->n; i++) {
			if (r->mode == DURABLE_AFTER)
				start[i] = r->chans[i].after;
			else if (r->chans[i].nentries > 0) {
				start[i] = r->chans[i].now;
				start[i].offset =
				    r->chans[i].entries[0].offset - 1;
			}
		}
		replay = hub_replay_frames(h, s, r, &nreplay);
		if (replay == NULL && nreplay == 0) {
			for (i = 0; i < r->n; i++)
				if (r->chans[i].nentries > 0)
					why = HUB_RESET_OUT_OF_MEMORY;
		}
	}
	if (why != -1) {
		for (i = 0; i < r->n; i++)
			start[i] = r->chans[i].now;
		if ((reset = hub_reset_frame(h, (enum hub_reset)why)) == NULL)
			log_warnx("out of memory: a stream gets no reset");
	} else if (r->mode == DURABLE_AFTER) {
		STATS_ADD(resumes, 1);
		STATS_ADD(replayed, nreplay);
	} else if (r->mode == DURABLE_LAST) {
		STATS_ADD(backlogs, 1);
		STATS_ADD(backlog_events, nreplay);
	}
	if (stream_recovered(s, start, seen, r->mode == DURABLE_OPEN &&
	    why == -1, reset, replay, nreplay))
		hub_queue_wake(h, s);
	for (i = 0; i < nreplay; i++)
		frame_unref(replay[i]);
	free(replay);
	frame_unref(reset);
	hub_wake(h);
done:
	pthread_mutex_unlock(&h->lock);
	durable_read_free(r);
}
