/*
 * hub_int.h - what the hub's files share (hub.h is the hub to the rest):
 *   hub.c          channels, the fan-out and the wakes; streams joining
 *                  and leaving, publishing, the tick, shutdown
 *   hub_history.c  ids, resets, the history in memory: resumes, backlogs
 *   hub_exact.c    exact subscriptions: streams awaiting theirs, and
 *                  what a stream missed while its channel was not
 *   hub_durable.c  --history redis: a new stream's read of Redis's history
 *   hub_catchup.c  --history redis: open streams brought up to date after
 *                  a Redis outage
 *   hub_presence.c --presence-events: who is on a channel, for its new
 *                  streams
 *
 * THREADS: everything here is under the hub lock (see hub.h).
 */
#ifndef SSERELAY_HUB_INT_H
#define SSERELAY_HUB_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>

#include "frame.h"
#include "history.h"
#include "hub.h"
#include "table.h"

/* a log line about one channel (log.h) */
#define HUB_CHANNEL(name, len)	LOG_FIELDS(LOG_MEM("channel", (name), (len)))

struct hub_catchup;

struct hub_channel {
	struct table_entry	*entry;		/* its name, in hub->chans */
	LIST_HEAD(, hub_sub)	 subs;
	size_t			 nsubs;
	/* --history redis (hub_catchup.c) */
	int			 ephemeral;	/* it carried plain PUBLISHes */
	uint64_t		 catchup_gen;	/* its latest catch-up read */
	struct hub_catchup_chan	*result;	/* that read's, once in */
	/* --presence-events (hub_presence.c) */
	size_t			 nowed;		/* subs owed a snapshot */
	TAILQ_ENTRY(hub_channel) owed_entry;	/* in hub->owed while any */
};
TAILQ_HEAD(hub_owed, hub_channel);

TAILQ_HEAD(hub_streams, stream);
STAILQ_HEAD(hub_wakes, stream);
TAILQ_HEAD(hub_catchups, hub_catchup);

struct hub {
	pthread_mutex_t		 lock;
	struct table		 chans;		/* of struct hub_channel */
	struct history		 history;
	enum frame_format	 format;
	struct mailbox		*mailbox;
	char			 epoch[9];	/* this run, in every id */
	uint64_t		 seq;		/* last id given */
	uint64_t		 unsubscribed_upto; /* ids before the first
						   subscription */
	int			 subscribed_once;
	int			 exact;		/* see hub_channels */
	int			 durable;	/* see hub_recovered */
	uint64_t		 next_id;	/* streams' ids */
	struct table		 by_id;		/* durable: id -> stream */
	int			 redis_up;	/* exact: the broker says */
	unsigned		 await_ms;
	uint64_t		 gen;		/* one per hub_channels call */
	struct hub_streams	 awaiting;	/* oldest first */
	struct hub_streams	 streams;	/* every stream */
	size_t			 nstreams;
	struct hub_wakes	 wakes;		/* to wake at the batch end */
	void			(*wake_flush)(void *);
	void			*wake_arg;
	int			 closing;
	struct frame		*retry;		/* hub_set_retry */
	/* --history redis: catch-ups (hub_catchup.c) */
	uint64_t		 catchup_gen;
	struct hub_catchups	 catchups;	/* answered, being applied */
	int			 catchup_posted; /* hub_work is due */
	/* --presence-events: channels with streams owed a snapshot */
	int			 presence;
	struct hub_owed		 owed;
};

struct hub_message;
struct hub_resume;

/* hub.c */
struct hub_channel *hub_find(struct hub *, const char *, size_t);
/* s is woken at the end of the batch (hub_wake) */
void		 hub_queue_wake(struct hub *, struct stream *);
/* queue f to s; 1 if it was queued (a full ring closes s as slow) */
int		 hub_push(struct hub *, struct stream *, struct frame *);
/* queue f to every subscriber of the channel; returns how many */
size_t		 hub_fanout(struct hub *, const char *, size_t, struct frame *);
/* wake every stream queued this batch, then signal their writers */
void		 hub_wake(struct hub *);

/* hub_history.c */
/* a reset event for why (its id the stream's with --history redis) */
struct frame	*hub_reset_frame(struct hub *, enum hub_reset);
/* a new stream's resume or backlog; -1 if not even a reset was queued */
int		 hub_history_start(struct hub *, struct stream *,
		    const char **channels, const size_t *lens, size_t n,
		    const char *last_event_id, unsigned last,
		    struct hub_resume *);
/* a message from Redis: its id, its frame, the history, the fan-out */
void		 hub_history_message(struct hub *, const struct hub_message *,
		    uint64_t now_ms, uint64_t recv_us);
/* the subscription was made (again): the gap, and the open streams' resets */
void		 hub_history_subscribed(struct hub *);
/* the history's numbers to the stats */
void		 hub_history_publish(struct hub *);

/* hub_exact.c */
/* a new stream waits for the channels not subscribed yet (res->awaiting) */
void		 hub_exact_await(struct hub *, struct stream *, struct hub_resume *);
/* open every awaiting stream */
void		 hub_exact_open_all(struct hub *);
/* s leaves the hub: off the awaiting list */
void		 hub_exact_forget(struct hub *, struct stream *);
/* open the streams that waited the longest wait */
void		 hub_exact_tick(struct hub *, uint64_t now_ms);

/* hub_durable.c */
/* the channels in the order of their names (position.h's ids) */
void		 hub_durable_sort(const char **names, size_t *lens, size_t n);
/* a new stream: registered by its id, its read made; -1 out of memory */
int		 hub_durable_start(struct hub *, struct stream *,
		    const char **channels, const size_t *lens, size_t n,
		    const char *last_event_id, unsigned last,
		    struct hub_resume *);
/* s leaves the hub */
void		 hub_durable_forget(struct hub *, struct stream *);
/* post s's read to the broker, if it has one waiting */
void		 hub_read_post(struct hub *, struct stream *);
/* a message from Redis, with its position or a plain PUBLISH */
void		 hub_durable_message(struct hub *, const struct hub_message *,
		    uint64_t recv_us);
/* a stream by its id, or NULL */
struct stream	*hub_stream_by_id(struct hub *, uint64_t);

/* hub_catchup.c */
/*
 * The subscription of these channels (all of them: NULL names) was made
 * again after it was lost, or made for the first time: every open stream
 * on them that is not reading its own history is brought up to date from
 * the Redis streams after its positions (a read per channel, posted to
 * the broker; what comes live meanwhile waits beside each stream).
 */
void		 hub_catchup_start(struct hub *, const char **names,
		    const size_t *lens, size_t n);
/* a catch-up read came back (r->stream_id 0) */
void		 hub_catchup_read(struct hub *, struct durable_read *);
/* free every catch-up (hub_free) */
void		 hub_catchup_free(struct hub *);

/* hub_presence.c */
/* sub joined its channel: a snapshot is owed to it (with --presence-events) */
void		 hub_presence_owe(struct hub *, struct hub_sub *);
/* sub leaves its channel: none is owed any more */
void		 hub_presence_forget(struct hub *, struct hub_sub *);

#endif
