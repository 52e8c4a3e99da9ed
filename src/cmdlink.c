/*
 * cmdlink.c - a server's command connection.  See cmdlink.h.
 *
 * DESIGN
 * Reads wait on a queue until the library is known to be loaded, then
 * move to the in-flight queue as they are sent; Redis answers in order,
 * so each answer is the oldest in-flight read's.  A dead connection puts
 * its in-flight reads back at the head of the queue and tries again after
 * a backoff.
 */
#include "autoconf.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "answers.h"
#include "cmdlink.h"
#include "durable.h"
#include "log.h"
#include "util.h"

#define CMDLINK_BACKOFF_MIN_MS	100
#define CMDLINK_BACKOFF_MAX_MS	5000

enum cmdlink_state {
	CMDLINK_DOWN = 0,	/* waiting to connect */
	CMDLINK_LINK,		/* connecting, handshake */
	CMDLINK_CHECK,		/* sserelay_version asked */
	CMDLINK_LOAD,		/* FUNCTION LOAD sent */
	CMDLINK_READY,
};

struct cmdlink_item {
	TAILQ_ENTRY(cmdlink_item) entry;
	struct durable_read	*r;
	size_t			 i;
};

TAILQ_HEAD(cmdlink_items, cmdlink_item);

struct cmdlink {
	struct link_target	 target;
	char			 host[256];
	unsigned		 timeout_ms;
	const char		*library;	/* the caller's */
	const char		*version;
	cmdlink_done_fn		 done;
	void			*arg;
	struct link		*link;
	enum cmdlink_state	 state;
	unsigned		 attempts;
	uint64_t		 next_attempt_ms;
	int			 warned;
	struct cmdlink_items	 queued;
	struct cmdlink_items	 inflight;
};

static void	cmdlink_reply(void *, struct link *, redisReply *);

struct cmdlink *
cmdlink_new(const struct link_target *t, unsigned timeout_ms,
    const char *library, const char *version, cmdlink_done_fn done, void *arg)
{
	struct cmdlink	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->target = *t;
	if (t->host != NULL) {
		snprintf(c->host, sizeof(c->host), "%s", t->host);
		c->target.host = c->host;
	}
	c->timeout_ms = timeout_ms;
	c->library = library;
	c->version = version;
	c->done = done;
	c->arg = arg;
	TAILQ_INIT(&c->queued);
	TAILQ_INIT(&c->inflight);
	return c;
}

void
cmdlink_free(struct cmdlink *c)
{
	struct cmdlink_item	*it;

	if (c == NULL)
		return;
	link_free(c->link);
	TAILQ_CONCAT(&c->inflight, &c->queued, entry);
	while ((it = TAILQ_FIRST(&c->inflight)) != NULL) {
		TAILQ_REMOVE(&c->inflight, it, entry);
		it->r->chans[it->i].status = DURABLE_FAILED;
		c->done(c->arg, it->r, it->i);
		free(it);
	}
	free(c);
}

void
cmdlink_drain(struct cmdlink *c, void (*fn)(void *, struct durable_read *,
    size_t), void *arg)
{
	struct cmdlink_item	*it;

	/* answers still coming on the link would be another read's */
	link_free(c->link);
	c->link = NULL;
	c->state = CMDLINK_DOWN;
	TAILQ_CONCAT(&c->inflight, &c->queued, entry);
	while ((it = TAILQ_FIRST(&c->inflight)) != NULL) {
		TAILQ_REMOVE(&c->inflight, it, entry);
		fn(arg, it->r, it->i);
		free(it);
	}
}

int
cmdlink_ready(const struct cmdlink *c)
{
	return c->state == CMDLINK_READY;
}

const char *
cmdlink_name(const struct cmdlink *c)
{
	return c->link != NULL ? link_name(c->link) : c->host;
}

static void
cmdlink_send(struct cmdlink *c)
{
	struct cmdlink_item	*it;
	const char		*argv[7];
	size_t			 lens[7];
	char			 bufs[2][24];

	while (c->state == CMDLINK_READY &&
	    (it = TAILQ_FIRST(&c->queued)) != NULL) {
		durable_read_command(it->r, it->i, bufs, argv, lens);
		if (link_command(c->link, 7, argv, lens) == -1)
			return;		/* the link is dead: see cmdlink_tick */
		TAILQ_REMOVE(&c->queued, it, entry);
		TAILQ_INSERT_TAIL(&c->inflight, it, entry);
	}
}

int
cmdlink_read(struct cmdlink *c, struct durable_read *r, size_t i)
{
	struct cmdlink_item	*it;

	if ((it = calloc(1, sizeof(*it))) == NULL)
		return -1;
	it->r = r;
	it->i = i;
	TAILQ_INSERT_TAIL(&c->queued, it, entry);
	cmdlink_send(c);
	return 0;
}

static void
cmdlink_load(struct cmdlink *c)
{
	const char	*argv[4] = { "FUNCTION", "LOAD", "REPLACE", c->library };
	size_t		 lens[4] = { 8, 4, 7, strlen(c->library) };

	if (link_command(c->link, 4, argv, lens) == 0)
		c->state = CMDLINK_LOAD;
}

static void
cmdlink_reply(void *arg, struct link *l, redisReply *r)
{
	struct cmdlink		*c = arg;
	struct cmdlink_item	*it;
	const char		*other;

	switch (c->state) {
	case CMDLINK_CHECK:
		if (answers_library_version(r, c->version, &other) == 0) {
			c->state = CMDLINK_READY;
			log_kv(LOG_LEVEL_INFO, LINK_FIELDS(l), "redis: the "
			    "sserelay function library %s is loaded on %s",
			    c->version, link_name(l));
		} else {
			if (other != NULL)
				log_kv(LOG_LEVEL_WARN, LINK_FIELDS(l),
				    "redis: %s has the sserelay function "
				    "library %s; loading %s (instances with "
				    "other history settings replace it too)",
				    link_name(l), other, c->version);
			cmdlink_load(c);
		}
		break;
	case CMDLINK_LOAD:
		if (r->type == REDIS_REPLY_ERROR) {
			log_kv(LOG_LEVEL_WARN, LINK_FIELDS(l),
			    "redis: FUNCTION LOAD on %s: %s", link_name(l),
			    r->str);
			c->state = CMDLINK_DOWN;	/* retried, see tick */
		} else {
			log_kv(LOG_LEVEL_INFO, LINK_FIELDS(l), "redis: loaded "
			    "the sserelay function library %s on %s",
			    c->version, link_name(l));
			c->state = CMDLINK_READY;
		}
		break;
	case CMDLINK_READY:
		if ((it = TAILQ_FIRST(&c->inflight)) == NULL) {
			log_kv(LOG_LEVEL_DEBUG, LINK_FIELDS(l),
			    "redis: %s: an answer nobody waits for",
			    link_name(l));
			break;
		}
		TAILQ_REMOVE(&c->inflight, it, entry);
		if (answers_history(it->r, it->i, r) == -1 ||
		    r->type == REDIS_REPLY_ERROR)
			log_kv(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("redis",
			    link_name(l)), LOG_STR("channel",
			    it->r->chans[it->i].name)),
			    "redis: history read of %s on %s: %s",
			    it->r->chans[it->i].name, link_name(l),
			    r->type == REDIS_REPLY_ERROR ? r->str :
			    "not an answer of sserelay_read");
		c->done(c->arg, it->r, it->i);
		free(it);
		break;
	default:
		break;
	}
	freeReplyObject(r);
	cmdlink_send(c);
}

/* the connection is gone: its reads go back to the head of the queue */
static void
cmdlink_down(struct cmdlink *c, uint64_t now)
{
	unsigned	 base;

	if (c->link != NULL)
		link_lost(&c->link, &c->warned, "command connection to",
		    "reconnecting");
	TAILQ_CONCAT(&c->inflight, &c->queued, entry);
	TAILQ_CONCAT(&c->queued, &c->inflight, entry);
	c->state = CMDLINK_DOWN;
	base = CMDLINK_BACKOFF_MIN_MS << (c->attempts < 6 ? c->attempts : 6);
	if (base > CMDLINK_BACKOFF_MAX_MS)
		base = CMDLINK_BACKOFF_MAX_MS;
	c->attempts++;
	c->next_attempt_ms = now + base / 2 + util_random() % (base / 2 + 1);
}

static void
cmdlink_tick(struct cmdlink *c, uint64_t now)
{
	static const char *ver[3] = { "FCALL_RO", "sserelay_version", "0" };
	static const size_t ver_len[3] = { 8, 16, 1 };

	if (c->state == CMDLINK_DOWN) {
		if (c->link != NULL)
			cmdlink_down(c, now);	/* a refused load */
		if (now < c->next_attempt_ms)
			return;
		if ((c->link = link_new(&c->target, c->timeout_ms,
		    cmdlink_reply, c)) == NULL)
			return;
		c->state = CMDLINK_LINK;
	}
	link_tick(c->link, now);
	if (link_state(c->link) == LINK_DEAD) {
		cmdlink_down(c, now);
		return;
	}
	if (c->state == CMDLINK_LINK && link_state(c->link) == LINK_READY) {
		c->attempts = 0;
		c->warned = 0;
		if (link_command(c->link, 3, ver, ver_len) == 0)
			c->state = CMDLINK_CHECK;
	}
	cmdlink_send(c);
}

size_t
cmdlink_pollfd(struct cmdlink *c, struct pollfd *pfd)
{
	if (c->link == NULL || link_fd(c->link) < 0)
		return 0;
	pfd->fd = link_fd(c->link);
	pfd->events = link_events(c->link);
	pfd->revents = 0;
	return 1;
}

void
cmdlink_handle(struct cmdlink *c, short revents, uint64_t now)
{
	if (c->link != NULL)
		link_handle(c->link, revents, now);
	cmdlink_tick(c, now);
}

uint64_t
cmdlink_next_ms(const struct cmdlink *c, uint64_t now)
{
	if (c->link == NULL)
		return c->next_attempt_ms > now ? c->next_attempt_ms - now : 0;
	if (c->state == CMDLINK_LINK && link_state(c->link) == LINK_READY)
		return 0;
	return link_next_ms(c->link, now);
}
