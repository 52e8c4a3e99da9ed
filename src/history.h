/*
 * history.h - per-channel replay buffer for Last-Event-ID resume.
 *
 * Every message the broker receives is kept, as the frame already encoded
 * for it, in its channel's history: the last N per channel, none older
 * than the TTL, and all of them within a global memory cap (oldest out
 * first).  Whatever leaves is remembered as a seq bound, so a resume knows
 * for sure whether it can replay everything a client missed; if not, the
 * caller sends an explicit reset instead of replaying what is left.
 *
 * Not locked: the hub lock guards it (broker adds, workers replay), which
 * also makes the switch from replay to live exact.
 */
#ifndef SSERELAY_HISTORY_H
#define SSERELAY_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "table.h"

struct frame;
struct history_entry;

struct history_stats {
	size_t		 messages;	/* held now */
	size_t		 bytes;		/* held now, frames and bookkeeping */
	size_t		 channels;
	uint64_t	 evicted_count;	/* pushed out by the per-channel cap */
	uint64_t	 evicted_ttl;
	uint64_t	 evicted_memory;
};

TAILQ_HEAD(history_entries, history_entry);

struct history {
	int			 exact;		/* records follow subscriptions */
	struct table		 chans;
	struct history_entries	 all;		/* by seq, oldest first */
	size_t			 per_channel;		/* 0: keep nothing */
	uint64_t		 ttl_ms;
	size_t			 max_bytes;
	uint64_t		 dropped_upto;	/* see history.c */
	uint64_t		 outage_upto;
	struct history_stats	 stats;
};

enum history_verdict {
	HISTORY_COMPLETE = 0,	/* every message after the id is replayed */
	HISTORY_TOO_OLD,	/* some of them have left the history */
	HISTORY_OUTAGE,		/* Redis was lost after the id */
	HISTORY_DISABLED,	/* history size 0 */
	HISTORY_NOMEM,
	HISTORY_NOT_SUBSCRIBED,	/* a channel was not subscribed after the id */
};

int	 history_init(struct history *, size_t per_channel, unsigned ttl_s,
	    size_t max_bytes, int exact);
void	 history_free(struct history *);
/*
 * Keep f (a reference is taken) as message seq of the channel; seqs come
 * in increasing order.  Evicts what the caps require.  -1 if out of
 * memory (then the message counts as evicted).
 */
int	 history_add(struct history *, const char *, size_t, uint64_t seq,
	    uint64_t now_ms, struct frame *f);
/* drop what is older than the TTL */
void	 history_expire(struct history *, uint64_t now_ms);
/* message seq could not be kept (or even encoded): a resume past it resets */
void	 history_lost(struct history *, uint64_t seq);
/* Redis was lost: messages after seq may never have reached us */
void	 history_outage(struct history *, uint64_t seq);
/*
 * Exact subscriptions (history_init's exact): a channel's record lives
 * from Redis's confirmation of its subscription, with seq the last id
 * given before it (a resume from that id or older gets
 * HISTORY_NOT_SUBSCRIBED), to its end, which drops the record and what it
 * kept.  Messages on a channel without a record are not kept.
 */
int	 history_subscribed(struct history *, const char *, size_t,
	    uint64_t seq);
void	 history_unsubscribed(struct history *, const char *, size_t);
/* 1 if the channel's subscription is confirmed (exact mode) */
int	 history_is_subscribed(struct history *, const char *, size_t);
/*
 * The frames of every message after seq `after` on the n channels, in
 * seq order, each with a reference for the caller (*out is malloc'd, to
 * free after unref'ing them).  Anything but HISTORY_COMPLETE returns no
 * frames.
 */
enum history_verdict history_replay(struct history *, const char **,
	    const size_t *, size_t n, uint64_t after, struct frame ***out,
	    size_t *nout);
/*
 * ?last=N: the frames of the newest count messages of each of the n
 * channels that it keeps (fewer if it keeps fewer), in seq order, as
 * history_replay gives them.  0, or -1 if out of memory.
 */
int	 history_last(struct history *, const char **, const size_t *,
	    size_t n, size_t count, struct frame ***out, size_t *nout);

#endif
