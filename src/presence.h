/*
 * presence.h - this instance's share of presence (--presence): how many
 * of its open streams each person has on each channel, and what changed
 * since the control thread last told Redis.
 *
 * Who a stream is: the token's sub with --auth jwt (which is its ?user=),
 * else its ?user= value, else anonymous ("": counted, not named).  Every
 * stream counts on each of its channels.  The counts are kept whatever
 * --presence says (a hash lookup per channel when a stream opens and
 * closes), so that turning it on with SIGHUP counts the streams already
 * open; the control thread (control.c) sends the changes to Redis, in one
 * batch per pass, only while it is on.
 *
 * One process-wide table, like stats.  THREADS: the MHD workers call
 * presence_open and presence_close; the control thread the rest.  Every
 * function takes the table's own mutex, and calls nothing out with it.
 */
#ifndef SSERELAY_PRESENCE_H
#define SSERELAY_PRESENCE_H

#include <stddef.h>

struct presence_ref;

/* one person's count on one channel, as it is now */
struct presence_update {
	char		*chan;
	size_t		 chlen;
	char		*who;
	size_t		 wlen;
	unsigned	 count;
};

/*
 * A stream opened on n channels, for who ("" anonymous): counted.  The
 * reference (its channels and who, copied) is given back at its close;
 * NULL if out of memory (then it is not counted).
 */
struct presence_ref *presence_open(const char **names, const size_t *lens,
		    size_t n, const char *who);
/* it closed (NULL: harmless) */
void		 presence_close(struct presence_ref *);

/*
 * The control thread.  presence_take: the counts changed since the last
 * take, grouped by channel (consecutive), into a new array; *n of them.
 * With all, every count held (after a (re)connect, or --presence turned
 * on).  presence_updates_free frees it.  -1 out of memory.
 */
int		 presence_take(int all, struct presence_update **u, size_t *n);
void		 presence_updates_free(struct presence_update *, size_t n);
/* the channels with someone present here, into a new array of names */
int		 presence_channels(char ***names, size_t **lens, size_t *n);
void		 presence_names_free(char **names, size_t *lens, size_t n);
/* free everything (shutdown, tests) */
void		 presence_clear(void);

/* "<who>" for the streams of a request: the user, or "" */
const char	*presence_who(int has_user, const char *user);

#endif
