/*
 * hub_catchup.c - --history redis: open streams brought up to date after
 * their subscription was lost and made again (a Redis restart, a Sentinel
 * or Cluster failover, a network cut), instead of a reset.
 *
 * DESIGN
 * Redis kept every numbered message published meanwhile.  When a channel
 * is subscribed again (hub_catchup_start), every open stream on it that
 * is not reading its own history starts keeping what comes live aside
 * (stream_recovering), and one read per channel (not per stream) goes to
 * the broker: the channel's entries after the oldest position its streams
 * have queued.  The broker answers it only once every subscribed
 * connection involved has read what Redis sent before the read (its
 * barrier), so the answer and what came live join up exactly: each
 * stream queues the entries (its channels' merged in publish order), then
 * what was kept aside, and drops every message at or before a position it
 * has queued already (stream.c's qpos): no gap, no duplicate.
 *
 * A channel whose history cannot cover the gap gets a reset with the real
 * reason: epoch-changed (Redis lost the channel's history), history-
 * exceeded (trimmed or expired), unknown-id (Redis lost messages it had
 * acknowledged, a failover before replication), each after a position set
 * (FRAME_STAMP_SET) that moves the stream's id to where the channel is
 * now.  Plain PUBLISH messages are kept nowhere: a stream on a channel
 * that carried any gets redis-outage once it is caught up, since some may
 * have been lost.
 *
 * A read is valid only for the latest start of its channel: if the
 * subscription was lost and made again while it was out, what was
 * published in between is in neither it nor the live flow, so its
 * channel's streams wait for the read of the newer start (they keep
 * everything aside meanwhile, and the dedup makes the overlap harmless).
 *
 * Bounded work: the answer is applied to at most HUB_CATCHUP_SLICE
 * streams at a time under the hub lock; the rest waits for the broker's
 * next pass (hub_work, asked for through the mailbox), so live messages
 * keep flowing to streams that are up to date while 10,000 are caught up.
 *
 * THREADS: the hub lock (hub_int.h); called by the broker (starts,
 * answers, hub_work).
 */
#include "autoconf.h"

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

#define HUB_CATCHUP_SLICE	512	/* streams per hold of the hub lock */

/* one channel's answer, shared by its streams */
struct hub_catchup_chan {
	struct hub_catchup	*owner;
	struct frame		**frames;	/* its entries, in order */
	uint64_t		*times;		/* their time_us */
	size_t			 n;
	int			 reset;		/* enum hub_reset, or -1 */
	struct frame		*set;		/* before that reset */
};

struct hub_catchup {
	TAILQ_ENTRY(hub_catchup) entry;
	struct durable_read	*r;
	struct hub_catchup_chan	*ch;		/* r->n */
	uint64_t		*ids;		/* the streams it serves */
	size_t			 nids, next;
};

/* a merged entry: one frame of one channel of a stream */
struct hub_catchup_item {
	struct frame	*f;
	uint64_t	 time;
	size_t		 chan;
};

static void
hub_catchup_read_free(void *r)
{
	durable_read_free(r);
}

/* the index of sub in its stream's memberships */
static size_t
hub_catchup_index(const struct hub_sub *sub)
{
	return (size_t)(sub - sub->stream->subs);
}

/*
 * Channel c is to be read again: its streams keep aside what comes, and
 * the oldest position they queued is where the read starts.  0 if no
 * stream of it needs one.
 */
static int
hub_catchup_channel(struct hub *h, struct hub_channel *c, uint64_t gen,
    struct position *after)
{
	struct hub_sub	*sub;
	struct stream	*s;
	struct position	 q;
	int		 any = 0, first = 1;

	memset(after, 0, sizeof(*after));
	LIST_FOREACH(sub, &c->subs, entry) {
		s = sub->stream;
		/* its own read, answered after this subscription, covers it */
		if (s->reading || !s->registered)
			continue;
		if (!sub->catching) {
			sub->catching = 1;
			if (s->catching_up++ == 0)
				stream_recovering(s);
		}
		any = 1;
		q = stream_queued_position(s, hub_catchup_index(sub));
		if (first || !q.known || (after->known &&
		    q.epoch == after->epoch && q.offset < after->offset)) {
			/* unknown: from the start of what Redis keeps */
			*after = q;
			first = 0;
		}
	}
	c->catchup_gen = gen;
	c->result = NULL;
	return any;
}

void
hub_catchup_start(struct hub *h, const char **names, const size_t *lens,
    size_t n)
{
	struct durable_read	*r;
	struct hub_channel	*c, **cs;
	struct table_entry	*e;
	struct position		*after;
	const char		**nm;
	size_t			*ln, i, k = 0, total;
	uint64_t		 gen = ++h->catchup_gen;

	total = names != NULL ? n : h->chans.count;
	if (total == 0)
		return;
	cs = calloc(total, sizeof(*cs));
	after = calloc(total, sizeof(*after));
	nm = calloc(total, sizeof(*nm));
	ln = calloc(total, sizeof(*ln));
	if (cs == NULL || after == NULL || nm == NULL || ln == NULL)
		goto nomem;
	if (names != NULL) {
		for (i = 0; i < n; i++)
			if ((c = hub_find(h, names[i], lens[i])) != NULL)
				cs[k++] = c;
	} else
		for (i = 0; i < h->chans.nbuckets; i++)
			for (e = h->chans.bucket[i]; e != NULL; e = e->next)
				cs[k++] = e->value;
	for (i = 0, n = 0; i < k; i++) {
		if (!hub_catchup_channel(h, cs[i], gen, &after[n]))
			continue;
		nm[n] = cs[i]->entry->key;
		ln[n] = cs[i]->entry->len;
		n++;
	}
	if (n == 0)
		goto done;
	if ((r = durable_read_new(0, DURABLE_AFTER, 0, nm, ln, n)) == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		r->chans[i].after = after[i];
		r->chans[i].gen = gen;
	}
	if (mailbox_post_ptr(h->mailbox, MAILBOX_READ, r,
	    hub_catchup_read_free) == -1) {
		durable_read_free(r);
		goto nomem;
	}
	log_info("redis: bringing the streams of %zu channels up to date "
	    "from the history", n);
	goto done;
nomem:
	/*
	 * The streams cannot be told what they missed: they stay aside
	 * until the next subscription's catch-up, or end as too slow.
	 */
	log_warnx("out of memory: streams not brought up to date after the "
	    "Redis subscription");
done:
	free(cs);
	free(after);
	free(nm);
	free(ln);
}

/* the frames of channel i's entries, and what it says */
static int
hub_catchup_chan(struct hub *h, struct hub_catchup *cu, size_t i,
    struct hub_channel *c)
{
	struct durable_chan	*dc = &cu->r->chans[i];
	struct hub_catchup_chan	*rc = &cu->ch[i];
	struct frame		*f;
	size_t			 k;

	rc->owner = cu;
	rc->reset = -1;
	switch (dc->status) {
	case DURABLE_OK:
		break;
	case DURABLE_EPOCH:
		rc->reset = HUB_RESET_EPOCH_CHANGED;
		break;
	case DURABLE_TRIMMED:
		rc->reset = HUB_RESET_HISTORY_EXCEEDED;
		break;
	case DURABLE_AHEAD:
		rc->reset = HUB_RESET_UNKNOWN_ID;
		break;
	case DURABLE_PENDING:
	case DURABLE_FAILED:
		rc->reset = HUB_RESET_REDIS_OUTAGE;
		break;
	}
	if (rc->reset != -1) {
		/* the stream's id says where the channel is now */
		if (dc->status != DURABLE_FAILED && dc->status !=
		    DURABLE_PENDING && (rc->set = frame_set_position(c,
		    dc->now.epoch, dc->now.offset)) == NULL)
			return -1;
		return 0;
	}
	if (dc->nentries == 0)
		return 0;
	if ((rc->frames = calloc(dc->nentries, sizeof(*rc->frames))) == NULL ||
	    (rc->times = calloc(dc->nentries, sizeof(*rc->times))) == NULL)
		return -1;
	for (k = 0; k < dc->nentries; k++) {
		if ((f = frame_message(NULL, dc->name, dc->len,
		    dc->entries[k].data, dc->entries[k].len, h->format)) ==
		    NULL)
			return -1;
		f->stamp = FRAME_STAMP_MESSAGE;
		f->chan = c;
		f->epoch = dc->now.epoch;
		f->offset = dc->entries[k].offset;
		rc->frames[rc->n] = f;
		rc->times[rc->n++] = dc->entries[k].time_us;
	}
	return 0;
}

static int
hub_catchup_cmp(const void *a, const void *b)
{
	const struct hub_catchup_item *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	if (x->chan != y->chan)
		return x->chan < y->chan ? -1 : 1;
	return x->f->offset < y->f->offset ? -1 : x->f->offset > y->f->offset;
}

/*
 * What cu has for s: its channels' entries merged in publish order, then
 * the position sets and one reset for the channels it cannot cover (or a
 * redis-outage for a channel of plain PUBLISHes).  Each of those
 * channels is done for s.
 */
static void
hub_catchup_stream(struct hub *h, struct hub_catchup *cu, struct stream *s)
{
	struct hub_catchup_chan	*rc;
	struct hub_catchup_item	*items;
	struct frame		**frames, *reset = NULL;
	size_t			 j, k, total = 0, nf = 0, queued = 0;
	int			 why = -1, ephemeral = 0, wake;
	unsigned char		 mine[s->nsubs > 0 ? s->nsubs : 1];

	for (j = 0, nf = 0; j < s->nsubs; j++) {
		rc = s->subs[j].channel->result;
		mine[j] = s->subs[j].catching && rc != NULL && rc->owner == cu;
		if (mine[j]) {
			total += rc->n + 1;
			nf++;
		}
	}
	if (nf == 0)
		return;		/* listed twice: done already */
	nf = 0;
	items = calloc(total > 0 ? total : 1, sizeof(*items));
	frames = calloc(total + 1, sizeof(*frames));
	if (items == NULL || frames == NULL) {
		free(items);
		free(frames);
		log_warnx("out of memory bringing a stream up to date");
		return;		/* it waits for the next catch-up */
	}
	for (j = 0, total = 0; j < s->nsubs; j++) {
		if (!mine[j])
			continue;
		rc = s->subs[j].channel->result;
		s->subs[j].catching = 0;
		s->catching_up--;
		for (k = 0; k < rc->n; k++) {
			items[total].f = rc->frames[k];
			items[total].time = rc->times[k];
			items[total++].chan = j;
		}
		if (rc->reset != -1 && why == -1)
			why = rc->reset;
		ephemeral |= s->subs[j].channel->ephemeral;
	}
	if (total > 1)
		qsort(items, total, sizeof(*items), hub_catchup_cmp);
	for (k = 0; k < total; k++)
		frames[nf++] = items[k].f;
	for (j = 0; j < s->nsubs; j++)
		if (mine[j] && s->subs[j].channel->result->set != NULL)
			frames[nf++] = s->subs[j].channel->result->set;
	if (why == -1 && ephemeral)
		why = HUB_RESET_REDIS_OUTAGE;
	if (why != -1 && (reset = hub_reset_frame(h, why)) != NULL)
		frames[nf++] = reset;
	wake = stream_caught_up(s, frames, nf, s->catching_up == 0, &queued);
	if (s->catching_up == 0)
		STATS_ADD(recoveries, 1);
	STATS_ADD(recovered, queued);
	if (wake)
		hub_queue_wake(h, s);
	frame_unref(reset);
	free(items);
	free(frames);
}

static void
hub_catchup_free_one(struct hub_catchup *cu)
{
	struct hub_catchup_chan	*rc;
	size_t			 i, k;

	for (i = 0; cu->ch != NULL && i < cu->r->n; i++) {
		rc = &cu->ch[i];
		for (k = 0; k < rc->n; k++)
			frame_unref(rc->frames[k]);
		free(rc->frames);
		free(rc->times);
		frame_unref(rc->set);
	}
	free(cu->ch);
	free(cu->ids);
	durable_read_free(cu->r);
	free(cu);
}

/* done with cu: its channels forget it */
static void
hub_catchup_end(struct hub *h, struct hub_catchup *cu)
{
	struct hub_channel	*c;
	size_t			 i;

	for (i = 0; i < cu->r->n; i++)
		if ((c = hub_find(h, cu->r->chans[i].name,
		    cu->r->chans[i].len)) != NULL && c->result == &cu->ch[i])
			c->result = NULL;
	TAILQ_REMOVE(&h->catchups, cu, entry);
	hub_catchup_free_one(cu);
}

/* up to HUB_CATCHUP_SLICE streams of the oldest catch-up; 1 if more */
static int
hub_catchup_slice(struct hub *h)
{
	struct hub_catchup	*cu;
	struct stream		*s;
	size_t			 done;

	if ((cu = TAILQ_FIRST(&h->catchups)) == NULL)
		return 0;
	for (done = 0; done < HUB_CATCHUP_SLICE && cu->next < cu->nids;
	    done++)
		if ((s = hub_stream_by_id(h, cu->ids[cu->next++])) != NULL)
			hub_catchup_stream(h, cu, s);
	if (cu->next == cu->nids)
		hub_catchup_end(h, cu);
	return !TAILQ_EMPTY(&h->catchups);
}

/* ask the broker for another pass of hub_work */
static void
hub_catchup_more(struct hub *h)
{
	if (h->catchup_posted)
		return;
	if (mailbox_post(h->mailbox, MAILBOX_HUB_WORK, "", 0) == 0)
		h->catchup_posted = 1;
	else
		log_warnx("out of memory: streams wait to be brought up to "
		    "date");
}

void
hub_catchup_read(struct hub *h, struct durable_read *r)
{
	struct hub_catchup	*cu;
	struct hub_channel	*c;
	struct hub_sub		*sub;
	size_t			 i, cap = 0;
	int			 bad = 0;

	if ((cu = calloc(1, sizeof(*cu))) == NULL ||
	    (cu->ch = calloc(r->n > 0 ? r->n : 1, sizeof(*cu->ch))) == NULL) {
		free(cu);
		durable_read_free(r);
		log_warnx("out of memory: streams wait to be brought up to "
		    "date");
		return;
	}
	cu->r = r;
	/* the channels this read is the latest for, and their streams */
	for (i = 0; i < r->n; i++) {
		if ((c = hub_find(h, r->chans[i].name, r->chans[i].len)) ==
		    NULL || c->catchup_gen != r->chans[i].gen)
			continue;	/* gone, or a newer read is out */
		if (hub_catchup_chan(h, cu, i, c) == -1)
			bad = 1;
		c->result = &cu->ch[i];
		cap += c->nsubs;
	}
	if (bad)
		log_warnx("out of memory: a channel's streams get a reset "
		    "instead of what they missed");
	if ((cu->ids = calloc(cap > 0 ? cap : 1, sizeof(*cu->ids))) == NULL) {
		hub_catchup_free_one(cu);
		log_warnx("out of memory: streams wait to be brought up to "
		    "date");
		return;
	}
	for (i = 0; i < r->n; i++) {
		if ((c = hub_find(h, r->chans[i].name, r->chans[i].len)) ==
		    NULL || c->result != &cu->ch[i])
			continue;
		/* a stream on two of its channels is listed twice: the
		   second finds nothing left to do */
		LIST_FOREACH(sub, &c->subs, entry)
			if (sub->catching && cu->nids < cap)
				cu->ids[cu->nids++] = sub->stream->id;
	}
	TAILQ_INSERT_TAIL(&h->catchups, cu, entry);
	if (hub_catchup_slice(h))
		hub_catchup_more(h);
	hub_wake(h);
}

void
hub_work(struct hub *h)
{
	pthread_mutex_lock(&h->lock);
	h->catchup_posted = 0;
	if (hub_catchup_slice(h))
		hub_catchup_more(h);
	hub_wake(h);
	pthread_mutex_unlock(&h->lock);
}

void
hub_catchup_free(struct hub *h)
{
	struct hub_catchup	*cu;

	while ((cu = TAILQ_FIRST(&h->catchups)) != NULL) {
		TAILQ_REMOVE(&h->catchups, cu, entry);
		hub_catchup_free_one(cu);
	}
}
