/*
 * writer_int.h - what the writer's files share (writer.h is the writers
 * to the rest): writer.c (the threads: sockets, events, writes) and
 * writer_timer.c (each stream's deadlines: heartbeats, token expiry, the
 * end of a drain).
 *
 * THREADS: whoever holds the writer's run lock (its thread, for each
 * round, or a waker that writes for it while it sleeps), but for the
 * fields under its lock (see writer.h).
 */
#ifndef SSERELAY_WRITER_INT_H
#define SSERELAY_WRITER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>

#include "heap.h"
#include "stream.h"
#include "writer.h"

/* s->wstate, under the writer's lock */
enum {
	WRITER_S_NEW = 0,	/* handed over, not taken yet */
	WRITER_S_ATTACHED,
	WRITER_S_GONE,		/* let go of: never on a list again */
};

TAILQ_HEAD(writer_streams, stream);

struct writer {
	pthread_t		 thread;
	struct writers		*ws;
	unsigned		 index;
	int			 ep;		/* epoll */
	int			 evfd;		/* eventfd: work for it */
	atomic_uint		 nstreams;	/* assigned to it */

	/* lock */
	pthread_mutex_t		 lock;
	struct writer_streams	 dirty;
	unsigned		 ndirty;	/* on dirty */
	struct writer_streams	 incoming;
	int			 sleeping;
	int			 signalled;
	int			 abort;
	int			 stop;

	/*
	 * run: its thread's, or a waker's that found it asleep (writer.h);
	 * held by the thread for each round, never while it sleeps
	 */
	pthread_mutex_t		 run;
	struct writer_streams	 ended;		/* to give back this round */
	struct heap		 timers;
	struct stream_out	 out;
	char			*tlsbuf;
	unsigned		 hb_seen;	/* the heartbeat keyed with */
	uint64_t		 now;		/* ms, this round's */
	struct frame		*ping;
};

struct writers {
	const struct writers_config *cfg;
	unsigned		 n;
	pthread_mutex_t		 retry_lock;
	struct frame		*retry;		/* token expiry's last frame */
	struct writer		 w[];
};

/* writer.c */
/* write what the stream has, within its share of this round */
void		 writer_flush(struct writer *, struct stream *);
/* let go of the stream for good (see writer.c) */
void		 writer_end(struct writer *, struct stream *);

/* writer_timer.c */
/* --heartbeat now, in ms */
unsigned	 writer_heartbeat(struct writer *);
/* the stream's next deadline: heartbeat, token expiry, end of drain */
uint64_t	 writer_deadline(struct writer *, struct stream *);
void		 writer_set_timer(struct writer *, struct stream *, uint64_t);
/* run the deadlines that are due (a bounded number a round) */
void		 writer_timers(struct writer *);
/* ms to the next deadline for epoll_wait: -1 none, 0 work waiting */
int		 writer_timeout(struct writer *);

#endif
