/*
 * sentinel.c - the master's address from Redis Sentinel.  See sentinel.h.
 *
 * DESIGN
 * Two links at most.  The query link exists while a question is open: it
 * connects to one sentinel, asks SENTINEL get-master-addr-by-name, and
 * goes; a sentinel that is down, refuses, or knows no such master is
 * skipped for the next one, and a round in which none answered is tried
 * again after a pause.  The watch link stays connected to a sentinel,
 * SUBSCRIBEd to +switch-master, and is reconnected (to the next sentinel)
 * when it breaks.
 */
#include "autoconf.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "link.h"
#include "log.h"
#include "sentinel.h"
#include "util.h"

#define SENTINEL_ROUND_PAUSE_MS	500
#define SENTINEL_WATCH_PAUSE_MS	1000

struct sentinel {
	struct util_addr	 addrs[UTIL_SENTINELS_MAX];
	size_t			 naddrs;
	char			*name;
	char			*password;
	unsigned		 timeout_ms;
	struct sentinel_ops	 ops;
	void			*arg;
	char			 describe[512];

	/* the question */
	int			 asking;
	struct link		*query;
	size_t			 qi;		/* the sentinel asked */
	size_t			 tried;		/* in this round */
	enum link_question	 question;
	int			 unknown;	/* a sentinel knew no such master */
	uint64_t		 next_round_ms;

	/* the watch */
	struct link		*watch;
	size_t			 wi;
	int			 subscribed;
	uint64_t		 next_watch_ms;
};


static void sentinel_reply(void *, struct link *, redisReply *);

struct sentinel *
sentinel_new(const char *addrs, const char *name, const char *password,
    unsigned timeout_ms, const struct sentinel_ops *ops, void *arg, char *err,
    size_t errlen)
{
	struct sentinel	*s;
	size_t		 i, k = 0;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (util_parse_addrs(addrs, s->addrs, UTIL_SENTINELS_MAX, &s->naddrs, err,
	    errlen) == -1) {
		free(s);
		return NULL;
	}
	if ((s->name = strdup(name)) == NULL || (password != NULL &&
	    (s->password = strdup(password)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		sentinel_free(s);
		return NULL;
	}
	s->timeout_ms = timeout_ms;
	s->ops = *ops;
	s->arg = arg;
	k = (size_t)snprintf(s->describe, sizeof(s->describe), "master %s at "
	    "sentinels ", name);
	for (i = 0; i < s->naddrs && k < sizeof(s->describe); i++)
		k += (size_t)snprintf(s->describe + k, sizeof(s->describe) - k,
		    "%s%s:%d", i ? "," : "", s->addrs[i].host,
		    s->addrs[i].port);
	return s;
}

void
sentinel_free(struct sentinel *s)
{
	if (s == NULL)
		return;
	link_free(s->query);
	link_free(s->watch);
	free(s->name);
	if (s->password != NULL) {
		explicit_bzero(s->password, strlen(s->password));
		free(s->password);
	}
	free(s);
}

const char *
sentinel_describe(const struct sentinel *s)
{
	return s->describe;
}

static struct link *
sentinel_connect(struct sentinel *s, size_t i)
{
	struct link_target	 t;

	memset(&t, 0, sizeof(t));
	t.host = s->addrs[i].host;
	t.port = s->addrs[i].port;
	t.password = s->password;
	return link_new(&t, s->timeout_ms, sentinel_reply, s);
}

static void
sentinel_ask(struct sentinel *s)
{
	/* a query link that answered may still wait for its step */
	link_free(s->query);
	s->question = LINK_TO_ASK;
	if ((s->query = sentinel_connect(s, s->qi)) == NULL)
		log_warnx("sentinel: out of memory");
}

void
sentinel_resolve(struct sentinel *s)
{
	if (s->asking)
		return;
	s->asking = 1;
	s->tried = 0;
	s->unknown = 0;
	s->next_round_ms = 0;
	sentinel_ask(s);
}

/* this sentinel could not tell: the next one, or a pause after a round */
static void
sentinel_next(struct sentinel *s, uint64_t now_ms)
{
	link_free(s->query);
	s->query = NULL;
	s->qi = (s->qi + 1) % s->naddrs;
	if (++s->tried < s->naddrs) {
		sentinel_ask(s);
		return;
	}
	if (s->unknown)
		log_kv(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("master", s->name)),
		    "sentinel: no sentinel knows a master named '%s'; asking "
		    "again", s->name);
	else
		log_debug("sentinel: no sentinel answered; asking again");
	s->tried = 0;
	s->unknown = 0;
	s->next_round_ms = now_ms + SENTINEL_ROUND_PAUSE_MS;
}

/* a message on +switch-master: a failover, if it is of our master */
static void
sentinel_switch(struct sentinel *s, const char *msg, size_t len)
{
	struct answers_switch	 sw;

	if (answers_switch_master(msg, len, &sw) == -1 ||
	    strcmp(sw.name, s->name) != 0)
		return;
	log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("master", sw.name)),
	    "sentinel: failover of %s: %s:%d -> %s:%d", sw.name, sw.from,
	    sw.from_port, sw.to, sw.to_port);
	s->ops.switched(s->arg, sw.to, sw.to_port);
}

static void
sentinel_reply(void *arg, struct link *l, redisReply *r)
{
	struct sentinel		*s = arg;
	struct answers_pubsub	 a;
	char			 host[UTIL_HOST_MAX];
	int			 port;

	if (l == s->watch) {
		if (answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_MESSAGE)
			sentinel_switch(s, a.payload, a.payload_len);
		else if (a.kind == ANSWERS_SUBSCRIBED)
			s->subscribed = 1;
		freeReplyObject(r);
		return;
	}
	/* the query's one answer: [host, port], or nil */
	switch (answers_sentinel_master(r, host, sizeof(host), &port)) {
	case ANSWERS_MASTER_AT:
		s->asking = 0;
		s->ops.master(s->arg, host, port);
		break;
	case ANSWERS_MASTER_UNKNOWN:
		s->unknown = 1;
		log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_STR("sentinel",
		    link_name(l)), LOG_STR("master", s->name)),
		    "sentinel %s knows no master named '%s'", link_name(l),
		    s->name);
		break;
	default:
		log_kv(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("sentinel",
		    link_name(l))), "sentinel %s: %s", link_name(l),
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	}
	s->question = LINK_ANSWERED;	/* the link is done */
	freeReplyObject(r);
}

size_t
sentinel_pollfds(struct sentinel *s, struct pollfd *pfd)
{
	size_t	 n = 0;

	if (s->query != NULL && link_fd(s->query) >= 0) {
		pfd[n].fd = link_fd(s->query);
		pfd[n].events = link_events(s->query);
		pfd[n++].revents = 0;
	}
	if (s->watch != NULL && link_fd(s->watch) >= 0) {
		pfd[n].fd = link_fd(s->watch);
		pfd[n].events = link_events(s->watch);
		pfd[n++].revents = 0;
	}
	return n;
}

static short
sentinel_revents(const struct pollfd *pfd, size_t n, struct link *l)
{
	size_t	 i;

	for (i = 0; l != NULL && i < n; i++)
		if (pfd[i].fd == link_fd(l))
			return pfd[i].revents;
	return 0;
}

static void
sentinel_query_step(struct sentinel *s, uint64_t now_ms)
{
	const char	*argv[3] = { "SENTINEL", "get-master-addr-by-name",
			    s->name };
	size_t		 lens[3] = { 8, 23, strlen(s->name) };

	if (!s->asking)
		return;
	if (s->query == NULL) {
		if (now_ms >= s->next_round_ms)
			sentinel_ask(s);
		return;
	}
	if (link_ask(s->query, &s->question, 3, argv, lens, now_ms) ==
	    LINK_DEAD) {
		log_debug("sentinel %s: %s", link_name(s->query),
		    link_error(s->query));
		sentinel_next(s, now_ms);
		return;
	}
	if (s->question == LINK_ANSWERED) {
		if (s->asking)
			sentinel_next(s, now_ms);
		else {
			/* the one that answered watches too, if none does */
			if (s->watch == NULL)
				s->wi = s->qi;
			link_free(s->query);
			s->query = NULL;
		}
	}
}

static void
sentinel_watch_step(struct sentinel *s, uint64_t now_ms)
{
	const char	*argv[2] = { "SUBSCRIBE", "+switch-master" };
	size_t		 lens[2] = { 9, 14 };

	if (s->watch == NULL) {
		if (now_ms < s->next_watch_ms)
			return;
		s->subscribed = 0;
		if ((s->watch = sentinel_connect(s, s->wi)) == NULL)
			return;
		/* queued until the link is up */
		link_command(s->watch, 2, argv, lens);
		return;
	}
	link_tick(s->watch, now_ms);
	if (link_state(s->watch) == LINK_DEAD) {
		log_debug("sentinel watch %s: %s", link_name(s->watch),
		    link_error(s->watch));
		link_free(s->watch);
		s->watch = NULL;
		s->wi = (s->wi + 1) % s->naddrs;
		s->next_watch_ms = now_ms + SENTINEL_WATCH_PAUSE_MS;
	}
}

void
sentinel_handle(struct sentinel *s, const struct pollfd *pfd, size_t n,
    uint64_t now_ms)
{
	if (s->query != NULL)
		link_handle(s->query, sentinel_revents(pfd, n, s->query),
		    now_ms);
	if (s->watch != NULL)
		link_handle(s->watch, sentinel_revents(pfd, n, s->watch),
		    now_ms);
	sentinel_query_step(s, now_ms);
	sentinel_watch_step(s, now_ms);
}

uint64_t
sentinel_next_ms(const struct sentinel *s, uint64_t now_ms)
{
	uint64_t	 at = UINT64_MAX, v;

	if (s->asking && s->query == NULL)
		at = s->next_round_ms > now_ms ? s->next_round_ms - now_ms : 0;
	if (s->query != NULL && (v = link_next_ms(s->query, now_ms)) < at)
		at = v;
	if (s->query != NULL && link_state(s->query) == LINK_READY &&
	    s->question != LINK_ASKED)
		at = 0;
	if (s->watch == NULL) {
		v = s->next_watch_ms > now_ms ? s->next_watch_ms - now_ms : 0;
		if (v < at)
			at = v;
	} else if ((v = link_next_ms(s->watch, now_ms)) < at)
		at = v;
	return at;
}

int
sentinel_probe(const char *addrs, const char *name, const char *password,
    unsigned timeout_ms, char *err, size_t errlen)
{
	struct util_addr	 a[UTIL_SENTINELS_MAX];
	struct timeval		 tv;
	redisContext		*c;
	redisReply		*r;
	size_t			 n, i;
	int			 known = 0, unknown = 0, port;
	enum answers_master	 m;
	char			 host[UTIL_HOST_MAX];

	if (util_parse_addrs(addrs, a, UTIL_SENTINELS_MAX, &n, err, errlen) == -1)
		return -1;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	for (i = 0; i < n && !known; i++) {
		if ((c = redisConnectWithTimeout(a[i].host, a[i].port, tv)) ==
		    NULL)
			continue;
		if (c->err) {
			redisFree(c);
			continue;
		}
		redisSetTimeout(c, tv);
		r = password != NULL ? redisCommand(c, "AUTH %s", password) :
		    NULL;
		if (password == NULL || (r != NULL &&
		    r->type != REDIS_REPLY_ERROR)) {
			freeReplyObject(r);
			r = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
			    name);
			if (r != NULL && (m = answers_sentinel_master(r, host,
			    sizeof(host), &port)) == ANSWERS_MASTER_AT)
				known = 1;
			else if (r != NULL && m == ANSWERS_MASTER_UNKNOWN)
				unknown = 1;
		}
		freeReplyObject(r);
		redisFree(c);
	}
	if (!known && unknown) {
		snprintf(err, errlen, "--redis-sentinel-master: the sentinels "
		    "at %s know no master named '%s'", addrs, name);
		return -1;
	}
	return 0;
}
