/*
 * test_writer.c - the writer threads (writer.h) over real loopback TCP
 * sockets, without libmicrohttpd: what a client reads is exactly the head
 * and the frames, in order, through partial writes and EAGAIN (a client
 * that stops reading, then reads it all); a client that closes, or resets,
 * is let go of (s->done) without any write; heartbeats when a stream is
 * idle and none while it is busy; a token's expiry ends the stream with
 * the retry frame; a closing stream whose client does not read is dropped
 * after its drain time; writers_abort lets go of all; an event to a
 * quiet stream is written by the thread that wakes a sleeping writer
 * (on the wire when the wake returns), and a batch of many is still all
 * written by the writers.
 *
 * Every wait is for a condition, with a generous limit only so that a
 * broken writer fails the test instead of hanging it.
 */
#include "autoconf.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "sse.h"
#include "stats.h"
#include "stream.h"
#include "tap.h"
#include "util.h"
#include "writer.h"

#define LIMIT_MS	30000	/* only for a broken writer: fail, not hang */

static sem_t		 done_sem;
static atomic_int	 dones;
static void	 race_done(struct stream *);

static void
on_done(struct stream *s)
{
	atomic_fetch_add(&dones, 1);
	race_done(s);
	sem_post(&done_sem);
}

/* wait for the next s->done; 1 if it came */
static int
wait_done(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += LIMIT_MS / 1000;
	while (sem_timedwait(&done_sem, &ts) == -1)
		if (errno != EINTR)
			return 0;
	return 1;
}

static void
bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

/*
 * A connected pair of loopback TCP sockets: *srv non-blocking.  With
 * bufsz, *srv's send buffer and *cli's receive buffer are that small, set
 * before the connection is made (on the listener, which *srv inherits it
 * from): shrunk after it, loopback TCP can stall for hundreds of ms per
 * write, and a loaded box then takes past any limit (DESIGN.md).
 */
static void
tcp_pair(int *srv, int *cli, int bufsz)
{
	struct sockaddr_in	 a;
	socklen_t		 len = sizeof(a);
	int			 l;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    (bufsz > 0 && setsockopt(l, SOL_SOCKET, SO_SNDBUF, &bufsz,
	    sizeof(bufsz)) == -1) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    listen(l, 1) == -1 ||
	    getsockname(l, (struct sockaddr *)&a, &len) == -1 ||
	    (*cli = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    (bufsz > 0 && setsockopt(*cli, SOL_SOCKET, SO_RCVBUF, &bufsz,
	    sizeof(bufsz)) == -1) ||
	    connect(*cli, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    (*srv = accept4(l, NULL, NULL, SOCK_NONBLOCK)) == -1)
		bail("tcp_pair");
	close(l);
}

/* read from fd into b until pred(b) holds or the limit; 1 if it held */
static int
read_until(int fd, struct sbuf *b, int (*pred)(const struct sbuf *, void *),
    void *arg)
{
	struct pollfd	 p = { fd, POLLIN, 0 };
	char		 buf[65536];
	uint64_t	 until = util_now_ms() + LIMIT_MS;
	ssize_t		 n;

	while (!pred(b, arg)) {
		if (util_now_ms() > until)
			return 0;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			return pred(b, arg);
		sbuf_add(b, buf, (size_t)n);
	}
	return 1;
}

static int
has_len(const struct sbuf *b, void *arg)
{
	return b->len >= *(size_t *)arg;
}

static size_t
count(const struct sbuf *b, const char *needle)
{
	const char	*p = b->data, *end = b->data + b->len;
	size_t		 n = 0, l = strlen(needle);

	while (p != NULL && (size_t)(end - p) >= l &&
	    (p = memmem(p, (size_t)(end - p), needle, l)) != NULL) {
		n++;
		p += l;
	}
	return n;
}

static int
has_pings(const struct sbuf *b, void *arg)
{
	return count(b, ": ping\n") >= *(size_t *)arg;
}

static int
has_eof(const struct sbuf *b, void *arg)
{
	return 0;		/* read until the peer closes */
}

static struct frame *
mk(const char *s)
{
	struct frame *f = frame_new(s, strlen(s));

	if (f == NULL)
		bail("frame_new");
	return f;
}

static void
chunk(struct sbuf *b, const struct frame *f)
{
	sbuf_printf(b, "%zx\r\n", f->len);
	sbuf_add(b, f->data, f->len);
	sbuf_add(b, "\r\n", 2);
}

/* a stream as http_events makes one: head, chunked, done hook */
static struct stream *
mkstream(struct writers *ws, struct frame *head, size_t ring)
{
	struct stream *s;

	if ((s = stream_new(ring, 1, 0)) == NULL)
		bail("stream_new");
	s->chunked = 1;
	s->done = on_done;
	stream_set_head(s, head);
	writers_assign(ws, s);
	return s;
}

/* queue f as the hub does: push, then at the batch end wake and flush */
static int	 dropped;	/* pushes publish() saw refused */

static void
publish(struct writers *ws, struct stream *s, struct frame *f)
{
	switch (stream_push(s, f)) {
	case STREAM_PUSH_WAKE:
		stream_wake(s);
		writers_flush(ws);
		break;
	case STREAM_PUSH_QUEUED:
		break;
	default:
		dropped++;
	}
}

/* where a stream that stopped is: in it, in the kernel, or neither */
static void
stuck(struct stream *s, int srv, int cli)
{
	int	 outq = -1, inq = -1;

	ioctl(srv, SIOCOUTQ, &outq);
	ioctl(cli, SIOCINQ, &inq);
	pthread_mutex_lock(&s->lock);
	diag("stream: ring %zu, cur %s+%zu, woken %d, attached %d, closing "
	    "%d, ended %d, overflowed %d, pushes refused %d; writer's: "
	    "want_out %d, on_dirty %d, wstate %d; kernel: server unsent %d, "
	    "client unread %d",
	    ring_count(&s->ring), s->cur != NULL ? "yes" : "no", s->curoff,
	    s->woken, s->attached, s->closing, s->ended, s->overflowed,
	    dropped, s->want_out, s->on_dirty, s->wstate, outq, inq);
	pthread_mutex_unlock(&s->lock);
}

static void
test_write(struct writers *ws, struct frame *head)
{
	struct stream	*s;
	struct frame	*f, *big;
	struct sbuf	 got, want;
	char		 text[64], bigtext[60000];
	size_t		 want_len;
	int		 srv, cli, i, sz = 4096;

	sbuf_init(&got);
	sbuf_init(&want);

	/* a reading client gets the head, then every frame, in order */
	tcp_pair(&srv, &cli, sz);
	/*
	 * Room for both batches: a frame's slot is let go of after the
	 * sendmsg that wrote it returns, and the client may have read the
	 * first 50 (and the test pushed the next 44) before the writer's
	 * thread, preempted, gets there.
	 */
	s = mkstream(ws, head, 128);
	writer_attach(s, srv, NULL);
	sbuf_add(&want, head->data, head->len);
	for (i = 0; i < 50; i++) {
		snprintf(text, sizeof(text), "data: %d\n\n", i);
		f = mk(text);
		chunk(&want, f);
		publish(ws, s, f);
		frame_unref(f);
	}
	want_len = want.len;
	ok(read_until(cli, &got, has_len, &want_len) &&
	    got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
	    "a reading client: the head, then 50 chunks in order");

	/*
	 * A client that stops reading: the socket fills (EAGAIN), the
	 * writer waits for room (EPOLLOUT) and goes on exactly where the
	 * socket stopped taking, frames split across writes.
	 */
	memset(bigtext, 'x', sizeof(bigtext) - 3);
	memcpy(bigtext, "data: ", 6);
	bigtext[sizeof(bigtext) - 3] = '\n';
	bigtext[sizeof(bigtext) - 2] = '\n';
	bigtext[sizeof(bigtext) - 1] = '\0';
	big = mk(bigtext);
	for (i = 0; i < 40; i++) {
		publish(ws, s, big);
		chunk(&want, big);
		if (i % 10 == 9) {
			snprintf(text, sizeof(text), "data: marker %d\n\n", i);
			f = mk(text);
			publish(ws, s, f);
			chunk(&want, f);
			frame_unref(f);
		}
	}
	frame_unref(big);
	want_len = want.len;
	if (!ok(read_until(cli, &got, has_len, &want_len) &&
	    got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
	    "2.4 MB to a client that stopped reading, then read: all of it, "
	    "byte for byte, in order"))
		stuck(s, srv, cli);
	diag("%zu bytes", got.len);

	/* closing: what is queued, the final, the last-chunk, then done */
	f = mk("retry: 1234\n\n");
	if (stream_close(s, f)) {
		stream_wake(s);
		writers_flush(ws);
	}
	chunk(&want, f);
	sbuf_addstr(&want, "0\r\n\r\n");
	frame_unref(f);
	ok(wait_done(), "closed: the writer let go of it");
	want_len = want.len;
	read_until(cli, &got, has_len, &want_len);
	ok(got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
	    "the final frame and the last-chunk end the body");
	stream_free(s);		/* MHD's completion would */
	close(srv);
	close(cli);
	sbuf_free(&got);
	sbuf_free(&want);
}

/* readable at once (no wait): 1 if so */
static int
readable_now(int fd, struct sbuf *b)
{
	char	 buf[4096];
	ssize_t	 n;
	int	 got = 0;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		sbuf_add(b, buf, (size_t)n);
		got = 1;
	}
	return got;
}

static void
test_inline(struct writers *ws, struct frame *head)
{
	struct stream	*s[20];
	struct frame	*f;
	struct sbuf	 got[20], want[20];
	char		 text[64];
	size_t		 want_len;
	uint64_t	 until;
	int		 srv[20], cli[20], i, j, tries, inline_run = 0, all = 1;

	for (i = 0; i < 20; i++) {
		sbuf_init(&got[i]);
		sbuf_init(&want[i]);
		tcp_pair(&srv[i], &cli[i], 0);
		s[i] = mkstream(ws, head, 64);
		writer_attach(s[i], srv[i], NULL);
		sbuf_add(&want[i], head->data, head->len);
	}
	for (i = 0; i < 20; i++) {
		want_len = want[i].len;
		all &= read_until(cli[i], &got[i], has_len, &want_len);
	}
	ok(all, "20 streams: each client has its head");

	/*
	 * Once its writer sleeps (a round ends, nothing is due for an hour),
	 * every event to the quiet stream is on the wire when the wake
	 * returns: the waker wrote it.  Until then an event may still be
	 * the writer's to write; the first one seen at once starts the run.
	 */
	until = util_now_ms() + LIMIT_MS;
	for (tries = 0; inline_run < 20 && util_now_ms() < until; tries++) {
		snprintf(text, sizeof(text), "data: quiet %d\n\n", tries);
		f = mk(text);
		chunk(&want[0], f);
		publish(ws, s[0], f);
		frame_unref(f);
		if (readable_now(cli[0], &got[0]))
			inline_run++;
		else if (inline_run > 0)
			break;
		else
			usleep(1000);
	}
	is_int(inline_run, 20, "a quiet stream with a sleeping writer: 20 "
	    "events in a row on the wire when the wake returns");
	want_len = want[0].len;
	ok(read_until(cli[0], &got[0], has_len, &want_len) &&
	    got[0].len == want[0].len &&
	    memcmp(got[0].data, want[0].data, want[0].len) == 0,
	    "and all of them, in order");

	/* one batch to all 20 (more than a waker writes): the writers do */
	for (j = 0; j < 3; j++) {
		for (i = 0; i < 20; i++) {
			snprintf(text, sizeof(text), "data: all %d %d\n\n", j,
			    i);
			f = mk(text);
			chunk(&want[i], f);
			if (stream_push(s[i], f) == STREAM_PUSH_WAKE)
				stream_wake(s[i]);
			frame_unref(f);
		}
		writers_flush(ws);
	}
	for (i = 0, all = 1; i < 20; i++) {
		want_len = want[i].len;
		all &= read_until(cli[i], &got[i], has_len, &want_len) &&
		    got[i].len == want[i].len &&
		    memcmp(got[i].data, want[i].data, want[i].len) == 0;
	}
	ok(all, "three batches to 20 streams: every client gets its three, "
	    "in order");

	for (i = 0; i < 20; i++) {
		if (stream_close(s[i], NULL)) {
			stream_wake(s[i]);
			writers_flush(ws);
		}
	}
	for (i = 0, all = 1; i < 20; i++)
		all &= wait_done();
	ok(all, "closed: the writers let go of all 20");
	for (i = 0; i < 20; i++) {
		stream_free(s[i]);
		close(srv[i]);
		close(cli[i]);
		sbuf_free(&got[i]);
		sbuf_free(&want[i]);
	}
}

static void
test_gone(struct writers *ws, struct frame *head)
{
	struct stream	*s;
	struct linger	 lg = { 1, 0 };
	struct sbuf	 got;
	size_t		 n;
	int		 srv, cli, before;

	sbuf_init(&got);
	/* the client closes: let go of at once, no write needed */
	tcp_pair(&srv, &cli, 0);
	s = mkstream(ws, head, 8);
	writer_attach(s, srv, NULL);
	n = head->len;
	read_until(cli, &got, has_len, &n);
	before = atomic_load(&dones);
	close(cli);
	ok(wait_done() && atomic_load(&dones) == before + 1,
	    "a client that closes is let go of, with nothing to write");
	stream_free(s);
	close(srv);

	/* the client resets (RST) */
	tcp_pair(&srv, &cli, 0);
	s = mkstream(ws, head, 8);
	writer_attach(s, srv, NULL);
	sbuf_reset(&got);
	read_until(cli, &got, has_len, &n);
	setsockopt(cli, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(cli);
	ok(wait_done(), "a client that resets is let go of");
	stream_free(s);
	close(srv);

	/* a stream awaiting its subscriptions writes nothing */
	tcp_pair(&srv, &cli, 0);
	s = mkstream(ws, head, 8);
	stream_await(s);
	writer_attach(s, srv, NULL);
	{
		struct frame *f = mk("data: early\n\n");

		publish(ws, s, f);
		frame_unref(f);
	}
	/* the close is seen even so */
	close(cli);
	ok(wait_done(), "an awaiting stream's client that closes is let go of");
	stream_free(s);
	close(srv);
	sbuf_free(&got);
}

static void
test_timers(struct writers *ws, struct frame *head, _Atomic unsigned *hb)
{
	struct stream	*s, *t;
	struct frame	*f, *retry;
	struct sbuf	 got;
	size_t		 n;
	int		 srv, cli, srv2, cli2, sz = 4096, i;
	unsigned long	 before;

	sbuf_init(&got);
	/* idle: a ping every --heartbeat */
	atomic_store(hb, 100);
	tcp_pair(&srv, &cli, 0);
	s = mkstream(ws, head, 8);
	before = atomic_load(&stats.heartbeats);
	writer_attach(s, srv, NULL);
	n = 3;
	ok(read_until(cli, &got, has_pings, &n), "idle, 100 ms heartbeat: "
	    "pings come");
	ok(count(&got, "7\r\n: ping\n\r\n") >= 3, "each a chunk of its own");
	ok(atomic_load(&stats.heartbeats) > before, "counted in heartbeats");

	/* a changed heartbeat (SIGHUP) applies to open streams */
	atomic_store(hb, 3600000);
	f = mk("data: after\n\n");
	publish(ws, s, f);
	frame_unref(f);
	n = got.len + 16;
	read_until(cli, &got, has_len, &n);
	before = count(&got, ": ping\n");
	atomic_store(hb, 50);
	writers_reload(ws);
	n = before + 3;
	ok(read_until(cli, &got, has_pings, &n), "a shorter heartbeat set "
	    "while open: pings at the new interval");

	/* a token's expiry ends it with the retry frame */
	retry = mk("retry: 4242\n\n");
	writers_set_retry(ws, retry);
	tcp_pair(&srv2, &cli2, 0);
	t = mkstream(ws, head, 8);
	t->expires = time(NULL) + 1;
	atomic_store(hb, 3600000);
	writer_attach(t, srv2, NULL);
	ok(wait_done(), "a token's expiry: the stream ends");
	close(srv2);		/* as MHD closes it */
	sbuf_reset(&got);
	read_until(cli2, &got, has_eof, NULL);
	ok(got.len > 23 && memcmp(got.data + got.len - 23,
	    "d\r\nretry: 4242\n\n\r\n0\r\n\r\n", 23) == 0,
	    "its body ends with the retry frame and the last-chunk");
	stream_free(t);
	close(cli2);

	/* closing to a client that does not read: dropped after the drain */
	setsockopt(cli, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(srv, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	{
		char text[30000];

		memset(text, 'y', sizeof(text) - 1);
		memcpy(text, "data: ", 6);
		text[sizeof(text) - 3] = '\n';
		text[sizeof(text) - 2] = '\n';
		text[sizeof(text) - 1] = '\0';
		f = mk(text);
	}
	/* more than the socket and the 8-slot ring hold: it may overflow */
	for (i = 0; i < 40; i++)
		publish(ws, s, f);
	frame_unref(f);
	if (stream_close(s, retry)) {
		stream_wake(s);
		writers_flush(ws);
	}
	ok(wait_done(), "closing, its client not reading: let go of after "
	    "the drain time");
	stream_free(s);
	close(srv);
	close(cli);
	frame_unref(retry);
	sbuf_free(&got);
}

/*
 * A client that goes away just as the stream is closed and the waker
 * writes its end itself: the writer may hold the client's hang-up from
 * epoll_wait while the waker lets go of the stream.  Each stream must be
 * given back once (MHD aborts on a second resume), never twice: the
 * streams are kept until the writers stop, and on_done counts a second
 * give-back of any.
 */
#define RACE_N	200
static struct stream * _Atomic race_s[RACE_N];
static int		 race_fd[RACE_N];
static atomic_int	 race_given[RACE_N];
static atomic_int	 race_doubles;

static void
race_done(struct stream *s)
{
	int	 i;

	for (i = 0; i < RACE_N; i++)
		if (race_s[i] == s && atomic_fetch_add(&race_given[i], 1) > 0)
			atomic_fetch_add(&race_doubles, 1);
}

static void
test_end_race(struct writers *ws, struct frame *head)
{
	struct stream	*s;
	struct sbuf	 got;
	struct linger	 rst = { 1, 0 };
	size_t		 want_len = head->len;
	int		 cli, i, all = 1;

	for (i = 0; i < RACE_N; i++) {
		sbuf_init(&got);
		tcp_pair(&race_fd[i], &cli, 0);
		s = race_s[i] = mkstream(ws, head, 8);
		writer_attach(s, race_fd[i], NULL);
		all &= read_until(cli, &got, has_len, &want_len);
		if (i % 2)
			setsockopt(cli, SOL_SOCKET, SO_LINGER, &rst,
			    sizeof(rst));
		close(cli);
		if (stream_close(s, NULL)) {
			stream_wake(s);
			writers_flush(ws);
		}
		all &= wait_done();
		sbuf_free(&got);
	}
	ok(all, "%d clients gone as their streams close: each let go of",
	    RACE_N);
}

static void
test_abort(struct writers *ws, struct frame *head)
{
	struct stream	*s[6];
	int		 srv[6], cli[6], i, n = 0;

	for (i = 0; i < 6; i++) {
		tcp_pair(&srv[i], &cli[i], 0);
		s[i] = mkstream(ws, head, 8);
		writer_attach(s[i], srv[i], NULL);
	}
	writers_abort(ws);
	for (i = 0; i < 6; i++)
		n += wait_done();
	is_int(n, 6, "writers_abort: every stream let go of");
	for (i = 0; i < 6; i++) {
		stream_free(s[i]);
		close(srv[i]);
		close(cli[i]);
	}
}

int
main(void)
{
	struct writers_config	 wc;
	struct writers		*ws;
	struct frame		*head;
	static _Atomic unsigned	 hb = 3600000;
	char			 err[256];
	int			 i;

	sem_init(&done_sem, 0, 0);
	memset(&wc, 0, sizeof(wc));
	wc.threads = 2;
	wc.heartbeat_ms = &hb;
	wc.drain_ms = 300;
	if ((ws = writers_start(&wc, err, sizeof(err))) == NULL) {
		printf("Bail out! writers_start: %s\n", err);
		return 1;
	}
	is_int(writers_count(ws), 2, "two writer threads");
	head = mk("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	test_write(ws, head);
	test_inline(ws, head);
	test_gone(ws, head);
	test_timers(ws, head, &hb);
	test_end_race(ws, head);
	test_abort(ws, head);
	writers_stop(ws);
	is_int(atomic_load(&race_doubles), 0,
	    "and each given back once, never twice");
	for (i = 0; i < RACE_N; i++) {
		stream_free(race_s[i]);
		close(race_fd[i]);
	}
	frame_unref(head);
	sem_destroy(&done_sem);
	return done_testing();
}
