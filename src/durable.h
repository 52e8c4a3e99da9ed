/*
 * durable.h - the history in Redis (--history redis): the Redis Function
 * library publishers call, and the reads a stream needs when it opens.
 *
 * Publishing is one command from any client, FCALL sserelay_publish 1
 * <channel> <payload> (src/durable.lua): it numbers the message, keeps it
 * in the channel's Redis stream and PUBLISHes it with its position, so
 * every instance gives it the same position.  The daemon loads the library
 * (durable_library) on every primary, and reads a channel's history with
 * FCALL_RO sserelay_read.
 *
 * When a stream opens, the hub asks for a read (struct durable_read) of
 * each of its channels: the positions now (to number the events it will
 * get), the entries after the client's Last-Event-ID (a resume), or the
 * newest N (?last=N).  The broker runs it and hands it back filled in.
 *
 * Pure: no I/O (the broker does it).  THREADS: a read belongs to the hub
 * until posted, to the broker until handed back, then to the hub.
 */
#ifndef SSERELAY_DURABLE_H
#define SSERELAY_DURABLE_H

#include <stddef.h>
#include <stdint.h>

#include "position.h"

enum durable_mode {
	DURABLE_OPEN = 0,	/* the positions now */
	DURABLE_AFTER,		/* the entries after given positions */
	DURABLE_LAST,		/* the newest count entries */
};

/* what a channel's read said */
enum durable_status {
	DURABLE_PENDING = 0,
	DURABLE_OK,
	DURABLE_EPOCH,		/* the history started over since */
	DURABLE_TRIMMED,	/* entries after the position are gone */
	DURABLE_AHEAD,		/* a position never given */
	DURABLE_FAILED,		/* Redis refused or went away */
};

struct durable_entry {
	uint64_t	 offset;
	uint64_t	 time_us;	/* its node's clock when published: in
					   publish order on one node */
	size_t		 len;
	char		*data;
};

struct durable_chan {
	char			*name;
	size_t			 len;
	struct position		 after;		/* AFTER: the client's */
	enum durable_status	 status;
	struct position		 now;		/* the channel's, read */
	struct durable_entry	*entries;
	size_t			 nentries;
	void			*node;		/* the broker's */
	uint64_t		 gen;		/* the hub's (a catch-up) */
};

struct durable_read {
	uint64_t		 stream_id;	/* the hub's; 0: a catch-up of
						   channels, not a stream's */
	enum durable_mode	 mode;
	unsigned		 count;		/* LAST */
	int			 reset;		/* the hub's: enum hub_reset
						   to send first, or -1 */
	void			*owner;		/* the broker's */
	size_t			 answered;
	size_t			 barriers;
	size_t			 n;
	struct durable_chan	 chans[];
};

/* a read of n channels; NULL if out of memory */
struct durable_read *durable_read_new(uint64_t stream_id,
		    enum durable_mode, unsigned count, const char **names,
		    const size_t *lens, size_t n);
void		 durable_read_free(struct durable_read *);
/*
 * The FCALL_RO sserelay_read command for channel i of r: argv[6] and
 * lens[6] point into r and bufs (two of 24 bytes).
 */
void		 durable_read_command(const struct durable_read *, size_t i,
		    char bufs[2][24], const char **argv, size_t *lens);
/* let go of channel c's entries (answers_history fills them) */
void		 durable_chan_clear(struct durable_chan *);

/*
 * The library, with this daemon's history size and TTL and publish command
 * (PUBLISH or SPUBLISH) filled in, and its version (which names them, so a
 * change is loaded again).  Both malloc'd; NULL if out of memory.
 */
char		*durable_library(unsigned size, unsigned ttl_s, int sharded,
		    char **version);

#endif
