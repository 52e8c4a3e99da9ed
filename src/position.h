/*
 * position.h - event ids that every instance understands (--history redis).
 *
 * With the history in Redis, each channel's messages are numbered by the
 * Redis Function that publishes them (src/durable.lua): an epoch, new
 * whenever the channel's history starts over, and an offset.  A stream
 * carries up to STREAM_CHANNELS_MAX channels, so its event id is the
 * position of every one of them:
 *
 *     r<fp>_<epoch>.<offset>_<epoch>.<offset>...
 *
 * in base 36, one position per channel in the order of the channels' names
 * (bytewise), "-" for a channel of which nothing has been seen, and <fp> a
 * fingerprint of the channel set, so that an id of another set of channels
 * is told apart.  For one channel that is about 20 bytes; see sserelay.8.
 *
 * Pure: no I/O, unit-tested and fuzzed.
 */
#ifndef SSERELAY_POSITION_H
#define SSERELAY_POSITION_H

#include <stddef.h>
#include <stdint.h>

struct position {
	uint32_t	 epoch;
	uint64_t	 offset;
	int		 known;
};

/* bytes of the longest id for n channels, NUL included */
#define POSITION_ID_MAX(n)	(1 + 7 + (n) * (1 + 7 + 1 + 13) + 1)

/* the fingerprint of n channel names, in any order */
uint32_t	 position_fingerprint(const char **names, const size_t *lens,
		    size_t n);
/* the id for the positions p[0..n); returns its length */
size_t		 position_encode(char *buf, size_t len, uint32_t fp,
		    const struct position *p, size_t n);

enum position_parse {
	POSITION_OK = 0,
	POSITION_MALFORMED,	/* not an id of this shape */
	POSITION_CHANNELS,	/* an id of another set of channels */
};
/* an id into p[0..n), checked against the stream's fingerprint */
enum position_parse position_parse(const char *id, uint32_t fp,
		    struct position *p, size_t n);

/* "86cd9932" (the epoch as durable.lua writes it) into *epoch; -1 if not */
int		 position_epoch(const char *, size_t, uint32_t *);
/* the magic that starts a durable message's payload on the channel */
#define POSITION_MAGIC		"\0sr1:"
#define POSITION_MAGIC_LEN	5
/*
 * A published payload: if it is durable ("\0sr1:<epoch>:<offset>:data"),
 * its position, and *data and *len the message itself: 1; 0 if it is a plain
 * PUBLISH (data untouched); -1 if it starts with the magic but is broken.
 */
int		 position_unwrap(const char **data, size_t *len,
		    struct position *);

#endif
