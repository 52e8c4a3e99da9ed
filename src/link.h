/*
 * link.h - one Redis connection, driven without ever blocking.
 *
 * The broker keeps several of these (one per cluster primary, one to a
 * sentinel, ...) in one poll loop, so none of them may stall the others:
 * the connect is non-blocking, the handshake (AUTH, SELECT) is pipelined,
 * commands are appended to hiredis's output buffer and written as the
 * socket takes them, replies are read as they come.  hiredis's sync
 * context is used as a parser and a buffer only (hiredis 0.14 has no
 * async API that understands SSUBSCRIBE, see DESIGN.md).
 *
 * A link is LINK_READY once its handshake is answered; every reply after
 * that is handed to the owner's callback in order.  Liveness: when
 * nothing arrived for a second the link sends PING (in subscribed mode the
 * answer is ["pong", ""]); no byte back within the timeout marks it dead.
 * A dead link is freed by its owner, which reconnects with a new one.
 *
 * THREADS: the broker thread only.
 */
#ifndef SSERELAY_LINK_H
#define SSERELAY_LINK_H

#include <stddef.h>
#include <stdint.h>

struct redisReply;
struct link;

enum link_state {
	LINK_CONNECTING = 0,	/* TCP connect under way */
	LINK_HANDSHAKE,		/* AUTH/SELECT sent, answers awaited */
	LINK_READY,
	LINK_DEAD,		/* see link_error() */
};

struct link_target {
	const char	*host;		/* NULL: unix socket at path */
	int		 port;
	const char	*path;
	const char	*user;		/* NULL: AUTH <password> */
	const char	*password;	/* NULL: no AUTH */
	int		 db;		/* 0: no SELECT */
};

/* a reply for the owner; the owner frees it with freeReplyObject */
typedef void	(*link_reply_fn)(void *arg, struct link *,
		    struct redisReply *);

/*
 * Start connecting; NULL only if out of memory (a refused connect is a
 * LINK_DEAD link with its error).  The target's strings are copied.
 */
struct link	*link_new(const struct link_target *, unsigned timeout_ms,
		    link_reply_fn, void *arg);
void		 link_free(struct link *);
/*
 * A link that failed is let go of: "redis: <what> <name>: <error>;
 * <then>" logged as a warning unless *warned (then set), the link freed
 * and *lp NULL.
 */
void		 link_lost(struct link **lp, int *warned, const char *what,
		    const char *then);
enum link_state	 link_state(const struct link *);
/* why it died; "" while alive */
const char	*link_error(const struct link *);
/* 1 if it died at once because nobody listens there (refused, no socket) */
int		 link_refused(const struct link *);
/* "host:port" or the socket path, for logs */
const char	*link_name(const struct link *);
/* a log line about the server at the other end (log.h's log_kv) */
#define LINK_FIELDS(l)	LOG_FIELDS(LOG_STR("redis", link_name(l)))

/* the fd and the poll events it waits for; -1 when dead */
int		 link_fd(const struct link *);
short		 link_events(const struct link *);
/* after poll: revents for its fd (0 when it had none), now in ms */
void		 link_handle(struct link *, short revents, uint64_t now_ms);
/* timers (connect and PING deadlines, idle PING); call each loop pass */
void		 link_tick(struct link *, uint64_t now_ms);
/* ms until link_tick has something to do, for the poll timeout */
uint64_t	 link_next_ms(const struct link *, uint64_t now_ms);

/*
 * Queue a command (binary-safe arguments) and write what the socket
 * takes now.  0, or -1 when the link is dead or out of memory (then it is
 * marked dead).
 */
int		 link_command(struct link *, int argc, const char **argv,
		    const size_t *lens);

/*
 * A barrier: fn(arg, 1) once Redis has answered a PING sent now, that is
 * once every message Redis wrote to this connection before it ran the
 * PING has been read and handed over; fn(arg, 0) if the link dies (or is
 * freed) first.  -1 if it could not be sent (fn is not called).
 */
typedef void	(*link_barrier_fn)(void *arg, int ok);
int		 link_barrier(struct link *, link_barrier_fn, void *arg);

/* where a link that asks one question stands (see link_ask) */
enum link_question {
	LINK_TO_ASK = 0,	/* connecting, or not asked yet */
	LINK_ASKED,		/* sent, not answered yet */
	LINK_ANSWERED,		/* set by the owner's reply fn */
};

/*
 * A link that asks one question and goes (CLUSTER SLOTS, SENTINEL
 * get-master-addr-by-name): its timers (link_tick), then the question,
 * sent once the link is ready.  *q is the owner's: LINK_TO_ASK with a
 * new link, LINK_ANSWERED once its reply fn has the answer.  Returns the
 * link's state: a LINK_DEAD link is the owner's to free.
 */
enum link_state	 link_ask(struct link *, enum link_question *q, int argc,
		    const char **argv, const size_t *lens, uint64_t now_ms);

#endif
