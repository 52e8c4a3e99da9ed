/*
 * broker.c - the Redis thread.
 *
 * DESIGN
 * One thread owns every Redis connection (link.c); nothing else touches
 * them.  Its loop is redis-py's get_message(timeout) over all of them at
 * once: poll the links' sockets and the mailbox's eventfd for at most
 * --poll-timeout, read what came, hand each batch of messages to the hub
 * in one call (hub_publish), which ids, encodes, keeps and fans out each
 * message and wakes each stream once.  Nothing here waits for a client,
 * and no link waits for another: connects, handshakes and writes never
 * block.  Heartbeats are not queued here (main.c does it) so that they go
 * on whatever Redis does.
 *
 * Subscriptions.  With --subscribe pattern the one connection does
 * PSUBSCRIBE to each prefix; once both are confirmed the hub is told
 * (hub_subscribed) that what was published before is lost to the open
 * streams, which get a reset.  With --subscribe exact, subs.c decides
 * which channels to SUBSCRIBE and UNSUBSCRIBE from the hub's channel
 * interest (posted to the mailbox), and each confirmation is passed to the
 * hub per channel (hub_channels).
 *
 * Each connection keeps its commands in order (struct broker_cmd): Redis
 * answers them in order, so the first unanswered one is the one an answer
 * or an error belongs to; an "unsubscribe" for a channel the first
 * command does not name is Redis letting go by itself.
 *
 * Reconnect: jittered exponential backoff from 100 ms.  A refused
 * connection (Redis restarting on this host) costs Redis nothing, so those
 * retries stay at most 1 s apart and delivery resumes within a second of
 * Redis coming back; other failures (timeouts, AUTH errors) back off up to
 * 5 s.  A channel Redis refused (an ACL, say) is tried again after 1 s.
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
#include <sys/queue.h>

#include "broker.h"
#include "config.h"
#include "hub.h"
#include "link.h"
#include "log.h"
#include "mailbox.h"
#include "stats.h"
#include "subs.h"
#include "util.h"

#define BROKER_BACKOFF_MIN_MS	100
#define BROKER_BACKOFF_MAX_MS	5000
#define BROKER_REFUSED_MAX_MS	1000
#define BROKER_BATCH_CHANNELS	500	/* channels named in one command */

/* a (un)subscribe command waiting for its answers */
struct broker_cmd {
	TAILQ_ENTRY(broker_cmd)	 entry;
	int			 subscribe;	/* 1, 0 */
	size_t			 n;		/* channels named */
	size_t			 answered;
	char			**names;
	size_t			*lens;
};

TAILQ_HEAD(broker_cmds, broker_cmd);

/* one Redis server the broker subscribes on */
struct broker_node {
	int			 id;		/* subs.h's node */
	struct link_target	 target;
	struct link		*link;		/* NULL between attempts */
	int			 ready;		/* subscribed as it should be */
	int			 ever_ready;
	unsigned		 attempts;	/* failed connects in a row */
	uint64_t		 next_attempt_ms;
	int			 warned;	/* lost/down already said */
	unsigned		 patterns_waiting; /* PSUBSCRIBE answers */
	struct broker_cmds	 cmds;		/* unanswered, oldest first */
};

struct broker {
	const struct config	*cfg;
	struct hub		*hub;
	struct mailbox		*mailbox;
	pthread_t		 thread;
	atomic_int		 stop;

	struct broker_node	 node;		/* the Redis server */
	struct subs		*subs;		/* --subscribe exact */

	redisReply		**batch;	/* message replies of one read */
	struct hub_message	*msgs;		/* their messages */
	size_t			 nbatch, batch_cap;
	/* channel events of one read, in a run of one kind */
	enum subs_event		 ev;
	char			**ev_names;
	size_t			*ev_lens;
	size_t			 nev, ev_cap;
};

static void
broker_cmd_free(struct broker_cmd *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	free(c->lens);
	free(c);
}

static void
broker_cmds_clear(struct broker_cmds *l)
{
	struct broker_cmd	*c;

	while ((c = TAILQ_FIRST(l)) != NULL) {
		TAILQ_REMOVE(l, c, entry);
		broker_cmd_free(c);
	}
}

/* ---- messages -------------------------------------------------------- */

/* keep a message reply until the batch is handed over; -1 out of memory */
static int
broker_batch_add(struct broker *b, redisReply *r, const struct hub_message *m)
{
	size_t	 cap;
	void	*p;

	if (b->nbatch == b->batch_cap) {
		cap = b->batch_cap * 2;
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

/* tell the hub the channel events of the run, in one call */
static void
broker_events_flush(struct broker *b)
{
	size_t	 i;

	if (b->nev == 0)
		return;
	hub_channels(b->hub, b->ev == SUBS_SUBSCRIBED ?
	    HUB_CHANNEL_SUBSCRIBED : b->ev == SUBS_LOST ? HUB_CHANNEL_LOST :
	    HUB_CHANNEL_UNSUBSCRIBED, (const char **)b->ev_names, b->ev_lens,
	    b->nev);
	for (i = 0; i < b->nev; i++)
		free(b->ev_names[i]);
	b->nev = 0;
}

static void
broker_message(struct broker *b, redisReply *r, redisReply *ch,
    redisReply *payload)
{
	struct hub_message	 m;

	if (ch->type != REDIS_REPLY_STRING ||
	    payload->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return;
	}
	m.channel = ch->str;
	m.channel_len = ch->len;
	m.payload = payload->str;
	m.payload_len = payload->len;
	/* the hub hears of a subscription before of what came after it */
	broker_events_flush(b);
	if (broker_batch_add(b, r, &m) == 0)
		return;		/* freed after the batch */
	/* the batch has room again once handed over */
	broker_batch_flush(b);
	if (broker_batch_add(b, r, &m) == 0)
		return;
	log_warnx("out of memory: a message on %.*s dropped", (int)ch->len,
	    ch->str);
	freeReplyObject(r);
}

/* ---- subscriptions ----------------------------------------------------- */

static void
broker_subscribed_patterns(struct broker *b, struct broker_node *n)
{
	const struct config	*cfg = b->cfg;

	n->ready = 1;
	log_info("redis: subscribed to %s* and %s* on %s", cfg->user_prefix,
	    cfg->upload_prefix, link_name(n->link));
	/* up before the resets go out: a client told may look */
	STATS_SET(redis_up, 1);
	hub_subscribed(b->hub);
}

/* a connection is ready: subscribe what it should carry */
static void
broker_node_ready(struct broker *b, struct broker_node *n)
{
	const struct config	*cfg = b->cfg;
	char			 pu[80], pl[80];
	const char		*argv[3] = { "PSUBSCRIBE", pu, pl };
	size_t			 lens[3] = { 10, 0, 0 };

	n->ever_ready = 1;
	n->attempts = 0;
	n->warned = 0;
	if (b->subs != NULL) {
		/* exact: subs_flush sends the channels */
		n->ready = 1;
		log_info("redis: subscribed on %s (exact channels: %zu "
		    "wanted)", link_name(n->link), subs_count(b->subs));
		STATS_SET(redis_up, 1);
		hub_redis_state(b->hub, 1);
		return;
	}
	lens[1] = (size_t)snprintf(pu, sizeof(pu), "%s*", cfg->user_prefix);
	lens[2] = (size_t)snprintf(pl, sizeof(pl), "%s*", cfg->upload_prefix);
	if (link_command(n->link, 3, argv, lens) == 0)
		n->patterns_waiting = 2;
}

/* subs.h's route: one Redis, every channel on node 0, one group */
static int
broker_route(void *arg, const char *name, size_t len, int *node,
    unsigned *group)
{
	struct broker	*b = arg;

	*node = b->node.id;
	*group = 0;
	return b->node.ready ? 0 : -1;
}

static int
broker_emit(void *arg, int node, int subscribe, const char **names,
    const size_t *lens, size_t n)
{
	struct broker		*b = arg;
	struct broker_node	*bn = &b->node;
	struct broker_cmd	*c;
	const char		**argv;
	size_t			*alens, i;
	int			 r = -1;

	if (!bn->ready || bn->link == NULL)
		return -1;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->names = calloc(n, sizeof(*c->names))) == NULL ||
	    (c->lens = calloc(n, sizeof(*c->lens))) == NULL ||
	    (argv = calloc(n + 1, sizeof(*argv))) == NULL) {
		broker_cmd_free(c);
		return -1;
	}
	if ((alens = calloc(n + 1, sizeof(*alens))) == NULL)
		goto done;
	c->subscribe = subscribe;
	for (c->n = 0; c->n < n; c->n++) {
		if ((c->names[c->n] = malloc(lens[c->n] + 1)) == NULL)
			goto done;
		memcpy(c->names[c->n], names[c->n], lens[c->n]);
		c->names[c->n][lens[c->n]] = '\0';
		c->lens[c->n] = lens[c->n];
	}
	argv[0] = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
	alens[0] = strlen(argv[0]);
	for (i = 0; i < n; i++) {
		argv[i + 1] = names[i];
		alens[i + 1] = lens[i];
	}
	if (link_command(bn->link, (int)n + 1, argv, alens) == -1)
		goto done;
	TAILQ_INSERT_TAIL(&bn->cmds, c, entry);
	c = NULL;
	r = 0;
done:
	broker_cmd_free(c);
	free(argv);
	free(alens);
	return r;
}

/*
 * subs.h's notify.  Events of one kind coming one after another (the
 * answers to one SUBSCRIBE, say) are told in one call, so that a stream
 * on several of the channels gets one reset, not one per channel; the
 * messages read before them are handed over first, to keep the order.
 */
static void
broker_notify(void *arg, enum subs_event ev, const char **names,
    const size_t *lens, size_t n)
{
	struct broker	*b = arg;
	size_t		 i, cap;
	void		*p;

	broker_batch_flush(b);
	if (b->nev > 0 && b->ev != ev)
		broker_events_flush(b);
	b->ev = ev;
	for (i = 0; i < n; i++) {
		if (b->nev == b->ev_cap) {
			cap = b->ev_cap ? b->ev_cap * 2 : 64;
			if ((p = reallocarray(b->ev_names, cap,
			    sizeof(*b->ev_names))) == NULL)
				goto nomem;
			b->ev_names = p;
			if ((p = reallocarray(b->ev_lens, cap,
			    sizeof(*b->ev_lens))) == NULL)
				goto nomem;
			b->ev_lens = p;
			b->ev_cap = cap;
		}
		if ((b->ev_names[b->nev] = malloc(lens[i] + 1)) == NULL)
			goto nomem;
		memcpy(b->ev_names[b->nev], names[i], lens[i]);
		b->ev_names[b->nev][lens[i]] = '\0';
		b->ev_lens[b->nev++] = lens[i];
	}
	return;
nomem:
	/* told now, in smaller calls, rather than not at all */
	broker_events_flush(b);
	hub_channels(b->hub, ev == SUBS_SUBSCRIBED ? HUB_CHANNEL_SUBSCRIBED :
	    ev == SUBS_LOST ? HUB_CHANNEL_LOST : HUB_CHANNEL_UNSUBSCRIBED,
	    names + i, lens + i, n - i);
}

/* an answer to one channel of an (un)subscribe command */
static void
broker_answer(struct broker *b, struct broker_node *n, redisReply *ch,
    int subscribe)
{
	struct broker_cmd	*c = TAILQ_FIRST(&n->cmds);
	size_t			 i;
	int			 ours = 0;

	if (ch->type != REDIS_REPLY_STRING)
		return;
	if (c != NULL && c->subscribe == subscribe) {
		/* ours if the oldest command names it; else Redis's own */
		for (i = 0; i < c->n && !ours; i++)
			ours = c->lens[i] == ch->len &&
			    memcmp(c->names[i], ch->str, ch->len) == 0;
	}
	if (ours && ++c->answered == c->n) {
		TAILQ_REMOVE(&n->cmds, c, entry);
		broker_cmd_free(c);
	}
	if (b->subs != NULL && subs_confirmed(b->subs, n->id, ch->str,
	    ch->len, subscribe) == -1)
		log_debug("redis: unexpected %ssubscribe for %.*s",
		    subscribe ? "" : "un", (int)ch->len, ch->str);
}

/* an error: the oldest unanswered command was refused */
static void
broker_refused(struct broker *b, struct broker_node *n, redisReply *r)
{
	struct broker_cmd	*c = TAILQ_FIRST(&n->cmds);

	if (c == NULL) {
		log_warnx("redis: error reply from %s: %s", link_name(n->link),
		    r->str);
		return;
	}
	log_warnx("redis: %s of %zu channels refused by %s: %s; retrying",
	    c->subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", c->n,
	    link_name(n->link), r->str);
	TAILQ_REMOVE(&n->cmds, c, entry);
	if (b->subs != NULL)
		subs_refused(b->subs, c->subscribe, (const char **)c->names,
		    c->lens, c->n, util_now_ms() + 1000);
	broker_cmd_free(c);
}

/* every reply of a ready link: messages and subscription answers */
static void
broker_reply(void *arg, struct link *l, redisReply *r)
{
	struct broker		*b = arg;
	struct broker_node	*n = &b->node;
	const char		*kind;

	if (r->type == REDIS_REPLY_ERROR) {
		broker_refused(b, n, r);
		freeReplyObject(r);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return;
	}
	kind = r->element[0]->str;
	if (strcmp(kind, "pmessage") == 0 && r->elements == 4) {
		broker_message(b, r, r->element[2], r->element[3]);
		return;
	}
	if (strcmp(kind, "message") == 0 || strcmp(kind, "smessage") == 0) {
		broker_message(b, r, r->element[1], r->element[2]);
		return;
	}
	if (strcmp(kind, "psubscribe") == 0) {
		if (n->patterns_waiting > 0 && --n->patterns_waiting == 0)
			broker_subscribed_patterns(b, n);
	} else if (strcmp(kind, "subscribe") == 0)
		broker_answer(b, n, r->element[1], 1);
	else if (strcmp(kind, "unsubscribe") == 0)
		broker_answer(b, n, r->element[1], 0);
	else
		log_debug("redis: %s reply", kind);
	freeReplyObject(r);
}

/* ---- connections ------------------------------------------------------- */

static void
broker_node_down(struct broker *b, struct broker_node *n, uint64_t now)
{
	unsigned	 cap, base, delay;
	int		 refused = link_refused(n->link);

	if (n->ready || n->ever_ready) {
		if (!n->warned)
			log_warnx("redis: connection to %s lost: %s; "
			    "reconnecting", link_name(n->link),
			    link_error(n->link));
		if (n->ready)
			STATS_ADD(redis_reconnects, 1);
		n->attempts = 0;
	} else if (!n->warned)
		log_warnx("redis: cannot connect to %s: %s; retrying",
		    link_name(n->link), link_error(n->link));
	else
		log_debug("redis: connect to %s: %s", link_name(n->link),
		    link_error(n->link));
	n->warned = 1;
	broker_batch_flush(b);
	broker_events_flush(b);
	if (n->ready) {
		STATS_SET(redis_up, 0);
		if (b->subs != NULL) {
			subs_lost(b->subs, n->id);
			broker_events_flush(b);
			hub_redis_state(b->hub, 0);
		}
	}
	n->ready = 0;
	n->ever_ready = 0;
	n->patterns_waiting = 0;
	broker_cmds_clear(&n->cmds);
	link_free(n->link);
	n->link = NULL;
	cap = refused ? BROKER_REFUSED_MAX_MS : BROKER_BACKOFF_MAX_MS;
	base = BROKER_BACKOFF_MIN_MS << (n->attempts < 6 ? n->attempts : 6);
	if (base > cap)
		base = cap;
	n->attempts++;
	/* half fixed, half random: instances do not retry in step */
	delay = base / 2 + util_random() % (base / 2 + 1);
	n->next_attempt_ms = now + delay;
}

static void
broker_node_connect(struct broker *b, struct broker_node *n, uint64_t now)
{
	if (n->link != NULL || now < n->next_attempt_ms)
		return;
	if ((n->link = link_new(&n->target, b->cfg->redis_timeout_ms,
	    broker_reply, b)) == NULL) {
		n->next_attempt_ms = now + BROKER_BACKOFF_MAX_MS;
		log_warnx("redis: out of memory for a connection");
	}
}

/* after I/O: a link that became ready, or died */
static void
broker_node_check(struct broker *b, struct broker_node *n, uint64_t now)
{
	if (n->link == NULL)
		return;
	link_tick(n->link, now);
	if (link_state(n->link) == LINK_DEAD)
		broker_node_down(b, n, now);
	else if (link_state(n->link) == LINK_READY && !n->ever_ready)
		broker_node_ready(b, n);
}

/* ---- the loop ---------------------------------------------------------- */

/*
 * Requests from other threads.  Channel interest matters only to exact
 * subscriptions; with patterns every channel is subscribed already.
 */
static void
broker_mail(struct broker *b, uint64_t now)
{
	struct mailbox_items	 items = STAILQ_HEAD_INITIALIZER(items);
	struct mailbox_item	*it;

	mailbox_take(b->mailbox, &items);
	if (b->subs != NULL)
		STAILQ_FOREACH(it, &items, entry)
			if (it->op != MAILBOX_WAKE && subs_want(b->subs,
			    it->channel, it->len, it->op == MAILBOX_INTEREST,
			    now) == -1)
				log_warnx("out of memory: channel %s not "
				    "(un)subscribed", it->channel);
	mailbox_items_free(&items);
}

/* the subscription counters, for /healthz and /metrics */
static void
broker_publish_stats(struct broker *b)
{
	struct subs_stats	 ss;

	subs_get_stats(b->subs, &ss);
	STATS_SET(redis_channels, ss.channels);
	STATS_SET(redis_subscribes, ss.subscribe_cmds);
	STATS_SET(redis_unsubscribes, ss.unsubscribe_cmds);
}

static uint64_t
broker_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void
broker_step(struct broker *b)
{
	struct broker_node	*n = &b->node;
	struct pollfd		 pfd[2];
	uint64_t		 now = util_now_ms(), wait;
	int			 np = 1;

	broker_node_connect(b, n, now);
	broker_node_check(b, n, now);
	if (b->subs != NULL)
		subs_flush(b->subs, now);

	wait = b->cfg->poll_ms;
	pfd[0].fd = mailbox_fd(b->mailbox);
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	if (n->link != NULL) {
		pfd[1].fd = link_fd(n->link);
		pfd[1].events = link_events(n->link);
		pfd[1].revents = 0;
		np = 2;
		wait = broker_min(wait, link_next_ms(n->link, now));
	} else
		wait = broker_min(wait, n->next_attempt_ms > now ?
		    n->next_attempt_ms - now : 0);
	if (b->subs != NULL)
		wait = broker_min(wait, subs_next_ms(b->subs, now));
	if (poll(pfd, (nfds_t)np, (int)wait) == -1 && errno != EINTR) {
		log_warn("broker: poll");
		return;
	}
	now = util_now_ms();
	if (pfd[0].revents != 0)
		broker_mail(b, now);
	if (np == 2 && n->link != NULL)
		link_handle(n->link, pfd[1].revents, now);
	broker_batch_flush(b);
	broker_events_flush(b);
	broker_node_check(b, n, now);
	if (b->subs != NULL)
		broker_publish_stats(b);
}

static void *
broker_main(void *arg)
{
	struct broker	*b = arg;

	/* for ps -L and top -H; MHD names its own "MHD-worker" */
	pthread_setname_np(pthread_self(), "sserelay-redis");
	while (!atomic_load(&b->stop))
		broker_step(b);
	broker_batch_flush(b);
	broker_events_flush(b);
	broker_cmds_clear(&b->node.cmds);
	link_free(b->node.link);
	b->node.link = NULL;
	STATS_SET(redis_up, 0);
	return NULL;
}

static const struct subs_ops broker_subs_ops = {
	broker_route, broker_emit, broker_notify,
};

struct broker *
broker_start(const struct config *cfg, struct hub *hub, struct mailbox *mb,
    char *err, size_t errlen)
{
	const struct redis_url	*u = &cfg->redis_url;
	struct broker		*b;
	int			 e;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->cfg = cfg;
	b->hub = hub;
	b->mailbox = mb;
	b->node.target.host = u->is_unix ? NULL : u->host;
	b->node.target.port = u->port;
	b->node.target.path = u->is_unix ? u->path : NULL;
	b->node.target.user = u->user;
	b->node.target.password = u->password;
	b->node.target.db = u->db;
	TAILQ_INIT(&b->node.cmds);
	/* room for a batch up front: a flushed batch always has room again */
	b->batch_cap = 64;
	if ((b->batch = calloc(b->batch_cap, sizeof(*b->batch))) == NULL ||
	    (b->msgs = calloc(b->batch_cap, sizeof(*b->msgs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	if (cfg->subscribe_exact && (b->subs = subs_new(
	    cfg->subscribe_linger_s * 1000, BROKER_BATCH_CHANNELS,
	    &broker_subs_ops, b)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	if ((e = pthread_create(&b->thread, NULL, broker_main, b)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(e));
		goto bad;
	}
	return b;
bad:
	subs_free(b->subs);
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
	subs_free(b->subs);
	free(b->batch);
	free(b->msgs);
	free(b->ev_names);
	free(b->ev_lens);
	free(b);
}
