/*
 * revoke.h - the revocations in force (FCALL sserelay_revoke, see
 * src/control.lua): which channels new streams may not ask for, until
 * when, and since when (with --auth jwt, tokens issued since then pass).
 *
 * One process-wide table, like stats: the control thread (control.c)
 * fills it from Redis's announcements and from the keys it reads when it
 * (re)connects; the MHD workers read it at admission (revoke_refused).
 * Times are Redis's clock in unix milliseconds: the instances and Redis
 * are expected to agree on the time within a second.
 *
 * THREADS: every function takes the table's own mutex; none calls out
 * with it held.  Its cost at admission: one hash lookup per channel of
 * the stream, under that mutex, and nothing at all while the table is
 * empty (an atomic count is read first).
 */
#ifndef SSERELAY_REVOKE_H
#define SSERELAY_REVOKE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct revoke_entry {
	char		*name;
	size_t		 len;
	uint64_t	 since_ms;
	uint64_t	 until_ms;
};

/*
 * A revocation announced or read: 1 if it is new to this instance (not
 * the same since_ms as the one held), so its open streams are to be
 * ended; 0 if known or already over; -1 out of memory.
 */
int		 revoke_add(const char *name, size_t len, uint64_t since_ms,
		    uint64_t until_ms, uint64_t now_ms);
/* an unrevoke: 1 if there was one */
int		 revoke_remove(const char *name, size_t len);
/*
 * After reading every revocation key anew (a (re)connect): the table
 * becomes exactly these n; each entry of e that was not held already (or
 * held with another since_ms) gets fresh = 1.  -1 out of memory (then
 * nothing changed).
 */
int		 revoke_sync(const struct revoke_entry *e, size_t n,
		    int *fresh, uint64_t now_ms);
/*
 * Admission: whether a stream on these channels, of a token issued at iat
 * (unix s; 0 without a token) is refused now (now_ms: unix ms).
 * Refused when a channel's revocation is in force and iat is before the
 * second it was made in.
 */
int		 revoke_refused(const char **names, const size_t *lens,
		    size_t n, time_t iat, uint64_t now_ms);
/* drop what is over; the number held after */
size_t		 revoke_expire(uint64_t now_ms);
/* the wall clock in unix ms (revocations are dated by Redis's) */
uint64_t	 revoke_now_ms(void);
/* free everything (tests, shutdown) */
void		 revoke_clear(void);

/*
 * Parse an announcement, "r <since_ms> <until_ms> <channel>" or "u 0 0
 * <channel>": 0 with the fields, -1 if it is not one.  Pure.
 */
int		 revoke_parse(const char *msg, size_t len, char *op,
		    unsigned long long *since_ms, unsigned long long *until_ms,
		    const char **channel, size_t *chlen);

#endif
