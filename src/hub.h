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

struct frame;
struct stream;
struct hub;

struct hub_stats {
	atomic_ulong	 streams_open;
	atomic_ulong	 streams_total;
	atomic_ulong	 slow_closes;	/* closed because the ring was full */
	atomic_ulong	 events;	/* frames queued to streams */
	atomic_ulong	 heartbeats;	/* pings queued to streams */
};

struct hub	*hub_new(void);
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
 * Takes the hub lock.  0, or -1 if out of memory (nothing registered).
 */
int		 hub_add(struct hub *, struct stream *, const char **channels,
		    const size_t *lens, size_t n);
/* undo hub_add; takes the hub lock; harmless if s was never added */
void		 hub_remove(struct hub *, struct stream *);

void		 hub_lock(struct hub *);
void		 hub_unlock(struct hub *);
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
/* wake every stream queued during the batch */
void		 hub_wake_locked(struct hub *);

#endif
