/*
 * hub_durable.c - --history redis: the history is Redis's, ids are each
 * stream's positions (position.h), and a new stream's start is read from
 * Redis through the broker: its channels' positions, what a Last-Event-ID
 * missed, or ?last=N's backlog.
 *
 * DESIGN
 * A new stream is registered by its id (hub->by_id) and its read waits in
 * it (s->read) until its channels are subscribed; it is then posted to the
 * broker, whose answer comes back through hub_recovered() by the stream's
 * id (the stream may be gone by then).  Meanwhile what comes live is kept
 * aside in the stream (stream_recovering), then queued after the replay
 * less what the replay held already.  Live messages carry their position
 * in front of the payload (hub_durable_message); plain PUBLISHes carry
 * none and are kept nowhere.  Open streams brought up to date after an
 * outage are hub_catchup.c's.
 *
 * THREADS: the hub lock (hub_int.h).
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"
#include "frame.h"
#include "hub.h"
#include "hub_int.h"
#include "log.h"
#include "mailbox.h"
#include "position.h"
#include "stats.h"
#include "stream.h"
#include "table.h"

struct stream *
hub_stream_by_id(struct hub *h, uint64_t id)
{
	struct table_entry	*te;

	te = table_find(&h->by_id, (const char *)&id, sizeof(id));
	return te != NULL ? te->value : NULL;
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

void
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
	if (stream_close(s, h->retry))
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
	s->reading = 1;
	s->read = r;
	if (s->nawaiting == 0)
		hub_read_post(h, s);
	return 0;
}

/*
 * A new stream, once its memberships are made: registered by its id, and
 * its read made (hub_recover).  -1 if out of memory (nothing registered).
 */
int
hub_durable_start(struct hub *h, struct stream *s, const char **channels,
    const size_t *lens, size_t n, const char *last_event_id, unsigned last,
    struct hub_resume *res)
{
	struct table_entry	*e;

	if ((e = table_insert(&h->by_id, (const char *)&s->id,
	    sizeof(s->id))) == NULL)
		return -1;
	e->value = s;
	if (hub_recover(h, s, channels, lens, n, last_event_id, last,
	    res) == -1) {
		table_remove(&h->by_id, e);
		return -1;
	}
	return 0;
}

/* s leaves the hub: a read that comes back finds no stream */
void
hub_durable_forget(struct hub *h, struct stream *s)
{
	struct table_entry	*e;

	if ((e = table_find(&h->by_id, (const char *)&s->id,
	    sizeof(s->id))) != NULL)
		table_remove(&h->by_id, e);
	durable_read_free(s->read);
	s->read = NULL;
}

/*
 * The channels in the order of their names: an id of positions lists
 * them so (position.h), whatever order the request named them in.
 */
void
hub_durable_sort(const char **names, size_t *lens, size_t n)
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

/*
 * --history redis: a message as the Function published it, or a plain
 * PUBLISH (ephemeral: no id); encoded only when a stream here wants it,
 * since nothing of it is kept here.
 */
void
hub_durable_message(struct hub *h, const struct hub_message *m,
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
		log_kv(LOG_LEVEL_DEBUG, HUB_CHANNEL(m->channel, m->channel_len),
		    "a message on %.*s with a broken position: sent as it is",
		    (int)m->channel_len, m->channel);
		durable = 0;
	}
	if ((f = frame_message(NULL, m->channel, m->channel_len, data, len,
	    h->format)) == NULL) {
		log_kv(LOG_LEVEL_WARN, HUB_CHANNEL(m->channel, m->channel_len),
		    "out of memory encoding a message on %.*s: dropped",
		    (int)m->channel_len, m->channel);
		return;
	}
	f->recv_us = recv_us;
	if (!durable)
		c->ephemeral = 1;	/* an outage may lose some: hub_catchup */
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
	struct stream		*s;
	struct frame		**replay = NULL, *reset = NULL;
	struct position		 start[r->n > 0 ? r->n : 1];
	size_t			 nreplay = 0, i;
	int			 why = r->reset, gap;

	pthread_mutex_lock(&h->lock);
	if (r->stream_id == 0) {
		/* channels read again after an outage (hub_catchup.c) */
		hub_catchup_read(h, r);
		pthread_mutex_unlock(&h->lock);
		return;
	}
	if ((s = hub_stream_by_id(h, r->stream_id)) == NULL)
		goto done;		/* the stream went meanwhile */
	s->reading = 0;
	if (r->n != s->nsubs)
		fatalx("hub_recovered: a read of %zu channels for a stream of "
		    "%zu", r->n, s->nsubs);
	for (i = 0; i < r->n; i++) {
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
	if (stream_recovered(s, start, r->mode == DURABLE_OPEN &&
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
