/*
 * broker.c - the Redis thread.
 *
 * DESIGN
 * One thread owns the one hiredis connection; nothing else touches it.
 * The loop is redis-py's get_message(timeout): take what the reader
 * already holds, poll(fd, POLLIN, poll_ms), one redisBufferRead, then
 * drain redisGetReplyFromReader until it returns NULL (NULL without an
 * error is a partial reply: poll again).  A socket timeout on a blocking
 * redisGetReply would leave the context broken for good, so there is none.
 *
 * Every batch of replies read in one go is handed to the hub in one call
 * (hub_publish), which ids, encodes, keeps and fans out each message and
 * wakes each stream once.  Each successful subscription tells the hub
 * (hub_subscribed) that messages may have been lost before it, which resets
 * open streams and resumes from before it.  Nothing here waits for a
 * client.  Heartbeats are not queued here (main.c does it) so that they go
 * on while a reconnect blocks this thread.
 *
 * Other threads post requests to the mailbox, whose fd is in the poll set
 * next to Redis's, so a request (or the stop) is seen at once.
 *
 * Liveness: when nothing arrived for a second the broker sends PING; no
 * byte back within --redis-timeout means a dead Redis, even when TCP says
 * the connection is up.
 *
 * Reconnect: jittered exponential backoff from 100 ms.  A refused
 * connection (Redis restarting on this host) costs Redis nothing, so those
 * retries stay at most 1 s apart and delivery resumes within a second of
 * Redis coming back; other failures (timeouts, AUTH errors) back off up to
 * 5 s.  After a reconnect AUTH, SELECT and PSUBSCRIBE are redone.
 */
#include "autoconf.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "config.h"
#include "hub.h"
#include "log.h"
#include "mailbox.h"
#include "stats.h"
#include "util.h"

#define BROKER_PING_IDLE_MS	1000
#define BROKER_BACKOFF_MIN_MS	100
#define BROKER_BACKOFF_MAX_MS	5000
#define BROKER_REFUSED_MAX_MS	1000

struct broker {
	const struct config	*cfg;
	struct hub		*hub;
	struct mailbox		*mailbox;
	pthread_t		 thread;
	atomic_int		 stop;

	redisContext		*c;
	redisReply		**batch;	/* replies of one read */
	struct hub_message	*msgs;		/* their messages */
	size_t			 nbatch, batch_cap;

	uint64_t		 last_rx_ms;
	uint64_t		 ping_sent_ms;	/* 0: no PING outstanding */
	unsigned		 attempts;	/* failed connects in a row */
	uint64_t		 next_attempt_ms;
	int			 warned;	/* lost/down already said */
};

static const char *
broker_where(const struct broker *b)
{
	return b->cfg->redis;
}

static void
broker_disconnect(struct broker *b)
{
	if (b->c != NULL) {
		redisFree(b->c);
		b->c = NULL;
	}
	b->ping_sent_ms = 0;
	STATS_SET(redis_up, 0);
}

static void
broker_lost(struct broker *b, const char *why)
{
	if (!b->warned)
		log_warnx("redis: connection to %s lost: %s; reconnecting",
		    broker_where(b), why);
	b->warned = 1;
	broker_disconnect(b);
	b->attempts = 0;
	b->next_attempt_ms = util_now_ms() + BROKER_BACKOFF_MIN_MS / 2 +
	    util_random() % (BROKER_BACKOFF_MIN_MS / 2);
	STATS_ADD(redis_reconnects, 1);
}

/* run one command during the handshake; 0 if Redis did not refuse it */
static int
broker_command(struct broker *b, const char *what, redisReply *r,
    char *err, size_t errlen)
{
	int	 ok;

	if (r == NULL) {
		snprintf(err, errlen, "%s: %s", what,
		    b->c->errstr[0] ? b->c->errstr : "no reply");
		return -1;
	}
	ok = r->type != REDIS_REPLY_ERROR;
	if (!ok)
		snprintf(err, errlen, "%s: %.*s", what, (int)r->len, r->str);
	freeReplyObject(r);
	return ok ? 0 : -1;
}

/*
 * Connect, AUTH, SELECT, PSUBSCRIBE.  0 on success; -1 with err set and
 * *refused telling whether it failed at once (nobody listening).
 */
static int
broker_connect(struct broker *b, char *err, size_t errlen, int *refused)
{
	const struct redis_url	*u = &b->cfg->redis_url;
	const struct config	*cfg = b->cfg;
	struct timeval		 tv;
	char			 pu[80], pl[80];

	*refused = 0;
	tv.tv_sec = cfg->redis_timeout_ms / 1000;
	tv.tv_usec = (cfg->redis_timeout_ms % 1000) * 1000;
	errno = 0;
	b->c = u->is_unix ? redisConnectUnixWithTimeout(u->path, tv) :
	    redisConnectWithTimeout(u->host, u->port, tv);
	if (b->c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (b->c->err) {
		snprintf(err, errlen, "%s", b->c->errstr);
		*refused = errno == ECONNREFUSED || errno == ENOENT ||
		    strstr(b->c->errstr, "refused") != NULL ||
		    strstr(b->c->errstr, "No such file") != NULL;
		goto bad;
	}
	redisSetTimeout(b->c, tv);
	if (u->password != NULL) {
		redisReply *r = u->user != NULL ?
		    redisCommand(b->c, "AUTH %s %s", u->user, u->password) :
		    redisCommand(b->c, "AUTH %s", u->password);
		if (broker_command(b, "AUTH", r, err, errlen) == -1)
			goto bad;
	}
	if (u->db != 0 && broker_command(b, "SELECT",
	    redisCommand(b->c, "SELECT %d", u->db), err, errlen) == -1)
		goto bad;
	snprintf(pu, sizeof(pu), "%s*", cfg->user_prefix);
	snprintf(pl, sizeof(pl), "%s*", cfg->upload_prefix);
	/* two patterns, two confirmations; the second one is read later */
	if (broker_command(b, "PSUBSCRIBE",
	    redisCommand(b->c, "PSUBSCRIBE %s %s", pu, pl), err, errlen) == -1)
		goto bad;
	return 0;
bad:
	broker_disconnect(b);
	return -1;
}

static void
broker_try_connect(struct broker *b, uint64_t now)
{
	char		 err[256];
	int		 refused;
	unsigned	 cap, base, delay;

	if (broker_connect(b, err, sizeof(err), &refused) == 0) {
		log_info("redis: subscribed to %s* and %s* on %s",
		    b->cfg->user_prefix, b->cfg->upload_prefix,
		    broker_where(b));
		/* up before the resets go out: a client told may look */
		STATS_SET(redis_up, 1);
		hub_subscribed(b->hub);
		b->warned = 0;
		b->attempts = 0;
		b->last_rx_ms = util_now_ms();
		b->ping_sent_ms = 0;
		return;
	}
	if (!b->warned)
		log_warnx("redis: cannot connect to %s: %s; retrying",
		    broker_where(b), err);
	else
		log_debug("redis: connect to %s: %s", broker_where(b), err);
	b->warned = 1;
	cap = refused ? BROKER_REFUSED_MAX_MS : BROKER_BACKOFF_MAX_MS;
	base = BROKER_BACKOFF_MIN_MS << (b->attempts < 6 ? b->attempts : 6);
	if (base > cap)
		base = cap;
	b->attempts++;
	/* half fixed, half random: instances do not retry in step */
	delay = base / 2 + util_random() % (base / 2 + 1);
	b->next_attempt_ms = now + delay;
}

/* r is a pmessage: its channel and payload; 0 if it is one */
static int
broker_message(redisReply *r, struct hub_message *m)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return -1;
	if (strcmp(r->element[0]->str, "pmessage") != 0 || r->elements != 4) {
		log_debug("redis: %s reply", r->element[0]->str);
		return -1;
	}
	if (r->element[2]->type != REDIS_REPLY_STRING ||
	    r->element[3]->type != REDIS_REPLY_STRING)
		return -1;
	m->channel = r->element[2]->str;
	m->channel_len = r->element[2]->len;
	m->payload = r->element[3]->str;
	m->payload_len = r->element[3]->len;
	return 0;
}

/* keep a message reply until the batch is handed over; -1 out of memory */
static int
broker_batch_add(struct broker *b, redisReply *r, const struct hub_message *m)
{
	size_t	 cap;
	void	*p;

	if (b->nbatch == b->batch_cap) {
		cap = b->batch_cap ? b->batch_cap * 2 : 64;
		if ((p = reallocarray(b->batch, cap, sizeof(*b->batch))) ==
		    NULL)
			return -1;
		b->batch = p;
		if ((p = reallocarray(b->msgs, cap, sizeof(*b->msgs))) == NULL)
			return -1;
		b->msgs = p;
		b->batch_cap = cap;
	}
	b->batch[b->nbatch] = r;
	b->msgs[b->nbatch] = *m;
	b->nbatch++;
	return 0;
}

/* hand the batch to the hub, then let go of its replies */
static void
broker_batch_flush(struct broker *b)
{
	size_t	 i;

	if (b->nbatch == 0)
		return;
	STATS_ADD(redis_messages, b->nbatch);
	hub_publish(b->hub, b->msgs, b->nbatch, util_now_us());
	for (i = 0; i < b->nbatch; i++)
		freeReplyObject(b->batch[i]);
	b->nbatch = 0;
}

/* drain every complete reply the reader holds; -1 on a protocol error */
static int
broker_drain(struct broker *b)
{
	struct hub_message	 m;
	void			*reply;
	int			 r = 0;

	for (;;) {
		if (redisGetReplyFromReader(b->c, &reply) != REDIS_OK) {
			r = -1;
			break;
		}
		if (reply == NULL)
			break;
		if (((redisReply *)reply)->type == REDIS_REPLY_ERROR)
			log_warnx("redis: error reply: %s",
			    ((redisReply *)reply)->str);
		else if (broker_message(reply, &m) == 0) {
			if (broker_batch_add(b, reply, &m) == 0)
				continue;	/* freed after the batch */
			/* the hub must hear of it, lost or not */
			broker_batch_flush(b);
			if (broker_batch_add(b, reply, &m) == 0)
				continue;
			log_warnx("out of memory: a message on %.*s dropped",
			    (int)m.channel_len, m.channel);
		}
		freeReplyObject(reply);
	}
	broker_batch_flush(b);
	return r;
}

static int
broker_send_ping(struct broker *b)
{
	int	 done = 0;

	if (redisAppendCommand(b->c, "PING") != REDIS_OK)
		return -1;
	while (!done)
		if (redisBufferWrite(b->c, &done) != REDIS_OK)
			return -1;
	return 0;
}

/*
 * Requests from other threads.  Channel interest matters only to exact
 * subscriptions; with patterns every channel is subscribed already.
 */
static void
broker_mail(struct broker *b)
{
	struct mailbox_items	 items = STAILQ_HEAD_INITIALIZER(items);

	mailbox_take(b->mailbox, &items);
	mailbox_items_free(&items);
}

/*
 * Wait up to ms for Redis (fd, or -1 for none) and the mailbox; returns
 * poll's count with *redis_ready telling whether Redis has bytes.
 */
static int
broker_poll(struct broker *b, int fd, uint64_t ms, int *redis_ready)
{
	struct pollfd	 pfd[2];
	int		 n;

	pfd[0].fd = mailbox_fd(b->mailbox);
	pfd[0].events = POLLIN;
	pfd[1].fd = fd;
	pfd[1].events = POLLIN;
	pfd[0].revents = pfd[1].revents = 0;
	n = poll(pfd, fd >= 0 ? 2 : 1, (int)ms);
	*redis_ready = n > 0 && fd >= 0 && pfd[1].revents != 0;
	if (n > 0 && pfd[0].revents != 0)
		broker_mail(b);
	return n;
}

static void
broker_step(struct broker *b)
{
	uint64_t	 now = util_now_ms();
	int		 n, ready;

	if (b->c == NULL) {
		if (now >= b->next_attempt_ms) {
			broker_try_connect(b, now);
			now = util_now_ms();
		}
		if (b->c == NULL) {
			uint64_t wait = b->next_attempt_ms > now ?
			    b->next_attempt_ms - now : 0;
			if (wait > b->cfg->poll_ms)
				wait = b->cfg->poll_ms;
			broker_poll(b, -1, wait, &ready);
			return;
		}
	}

	if (b->ping_sent_ms != 0 &&
	    now - b->ping_sent_ms > b->cfg->redis_timeout_ms) {
		char why[64];
		snprintf(why, sizeof(why), "no answer to PING in %u ms",
		    b->cfg->redis_timeout_ms);
		broker_lost(b, why);
		return;
	}
	if (b->ping_sent_ms == 0 && now - b->last_rx_ms > BROKER_PING_IDLE_MS) {
		if (broker_send_ping(b) == -1) {
			broker_lost(b, b->c->errstr);
			return;
		}
		b->ping_sent_ms = now;
	}

	n = broker_poll(b, b->c->fd, b->cfg->poll_ms, &ready);
	now = util_now_ms();
	if (ready) {
		if (redisBufferRead(b->c) != REDIS_OK) {
			broker_lost(b, b->c->errstr[0] ? b->c->errstr :
			    "connection closed");
			return;
		}
		b->last_rx_ms = now;
		b->ping_sent_ms = 0;
	} else if (n < 0 && errno != EINTR) {
		broker_lost(b, strerror(errno));
		return;
	}
	/* also after a connect: the handshake may have read messages already */
	if (broker_drain(b) == -1)
		broker_lost(b, b->c->errstr[0] ? b->c->errstr :
		    "protocol error");
}

static void *
broker_main(void *arg)
{
	struct broker	*b = arg;

	/* for ps -L and top -H; MHD names its own "MHD-worker" */
	pthread_setname_np(pthread_self(), "sserelay-redis");
	while (!atomic_load(&b->stop))
		broker_step(b);
	broker_disconnect(b);
	return NULL;
}

struct broker *
broker_start(const struct config *cfg, struct hub *hub, struct mailbox *mb,
    char *err, size_t errlen)
{
	struct broker	*b;
	int		 e;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->cfg = cfg;
	b->hub = hub;
	b->mailbox = mb;
	/* room for a batch up front: a flushed batch always has room again */
	b->batch_cap = 64;
	if ((b->batch = calloc(b->batch_cap, sizeof(*b->batch))) == NULL ||
	    (b->msgs = calloc(b->batch_cap, sizeof(*b->msgs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	if ((e = pthread_create(&b->thread, NULL, broker_main, b)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(e));
		goto bad;
	}
	return b;
bad:
	free(b->batch);
	free(b->msgs);
	free(b);
	return NULL;
}

void
broker_stop(struct broker *b)
{
	if (b == NULL)
		return;
	atomic_store(&b->stop, 1);
	mailbox_wake(b->mailbox);
	pthread_join(b->thread, NULL);
	free(b->batch);
	free(b->msgs);
	free(b);
}
