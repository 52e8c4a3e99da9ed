/*
 * writer.h - the threads that write the streams' sockets.
 *
 * Once a stream is admitted, its connection is suspended in libmicrohttpd
 * (which then touches neither its socket nor its TLS session) and handed
 * to one writer thread, which writes the response head and then the
 * frames itself until the body ends or the client goes, and then hands the
 * connection back (s->done) for libmicrohttpd to close.
 *
 * THREADS AND LOCKS
 * - Each writer is one thread with its own epoll set, eventfd and timer
 *   heap; a stream belongs to one writer for its whole life (s->writer).
 * - struct writer's lock guards its dirty list (streams with work, put
 *   there by writer_wake from the hub's batch end), its incoming list
 *   (streams handed over by MHD workers) and its sleeping/signalled state.
 * - Its run lock guards everything else of a writer and of its streams'
 *   output (stream.h): the thread holds it for each round and lets go of
 *   it only to sleep in epoll_wait.
 * - writers_flush() (the hub's batch end, the hub lock held), for each
 *   writer with dirty streams: when it sleeps and has a few (at most 8),
 *   the caller takes its run lock (trylock: never waits) and writes them
 *   itself, so that an event to a quiet stream leaves from the thread
 *   that read it; otherwise, or for what is left (a stream ended, a
 *   deadline moved), it writes the writer's eventfd once: one write per
 *   writer per Redis read batch at most.  A writer's thread skips the
 *   epoll events of streams a waker ended while it waited for the lock.
 * - Heartbeats, token expiry and the drain of closing streams run on each
 *   writer's own timer heap.
 * - Lock order: hub lock -> run lock (trylock only) -> writer lock ->
 *   stream lock; the writer never holds its lock while it takes another.
 */
#ifndef SSERELAY_WRITER_H
#define SSERELAY_WRITER_H

#include <stdatomic.h>
#include <stddef.h>

struct frame;
struct stream;
struct writers;

struct writers_config {
	unsigned		 threads;	/* 0: one per core */
	const _Atomic unsigned	*heartbeat_ms;	/* live (SIGHUP) */
	unsigned		 drain_ms;	/* a closing stream's time */
};

/* the writer threads; NULL with err */
struct writers	*writers_start(const struct writers_config *, char *err,
		    size_t errlen);
unsigned	 writers_count(const struct writers *);
/*
 * The frame a stream ends with when its token expires (a "retry:"); a
 * reference is taken.  From main, at start and on SIGHUP.
 */
void		 writers_set_retry(struct writers *, struct frame *);
/*
 * A new stream's writer (the one with fewest streams): sets s->writer and
 * s->wakeup.  Before the stream is shared.
 */
void		 writers_assign(struct writers *, struct stream *);
/*
 * Hand the stream over: its writer writes to fd (through tls, a
 * gnutls_session_t, when not NULL) from now on.  s->done is called, from
 * the writer's thread, once it has let go of the stream for good.
 */
void		 writer_attach(struct stream *, int fd, void *tls);
/* s->wakeup: put the stream on its writer's dirty list (hub side) */
void		 writer_wake(struct stream *);
/* the hub's batch end: signal each sleeping writer that has work */
void		 writers_flush(void *writers);
/* SIGHUP: each writer takes --heartbeat again (its deadlines move) */
void		 writers_reload(struct writers *);
/* shutdown: every writer lets go of every stream it still has */
void		 writers_abort(struct writers *);
/* stop and join the threads: no stream may be attached any more */
void		 writers_stop(struct writers *);

#endif
