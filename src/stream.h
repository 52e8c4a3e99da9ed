/*
 * stream.h - one open /events response: its ring of frames, and what has
 * been written of it.
 *
 * THREADS AND LOCKS
 * A stream is made by an MHD worker (http_events.c), joins the hub
 * (hub_add) and is then handed to one writer thread (writer.c), which
 * writes its response head and its frames to the socket itself.  When the
 * body ends, or the client goes, the writer hands the connection back to
 * MHD, whose completion callback removes the stream from the hub and
 * frees it (http_events_completed): nothing else frees one.
 *
 * Who touches what (the fields below are grouped the same way):
 * - Immutable once the stream is shared (set by the MHD worker before
 *   hub_add): its size, its writer and wake hook, its token expiry, its
 *   connection, whether the body is chunked, its limits' counts.
 * - s->lock: the ring and everything queued (final, aside), the closing
 *   and awaiting state, the positions (--history redis), whether it is
 *   attached to its writer and whether a wake is outstanding.  Taken by
 *   whoever queues (the broker thread through the hub, main through the
 *   hub, an MHD worker at admission, the writer for heartbeats) and by the
 *   writer when it takes frames out (stream_out, stream_sent).
 * - Writer only, once attached: what is being written (cur and its
 *   offset, the id line, the chunked body's end), the socket, the timer.
 *   Under its writer's run lock: the writer's thread, or a waker that
 *   writes for it while it sleeps (writer.h).
 * - The writer's lock (struct writer): the dirty list entry and state.
 * - The hub lock: the memberships and the hub's lists (hub.c).
 * Lock order: hub lock -> stream lock; hub lock -> writer's run lock
 * (trylock) -> writer lock.  The
 * writer never holds its lock while it takes a stream's, nor the other
 * way round.
 *
 * The wake protocol: a push that makes the ring non-empty while the
 * stream is attached, not awaiting and has no wake outstanding answers
 * STREAM_PUSH_WAKE and sets `woken`; the hub then calls stream_wake() once
 * per batch, which puts the stream on its writer's dirty list.  The writer
 * clears `woken` only in the stream_out() call that finds nothing to
 * write, under the lock, so a push can never fall between the two.
 */
#ifndef SSERELAY_STREAM_H
#define SSERELAY_STREAM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "heap.h"
#include "position.h"
#include "quota.h"
#include "query.h"
#include "ring.h"
#include "stats.h"

struct frame;
struct stream;
struct hub_channel;
struct writer;
struct presence_ref;

struct hub_sub {			/* hub: one channel membership */
	LIST_ENTRY(hub_sub)	 entry;		/* the channel's subscribers */
	struct stream		*stream;
	struct hub_channel	*channel;
	unsigned char		 awaiting;	/* its subscription */
	unsigned char		 missed;	/* 0, or a reset's reason + 1 */
	unsigned char		 catching;	/* a catch-up read of it is out */
	unsigned char		 present;	/* hub_presence.c: 0, or its
						   snapshot owed (1), asked (2) */
};

enum stream_push_result {
	STREAM_PUSH_QUEUED = 0,		/* queued, its writer knows */
	STREAM_PUSH_WAKE,		/* queued, call stream_wake */
	STREAM_PUSH_OVERFLOW,		/* ring full: stream now closing */
	STREAM_PUSH_CLOSED,		/* stream already closing: dropped */
	STREAM_PUSH_DUPLICATE,		/* a position it has: dropped */
};

struct stream {
	/* immutable once shared */
	size_t		 maxsubs;
	struct writer	*writer;	/* NULL: none (unit tests) */
	void		(*wakeup)(struct stream *);	/* see stream_wake */
	void		(*done)(struct stream *);	/* writer's end */
	void		*conn;		/* the MHD connection */
	time_t		 expires;	/* token expiry (unix s); 0: none */
	time_t		 iat;		/* token issued (unix s); 0: none */
	struct presence_ref *presence;	/* presence.h: given back at close */
	int		 chunked;	/* HTTP/1.1: chunked body */
	uint64_t	 opened_us;	/* joined the hub: older frames replay */
	struct quota_slot slot;		/* connection limits it counts in */
	uint64_t	 id;		/* the hub's, for reads that come back */
	uint32_t	 fp;		/* position_fingerprint of its channels */

	/* s->lock */
	pthread_mutex_t	 lock;
	struct ring	 ring;
	struct frame	*final;		/* written after the ring, then EOF */
	int		 closing;
	int		 overflowed;
	int		 awaiting;	/* its subscriptions: writes nothing */
	int		 attached;	/* its writer writes it */
	int		 woken;		/* a wake is outstanding */
	/*
	 * --history redis (see frame.h): the position of each channel, in
	 * subs[] order, as of the frames written (stamped by stream_out;
	 * pos_gen counts stream_recovered's resets of them), and as of the
	 * frames queued (qpos: a message at or before it is a duplicate and
	 * is dropped, so that a replay and what came live meanwhile join
	 * up).  While recovering (its history being read) what comes is kept
	 * aside, in a ring of its own.
	 */
	struct position	*pos;		/* NULL without positions */
	struct position	*qpos;
	unsigned	 pos_gen;
	int		 recovering;
	struct ring	 aside;

	/* the writer's, once attached */
	struct frame	*cur;		/* being written, pinned */
	size_t		 curoff;	/* bytes of its wire form written */
	int		 cur_raw;	/* the head: no chunk, no id line */
	char		*idline;	/* cur's "id: ...\n" (positions) */
	size_t		 idlen;
	size_t		 termoff;	/* bytes of the last-chunk written */
	int		 ended;		/* the whole body is written */
	int		 fd;
	void		*tls;		/* gnutls_session_t, or NULL */
	int		 tls_pending;	/* a record waits to be flushed */
	int		 want_out;	/* EPOLLOUT is armed */
	uint64_t	 last_write_ms;	/* for heartbeats */
	uint64_t	 drain_by_ms;	/* closing: end by then; 0 none */
	uint64_t	 token_ms;	/* expires, on the writer's clock */
	struct heap_node timer;		/* its next deadline */

	/* the writer's lock */
	TAILQ_ENTRY(stream) dirty;	/* its writer's dirty list */
	int		 on_dirty;
	int		 wstate;	/* writer.c: WRITER_S_* */

	/* hub */
	TAILQ_ENTRY(stream) all;		/* every stream */
	TAILQ_ENTRY(stream) awaits;		/* the hub's awaiting list */
	STAILQ_ENTRY(stream) wake;		/* pending wake list */
	int		 wake_queued;
	size_t		 nawaiting;		/* subs still awaiting */
	uint64_t	 reset_gen;		/* hub_channels' dedupe */
	void		*read;			/* durable: to post at release */
	int		 reading;		/* durable: its own read out */
	size_t		 catching_up;		/* durable: channel reads out */
	int		 registered;
	size_t		 nsubs;
	struct hub_sub	 subs[];		/* maxsubs of them */
};

/*
 * A stream for up to maxsubs channels (it costs 40 bytes a channel), with
 * positions (--history redis) or not.
 */
struct stream	*stream_new(size_t ring_cap, size_t maxsubs, int positions);
/* drops every frame reference it holds and frees it */
void		 stream_free(struct stream *);
/*
 * Before the stream is shared: the response head (a reference is
 * taken), written first, as it is.
 */
void		 stream_set_head(struct stream *, struct frame *);

/* queue side (the hub lock held, or the writer for its heartbeats) */
enum stream_push_result stream_push(struct stream *, struct frame *);
/*
 * Queue the n frames of a replay in a stream no writer writes yet,
 * however many: the ring grows past its size for them.  -1 if out of
 * memory (then none is queued).
 */
int		 stream_replay(struct stream *, struct frame **, size_t n);
/*
 * Mark the stream closing: final (may be NULL; a reference is taken) is
 * written after what is queued, then the body ends.  Returns 1 if the
 * stream needs a wake (stream_wake), 0 otherwise.
 */
int		 stream_close(struct stream *, struct frame *final);
/* whether it is closing (its writer's check for a full socket) */
int		 stream_closing(struct stream *);
/* tell its writer (through s->wakeup) that the stream has work */
void		 stream_wake(struct stream *);
/*
 * A stream awaiting its subscriptions writes nothing, its head included,
 * until the await ends (hub_add makes one await until Redis confirms its
 * channels).
 * stream_await_end() returns 1 if it needs a wake.
 */
void		 stream_await(struct stream *);
int		 stream_await_end(struct stream *);

/*
 * --history redis.  stream_recovering(): from now until stream_recovered()
 * or stream_caught_up(..., 1), what is pushed is kept aside.
 * stream_recovered(): a new stream's read is done; the positions become
 * start (with open, a channel of which messages were kept aside starts
 * just before the first of them), then reset (if not NULL) and the replay
 * are queued, then what was kept aside but the duplicates.
 * stream_caught_up(): an open stream's channels were read again (after a
 * Redis outage): the n frames are queued (messages, position sets and a
 * reset), the duplicates dropped (*queued counts the messages that were
 * not); with release, what was kept aside too, and the stream is live
 * again.  Both return 1 if the stream needs a wake.
 */
void		 stream_recovering(struct stream *);
int		 stream_recovered(struct stream *, const struct position *start,
		    int open, struct frame *reset, struct frame **replay,
		    size_t nreplay);
int		 stream_caught_up(struct stream *, struct frame **frames,
		    size_t n, int release, size_t *queued);
/* the last position queued on channel i (the stream lock taken) */
struct position	 stream_queued_position(struct stream *, size_t i);
/* the index of the channel a frame came from, or -1 */
int		 stream_channel(const struct stream *, const struct frame *);

/*
 * The writer's side.
 *
 * stream_attach(): the writer takes the stream over (on 1) or lets go of
 * it (0).  Attaching leaves a wake outstanding: the writer writes what
 * is queued next.  Letting go also marks it closing, so that nothing more
 * is queued.
 *
 * stream_out(): what is to be written next, as iovecs into what the
 * stream and its frames hold (no copy): the rest of the frame being
 * written, then queued frames (each a chunk of its own when the body is
 * chunked, its id line before it), then the final frame and the last
 * chunk, about max bytes at most.  Returns the number of iovecs; 0 when
 * there is nothing to write now (awaiting, or all written: the wake is then
 * cleared); -1 when the body has ended (all written, the stream closing).
 * stream_sent(): n of those bytes were written (n may be 0): the frames
 * written whole are let go of (and counted in o->stats), a frame half
 * written is kept, ids stamped on frames not written are taken back.
 * Nothing else may touch the stream's output between the two.
 */
#define STREAM_OUT_IOV		256
#define STREAM_OUT_FRAMES	64

struct stream_out_frame {
	size_t		 wire;		/* bytes of its wire form */
	int		 final;		/* s->final, not the ring's */
	int		 chan;		/* stamped on channel chan, or -1 */
	struct position	 was;		/* that channel's position before */
	size_t		 idat, idlen;	/* its id line in scratch */
	size_t		 hdrlen;	/* its chunk header's bytes */
};

struct stream_out {
	struct iovec	 iov[STREAM_OUT_IOV];
	int		 niov;
	size_t		 bytes;		/* in iov[] */
	size_t		 curwire;	/* bytes of cur's wire form left, or 0 */
	struct stream_out_frame fr[STREAM_OUT_FRAMES];
	size_t		 nfr;
	size_t		 term;		/* bytes of the last-chunk */
	int		 closing;	/* the stream was closing */
	unsigned	 pos_gen;
	char		*scratch;	/* chunk headers and id lines */
	size_t		 scratch_size;
	size_t		 scratch_used;
	struct stats_local stats;	/* what stream_sent counted */
};

int		 stream_out_init(struct stream_out *);
void		 stream_out_free(struct stream_out *);
void		 stream_attach(struct stream *, int on);
int		 stream_out(struct stream *, struct stream_out *, size_t max);
void		 stream_sent(struct stream *, struct stream_out *, size_t n);
/*
 * Both in one, copying into buf (at most max bytes): for TLS, which
 * encrypts from one buffer, and for tests.  Returns the bytes copied
 * (> 0), 0 when there is nothing to write now, -1 when the body has ended.
 */
ssize_t		 stream_read(struct stream *, struct stream_out *, char *buf,
		    size_t max);
/*
 * The writer's heartbeat: queue ping if nothing is queued or being
 * written (a stream with output pending needs none).  1 if queued.
 */
int		 stream_ping(struct stream *, struct frame *ping);

#endif
