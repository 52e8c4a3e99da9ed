/*
 * writer.c - the writer threads: each writes its streams' sockets.  The
 * thread and lock rules are in writer.h.
 *
 * DESIGN
 * A writer sleeps in epoll_wait.  It wakes for its eventfd (streams with
 * work, streams handed over), for a socket that can take more (EPOLLOUT,
 * armed only while a stream has bytes the socket did not take) or that
 * the client closed (EPOLLRDHUP, EPOLLHUP, EPOLLERR: the stream ends at
 * once, whatever the heartbeat), or for its next timer.  Each round it
 * handles the sockets' events, takes the streams handed over, writes
 * every stream on its dirty list, runs the timers that are due, and adds
 * its counts to the shared ones.
 *
 * Writing a stream (writer_flush) is stream_out, one sendmsg of the
 * iovecs it gives (the frames themselves: no copy), stream_sent.  A socket
 * that takes less than all arms EPOLLOUT and the stream waits for it;
 * what the hub queues meanwhile stays in the ring, whose bound is the
 * slow-client rule.  A stream gets a few writes per round and goes to the
 * back of the list after them, so one long replay cannot hold the others
 * up.  TLS streams go through their GnuTLS session instead: one record
 * of up to 16 KiB copied out of the frames; a record the socket could not
 * take is GnuTLS's to flush (called again with no data) before any other.
 *
 * A sleeping writer does not always wake for its dirty streams: when it
 * has a few, the thread that made them dirty (the Redis thread, mostly)
 * writes them itself under the writer's run lock (writer_help), the way
 * an nginx worker that reads Redis writes the socket.  A quiet stream's
 * event then costs no thread hand-off: on a 2-core box that took the
 * server CPU per event at 1,000 to 10,000 streams from 50-53 us to 37-38
 * (bench/run curve).  A broadcast's many streams stay the writers' work,
 * in parallel.
 *
 * Timers (heartbeats, token expiry, drains) are writer_timer.c's.
 */
#include "autoconf.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "heap.h"
#include "log.h"
#include "stats.h"
#include "stream.h"
#include "util.h"
#include "writer.h"
#include "writer_int.h"

#define WRITER_MAX		256	/* threads */
#define WRITER_EVENTS		256	/* per epoll_wait */
#define WRITER_BYTES		(256 * 1024)	/* a sendmsg at most */
#define WRITER_WRITES		4	/* a stream's writes per round */
#define WRITER_TLS_RECORD	16384	/* GnuTLS's largest record */
#define WRITER_INLINE		8	/* dirty streams a waker writes */
#define WRITER_BATCH		64	/* dirty streams taken at once */

/* the writer's lock held: on its dirty list (if not on one) */
static void
writer_dirty_add(struct writer *w, struct stream *s)
{
	if (!s->on_dirty) {
		TAILQ_INSERT_TAIL(&w->dirty, s, dirty);
		s->on_dirty = 1;
		w->ndirty++;
	}
}

/* the writer's lock held: off its dirty list */
static void
writer_dirty_del(struct writer *w, struct stream *s)
{
	TAILQ_REMOVE(&w->dirty, s, dirty);
	s->on_dirty = 0;
	w->ndirty--;
}

/* the writer's lock held: signal its thread if it sleeps unsignalled */
static int
writer_kick_locked(struct writer *w)
{
	if (!w->sleeping || w->signalled)
		return 0;
	w->signalled = 1;
	return 1;
}

static void
writer_signal(struct writer *w)
{
	uint64_t	 one = 1;

	if (write(w->evfd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("writer %u: eventfd", w->index);
}

void
writers_assign(struct writers *ws, struct stream *s)
{
	struct writer	*best = &ws->w[0];
	unsigned	 i, n, least = UINT32_MAX;

	for (i = 0; i < ws->n; i++) {
		n = atomic_load_explicit(&ws->w[i].nstreams,
		    memory_order_relaxed);
		if (n < least) {
			least = n;
			best = &ws->w[i];
		}
	}
	atomic_fetch_add_explicit(&best->nstreams, 1, memory_order_relaxed);
	s->writer = best;
	s->wakeup = writer_wake;
}

void
writer_attach(struct stream *s, int fd, void *tls)
{
	struct writer	*w = s->writer;
	int		 kick;

	s->fd = fd;
	s->tls = tls;
	pthread_mutex_lock(&w->lock);
	TAILQ_INSERT_TAIL(&w->incoming, s, dirty);
	s->on_dirty = 1;
	kick = writer_kick_locked(w);
	pthread_mutex_unlock(&w->lock);
	if (kick)
		writer_signal(w);
}

void
writer_wake(struct stream *s)
{
	struct writer	*w = s->writer;

	pthread_mutex_lock(&w->lock);
	if (s->wstate == WRITER_S_ATTACHED)
		writer_dirty_add(w, s);
	pthread_mutex_unlock(&w->lock);
}

static void
writer_epoll(struct writer *w, struct stream *s, int op, int out)
{
	struct epoll_event	 ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLRDHUP | (out ? EPOLLOUT : 0);
	ev.data.ptr = s;
	if (epoll_ctl(w->ep, op, s->fd, &ev) == -1 && op != EPOLL_CTL_DEL)
		log_warn("writer %u: epoll_ctl fd %d", w->index, s->fd);
	s->want_out = out;
}

/*
 * Let go of the stream for good: out of epoll, the timers and the lists,
 * nothing more queued to it; it goes back to MHD (s->done) at the end of
 * the round (writer_give_back), with the others that ended in it: each
 * resume makes MHD walk its worker's suspended connections, and resumes
 * made together share one walk.
 */
void
writer_end(struct writer *w, struct stream *s)
{
	epoll_ctl(w->ep, EPOLL_CTL_DEL, s->fd, NULL);
	heap_remove(&w->timers, &s->timer);
	pthread_mutex_lock(&w->lock);
	s->wstate = WRITER_S_GONE;
	if (s->on_dirty)
		writer_dirty_del(w, s);
	pthread_mutex_unlock(&w->lock);
	stream_attach(s, 0);
	atomic_fetch_sub_explicit(&w->nstreams, 1, memory_order_relaxed);
	TAILQ_INSERT_TAIL(&w->ended, s, dirty);
}

/* the streams that ended this round, back to MHD: never touched again */
static void
writer_give_back(struct writer *w)
{
	struct stream	*s;

	while ((s = TAILQ_FIRST(&w->ended)) != NULL) {
		TAILQ_REMOVE(&w->ended, s, dirty);
		/* after this it may be freed at any moment */
		if (s->done != NULL)
			s->done(s);
	}
}

/* the socket took less than all: wait for room, and bound a closing drain */
static void
writer_blocked(struct writer *w, struct stream *s)
{
	if (!s->want_out)
		writer_epoll(w, s, EPOLL_CTL_MOD, 1);
	if (w->out.closing && s->drain_by_ms == 0) {
		s->drain_by_ms = w->now + w->ws->cfg->drain_ms;
		writer_set_timer(w, s, writer_deadline(w, s));
	}
}

/* a TLS record: 1 written (or GnuTLS has it), 0 blocked, -1 gone */
static int
writer_tls_send(struct writer *w, struct stream *s)
{
	ssize_t		 r;
	size_t		 n = 0, take;
	int		 i;

	if (s->tls_pending) {
		r = gnutls_record_send(s->tls, NULL, 0);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			return 0;
		if (r < 0)
			return -1;
		s->tls_pending = 0;
		return 1;
	}
	for (i = 0; i < w->out.niov && n < WRITER_TLS_RECORD; i++) {
		take = w->out.iov[i].iov_len;
		if (take > WRITER_TLS_RECORD - n)
			take = WRITER_TLS_RECORD - n;
		memcpy(w->tlsbuf + n, w->out.iov[i].iov_base, take);
		n += take;
	}
	r = gnutls_record_send(s->tls, w->tlsbuf, n);
	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
		/* the record is GnuTLS's now: flushed by a call with none */
		s->tls_pending = 1;
		stream_sent(s, &w->out, n);
		return 0;
	}
	if (r < 0) {
		stream_sent(s, &w->out, 0);
		return -1;
	}
	stream_sent(s, &w->out, (size_t)r);
	return 1;
}

/* write what the stream has, within its share of this round */
void
writer_flush(struct writer *w, struct stream *s)
{
	struct msghdr	 msg;
	ssize_t		 r;
	int		 i, n;

	for (i = 0; i < WRITER_WRITES; i++) {
		if (s->tls_pending) {
			if ((r = writer_tls_send(w, s)) == 0) {
				writer_blocked(w, s);
				return;
			}
			if (r < 0)
				goto gone;
		}
		if ((n = stream_out(s, &w->out, WRITER_BYTES)) < 0) {
			writer_end(w, s);	/* the body is over */
			return;
		}
		if (n == 0)
			return;
		if (s->tls != NULL) {
			if ((r = writer_tls_send(w, s)) < 0)
				goto gone;
			s->last_write_ms = w->now;
			if (r == 0) {
				writer_blocked(w, s);
				return;
			}
			continue;
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = w->out.iov;
		msg.msg_iovlen = (size_t)n;
		do
			r = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
		while (r == -1 && errno == EINTR);
		if (r == -1) {
			stream_sent(s, &w->out, 0);
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				writer_blocked(w, s);
				return;
			}
			log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_NUM("stream",
			    s->id)), "writer: stream on fd %d: %s", s->fd,
			    strerror(errno));
			goto gone;
		}
		stream_sent(s, &w->out, (size_t)r);
		s->last_write_ms = w->now;
		if ((size_t)r < w->out.bytes) {
			writer_blocked(w, s);
			return;
		}
	}
	/* its share is used: to the back of the list */
	pthread_mutex_lock(&w->lock);
	writer_dirty_add(w, s);
	pthread_mutex_unlock(&w->lock);
	return;
gone:
	writer_end(w, s);
}

/* a stream handed over: watch its socket, time it, write its head */
static void
writer_take(struct writer *w, struct stream *s)
{
	int	 one = 1;
	unsigned hb = writer_heartbeat(w);
	time_t	 now_s;

	/* each event leaves at once (MHD may have left the socket corked) */
	setsockopt(s->fd, IPPROTO_TCP, TCP_CORK, &(int){ 0 }, sizeof(int));
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	writer_epoll(w, s, EPOLL_CTL_ADD, 0);
	/* the first heartbeat after 3/4 to 1 interval: spread, not in step */
	s->last_write_ms = w->now - (hb / 4 > 0 ? util_random() % (hb / 4) :
	    0);
	if (s->expires != 0) {
		now_s = time(NULL);
		s->token_ms = w->now + (s->expires > now_s ?
		    (uint64_t)(s->expires - now_s) * 1000 : 0);
	}
	writer_set_timer(w, s, writer_deadline(w, s));
	pthread_mutex_lock(&w->lock);
	s->wstate = WRITER_S_ATTACHED;
	pthread_mutex_unlock(&w->lock);
	stream_attach(s, 1);
	writer_flush(w, s);
}

/* the next stream attached to the writer, or NULL */
static struct stream *
writer_next_incoming(struct writer *w)
{
	struct stream	*s;

	pthread_mutex_lock(&w->lock);
	if ((s = TAILQ_FIRST(&w->incoming)) != NULL) {
		TAILQ_REMOVE(&w->incoming, s, dirty);
		s->on_dirty = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return s;
}

/*
 * Up to max streams off the dirty list at once, into v: one lock for a
 * batch, not one a stream (a broadcast puts every stream there, and the
 * Redis thread takes the same lock to add them).
 */
static unsigned
writer_next_dirty(struct writer *w, struct stream **v, unsigned max)
{
	struct stream	*s;
	unsigned	 n = 0;

	pthread_mutex_lock(&w->lock);
	while (n < max && (s = TAILQ_FIRST(&w->dirty)) != NULL) {
		writer_dirty_del(w, s);
		v[n++] = s;
	}
	pthread_mutex_unlock(&w->lock);
	return n;
}

static void
writer_events(struct writer *w, struct epoll_event *ev, int n)
{
	struct stream	*s;
	int		 i;

	for (i = 0; i < n; i++) {
		/* the eventfd is edge-triggered: each write is an event of
		   its own, and its count is never read (one syscall less) */
		if ((s = ev[i].data.ptr) == NULL)
			continue;
		/* ended by a waker (writer_help) since epoll_wait gave it:
		   out of epoll now, given back at the end of this round */
		if (s->wstate == WRITER_S_GONE)
			continue;
		if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
			log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_NUM("stream",
			    s->id)), "writer: the client on fd %d went away",
			    s->fd);
			writer_end(w, s);
			continue;
		}
		if (ev[i].events & EPOLLOUT) {
			writer_epoll(w, s, EPOLL_CTL_MOD, 0);
			writer_flush(w, s);
		}
	}
}

/* a dirty stream: write it, unless it waits for room */
static void
writer_dirty(struct writer *w, struct stream *s)
{
	if (!s->want_out && !s->tls_pending)
		writer_flush(w, s);
	else if (s->drain_by_ms == 0 && stream_closing(s)) {
		/* closed while its socket is full */
		s->drain_by_ms = w->now + w->ws->cfg->drain_ms;
		writer_set_timer(w, s, writer_deadline(w, s));
	}
}

static uint64_t
writer_next_deadline(struct writer *w)
{
	struct heap_node	*hn = heap_first(&w->timers);

	return hn != NULL ? hn->key : UINT64_MAX;
}

/*
 * A sleeping writer with a few dirty streams: the waker writes them
 * itself, as the writer would (its run lock held), and the writer sleeps
 * on.  An event to a quiet stream then costs no thread hand-off, as in
 * nginx, where the worker that reads Redis writes the socket.  Many dirty
 * streams (a broadcast) are the writers' work, in parallel.  Returns 1 if
 * the writer must still be signalled: streams left dirty, streams ended
 * (given back by its thread), or a deadline earlier than it sleeps for.
 */
static int
writer_help(struct writer *w)
{
	struct stream	*v[WRITER_INLINE];
	uint64_t	 deadline;
	unsigned	 i, n;
	int		 kick;

	if (pthread_mutex_trylock(&w->run) != 0) {
		/* in a round, which sees its dirty list, or just done with
		   one and about to sleep: then it must be signalled */
		pthread_mutex_lock(&w->lock);
		kick = !TAILQ_EMPTY(&w->dirty) && writer_kick_locked(w);
		pthread_mutex_unlock(&w->lock);
		return kick;
	}
	w->now = util_now_ms();
	deadline = writer_next_deadline(w);
	n = writer_next_dirty(w, v, WRITER_INLINE);
	for (i = 0; i < n; i++)
		writer_dirty(w, v[i]);
	stats_local_flush(&w->out.stats);
	pthread_mutex_lock(&w->lock);
	kick = (!TAILQ_EMPTY(&w->dirty) || !TAILQ_EMPTY(&w->ended) ||
	    writer_next_deadline(w) < deadline) && writer_kick_locked(w);
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_unlock(&w->run);
	return kick;
}

void
writers_flush(void *arg)
{
	struct writers	*ws = arg;
	struct writer	*w;
	unsigned	 i, ndirty;
	int		 kick, asleep;

	for (i = 0; i < ws->n; i++) {
		w = &ws->w[i];
		pthread_mutex_lock(&w->lock);
		ndirty = w->ndirty;
		asleep = w->sleeping && !w->signalled;
		kick = ndirty > 0 && (ndirty > WRITER_INLINE || !asleep) &&
		    writer_kick_locked(w);
		pthread_mutex_unlock(&w->lock);
		if (ndirty > 0 && ndirty <= WRITER_INLINE && asleep)
			kick = writer_help(w);
		if (kick)
			writer_signal(w);
	}
}

static void *
writer_main(void *arg)
{
	struct writer		*w = arg;
	struct epoll_event	 ev[WRITER_EVENTS];
	struct stream		*s, *batch[WRITER_BATCH];
	unsigned		 dirty, max, n, i;
	int			 nev, timeout, abort;

	pthread_mutex_lock(&w->run);
	for (;;) {
		w->now = util_now_ms();
		timeout = writer_timeout(w);
		pthread_mutex_lock(&w->lock);
		if (w->stop && heap_count(&w->timers) == 0 &&
		    TAILQ_EMPTY(&w->incoming)) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		if (!TAILQ_EMPTY(&w->dirty) || !TAILQ_EMPTY(&w->incoming) ||
		    w->abort || w->stop)
			timeout = 0;
		else
			w->sleeping = 1;
		pthread_mutex_unlock(&w->lock);
		/* asleep, a waker may write for it (writer_help) */
		pthread_mutex_unlock(&w->run);
		nev = epoll_wait(w->ep, ev, WRITER_EVENTS, timeout);
		pthread_mutex_lock(&w->run);
		pthread_mutex_lock(&w->lock);
		w->sleeping = 0;
		w->signalled = 0;
		abort = w->abort;
		pthread_mutex_unlock(&w->lock);
		w->now = util_now_ms();
		if (nev > 0)
			writer_events(w, ev, nev);
		while ((s = writer_next_incoming(w)) != NULL)
			writer_take(w, s);
		/* what was dirty at the start of the pass; what comes back
		   to the list waits for the next one */
		for (dirty = 0, max = heap_count(&w->timers) + 1; dirty < max &&
		    (n = writer_next_dirty(w, batch, max - dirty <
		    WRITER_BATCH ? max - dirty : WRITER_BATCH)) > 0; dirty += n)
			for (i = 0; i < n; i++)
				writer_dirty(w, batch[i]);
		writer_timers(w);
		if (abort) {
			while (heap_first(&w->timers) != NULL)
				writer_end(w, (struct stream *)((char *)
				    heap_first(&w->timers) -
				    offsetof(struct stream, timer)));
			pthread_mutex_lock(&w->lock);
			w->abort = 0;
			pthread_mutex_unlock(&w->lock);
		}
		writer_give_back(w);
		stats_local_flush(&w->out.stats);
	}
	pthread_mutex_unlock(&w->run);
	return NULL;
}

struct writers *
writers_start(const struct writers_config *cfg, char *err, size_t errlen)
{
	struct writers		*ws;
	struct writer		*w;
	struct epoll_event	 ev;
	char			 name[16];
	long			 cores;
	unsigned		 n = cfg->threads, i;

	if (n == 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		n = cores > 0 ? (unsigned)cores : 1;
	}
	if (n > WRITER_MAX)
		n = WRITER_MAX;
	if ((ws = calloc(1, sizeof(*ws) + n * sizeof(ws->w[0]))) == NULL) {
		util_err(err, errlen, "out of memory");
		return NULL;
	}
	ws->cfg = cfg;
	pthread_mutex_init(&ws->retry_lock, NULL);
	for (i = 0; i < n; i++) {
		w = &ws->w[i];
		w->ws = ws;
		w->index = i;
		w->ep = w->evfd = -1;
		pthread_mutex_init(&w->lock, NULL);
		pthread_mutex_init(&w->run, NULL);
		TAILQ_INIT(&w->dirty);
		TAILQ_INIT(&w->incoming);
		TAILQ_INIT(&w->ended);
		heap_init(&w->timers);
		w->hb_seen = writer_heartbeat(w);
		if (stream_out_init(&w->out) == -1 ||
		    (w->tlsbuf = malloc(WRITER_TLS_RECORD)) == NULL ||
		    (w->ping = frame_ping()) == NULL) {
			util_err(err, errlen, "out of memory");
			goto bad;
		}
		if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
		    (w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
			util_err(err, errlen, "writer threads: %s",
			    strerror(errno));
			goto bad;
		}
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLET;
		ev.data.ptr = NULL;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ev) == -1) {
			util_err(err, errlen, "writer threads: %s",
			    strerror(errno));
			goto bad;
		}
		if ((errno = pthread_create(&w->thread, NULL, writer_main,
		    w)) != 0) {
			util_err(err, errlen, "writer threads: %s",
			    strerror(errno));
			goto bad;
		}
		ws->n = i + 1;
		snprintf(name, sizeof(name), "sserelay-writer");
		pthread_setname_np(w->thread, name);
	}
	return ws;
bad:
	/* writer i is not counted in ws->n: undo it here, the others stop */
	w = &ws->w[i];
	if (w->ep != -1)
		close(w->ep);
	if (w->evfd != -1)
		close(w->evfd);
	stream_out_free(&w->out);
	free(w->tlsbuf);
	frame_unref(w->ping);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->run);
	writers_stop(ws);
	return NULL;
}

unsigned
writers_count(const struct writers *ws)
{
	return ws->n;
}

void
writers_reload(struct writers *ws)
{
	unsigned	 i;

	/* a writer asleep until an old deadline wakes and rekeys */
	for (i = 0; i < ws->n; i++)
		writer_signal(&ws->w[i]);
}

void
writers_abort(struct writers *ws)
{
	struct writer	*w;
	unsigned	 i;

	for (i = 0; i < ws->n; i++) {
		w = &ws->w[i];
		pthread_mutex_lock(&w->lock);
		w->abort = 1;
		pthread_mutex_unlock(&w->lock);
		writer_signal(w);
	}
}

void
writers_stop(struct writers *ws)
{
	struct writer	*w;
	unsigned	 i;

	if (ws == NULL)
		return;
	for (i = 0; i < ws->n; i++) {
		w = &ws->w[i];
		pthread_mutex_lock(&w->lock);
		w->stop = 1;
		pthread_mutex_unlock(&w->lock);
		writer_signal(w);
	}
	for (i = 0; i < ws->n; i++) {
		w = &ws->w[i];
		pthread_join(w->thread, NULL);
		if (heap_count(&w->timers) != 0)
			fatalx("writers_stop: writer %u still has streams", i);
		heap_free(&w->timers);
		close(w->ep);
		close(w->evfd);
		stream_out_free(&w->out);
		free(w->tlsbuf);
		frame_unref(w->ping);
		pthread_mutex_destroy(&w->lock);
		pthread_mutex_destroy(&w->run);
	}
	frame_unref(ws->retry);
	pthread_mutex_destroy(&ws->retry_lock);
	free(ws);
}
