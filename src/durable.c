/*
 * durable.c - the history reads, a record the hub and the broker pass
 * each other.  See durable.h and durable.lua; Redis's answers to them are
 * read in answers.c, the library is made in durable_library.c.
 */
#include "autoconf.h"

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

void
durable_chan_clear(struct durable_chan *c)
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
		durable_chan_clear(&r->chans[i]);
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
