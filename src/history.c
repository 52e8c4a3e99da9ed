/*
 * history.c - per-channel replay buffer.  Rules in history.h.
 *
 * DESIGN
 * Each message is one entry on two lists: its channel's (oldest first,
 * for the per-channel cap and for replay) and the global one (by seq,
 * which is also by arrival time, for the TTL and the memory cap).
 *
 * Completeness: a channel remembers the highest seq it ever evicted
 * (evicted_upto).  A client that last saw seq A has missed nothing that
 * left the channel iff evicted_upto <= A.  When a channel's last entry
 * leaves, its record goes too, and its evicted_upto is folded into
 * dropped_upto, which then applies to every channel: conservative (a
 * resume older than it gets a reset even on a channel that lost nothing),
 * never wrong.  A Redis outage is the same bound for every channel.
 *
 * With exact subscriptions a record is there exactly while its channel is
 * subscribed, empty or not, and remembers since when (subscribed_upto):
 * no record, or a resume from before the subscription, and the client may
 * have missed messages we never received.  Records then never fold into
 * dropped_upto, which would reset resumes on every channel each time one
 * channel is let go.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "history.h"
#include "log.h"

struct history_chan {
	struct table_entry	*entry;
	STAILQ_HEAD(, history_entry) entries;		/* oldest first */
	size_t			 count;
	uint64_t		 evicted_upto;
	uint64_t		 subscribed_upto;	/* exact: see above */
};

struct history_entry {
	TAILQ_ENTRY(history_entry) global;
	STAILQ_ENTRY(history_entry) in_chan;
	struct history_chan	*chan;
	uint64_t		 seq;
	uint64_t		 time_ms;
	struct frame		*frame;
};

static size_t
history_cost(const struct history_entry *e)
{
	return sizeof(*e) + sizeof(struct frame) + e->frame->len;
}

int
history_init(struct history *h, size_t per_channel, unsigned ttl_s,
    size_t max_bytes, int exact)
{
	memset(h, 0, sizeof(*h));
	h->exact = exact;
	TAILQ_INIT(&h->all);
	h->per_channel = per_channel;
	h->ttl_ms = (uint64_t)ttl_s * 1000;
	h->max_bytes = max_bytes;
	return table_init(&h->chans);
}

static uint64_t
history_max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void
history_chan_free(struct history *h, struct history_chan *c)
{
	table_remove(&h->chans, c->entry);
	free(c);
	h->stats.channels--;
}

static struct history_chan *
history_chan_get(struct history *h, const char *name, size_t len)
{
	struct table_entry	*te;
	struct history_chan	*c;

	if ((te = table_find(&h->chans, name, len)) != NULL)
		return te->value;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->entry = table_insert(&h->chans, name, len)) == NULL) {
		free(c);
		return NULL;
	}
	c->entry->value = c;
	STAILQ_INIT(&c->entries);
	h->stats.channels++;
	return c;
}

/* e is its channel's oldest entry and the oldest of all, or the oldest
 * of its channel: unlink it everywhere */
static void
history_evict(struct history *h, struct history_entry *e)
{
	struct history_chan	*c = e->chan;

	if (STAILQ_FIRST(&c->entries) != e)
		fatalx("history: entries leave a channel oldest first");
	STAILQ_REMOVE_HEAD(&c->entries, in_chan);
	c->count--;
	c->evicted_upto = history_max(c->evicted_upto, e->seq);
	TAILQ_REMOVE(&h->all, e, global);

	h->stats.messages--;
	h->stats.bytes -= history_cost(e);
	frame_unref(e->frame);
	free(e);

	if (c->count == 0 && !h->exact) {
		h->dropped_upto = history_max(h->dropped_upto,
		    c->evicted_upto);
		history_chan_free(h, c);
	}
}

void
history_free(struct history *h)
{
	struct table_entry	*te;
	size_t			 i;

	while (!TAILQ_EMPTY(&h->all))
		history_evict(h, TAILQ_FIRST(&h->all));
	/* exact mode keeps empty records */
	for (i = 0; i < h->chans.nbuckets; i++)
		while ((te = h->chans.bucket[i]) != NULL)
			history_chan_free(h, te->value);
	table_free(&h->chans);
}

int
history_add(struct history *h, const char *name, size_t len, uint64_t seq,
    uint64_t now_ms, struct frame *f)
{
	struct table_entry	*te;
	struct history_chan	*c;
	struct history_entry	*e;

	if (h->per_channel == 0) {
		h->dropped_upto = seq;
		return 0;
	}
	if (h->exact) {
		if ((te = table_find(&h->chans, name, len)) == NULL)
			return 0;	/* not subscribed: nothing to keep */
		c = te->value;
	} else if ((c = history_chan_get(h, name, len)) == NULL)
		goto nomem;
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		if (c->count == 0 && !h->exact)
			history_chan_free(h, c);
		goto nomem;
	}
	e->chan = c;
	e->seq = seq;
	e->time_ms = now_ms;
	e->frame = frame_ref(f);
	STAILQ_INSERT_TAIL(&c->entries, e, in_chan);
	c->count++;
	TAILQ_INSERT_TAIL(&h->all, e, global);
	h->stats.messages++;
	h->stats.bytes += history_cost(e);

	if (c->count > h->per_channel) {
		history_evict(h, STAILQ_FIRST(&c->entries));
		h->stats.evicted_count++;
	}
	while (h->stats.bytes > h->max_bytes && !TAILQ_EMPTY(&h->all)) {
		history_evict(h, TAILQ_FIRST(&h->all));
		h->stats.evicted_memory++;
	}
	return 0;
nomem:
	/* a message we could not keep is one a resume cannot replay */
	history_lost(h, seq);
	return -1;
}

void
history_expire(struct history *h, uint64_t now_ms)
{
	struct history_entry	*e;

	while ((e = TAILQ_FIRST(&h->all)) != NULL &&
	    now_ms - e->time_ms >= h->ttl_ms) {
		history_evict(h, e);
		h->stats.evicted_ttl++;
	}
}

void
history_lost(struct history *h, uint64_t seq)
{
	h->dropped_upto = history_max(h->dropped_upto, seq);
}

void
history_outage(struct history *h, uint64_t seq)
{
	h->outage_upto = history_max(h->outage_upto, seq);
}

static int
history_cmp(const void *a, const void *b)
{
	const struct history_entry *x = *(struct history_entry *const *)a;
	const struct history_entry *y = *(struct history_entry *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The frames of sel[0..k), in seq order, each with a reference for the
 * caller; sel is freed.  -1 if out of memory.
 */
static int
history_frames(struct history_entry **sel, size_t k, struct frame ***out,
    size_t *nout)
{
	struct frame	**frames;
	size_t		 i;

	if (k == 0) {
		free(sel);
		return 0;
	}
	qsort(sel, k, sizeof(*sel), history_cmp);
	if ((frames = malloc(k * sizeof(*frames))) == NULL) {
		free(sel);
		return -1;
	}
	for (i = 0; i < k; i++)
		frames[i] = frame_ref(sel[i]->frame);
	free(sel);
	*out = frames;
	*nout = k;
	return 0;
}

enum history_verdict
history_replay(struct history *h, const char **chans, const size_t *lens,
    size_t n, uint64_t after, struct frame ***out, size_t *nout)
{
	struct history_entry	**sel = NULL, *e;
	struct history_chan	*c[n > 0 ? n : 1];
	struct table_entry	*te;
	size_t			 i, total = 0, k = 0;

	*out = NULL;
	*nout = 0;
	/* a client that saw the last message before the loss missed too */
	if (h->outage_upto > 0 && after <= h->outage_upto)
		return HISTORY_OUTAGE;
	if (h->per_channel == 0)
		return after < h->dropped_upto ? HISTORY_DISABLED :
		    HISTORY_COMPLETE;
	if (after < h->dropped_upto)
		return HISTORY_TOO_OLD;
	for (i = 0; i < n; i++) {
		te = table_find(&h->chans, chans[i], lens[i]);
		c[i] = te != NULL ? te->value : NULL;
		if (c[i] == NULL) {
			if (h->exact)
				return HISTORY_NOT_SUBSCRIBED;
			continue;
		}
		if (h->exact && after <= c[i]->subscribed_upto)
			return HISTORY_NOT_SUBSCRIBED;
		if (c[i]->evicted_upto > after)
			return HISTORY_TOO_OLD;
		total += c[i]->count;
	}
	if (total == 0)
		return HISTORY_COMPLETE;
	if ((sel = malloc(total * sizeof(*sel))) == NULL)
		return HISTORY_NOMEM;
	for (i = 0; i < n; i++)
		if (c[i] != NULL)
			STAILQ_FOREACH(e, &c[i]->entries, in_chan)
				if (e->seq > after)
					sel[k++] = e;
	return history_frames(sel, k, out, nout) == 0 ? HISTORY_COMPLETE :
	    HISTORY_NOMEM;
}

int
history_last(struct history *h, const char **chans, const size_t *lens,
    size_t n, size_t count, struct frame ***out, size_t *nout)
{
	struct history_entry	**sel, *e;
	struct history_chan	*c[n > 0 ? n : 1];
	struct table_entry	*te;
	size_t			 i, skip, total = 0, k = 0;

	*out = NULL;
	*nout = 0;
	for (i = 0; i < n; i++) {
		te = table_find(&h->chans, chans[i], lens[i]);
		c[i] = te != NULL ? te->value : NULL;
		if (c[i] != NULL)
			total += c[i]->count < count ? c[i]->count : count;
	}
	if (total == 0)
		return 0;
	if ((sel = malloc(total * sizeof(*sel))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (c[i] == NULL)
			continue;
		/* the channel's list runs oldest first: skip to its newest */
		skip = c[i]->count > count ? c[i]->count - count : 0;
		STAILQ_FOREACH(e, &c[i]->entries, in_chan)
			if (skip > 0)
				skip--;
			else
				sel[k++] = e;
	}
	return history_frames(sel, k, out, nout);
}

int
history_subscribed(struct history *h, const char *name, size_t len,
    uint64_t seq)
{
	struct history_chan	*c;

	if ((c = history_chan_get(h, name, len)) == NULL)
		return -1;
	c->subscribed_upto = seq;
	return 0;
}

void
history_unsubscribed(struct history *h, const char *name, size_t len)
{
	struct table_entry	*te;
	struct history_chan	*c;

	if ((te = table_find(&h->chans, name, len)) == NULL)
		return;
	c = te->value;
	while (!STAILQ_EMPTY(&c->entries)) {
		struct history_entry *e = STAILQ_FIRST(&c->entries);

		/* the record goes with its entries; not an eviction */
		STAILQ_REMOVE_HEAD(&c->entries, in_chan);
		c->count--;
		TAILQ_REMOVE(&h->all, e, global);
		h->stats.messages--;
		h->stats.bytes -= history_cost(e);
		frame_unref(e->frame);
		free(e);
	}
	history_chan_free(h, c);
}

int
history_is_subscribed(struct history *h, const char *name, size_t len)
{
	return table_find(&h->chans, name, len) != NULL;
}
