/*
 * test_revoke.c - the revocations in force (revoke.h): added, refused by
 * their second with a token's iat, over at their end, replaced whole by a
 * sync, and the announcements' parser.
 */
#include <string.h>

#include "revoke.h"
#include "tap.h"

static int
refused(const char *ch, time_t iat, uint64_t now_ms)
{
	const char	*names[2] = { "upload:u7", ch };
	size_t		 lens[2] = { 9, strlen(ch) };

	return revoke_refused(names, lens, 2, iat, now_ms);
}

int
main(void)
{
	struct revoke_entry	 e[2];
	int			 fresh[2];
	unsigned long long	 since, until;
	const char		*ch;
	size_t			 chlen;
	char			 op;

	is_int(refused("user:alice", 0, 1000), 0, "nothing revoked: let in");
	is_int(revoke_add("user:alice", 10, 5000500, 9000000, 5000600), 1,
	    "a revocation is new");
	is_int(revoke_add("user:alice", 10, 5000500, 9000000, 5000700), 0,
	    "...and the same one again is not (a cluster announces it once "
	    "per primary)");
	is_int(revoke_add("user:old", 8, 1000, 2000, 5000700), 0,
	    "one already over is not added");
	is_int(refused("user:alice", 0, 5000800), 1, "no token: refused");
	is_int(refused("user:alice", 4999, 5000800), 1,
	    "a token issued the second before: refused");
	is_int(refused("user:alice", 5000, 5000800), 0,
	    "a token issued in the revocation's second: let in");
	is_int(refused("user:bob", 0, 5000800), 0, "another channel: let in");
	is_int(refused("user:alice", 0, 9000000), 0, "at its end: let in");
	is_int(revoke_expire(9000000), 0, "...and it was dropped");

	revoke_add("user:alice", 10, 100000, 900000, 200000);
	revoke_add("user:bob", 8, 100000, 900000, 200000);
	e[0].name = "user:bob";
	e[0].len = 8;
	e[0].since_ms = 100000;
	e[0].until_ms = 900000;
	e[1].name = "user:carol";
	e[1].len = 10;
	e[1].since_ms = 150000;
	e[1].until_ms = 900000;
	is_int(revoke_sync(e, 2, fresh, 300000), 0, "sync");
	ok(!fresh[0] && fresh[1], "only carol's is fresh after the sync");
	is_int(refused("user:alice", 0, 400000), 0,
	    "alice's, gone from Redis meanwhile, is gone");
	is_int(refused("user:carol", 0, 400000), 1, "carol's is in force");
	is_int(revoke_remove("user:carol", 10), 1, "an unrevoke");
	is_int(refused("user:carol", 0, 400000), 0, "...lets her in");
	revoke_clear();

	is_int(revoke_parse("r 12 34 user:a b", 16, &op, &since, &until, &ch,
	    &chlen), 0, "an announcement");
	ok(op == 'r' && since == 12 && until == 34 && chlen == 8 &&
	    memcmp(ch, "user:a b", 8) == 0, "...its fields, the channel last");
	is_int(revoke_parse("u 0 0 x", 7, &op, &since, &until, &ch, &chlen),
	    -1, "too short");
	is_int(revoke_parse("u 0 0 xy", 8, &op, &since, &until, &ch, &chlen),
	    0, "an unrevoke");
	is_int(revoke_parse("x 1 2 user:a", 12, &op, &since, &until, &ch,
	    &chlen), -1, "not an announcement");
	is_int(revoke_parse("r 1x 2 user:a", 13, &op, &since, &until, &ch,
	    &chlen), -1, "not a number");
	return done_testing();
}
