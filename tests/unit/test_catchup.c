/*
 * test_catchup.c - --history redis: open streams brought up to date after
 * a Redis outage (hub_catchup.c), without Redis: the reads the hub posts
 * to the broker's mailbox are taken and answered here by hand, as the
 * broker would after its barrier.
 *
 * What a client must see: every message exactly once and in order across
 * the outage (the read's entries, then what came live meanwhile, the
 * overlap dropped), its id moving on with each; a reset with the real
 * reason where the history cannot cover the gap, after which its id names
 * the channel's new position; redis-outage for a channel of plain
 * PUBLISHes; a read made stale by a newer subscription changes nothing;
 * a catch-up of many streams is applied in slices, the broker asked for
 * the rest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"
#include "frame.h"
#include "hub.h"
#include "mailbox.h"
#include "position.h"
#include "sse.h"
#include "stats.h"
#include "stream.h"
#include "streamkit.h"
#include "tap.h"

#define EPOCH	0xa1u
#define EPOCH2	0xb2u

static struct mailbox *mb;

/* a durable message as the Function publishes it */
static void
publish(struct hub *h, const char *ch, uint32_t epoch, uint64_t offset,
    const char *data)
{
	char			 buf[256];
	struct hub_message	 m;
	int			 n;

	memcpy(buf, POSITION_MAGIC, POSITION_MAGIC_LEN);
	n = POSITION_MAGIC_LEN + snprintf(buf + POSITION_MAGIC_LEN,
	    sizeof(buf) - POSITION_MAGIC_LEN, "%x:%llu:%s", epoch,
	    (unsigned long long)offset, data);
	m.channel = ch;
	m.channel_len = strlen(ch);
	m.payload = buf;
	m.payload_len = (size_t)n;
	hub_publish(h, &m, 1, 0);
}

/* the next read the hub posted, or NULL; counts MAILBOX_HUB_WORK asks */
static struct durable_read *
take_read(int *work)
{
	struct mailbox_items	 items = STAILQ_HEAD_INITIALIZER(items);
	struct mailbox_item	*it;
	struct durable_read	*r = NULL;

	mailbox_take(mb, &items);
	STAILQ_FOREACH(it, &items, entry) {
		if (it->op == MAILBOX_READ && r == NULL) {
			r = it->ptr;
			it->ptr = NULL;
		} else if (it->op == MAILBOX_HUB_WORK && work != NULL)
			(*work)++;
	}
	mailbox_items_free(&items);
	return r;
}

/* answer channel i: status, the channel's position now, entries from..to */
static void
answer(struct durable_read *r, size_t i, enum durable_status st,
    uint32_t epoch, uint64_t now, uint64_t from, uint64_t to)
{
	struct durable_chan	*c = &r->chans[i];
	char			 text[32];
	uint64_t		 o;
	size_t			 k = 0;

	c->status = st;
	c->now.epoch = epoch;
	c->now.offset = now;
	c->now.known = 1;
	if (from == 0 || to < from)
		return;
	c->entries = calloc(to - from + 1, sizeof(*c->entries));
	for (o = from; o <= to; o++, k++) {
		/* "b7" on upload:b, "u7" on the others; at one time,
		   upload:b's first */
		snprintf(text, sizeof(text), "%c%llu", strcmp(c->name,
		    "upload:b") == 0 ? 'b' : 'u', (unsigned long long)o);
		c->entries[k].offset = o;
		c->entries[k].time_us = o * 10 + (strcmp(c->name,
		    "upload:b") != 0);
		c->entries[k].data = strdup(text);
		c->entries[k].len = strlen(text);
	}
	c->nentries = k;
}

static size_t
chan_of(const struct durable_read *r, const char *name)
{
	size_t	 i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->chans[i].name, name) == 0)
			return i;
	printf("Bail out! no channel %s in the read\n", name);
	exit(1);
}

static struct stream *
open_stream(struct hub *h, struct conn *c, const char *a, const char *b,
    uint64_t at)
{
	struct stream		*s;
	struct durable_read	*r;
	const char		*chs[2] = { a, b };
	size_t			 lens[2] = { strlen(a), b ? strlen(b) : 0 };
	size_t			 n = b != NULL ? 2 : 1, i;

	memset(c, 0, sizeof(*c));
	if ((s = stream_new(4096, n, 1)) == NULL) {
		printf("Bail out! stream_new\n");
		exit(1);
	}
	s->conn = c;
	s->wakeup = kit_wakeup;
	stream_attach(s, 1);
	if (hub_add(h, s, chs, lens, n, NULL, 0, NULL) == -1) {
		printf("Bail out! hub_add\n");
		exit(1);
	}
	/* its own read: the positions now */
	r = take_read(NULL);
	for (i = 0; r != NULL && i < r->n; i++)
		answer(r, i, DURABLE_OK, EPOCH, at, 0, 0);
	hub_recovered(h, r);
	return s;
}

/* the messages' data and the resets, as a client reads them */
static void
read_all(struct stream *s, char *out, size_t len, char *last_id, size_t idlen)
{
	struct kit_event ev[512];
	int slips = 0;
	size_t n, i, k = 0;

	out[0] = '\0';
	n = kit_read_events(s, ev, 512, &slips);
	for (i = 0; i < n; i++) {
		if (ev[i].event[0] != '\0')
			k += (size_t)snprintf(out + k, len - k, "[%s %s]",
			    ev[i].event, ev[i].data);
		else
			k += (size_t)snprintf(out + k, len - k, "%s ",
			    ev[i].data);
		if (last_id != NULL && ev[i].id[0] != '\0')
			snprintf(last_id, idlen, "%.*s", (int)idlen - 1,
			    ev[i].id);
	}
}

static struct hub *
mkhub(void)
{
	struct hub_config	 hc;
	struct hub		*h;

	memset(&hc, 0, sizeof(hc));
	hc.format = FRAME_FORMAT_RAW;
	hc.mailbox = mb;
	hc.durable = 1;
	if ((h = hub_new(&hc)) == NULL) {
		printf("Bail out! hub_new\n");
		exit(1);
	}
	hub_subscribed(h);		/* the first subscription */
	return h;
}

static void
test_exact(void)
{
	struct hub		*h = mkhub();
	struct stream		*s;
	struct durable_read	*r;
	struct conn		 c;
	struct position		 p[2];
	char			 got[2048], id[256];
	uint32_t		 fp;

	s = open_stream(h, &c, "user:a", "upload:b", 5);
	publish(h, "user:a", EPOCH, 6, "u6");
	publish(h, "upload:b", EPOCH, 6, "b6");
	read_all(s, got, sizeof(got), id, sizeof(id));
	is_str(got, "u6 b6 ", "live before the outage");

	/* the outage; subscribed again: a read per channel, after 6 */
	hub_subscribed(h);
	r = take_read(NULL);
	ok(r != NULL && r->stream_id == 0 && r->n == 2 &&
	    r->mode == DURABLE_AFTER, "one catch-up read of both channels");
	ok(r != NULL && r->chans[0].after.offset == 6 &&
	    r->chans[1].after.offset == 6, "after the positions queued");
	/* live again: 10 on user:a arrives before the read's answer */
	publish(h, "user:a", EPOCH, 9, "u9");
	publish(h, "user:a", EPOCH, 10, "u10");
	read_all(s, got, sizeof(got), NULL, 0);
	is_str(got, "", "what comes live waits while the history is read");
	answer(r, chan_of(r, "user:a"), DURABLE_OK, EPOCH, 9, 7, 9);
	answer(r, chan_of(r, "upload:b"), DURABLE_OK, EPOCH, 8, 7, 8);
	hub_recovered(h, r);
	read_all(s, got, sizeof(got), id, sizeof(id));
	/* merged by publish time: u7 b7 u8 b8 u9 (u sorts after b at a
	   tie: its time is one more), then u10 live, u9 not twice */
	is_str(got, "b7 u7 b8 u8 u9 u10 ",
	    "the missed ones in publish order, then the live one, no "
	    "duplicate, no reset");
	fp = s->fp;
	ok(position_parse(id, fp, p, 2) == POSITION_OK &&
	    p[0].offset == 8 && p[1].offset == 10,
	    "its id says upload:b 8, user:a 10 (%s)", id);
	is_int(kit_stat(&stats.recoveries), 1, "one recovery counted");
	is_int(kit_stat(&stats.recovered), 5, "five events recovered");

	/* a read made stale by a newer subscription changes nothing */
	hub_subscribed(h);
	r = take_read(NULL);
	hub_subscribed(h);
	{
		struct durable_read *r2 = take_read(NULL);

		publish(h, "user:a", EPOCH, 12, "u12");
		answer(r, chan_of(r, "user:a"), DURABLE_OK, EPOCH, 11, 11, 11);
		answer(r, chan_of(r, "upload:b"), DURABLE_OK, EPOCH, 8, 0, 0);
		hub_recovered(h, r);
		read_all(s, got, sizeof(got), NULL, 0);
		is_str(got, "", "a stale read: the stream still waits");
		answer(r2, chan_of(r2, "user:a"), DURABLE_OK, EPOCH, 12, 11, 12);
		answer(r2, chan_of(r2, "upload:b"), DURABLE_OK, EPOCH, 8, 0, 0);
		hub_recovered(h, r2);
		read_all(s, got, sizeof(got), NULL, 0);
		is_str(got, "u11 u12 ", "the newer read: the gap, once");
	}

	/* Redis restarted without its data: epoch-changed, id moves */
	hub_subscribed(h);
	r = take_read(NULL);
	answer(r, chan_of(r, "user:a"), DURABLE_EPOCH, EPOCH2, 3, 0, 0);
	answer(r, chan_of(r, "upload:b"), DURABLE_OK, EPOCH, 8, 0, 0);
	hub_recovered(h, r);
	read_all(s, got, sizeof(got), id, sizeof(id));
	is_str(got, "[reset {\"reason\":\"epoch-changed\"}]",
	    "history lost: a reset, epoch-changed, never redis-outage");
	ok(position_parse(id, fp, p, 2) == POSITION_OK &&
	    p[1].epoch == EPOCH2 && p[1].offset == 3 && p[0].offset == 8,
	    "the reset's id names user:a's new epoch (%s)", id);
	publish(h, "user:a", EPOCH2, 4, "n4");
	read_all(s, got, sizeof(got), NULL, 0);
	is_str(got, "n4 ", "and the new epoch's messages follow");

	/* a plain PUBLISH on a channel: redis-outage after the catch-up */
	{
		struct hub_message m = { "upload:b", 8, "plain", 5 };

		hub_publish(h, &m, 1, 0);
	}
	read_all(s, got, sizeof(got), NULL, 0);
	hub_subscribed(h);
	r = take_read(NULL);
	answer(r, chan_of(r, "user:a"), DURABLE_OK, EPOCH2, 5, 5, 5);
	answer(r, chan_of(r, "upload:b"), DURABLE_OK, EPOCH, 8, 0, 0);
	hub_recovered(h, r);
	read_all(s, got, sizeof(got), NULL, 0);
	is_str(got, "u5 [reset {\"reason\":\"redis-outage\"}]",
	    "plain PUBLISHes are kept nowhere: redis-outage after the rest");
	is_int(c.errors, 0, "no wake of an awaiting or unattached stream");
	hub_remove(h, s);
	stream_free(s);
	hub_free(h);
}

static void
test_slices(void)
{
	struct hub		*h = mkhub();
	struct stream		*s[1200];
	struct conn		 c[1200];
	struct durable_read	*r;
	char			 got[256];
	int			 i, work = 0, bad = 0, rounds;

	memset(&stats, 0, sizeof(stats));
	for (i = 0; i < 1200; i++)
		s[i] = open_stream(h, &c[i], "user:many", NULL, 1);
	hub_subscribed(h);
	r = take_read(NULL);
	answer(r, 0, DURABLE_OK, EPOCH, 3, 2, 3);
	hub_recovered(h, r);
	is_int(kit_stat(&stats.recoveries), 512, "one answer: 512 streams at "
	    "once, under the hub lock");
	take_read(&work);
	is_int(work, 1, "and the broker asked for the rest");
	for (rounds = 0; work > 0 && rounds < 10; rounds++) {
		work = 0;
		hub_work(h);
		take_read(&work);
	}
	is_int(kit_stat(&stats.recoveries), 1200, "then all 1200, in %d more "
	    "passes", rounds);
	for (i = 0; i < 1200; i++) {
		read_all(s[i], got, sizeof(got), NULL, 0);
		bad += strcmp(got, "u2 u3 ") != 0;
		hub_remove(h, s[i]);
		stream_free(s[i]);
	}
	is_int(bad, 0, "every stream got what it missed");
	hub_free(h);
}

int
main(void)
{
	if ((mb = mailbox_new()) == NULL) {
		printf("Bail out! mailbox_new\n");
		return 1;
	}
	test_exact();
	test_slices();
	stream_out_free(kit_stream_out());
	mailbox_free(mb);
	return done_testing();
}
