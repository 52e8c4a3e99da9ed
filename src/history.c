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
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "history.h"

struct history_chan {
	struct table_entry	*entry;
	struct history_entry	*first, *last;
	size_t			 count;
	uint64_t		 evicted_upto;
};

struct history_entry {
	struct history_entry	*older, *newer;		/* global */
	struct history_entry	*chan_newer;		/* channel */
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
    size_t max_bytes)
{
	memset(h, 0, sizeof(*h));
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

/* e is its channel's oldest entry and the oldest of all, or the oldest
 * of its channel: unlink it everywhere */
static void
history_evict(struct history *h, struct history_entry *e)
{
	struct history_chan	*c = e->chan;

	if (c->first != e)
		abort();	/* entries leave a channel oldest first */
	c->first = e->chan_newer;
	if (c->first == NULL)
		c->last = NULL;
	c->count--;
	c->evicted_upto = history_max(c->evicted_upto, e->seq);

	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		h->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		h->newest = e->older;

	h->stats.messages--;
	h->stats.bytes -= history_cost(e);
	frame_unref(e->frame);
	free(e);

	if (c->count == 0) {
		h->dropped_upto = history_max(h->dropped_upto,
		    c->evicted_upto);
		table_remove(&h->chans, c->entry);
		free(c);
		h->stats.channels--;
	}
}

void
history_free(struct history *h)
{
	while (h->oldest != NULL)
		history_evict(h, h->oldest);
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
	if ((te = table_find(&h->chans, name, len)) != NULL)
		c = te->value;
	else {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			goto nomem;
		if ((c->entry = table_insert(&h->chans, name, len)) == NULL) {
			free(c);
			goto nomem;
		}
		c->entry->value = c;
		c->evicted_upto = 0;
		h->stats.channels++;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		if (c->count == 0) {
			table_remove(&h->chans, c->entry);
			free(c);
			h->stats.channels--;
		}
		goto nomem;
	}
	e->chan = c;
	e->seq = seq;
	e->time_ms = now_ms;
	e->frame = frame_ref(f);
	if (c->last != NULL)
		c->last->chan_newer = e;
	else
		c->first = e;
	c->last = e;
	c->count++;
	e->older = h->newest;
	if (h->newest != NULL)
		h->newest->newer = e;
	else
		h->oldest = e;
	h->newest = e;
	h->stats.messages++;
	h->stats.bytes += history_cost(e);

	if (c->count > h->per_channel) {
		history_evict(h, c->first);
		h->stats.evicted_count++;
	}
	while (h->stats.bytes > h->max_bytes && h->oldest != NULL) {
		history_evict(h, h->oldest);
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
	while (h->oldest != NULL && now_ms - h->oldest->time_ms >= h->ttl_ms) {
		history_evict(h, h->oldest);
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

enum history_verdict
history_replay(struct history *h, const char **chans, const size_t *lens,
    size_t n, uint64_t after, struct frame ***out, size_t *nout)
{
	struct history_entry	**sel = NULL, *e;
	struct history_chan	*c[n > 0 ? n : 1];
	struct table_entry	*te;
	struct frame		**frames;
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
		if (c[i] == NULL)
			continue;
		if (c[i]->evicted_upto > after)
			return HISTORY_TOO_OLD;
		total += c[i]->count;
	}
	if (total == 0)
		return HISTORY_COMPLETE;
	if ((sel = malloc(total * sizeof(*sel))) == NULL)
		return HISTORY_NOMEM;
	for (i = 0; i < n; i++)
		for (e = c[i] != NULL ? c[i]->first : NULL; e != NULL;
		    e = e->chan_newer)
			if (e->seq > after)
				sel[k++] = e;
	if (k == 0) {
		free(sel);
		return HISTORY_COMPLETE;
	}
	qsort(sel, k, sizeof(*sel), history_cmp);
	if ((frames = malloc(k * sizeof(*frames))) == NULL) {
		free(sel);
		return HISTORY_NOMEM;
	}
	for (i = 0; i < k; i++)
		frames[i] = frame_ref(sel[i]->frame);
	free(sel);
	*out = frames;
	*nout = k;
	return HISTORY_COMPLETE;
}

const char *
history_verdict_reason(enum history_verdict v)
{
	switch (v) {
	case HISTORY_COMPLETE:
		return "complete";
	case HISTORY_TOO_OLD:
		return "history-exceeded";
	case HISTORY_OUTAGE:
		return "redis-outage";
	case HISTORY_DISABLED:
		return "history-disabled";
	case HISTORY_NOMEM:
		return "out-of-memory";
	}
	return "unknown";
}
