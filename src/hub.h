/*
 * hub.h - channel -> subscribers, fan-out, heartbeats.
 *
 * THREADS AND LOCKS
 * - One mutex guards the channel table, every channel's subscriber list,
 *   the list of all streams, the heartbeat cursor and the wake list.
 * - MHD workers take it briefly in hub_add() and hub_remove().
 * - The broker thread takes it once per batch of Redis replies
 *   (hub_lock ... hub_unlock) and calls the *_locked functions inside.
 *   Wakes are collected during the batch and done once per stream at the
 *   end of it (hub_wake_locked), so a burst of messages costs one resume
 *   per suspended stream, not one per message.
 * - Lock order: hub lock -> stream lock.  Never the other way round.
 * - After hub_remove() returns, no other thread holds or will take a
 *   pointer to the stream, so the caller may free it.
 */
#ifndef SSERELAY_HUB_H
#define SSERELAY_HUB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct frame;
struct stream;
struct hub;

/* why a stream started with a reset instead of a replay */
#define HUB_RESET_REASONS	7
extern const char *const hub_reset_reasons[HUB_RESET_REASONS];

struct hub_stats {
	atomic_ulong	 resumes;	/* Last-Event-ID replays, complete */
	atomic_ulong	 replayed;	/* events they carried */
	atomic_ulong	 resets[HUB_RESET_REASONS];
	atomic_ulong	 streams_open;
	atomic_ulong	 streams_total;
	atomic_ulong	 slow_closes;	/* closed because the ring was full */
	atomic_ulong	 events;	/* frames queued to streams */
	atomic_ulong	 heartbeats;	/* pings queued to streams */
};

struct hub_resume {
	size_t		 replayed;	/* events replayed from history */
	const char	*reset;		/* or why a reset was sent instead */
};

struct history_stats;

/* history: last N per channel, TTL, memory cap (see history.h) */
struct hub	*hub_new(size_t history_size, unsigned history_ttl_s,
		    size_t history_bytes);
/* every stream must have been removed */
void		 hub_free(struct hub *);
struct hub_stats *hub_stats(struct hub *);
/*
 * The frame a stream closed as too slow ends with (a "retry:"), or NULL;
 * the hub takes a reference.  Set it before any stream is added.
 */
void		 hub_set_slow_final(struct hub *, struct frame *);

/*
 * Subscribe s to n channels (binary names) and to the heartbeat list.
 * With a last_event_id (not NULL, not empty) the stream first gets every
 * event it missed on its channels from the history, in order, or a reset
 * event saying why that cannot be (res says which).  Done under the hub
 * lock, so the switch to live events has no gap and no overlap.  Takes
 * the hub lock.  0, or -1 when shutting down or out of memory (nothing
 * registered).
 */
int		 hub_add(struct hub *, struct stream *, const char **channels,
		    const size_t *lens, size_t n, const char *last_event_id,
		    struct hub_resume *res);
/* undo hub_add; takes the hub lock; harmless if s was never added */
void		 hub_remove(struct hub *, struct stream *);

void		 hub_history_stats(struct hub *, struct history_stats *);

void		 hub_lock(struct hub *);
void		 hub_unlock(struct hub *);
/*
 * A Last-Event-ID: "EPOCH-SEQ" of this run (epoch, 8 hex digits) with a
 * seq already given (<= last_seq) yields NULL and *seq; anything else the
 * reason it cannot be used ("malformed-id", "unknown-epoch", "unknown-id").
 * Pure.
 */
const char	*hub_parse_id(const char *epoch, uint64_t last_seq,
		    const char *id, uint64_t *seq);
/* the next message id's seq, and the id as text ("EPOCH-SEQ") */
uint64_t	 hub_next_seq_locked(struct hub *);
void		 hub_event_id(struct hub *, uint64_t seq, char *, size_t);
/* keep f in the channel's history and queue it to the subscribers */
size_t		 hub_publish_locked(struct hub *, const char *, size_t,
		    uint64_t seq, uint64_t now_ms, struct frame *);
/* message seq was lost before it could be published (out of memory) */
void		 hub_lost_locked(struct hub *, uint64_t seq);
/* drop history older than its TTL */
void		 hub_expire_locked(struct hub *, uint64_t now_ms);
/*
 * Redis came back: what was published meanwhile is lost.  Resumes from
 * before now get a reset, and so does every open stream, at once.
 */
void		 hub_outage_locked(struct hub *);
/* 1 if the channel has subscribers */
int		 hub_has_locked(struct hub *, const char *, size_t);
/* queue f to every subscriber of the channel; returns how many */
size_t		 hub_fanout_locked(struct hub *, const char *, size_t,
		    struct frame *);
/*
 * Queue the ping frame to the share of streams whose turn has come, so
 * that each stream gets one every interval_ms, staggered along the list
 * of streams instead of all in one tick.  elapsed_ms is the time since the
 * last call.
 */
size_t		 hub_heartbeat_locked(struct hub *, uint64_t elapsed_ms,
		    uint64_t interval_ms, struct frame *ping);
/* close every stream: final frame (its own per stream from make_final) */
void		 hub_close_all_locked(struct hub *,
		    struct frame *(*make_final)(void *), void *arg);
/*
 * End every stream whose token expired by now (unix seconds) with the
 * slow-close frame (a retry:), so its client comes back with a fresh one.
 * Returns how many.  Walks every stream: call it about once a second.
 */
size_t		 hub_expire_tokens_locked(struct hub *, time_t now);
/* wake every stream queued during the batch */
void		 hub_wake_locked(struct hub *);

#endif
