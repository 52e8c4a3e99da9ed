/*
 * hub.h - channels and their streams: a message's life from Redis to the
 * rings of its subscribers.
 *
 * The broker hands each batch of messages over once (hub_publish); behind
 * that one call the hub gives every message its id, encodes it once into
 * a frame, keeps it in the channel's history, queues it to every
 * subscriber and wakes each stream that needs it, once per batch.
 *
 * THREADS AND LOCKS
 * - One mutex guards the channel table, every channel's subscriber list,
 *   the list of all streams, the history and the wake list.  Every
 *   function here takes it (none is called with it held).
 * - MHD workers take it briefly in hub_add() and hub_remove(); the broker
 *   once per batch (hub_publish) and per Redis state change; main once per
 *   tick (hub_tick) and at shutdown.  The writers never take it.
 * - Lock order: hub lock -> stream lock -> mailbox lock, and hub lock ->
 *   writer lock (the wakes).  Never the other way round.
 * - After hub_remove() returns, no other thread holds or will take a
 *   pointer to the stream, so the caller may free it.
 */
#ifndef SSERELAY_HUB_H
#define SSERELAY_HUB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "frame_format.h"

struct frame;
struct stream;
struct hub;
struct mailbox;
struct history_stats;

/* why a stream got a reset event instead of (or after) its replay */
enum hub_reset {
	HUB_RESET_MALFORMED_ID = 0,	/* a Last-Event-ID not of our shape */
	HUB_RESET_UNKNOWN_EPOCH,	/* of another run of the daemon */
	HUB_RESET_UNKNOWN_ID,		/* never given */
	HUB_RESET_HISTORY_EXCEEDED,	/* some of what it missed is gone */
	HUB_RESET_REDIS_OUTAGE,		/* Redis was lost after it */
	HUB_RESET_HISTORY_DISABLED,	/* --history-size 0 */
	HUB_RESET_OUT_OF_MEMORY,
	HUB_RESET_NOT_SUBSCRIBED,	/* opened before the first subscription */
	HUB_RESET_EPOCH_CHANGED,	/* Redis's history of a channel restarted */
	HUB_RESET_UNKNOWN_CHANNELS,	/* an id of another set of channels */
	HUB_NRESETS
};

/* the reason as clients see it ("malformed-id", ...) */
const char	*hub_reset_name(enum hub_reset);

struct hub_config {
	size_t		 history_size;		/* per channel; 0: none */
	unsigned	 history_ttl_s;
	size_t		 history_bytes;		/* all channels together */
	enum frame_format format;
	struct mailbox	*mailbox;	/* channel interest for the broker, or NULL */
	int		 exact;		/* exact subscriptions: see hub_channels */
	unsigned	 await_ms;	/* exact: longest a new stream waits */
	int		 durable;	/* --history redis: see hub_recovered */
	int		 presence;	/* --presence-events: hub_presence.h */
	/*
	 * Called once at the end of every batch that woke streams (each
	 * through stream_wake), with the hub lock held: the writers'
	 * signal (writers_flush).  NULL: none.
	 */
	void		(*wake_flush)(void *);
	void		*wake_arg;
};

/* one message as the broker received it (binary; not NUL-terminated) */
struct hub_message {
	const char	*channel;
	size_t		 channel_len;
	const char	*payload;
	size_t		 payload_len;
};

/* how a stream's Last-Event-ID was answered, and whether it must wait */
struct hub_resume {
	size_t		 replayed;	/* events replayed from history */
	size_t		 backlog;	/* ?last=N: events of its backlog */
	int		 reset;		/* enum hub_reset, or -1: none */
	int		 awaiting;	/* awaits its subscriptions */
};

/* what the broker tells the hub about a channel (exact subscriptions) */
enum hub_channel_event {
	HUB_CHANNEL_SUBSCRIBED = 0,	/* confirmed: messages flow from now */
	HUB_CHANNEL_UNSUBSCRIBED,	/* let go of (its linger ended) */
	HUB_CHANNEL_LOST,		/* its connection went away */
};

struct hub	*hub_new(const struct hub_config *);
/* every stream must have been removed */
void		 hub_free(struct hub *);
/*
 * The frame that sends a client away to come back later (a "retry:"),
 * or NULL: a stream the hub ends (too slow, or its history's read lost)
 * ends with it.  The hub takes a reference.  (The writers end expired
 * tokens' streams with the same frame: writers_set_retry.)
 */
void		 hub_set_retry(struct hub *, struct frame *);

/*
 * Subscribe s to n channels (binary names) and to the heartbeats.  With a
 * last_event_id (not NULL, not empty) the stream first gets every event it
 * missed on its channels from the history, in order, or a reset event
 * saying why that cannot be (res says which).  Without one, a last > 0
 * (?last=N) starts it with the newest `last` kept messages of each channel,
 * merged in publish order (res->backlog; later with --history redis).
 * Done under the hub lock, so the switch to live events has no gap and no
 * overlap.  0, or -1 when shutting down or out of memory (nothing
 * registered).
 *
 * With exact subscriptions a stream whose channels are not all subscribed
 * yet awaits them (res->awaiting; see stream_await) until Redis confirms
 * them, so
 * that nothing published after its client saw the response open can be
 * missed; at most await_ms, or until Redis is lost, after which it opens
 * and gets a reset (not-subscribed) once the subscription is made.
 */
int		 hub_add(struct hub *, struct stream *, const char **channels,
		    const size_t *lens, size_t n, const char *last_event_id,
		    unsigned last, struct hub_resume *res);
/* undo hub_add; harmless if s was never added */
void		 hub_remove(struct hub *, struct stream *);

/*
 * The broker's side.  hub_publish: a batch of messages from Redis, in the
 * order received; recv_us is when they were read (util_now_us).
 * hub_subscribed: Redis confirmed the subscription, after the daemon's
 * start or after losing Redis; what was published before is lost to the
 * open streams, which get a reset (not-subscribed the first time,
 * redis-outage after), as do resumes from before it.
 */
void		 hub_publish(struct hub *, const struct hub_message *,
		    size_t n, uint64_t recv_us);
void		 hub_subscribed(struct hub *);
/*
 * Exact subscriptions: what happened to n channels.  Subscribed: their
 * history starts now, streams awaiting them may open, and a stream on them
 * that may have missed messages gets its reset.  Unsubscribed or lost:
 * their history ends; a stream still on them gets a reset (not-subscribed
 * or redis-outage) when they are subscribed again.
 */
void		 hub_channels(struct hub *, enum hub_channel_event,
		    const char **names, const size_t *lens, size_t n);
/* exact subscriptions: Redis is reachable (1) or not (0) */
void		 hub_redis_state(struct hub *, int up);
/*
 * --history redis.  A new stream's channels are read from Redis (their
 * positions, or what a Last-Event-ID missed), through the broker; until
 * the answer comes back here, what is published for it waits, and is then
 * queued after the replay, less what the replay held already.  The hub
 * takes r back and frees it.
 */
struct durable_read;
void		 hub_recovered(struct hub *, struct durable_read *r);
/*
 * The broker's thread, when the hub asked for it (MAILBOX_HUB_WORK): the
 * next share of bringing streams up to date after a Redis outage
 * (hub_catchup.c), bounded so that live messages are not held up.
 */
void		 hub_work(struct hub *);

/*
 * main's tick, about every 100 ms: open the streams that awaited
 * await_ms for their subscriptions; drop history past its TTL.
 * (Heartbeats and token expiry are the writers', see writer.h.)
 */
void		 hub_tick(struct hub *, uint64_t now_ms);

/*
 * Shutdown: close every stream with its own final frame (make_final is
 * called once per stream) and wake it; no stream is added after this.
 */
void		 hub_close_all(struct hub *, struct frame *(*make_final)(void *),
		    void *arg);

void		 hub_history_stats(struct hub *, struct history_stats *);

/*
 * A Last-Event-ID: "EPOCH-SEQ" of this run (epoch, 8 hex digits) with a
 * seq already given (<= last_seq) yields 0 and *seq; anything else -1
 * and in *why the reason it cannot be used.  Pure.
 */
int		 hub_parse_id(const char *epoch, uint64_t last_seq,
		    const char *id, uint64_t *seq, enum hub_reset *why);

#endif
