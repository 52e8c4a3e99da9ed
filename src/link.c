/*
 * link.c - one non-blocking Redis connection.  See link.h.
 *
 * DESIGN
 * hiredis 0.14's redisConnectNonBlock starts the TCP connect and returns;
 * the socket is writable when the connect is done, and SO_ERROR says how
 * it went.  Then AUTH and SELECT go out in one write, and their answers
 * are counted off before the link is ready: a refusal kills the link with
 * the server's words.  Commands are appended to the context's output
 * buffer (redisAppendCommandArgv) and written by redisBufferWrite as the
 * socket takes them (a full socket is EAGAIN, which hiredis reports as
 * "not done"); replies are parsed by redisBufferRead and
 * redisGetReplyFromReader, never by a blocking redisGetReply.
 */
#include "autoconf.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "answers.h"
#include "link.h"
#include "log.h"
#include "util.h"

#define LINK_PING_IDLE_MS	1000

struct link {
	redisContext	*c;
	enum link_state	 state;
	char		 name[300];
	char		 error[256];
	int		 refused;
	unsigned	 timeout_ms;
	uint64_t	 deadline_ms;	/* connect or handshake; 0: none */
	uint64_t	 last_rx_ms;
	uint64_t	 ping_sent_ms;	/* the last PING */
	unsigned	 pings;		/* PINGs not answered yet */
	/* who waits for each of them, oldest first (fn NULL: liveness) */
	struct link_ping {
		link_barrier_fn	 fn;
		void		*arg;
	}		*waiting;
	size_t		 wcap, whead;
	unsigned	 handshake;	/* answers still awaited */
	unsigned	 handshake_sent;
	const char	*handshake_cmd[2];	/* "AUTH", "SELECT" */
	link_reply_fn	 reply;
	void		*arg;
};

static void
link_die(struct link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
link_die(struct link *l, const char *fmt, ...)
{
	va_list	 ap;

	if (l->state == LINK_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(l->error, sizeof(l->error), fmt, ap);
	va_end(ap);
	l->state = LINK_DEAD;
}

static int
link_is_refusal(int e)
{
	return e == ECONNREFUSED || e == ENOENT;
}

struct link *
link_new(const struct link_target *t, unsigned timeout_ms, link_reply_fn fn,
    void *arg)
{
	struct link	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->reply = fn;
	l->arg = arg;
	l->timeout_ms = timeout_ms;
	if (t->host != NULL)
		snprintf(l->name, sizeof(l->name), "%s%s%s:%d",
		    strchr(t->host, ':') ? "[" : "", t->host,
		    strchr(t->host, ':') ? "]" : "", t->port);
	else
		snprintf(l->name, sizeof(l->name), "%s", t->path);
	errno = 0;
	l->c = t->host != NULL ? redisConnectNonBlock(t->host, t->port) :
	    redisConnectUnixNonBlock(t->path);
	if (l->c == NULL) {
		free(l);
		return NULL;
	}
	if (l->c->err) {
		l->refused = link_is_refusal(errno) ||
		    strstr(l->c->errstr, "refused") != NULL ||
		    strstr(l->c->errstr, "No such file") != NULL;
		link_die(l, "%s", l->c->errstr);
		return l;
	}
	l->state = LINK_CONNECTING;
	l->deadline_ms = util_now_ms() + timeout_ms;
	/* AUTH and SELECT wait in the buffer until the socket is up */
	if (t->password != NULL) {
		const char *argv[3] = { "AUTH", NULL, NULL };
		size_t lens[3] = { 4, 0, 0 };
		int n = 1;

		if (t->user != NULL) {
			argv[n] = t->user;
			lens[n++] = strlen(t->user);
		}
		argv[n] = t->password;
		lens[n++] = strlen(t->password);
		if (redisAppendCommandArgv(l->c, n, argv, lens) != REDIS_OK)
			link_die(l, "out of memory");
		l->handshake_cmd[l->handshake++] = "AUTH";
	}
	if (t->db != 0) {
		char db[16];
		const char *argv[2] = { "SELECT", db };
		size_t lens[2] = { 6, 0 };

		lens[1] = (size_t)snprintf(db, sizeof(db), "%d", t->db);
		if (redisAppendCommandArgv(l->c, 2, argv, lens) != REDIS_OK)
			link_die(l, "out of memory");
		l->handshake_cmd[l->handshake++] = "SELECT";
	}
	l->handshake_sent = l->handshake;
	return l;
}

/* the oldest PING's waiter, answered (ok 1) or not (0) */
static void
link_ping_done(struct link *l, int ok)
{
	struct link_ping	 w;

	if (l->pings == 0)
		return;
	w = l->waiting[l->whead];
	l->whead = (l->whead + 1) % l->wcap;
	l->pings--;
	if (w.fn != NULL)
		w.fn(w.arg, ok);
}

static int
link_ping(struct link *l, link_barrier_fn fn, void *arg, uint64_t now_ms)
{
	static const char *ping[1] = { "PING" };
	static const size_t ping_len[1] = { 4 };
	struct link_ping	*w;
	size_t			 cap, i;

	if (l->pings == l->wcap) {
		cap = l->wcap ? l->wcap * 2 : 4;
		if ((w = calloc(cap, sizeof(*w))) == NULL)
			return -1;
		for (i = 0; i < l->pings; i++)
			w[i] = l->waiting[(l->whead + i) % l->wcap];
		free(l->waiting);
		l->waiting = w;
		l->wcap = cap;
		l->whead = 0;
	}
	if (link_command(l, 1, ping, ping_len) == -1)
		return -1;
	l->waiting[(l->whead + l->pings) % l->wcap] =
	    (struct link_ping){ fn, arg };
	l->pings++;
	l->ping_sent_ms = now_ms;
	return 0;
}

int
link_barrier(struct link *l, link_barrier_fn fn, void *arg)
{
	if (l->state != LINK_READY)
		return -1;
	return link_ping(l, fn, arg, util_now_ms());
}

void
link_free(struct link *l)
{
	if (l == NULL)
		return;
	while (l->pings > 0)
		link_ping_done(l, 0);
	free(l->waiting);
	if (l->c != NULL)
		redisFree(l->c);
	free(l);
}

void
link_lost(struct link **lp, int *warned, const char *what, const char *then)
{
	struct link	*l = *lp;

	if (!*warned)
		log_kv(LOG_LEVEL_WARN, LINK_FIELDS(l), "redis: %s %s: %s; %s",
		    what, link_name(l), link_error(l), then);
	*warned = 1;
	link_free(l);
	*lp = NULL;
}

enum link_state
link_state(const struct link *l)
{
	return l->state;
}

const char *
link_error(const struct link *l)
{
	return l->error;
}

int
link_refused(const struct link *l)
{
	return l->refused;
}

const char *
link_name(const struct link *l)
{
	return l->name;
}

int
link_fd(const struct link *l)
{
	return l->state == LINK_DEAD ? -1 : l->c->fd;
}

static int
link_pending_output(const struct link *l)
{
	return l->c->obuf != NULL && sdslen(l->c->obuf) > 0;
}

short
link_events(const struct link *l)
{
	if (l->state == LINK_DEAD)
		return 0;
	if (l->state == LINK_CONNECTING)
		return POLLOUT;
	return POLLIN | (link_pending_output(l) ? POLLOUT : 0);
}

/* write what the socket takes now */
static void
link_flush(struct link *l)
{
	int	 done = 0;

	if (l->state == LINK_CONNECTING || l->state == LINK_DEAD ||
	    !link_pending_output(l))
		return;
	if (redisBufferWrite(l->c, &done) != REDIS_OK)
		link_die(l, "%s", l->c->errstr[0] ? l->c->errstr :
		    "write error");
}

static void
link_connected(struct link *l, uint64_t now_ms)
{
	int		 e = 0;
	socklen_t	 len = sizeof(e);

	if (getsockopt(l->c->fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		e = errno;
	if (e != 0) {
		l->refused = link_is_refusal(e);
		link_die(l, "%s", strerror(e));
		return;
	}
	l->c->flags |= REDIS_CONNECTED;
	l->last_rx_ms = now_ms;
	if (l->handshake > 0) {
		l->state = LINK_HANDSHAKE;
		l->deadline_ms = now_ms + l->timeout_ms;
	} else {
		l->state = LINK_READY;
		l->deadline_ms = 0;
	}
	link_flush(l);
}

/* a PING answer, in plain or subscribed mode */
static int
link_is_pong(const redisReply *r)
{
	struct answers_pubsub	 a;

	return answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_PONG;
}

static void
link_dispatch(struct link *l, redisReply *r, uint64_t now_ms)
{
	if (l->state == LINK_HANDSHAKE) {
		if (r->type == REDIS_REPLY_ERROR) {
			link_die(l, "%s: %s", l->handshake_cmd[
			    l->handshake_sent - l->handshake], r->str);
			freeReplyObject(r);
			return;
		}
		freeReplyObject(r);
		if (--l->handshake == 0) {
			l->state = LINK_READY;
			l->deadline_ms = 0;
		}
		return;
	}
	if (l->pings > 0 && link_is_pong(r)) {
		freeReplyObject(r);
		link_ping_done(l, 1);
		return;
	}
	l->reply(l->arg, l, r);
}

void
link_handle(struct link *l, short revents, uint64_t now_ms)
{
	void	*reply;

	if (l->state == LINK_DEAD || revents == 0)
		return;
	if (l->state == LINK_CONNECTING) {
		if (revents & (POLLOUT | POLLERR | POLLHUP))
			link_connected(l, now_ms);
		return;
	}
	if (revents & POLLOUT)
		link_flush(l);
	if (l->state == LINK_DEAD || !(revents & (POLLIN | POLLERR |
	    POLLHUP)))
		return;
	if (redisBufferRead(l->c) != REDIS_OK) {
		link_die(l, "%s", l->c->errstr[0] ? l->c->errstr :
		    "connection closed");
		return;
	}
	l->last_rx_ms = now_ms;
	for (;;) {
		if (redisGetReplyFromReader(l->c, &reply) != REDIS_OK) {
			link_die(l, "%s", l->c->errstr[0] ? l->c->errstr :
			    "protocol error");
			return;
		}
		if (reply == NULL)
			break;
		link_dispatch(l, reply, now_ms);
		if (l->state == LINK_DEAD)
			return;
	}
}

/* ms from then to now, 0 if then is later */
static uint64_t
link_since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

void
link_tick(struct link *l, uint64_t now_ms)
{
	if (l->state == LINK_DEAD)
		return;
	if (l->deadline_ms != 0 && now_ms >= l->deadline_ms) {
		link_die(l, "%s timed out after %u ms", l->state ==
		    LINK_CONNECTING ? "connect" : "AUTH/SELECT",
		    l->timeout_ms);
		return;
	}
	if (l->state != LINK_READY)
		return;
	/*
	 * No byte at all since a PING went out, for the whole timeout.  The
	 * times may come from clocks read a moment apart (a barrier's PING is
	 * sent after the caller read now_ms): never subtract past zero.
	 */
	if (l->pings > 0 && l->last_rx_ms < l->ping_sent_ms) {
		if (link_since(now_ms, l->ping_sent_ms) > l->timeout_ms)
			link_die(l, "no answer to PING in %u ms",
			    l->timeout_ms);
		return;
	}
	if (l->pings == 0 && link_since(now_ms, l->last_rx_ms) >
	    LINK_PING_IDLE_MS)
		link_ping(l, NULL, NULL, now_ms);
}

uint64_t
link_next_ms(const struct link *l, uint64_t now_ms)
{
	uint64_t	 at;

	if (l->state == LINK_DEAD)
		return 0;
	if (l->deadline_ms != 0)
		at = l->deadline_ms;
	else if (l->state != LINK_READY)
		return UINT64_MAX;
	else if (l->pings > 0 && l->last_rx_ms < l->ping_sent_ms)
		at = l->ping_sent_ms + l->timeout_ms + 1;
	else if (l->pings > 0)
		return UINT64_MAX;
	else
		at = l->last_rx_ms + LINK_PING_IDLE_MS + 1;
	return at > now_ms ? at - now_ms : 0;
}

int
link_command(struct link *l, int argc, const char **argv, const size_t *lens)
{
	if (l->state == LINK_DEAD)
		return -1;
	if (redisAppendCommandArgv(l->c, argc, argv, lens) != REDIS_OK) {
		link_die(l, "out of memory");
		return -1;
	}
	link_flush(l);
	return l->state == LINK_DEAD ? -1 : 0;
}

enum link_state
link_ask(struct link *l, enum link_question *q, int argc, const char **argv,
    const size_t *lens, uint64_t now_ms)
{
	link_tick(l, now_ms);
	if (l->state == LINK_READY && *q == LINK_TO_ASK &&
	    link_command(l, argc, argv, lens) == 0)
		*q = LINK_ASKED;
	return l->state;
}
