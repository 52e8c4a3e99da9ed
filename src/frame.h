/*
 * frame.h - an immutable, refcounted, fully encoded SSE frame.
 *
 * Ownership (the one rule): whoever stores a pointer to a frame holds a
 * reference.  frame_new*() returns a frame with one reference, held by the
 * creator.  Each ring slot holds one; a half-sent frame stays pinned by the
 * stream as (frame, offset) with its own reference.  The last frame_unref()
 * frees.  The count is a C11 atomic because the broker thread and the MHD
 * workers release references without a shared lock.  The bytes never
 * change after creation, so readers need no lock either.
 */
#ifndef SSERELAY_FRAME_H
#define SSERELAY_FRAME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "frame_format.h"

/*
 * With the history in Redis, an event's id is the position of every
 * channel of its stream (position.h), so it differs from stream to stream:
 * such a frame has no "id:" line of its own, and the stream writes one
 * before it (stream_read), from its positions, updated first with the
 * frame's own when it is a message.
 */
enum frame_stamp {
	FRAME_STAMP_NONE = 0,	/* as it is (its id, if any, inside) */
	FRAME_STAMP_MESSAGE,	/* a durable message: chan and pos */
	FRAME_STAMP_ID,		/* a control event (a reset): the id only */
	FRAME_STAMP_SET,	/* no bytes: chan's position becomes pos (a
				   reset's new epoch, before the reset) */
};

struct frame {
	atomic_uint	 refs;
	int		 message;	/* a published message, not a control */
	enum frame_stamp stamp;
	const void	*chan;		/* STAMP_MESSAGE: the hub's channel */
	uint32_t	 epoch;		/* STAMP_MESSAGE: its position */
	uint64_t	 offset;
	uint64_t	 recv_us;	/* when it came from Redis (monotonic) */
	size_t		 len;
	char		 data[];
};

/* a frame holding a copy of the given bytes; NULL if out of memory */
struct frame	*frame_new(const void *, size_t);
/* FRAME_STAMP_SET: no bytes; chan's position becomes epoch.offset */
struct frame	*frame_set_position(const void *chan, uint32_t epoch,
		    uint64_t offset);
/*
 * Encode one message: "id: <id>\n" (none when id is NULL) then the data
 * lines for the format, then the blank line.  channel and payload are
 * binary-safe.
 */
struct frame	*frame_message(const char *id, const char *channel,
		    size_t channel_len, const char *payload, size_t payload_len,
		    enum frame_format);
/* "retry: <ms>\n", then ": <comment>\n" unless comment is NULL, then "\n" */
struct frame	*frame_retry(unsigned long ms, const char *comment);
/*
 * "id: <id>\nevent: reset\ndata: {\"reason\":\"<reason>\"}\n\n"; with id
 * NULL the id line is left to the stream (FRAME_STAMP_ID).
 */
struct frame	*frame_reset(const char *id, const char *reason);
/*
 * A client sent away by a connection limit: "retry: <ms>\nevent:
 * overload\ndata: {\"limit\":\"<limit>\"}\n\n".
 */
struct frame	*frame_overload(unsigned long ms, const char *limit);
/*
 * Who is on a channel (--presence-events), for a new stream:
 * "event: presence\ndata: {\"channel\":\"<channel>\",\"users\":[<who>,...],
 * \"anonymous\":<streams>}\n\n", the users in the order given.
 */
struct frame	*frame_presence(const char *channel, size_t channel_len,
		    char *const *who, const size_t *wlens, size_t n,
		    unsigned long long anonymous);
/* the heartbeat comment, ": ping\n" */
struct frame	*frame_ping(void);
struct frame	*frame_ref(struct frame *);
void		 frame_unref(struct frame *);

/*
 * The JSON envelope {"channel":"<channel>","data":<payload>} as one line:
 * the payload is embedded as JSON when it parses as (strict) JSON and as a
 * JSON string otherwise; invalid UTF-8 becomes U+FFFD.  Appends to out.
 */
struct sbuf;
int		 frame_json_envelope(struct sbuf *out, const char *channel,
		    size_t channel_len, const char *payload, size_t payload_len);

#endif
