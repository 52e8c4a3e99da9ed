/*
 * stream.h - one open /events response: its ring of frames and its
 * suspend/resume state.
 *
 * THREADS AND LOCKS
 * - s->lock guards ring, cur/off, suspended, closing, final.  It is taken
 *   by the broker thread (stream_push, stream_close, stream_wake) and by the
 *   MHD worker that owns the connection (stream_read).
 * - The suspend and resume hooks (set by http.c to MHD_suspend_connection
 *   and MHD_resume_connection) are always called with s->lock held, so a
 *   resume can never overtake the suspend it answers, and a connection that
 *   is not suspended is never resumed (undefined behaviour in MHD).
 * - Fields marked "hub" belong to hub.c and are guarded by the hub lock.
 * - A stream is freed only by stream_free(), called from MHD's completion
 *   path after hub_remove(); nothing else frees one.
 */
#ifndef SSERELAY_STREAM_H
#define SSERELAY_STREAM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "position.h"
#include "quota.h"
#include "query.h"
#include "ring.h"

struct frame;
struct stream;
struct hub_channel;

struct hub_sub {			/* hub: one channel membership */
	LIST_ENTRY(hub_sub)	 entry;		/* the channel's subscribers */
	struct stream		*stream;
	struct hub_channel	*channel;
	unsigned char		 waiting;	/* for its subscription */
	unsigned char		 missed;	/* 0, or a reset's reason + 1 */
};

enum stream_push_result {
	STREAM_PUSH_QUEUED = 0,		/* queued, connection is awake */
	STREAM_PUSH_WAKE,		/* queued, connection needs a wake */
	STREAM_PUSH_OVERFLOW,		/* ring full: stream now closing */
	STREAM_PUSH_CLOSED,		/* stream already closing: dropped */
};

struct stream {
	pthread_mutex_t	 lock;
	struct ring	 ring;
	struct frame	*cur;		/* being written, pinned */
	size_t		 off;		/* bytes of cur already written */
	struct frame	*final;		/* written after the ring, then EOF */
	int		 suspended;
	int		 closing;
	int		 overflowed;
	int		 held;		/* its response waits (stream_hold) */
	int		 answered;	/* its response is queued (http) */
	uint64_t	 opened_us;	/* joined the hub: older frames replay */
	time_t		 expires;	/* token expiry (unix s); 0: none */
	struct quota_hold hold;	/* connection limits it counts in */

	/*
	 * --history redis (see frame.h): the position of each channel, in
	 * subs[] order, and the id line being written before a frame.  While
	 * recovering (its history being read) what comes is kept in holdq.
	 */
	uint64_t	 id;		/* the hub's, for reads that come back */
	uint32_t	 fp;		/* position_fingerprint of its channels */
	struct position	*pos;		/* NULL without positions */
	char		*idline;
	size_t		 idlen, idoff;
	int		 recovering;
	struct ring	 holdq;

	void		*conn;		/* the MHD connection */
	void		(*suspend)(struct stream *);
	void		(*resume)(struct stream *);

	/* hub */
	TAILQ_ENTRY(stream) all;		/* every stream, heartbeats */
	TAILQ_ENTRY(stream) holding;		/* held, see stream_hold */
	STAILQ_ENTRY(stream) wake;		/* pending wake list */
	int		 wake_queued;
	size_t		 waiting;		/* subs still waiting */
	uint64_t	 reset_gen;		/* hub_channels' dedupe */
	void		*read;			/* durable: to post at release */
	int		 registered;
	size_t		 nsubs;
	size_t		 maxsubs;
	struct hub_sub	 subs[];		/* maxsubs of them */
};

/*
 * A stream for up to maxsubs channels (it costs 40 bytes a channel), with
 * positions (--history redis) or not.
 */
struct stream	*stream_new(size_t ring_cap, size_t maxsubs, int positions);
/* drops every frame reference it holds and frees it */
void		 stream_free(struct stream *);

/* hub side (the hub lock held) */
enum stream_push_result stream_push(struct stream *, struct frame *);
/*
 * Queue the n frames of a replay in a stream no worker reads yet, however
 * many: the ring grows past its size for them.  -1 if out of memory (then
 * none is queued).
 */
int		 stream_replay(struct stream *, struct frame **, size_t n);
/*
 * Mark the stream closing: final (may be NULL; a reference is taken) is
 * written after what is queued, then the body ends.  Returns 1 if the
 * stream needs a wake, 0 otherwise.
 */
int		 stream_close(struct stream *, struct frame *final);
/* resume the connection if, and only if, it is suspended */
void		 stream_wake(struct stream *);
/*
 * A response held back until its stream may open (its channels'
 * subscriptions confirmed; see hub_add).  The HTTP side calls
 * stream_hold() in the request handler: 1 if the stream is still held,
 * the connection then suspended (the handler is called again once it is
 * woken); 0 if it may answer now.  The hub calls stream_release(): 1 if
 * the connection needs a wake.
 */
int		 stream_hold(struct stream *);
int		 stream_release(struct stream *);

/*
 * --history redis.  stream_recovering(): from now until stream_recovered(),
 * what is pushed is kept aside.  stream_recovered(): the read is done;
 * the positions become start (with open, a channel of which messages were
 * kept aside starts just before the first of them), then reset (if not
 * NULL) and the replay are queued, then what was kept aside but the
 * messages a channel's position in seen already covers.  Returns 1 if the
 * stream needs a wake.
 */
void		 stream_recovering(struct stream *);
int		 stream_recovered(struct stream *, const struct position *start,
		    const struct position *seen, int open, struct frame *reset,
		    struct frame **replay, size_t nreplay);
/* the index of the channel a frame came from, or -1 */
int		 stream_channel(const struct stream *, const struct frame *);

/*
 * Worker side, from the content reader: copy up to max bytes of queued
 * frames into buf.  Returns the number of bytes copied (> 0); 0 when it
 * suspended the connection (nothing queued); -1 at the end of the body
 * (closing and everything, final included, written).
 */
ssize_t		 stream_read(struct stream *, char *buf, size_t max);

#endif
