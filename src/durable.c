/*
 * durable.c - the Redis Function library and the history reads.  See
 * durable.h and durable.lua.
 */
#include "autoconf.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"

struct durable_read *
durable_read_new(uint64_t stream_id, enum durable_mode mode, unsigned count,
    const char **names, const size_t *lens, size_t n)
{
	struct durable_read	*r;
	size_t			 i;

	if ((r = calloc(1, sizeof(*r) + n * sizeof(r->chans[0]))) == NULL)
		return NULL;
	r->stream_id = stream_id;
	r->mode = mode;
	r->count = count;
	r->n = n;
	for (i = 0; i < n; i++) {
		if ((r->chans[i].name = malloc(lens[i] + 1)) == NULL) {
			durable_read_free(r);
			return NULL;
		}
		memcpy(r->chans[i].name, names[i], lens[i]);
		r->chans[i].name[lens[i]] = '\0';
		r->chans[i].len = lens[i];
	}
	return r;
}

static void
durable_entries_free(struct durable_chan *c)
{
	size_t	 i;

	for (i = 0; i < c->nentries; i++)
		free(c->entries[i].data);
	free(c->entries);
	c->entries = NULL;
	c->nentries = 0;
}

void
durable_read_free(struct durable_read *r)
{
	size_t	 i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++) {
		free(r->chans[i].name);
		durable_entries_free(&r->chans[i]);
	}
	free(r);
}

void
durable_read_command(const struct durable_read *r, size_t i,
    char bufs[2][24], const char **argv, size_t *lens)
{
	const struct durable_chan	*c = &r->chans[i];

	argv[0] = "FCALL_RO";
	argv[1] = "sserelay_read";
	argv[2] = "1";
	argv[3] = c->name;
	lens[3] = c->len;
	argv[4] = r->mode == DURABLE_LAST ? "last" : "after";
	/*
	 * OPEN asks "after" an epoch no channel has: just the positions.  A
	 * position taken before the first message ("-") is offset 0 of
	 * whatever epoch the channel has now.
	 */
	if (r->mode == DURABLE_AFTER) {
		if (c->after.known)
			snprintf(bufs[0], 24, "%x", c->after.epoch);
		else
			snprintf(bufs[0], 24, "*");
		snprintf(bufs[1], 24, "%llu",
		    (unsigned long long)c->after.offset);
	} else {
		snprintf(bufs[0], 24, "-");
		snprintf(bufs[1], 24, "%u", r->mode == DURABLE_LAST ?
		    r->count : 0);
	}
	argv[5] = bufs[0];
	argv[6] = bufs[1];
	lens[0] = 8;
	lens[1] = 13;
	lens[2] = 1;
	lens[4] = strlen(argv[4]);
	lens[5] = strlen(bufs[0]);
	lens[6] = strlen(bufs[1]);
}

static int
durable_number(const redisReply *e, uint64_t *v)
{
	char		*end;
	char		 buf[32];

	if (e->type != REDIS_REPLY_STRING || e->len == 0 ||
	    e->len >= sizeof(buf))
		return -1;
	memcpy(buf, e->str, e->len);
	buf[e->len] = '\0';
	*v = strtoull(buf, &end, 10);
	return *end == '\0' ? 0 : -1;
}

int
durable_read_reply(struct durable_read *r, size_t i, const redisReply *rep)
{
	struct durable_chan	*c = &r->chans[i];
	struct durable_entry	*en;
	const char		*st;
	size_t			 k, n;

	durable_entries_free(c);
	if (rep->type == REDIS_REPLY_ERROR || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements < 3 || (rep->elements - 3) % 3 != 0 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING) {
		c->status = DURABLE_FAILED;
		return rep->type == REDIS_REPLY_ERROR ? 0 : -1;
	}
	st = rep->element[0]->str;
	c->status = strcmp(st, "ok") == 0 ? DURABLE_OK :
	    strcmp(st, "epoch") == 0 ? DURABLE_EPOCH :
	    strcmp(st, "trimmed") == 0 ? DURABLE_TRIMMED :
	    strcmp(st, "ahead") == 0 ? DURABLE_AHEAD : DURABLE_FAILED;
	memset(&c->now, 0, sizeof(c->now));
	if (rep->element[1]->len > 0) {
		if (position_epoch(rep->element[1]->str, rep->element[1]->len,
		    &c->now.epoch) == -1 || durable_number(rep->element[2],
		    &c->now.offset) == -1)
			goto bad;
		c->now.known = 1;
	}
	n = (rep->elements - 3) / 3;
	if (n == 0)
		return 0;
	if ((c->entries = calloc(n, sizeof(*c->entries))) == NULL)
		goto bad;
	for (k = 0; k < n; k++) {
		const redisReply *d = rep->element[3 + 3 * k + 2];

		en = &c->entries[k];
		if (durable_number(rep->element[3 + 3 * k], &en->offset) ==
		    -1 || durable_number(rep->element[3 + 3 * k + 1],
		    &en->time_us) == -1 || d->type != REDIS_REPLY_STRING ||
		    (en->data = malloc(d->len + 1)) == NULL)
			goto bad;
		memcpy(en->data, d->str, d->len);
		en->data[d->len] = '\0';
		en->len = d->len;
		c->nentries = k + 1;
	}
	return 0;
bad:
	durable_entries_free(c);
	c->status = DURABLE_FAILED;
	return -1;
}
