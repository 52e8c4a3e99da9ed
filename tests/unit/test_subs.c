/*
 * test_subs.c - exact subscriptions (subs.h) as the broker drives them:
 * the hub's interest in, batched commands out, Redis's answers in, and
 * what the hub is told.  A fake broker records every command and event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subs.h"
#include "tap.h"

struct fake {
	int	 up;		/* route succeeds */
	int	 fail_emit;
	int	 sharded;	/* group = first byte, node = second byte */
	char	 cmds[4096];	/* "+a,b;-c;" */
	char	 events[4096];	/* "S:a,b;L:c;U:d;" */
	int	 ncmds;
};

static int
fake_route(void *arg, const char *name, size_t len, int *node,
    unsigned *group)
{
	struct fake *f = arg;

	if (!f->up)
		return -1;
	*node = f->sharded && len > 1 ? name[1] - '0' : 0;
	*group = f->sharded ? (unsigned char)name[0] : 0;
	return 0;
}

static int
fake_emit(void *arg, int node, int subscribe, const char **names,
    const size_t *lens, size_t n)
{
	struct fake *f = arg;
	size_t i, k = strlen(f->cmds);

	if (f->fail_emit)
		return -1;
	k += (size_t)snprintf(f->cmds + k, sizeof(f->cmds) - k, "%c",
	    subscribe ? '+' : '-');
	for (i = 0; i < n; i++)
		k += (size_t)snprintf(f->cmds + k, sizeof(f->cmds) - k,
		    "%s%.*s", i ? "," : "", (int)lens[i], names[i]);
	snprintf(f->cmds + k, sizeof(f->cmds) - k, ";");
	f->ncmds++;
	return 0;
}

static void
fake_notify(void *arg, enum subs_event ev, const char **names,
    const size_t *lens, size_t n)
{
	struct fake *f = arg;
	size_t i, k = strlen(f->events);

	k += (size_t)snprintf(f->events + k, sizeof(f->events) - k, "%c:",
	    ev == SUBS_SUBSCRIBED ? 'S' : ev == SUBS_LOST ? 'L' : 'U');
	for (i = 0; i < n; i++)
		k += (size_t)snprintf(f->events + k, sizeof(f->events) - k,
		    "%s%.*s", i ? "," : "", (int)lens[i], names[i]);
	snprintf(f->events + k, sizeof(f->events) - k, ";");
}

static int
cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the names inside each group of s ("X:a,b;" or "+a,b;") sorted */
static const char *
sorted(const char *in)
{
	static char out[4096];
	char buf[4096], *grp, *save = NULL, *names[64], *p, *save2;
	size_t k = 0, n, i;

	snprintf(buf, sizeof(buf), "%s", in);
	out[0] = '\0';
	for (grp = strtok_r(buf, ";", &save); grp != NULL;
	    grp = strtok_r(NULL, ";", &save)) {
		p = grp[0] == '+' || grp[0] == '-' ? grp + 1 : grp + 2;
		k += (size_t)snprintf(out + k, sizeof(out) - k, "%.*s",
		    (int)(p - grp), grp);
		n = 0;
		for (save2 = NULL, p = strtok_r(p, ",", &save2); p != NULL &&
		    n < 64; p = strtok_r(NULL, ",", &save2))
			names[n++] = p;
		qsort(names, n, sizeof(*names), cmpstr);
		for (i = 0; i < n; i++)
			k += (size_t)snprintf(out + k, sizeof(out) - k, "%s%s",
			    i ? "," : "", names[i]);
		k += (size_t)snprintf(out + k, sizeof(out) - k, ";");
	}
	return out;
}

static const struct subs_ops ops = { fake_route, fake_emit, fake_notify };

static void
clear(struct fake *f)
{
	f->cmds[0] = f->events[0] = '\0';
	f->ncmds = 0;
}

#define W(s, ch, w, now)	subs_want((s), (ch), strlen(ch), (w), (now))
#define C(s, ch, sub)		subs_confirmed((s), 0, (ch), strlen(ch), (sub))

static void
test_basic(void)
{
	struct fake f;
	struct subs *s;
	struct subs_stats st;

	memset(&f, 0, sizeof(f));
	f.up = 1;
	s = subs_new(1000, 3, &ops, &f);
	W(s, "a", 1, 0);
	W(s, "b", 1, 0);
	W(s, "a", 1, 0);
	subs_flush(s, 0);
	is_str(f.cmds, "+a,b;", "two channels wanted: one SUBSCRIBE for both");
	subs_flush(s, 0);
	is_int(f.ncmds, 1, "nothing more to send");
	is_str(f.events, "", "nothing told before Redis answers");
	C(s, "a", 1);
	C(s, "b", 1);
	is_str(f.events, "S:a;S:b;", "each confirmation told to the hub");
	subs_get_stats(s, &st);
	is_int(st.channels, 2, "two subscribed");

	clear(&f);
	W(s, "a", 0, 100);
	subs_flush(s, 500);
	is_str(f.cmds, "", "last stream gone: kept for the linger");
	is_int(subs_next_ms(s, 500), 600, "the linger ends at 1100");
	W(s, "a", 1, 700);
	subs_flush(s, 2000);
	is_str(f.cmds, "", "wanted again within the linger: no command");
	W(s, "a", 0, 2000);
	subs_flush(s, 3000);
	is_str(f.cmds, "-a;", "linger over: UNSUBSCRIBE");
	C(s, "a", 0);
	is_str(f.events, "U:a;", "its end told to the hub");
	is_int(subs_count(s), 1, "only b has a record left");

	/* batch size 3 */
	clear(&f);
	W(s, "c", 1, 0);
	W(s, "d", 1, 0);
	W(s, "e", 1, 0);
	W(s, "f", 1, 0);
	subs_flush(s, 3000);
	is_str(f.cmds, "+c,d,e;+f;", "batches of at most 3 channels");
	subs_get_stats(s, &st);
	is_int(st.subscribe_cmds, 3, "three SUBSCRIBE commands in all");
	subs_free(s);
}

static void
test_races(void)
{
	struct fake f;
	struct subs *s;

	memset(&f, 0, sizeof(f));
	f.up = 1;
	s = subs_new(0, 100, &ops, &f);
	/* wanted, then not, before the flush: nothing at all is sent */
	W(s, "x", 1, 0);
	W(s, "x", 0, 0);
	subs_flush(s, 0);
	is_str(f.cmds, "", "wanted and let go before the flush: no command");
	is_int(subs_count(s), 0, "and no record");

	/* unsubscribe in flight when it is wanted again */
	W(s, "y", 1, 0);
	subs_flush(s, 0);
	C(s, "y", 1);
	W(s, "y", 0, 0);
	subs_flush(s, 0);
	W(s, "y", 1, 0);
	subs_flush(s, 0);
	is_str(f.cmds, "+y;-y;+y;", "SUB, UNSUB, SUB in order");
	C(s, "y", 0);
	C(s, "y", 1);
	is_str(f.events, "S:y;U:y;S:y;",
	    "the hub sees the gap between them (its history restarts)");

	/* Redis lets go by itself (a sharded slot moved) */
	clear(&f);
	is_int(C(s, "y", 0), 0, "an unsubscribe we did not ask for");
	is_str(f.events, "L:y;", "is a loss");
	subs_flush(s, 0);
	is_str(f.cmds, "+y;", "still wanted: subscribed again");
	C(s, "y", 1);

	/* answers for channels we never asked for */
	is_int(C(s, "nobody", 1), -1, "a confirmation for an unknown channel");

	/* no connection: pending until there is one */
	clear(&f);
	f.up = 0;
	W(s, "z", 1, 0);
	subs_flush(s, 0);
	is_str(f.cmds, "", "no route: nothing sent");
	is_int(subs_next_ms(s, 0), 0, "still due");
	f.up = 1;
	subs_flush(s, 0);
	is_str(f.cmds, "+z;", "sent once there is a connection");

	/* refused: retried after the delay, not at once */
	clear(&f);
	{
		const char *n[1] = { "z" };
		size_t l[1] = { 1 };

		subs_refused(s, 1, n, l, 1, 500);
	}
	subs_flush(s, 100);
	is_str(f.cmds, "", "refused: not again before its retry time");
	is_int(subs_next_ms(s, 100), 400, "the next flush is due at 500");
	subs_flush(s, 500);
	is_str(f.cmds, "+z;", "retried at 500");
	subs_free(s);
}

static void
test_lost(void)
{
	struct fake f;
	struct subs *s;
	struct subs_stats st;

	memset(&f, 0, sizeof(f));
	f.up = 1;
	f.sharded = 1;
	s = subs_new(10000, 100, &ops, &f);
	/* name: group letter, node digit */
	W(s, "a0x", 1, 0);
	W(s, "a0y", 1, 0);
	W(s, "b0z", 1, 0);
	W(s, "a1w", 1, 0);
	subs_flush(s, 0);
	is_str(sorted(f.cmds), "+a0x,a0y;+b0z;+a1w;",
	    "one command per node and group (slot)");
	subs_confirmed(s, 0, "a0x", 3, 1);
	subs_confirmed(s, 0, "a0y", 3, 1);
	subs_confirmed(s, 0, "b0z", 3, 1);
	subs_confirmed(s, 1, "a1w", 3, 1);
	W(s, "b0z", 0, 0);		/* lingering */
	clear(&f);
	subs_lost(s, 0);
	is_str(sorted(f.events), "L:a0x,a0y,b0z;", "node 0 lost: its channels lost, "
	    "in one event");
	subs_get_stats(s, &st);
	is_int(st.channels, 1, "node 1's channel is still subscribed");
	subs_flush(s, 0);
	is_str(sorted(f.cmds), "+a0x,a0y;",
	    "the wanted ones subscribed again; the lingering one let go");
	is_int(subs_count(s), 3, "b0z's record is gone");
	subs_free(s);
}

int
main(void)
{
	test_basic();
	test_races();
	test_lost();
	return done_testing();
}
