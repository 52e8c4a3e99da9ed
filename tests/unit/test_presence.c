/*
 * test_presence.c - this instance's presence counts (presence.h): what a
 * stream's open and close change, that a take sees each change once (the
 * 0 of someone gone included, then nothing of her), and that a take of
 * all sees every count held.
 */
#include <string.h>

#include "presence.h"
#include "tap.h"

/* the count taken for chan/who, or -1 when it was not in the take */
static long
taken(struct presence_update *u, size_t n, const char *chan, const char *who)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(u[i].chan, chan) == 0 && strcmp(u[i].who, who) == 0)
			return u[i].count;
	return -1;
}

int
main(void)
{
	const char		*ch[2] = { "user:alice", "upload:u7" };
	size_t			 lens[2] = { 10, 9 };
	struct presence_ref	*a1, *a2, *anon;
	struct presence_update	*u;
	char			**names;
	size_t			*nl, n;

	is_str(presence_who(1, "alice"), "alice", "who: the user");
	is_str(presence_who(0, NULL), "", "who: anonymous");
	a1 = presence_open(ch, lens, 2, "alice");
	a2 = presence_open(ch, lens, 2, "alice");
	anon = presence_open(ch + 1, lens + 1, 1, "");
	ok(a1 != NULL && a2 != NULL && anon != NULL, "three streams counted");
	is_int(presence_take(0, &u, &n), 0, "a take");
	is_int(n, 3, "...of three counts");
	is_int(taken(u, n, "upload:u7", "alice"), 2, "alice: 2 on upload:u7");
	is_int(taken(u, n, "user:alice", "alice"), 2, "alice: 2 on user:alice");
	is_int(taken(u, n, "upload:u7", ""), 1, "anonymous: 1 on upload:u7");
	ok(strcmp(u[0].chan, u[1].chan) == 0 || strcmp(u[1].chan,
	    u[2].chan) == 0, "grouped by channel");
	presence_updates_free(u, n);
	presence_take(0, &u, &n);
	is_int(n, 0, "nothing changed since: an empty take");
	presence_updates_free(u, n);
	presence_close(a1);
	presence_close(anon);
	presence_take(0, &u, &n);
	is_int(taken(u, n, "upload:u7", "alice"), 1, "alice down to 1");
	is_int(taken(u, n, "upload:u7", ""), 0, "the anonymous 0: sent once");
	presence_updates_free(u, n);
	presence_channels(&names, &nl, &n);
	is_int(n, 2, "two channels with someone on them");
	presence_names_free(names, nl, n);
	presence_take(1, &u, &n);
	is_int(n, 2, "a take of all: alice on both, the anonymous gone");
	presence_updates_free(u, n);
	presence_close(a2);
	presence_close(NULL);
	presence_take(0, &u, &n);
	is_int(n, 2, "alice's last stream: her two 0s");
	presence_updates_free(u, n);
	presence_channels(&names, &nl, &n);
	is_int(n, 0, "and no channel left");
	presence_names_free(names, nl, n);
	presence_clear();
	return done_testing();
}
