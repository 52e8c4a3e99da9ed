/*
 * control.c - the control thread (sserelay-ctl): connections, revocations
 * and the loop; presence in Redis is control_presence.c.  See control.h.
 *
 * DESIGN
 * The thread keeps, per Redis primary (the one of --redis, the master
 * the sentinels name, or every primary of --redis-cluster), two hiredis
 * connections of its own: `cmd`, blocking with --redis-timeout, for
 * FUNCTION LOAD and reads, and `sub`, subscribed to sserelay:control,
 * read with poll() and redisBufferRead (the get_message loop of
 * DESIGN.md), PINGed every second and dropped when silent for
 * --redis-timeout more.
 *
 * Coming up (at start, and after any connection was lost): connect every
 * primary, load the library (FUNCTION LOAD REPLACE src/control.lua),
 * subscribe, and only then read every revocation key (SCAN MATCH
 * sserelay:*:r on each primary, then GET them, pipelined), so that a
 * revocation made while this instance was away, or started, is applied
 * once it is up, and one made meanwhile arrives as an announcement.  The
 * table (revoke.c) becomes exactly what was read; a revocation new to it
 * ends its open streams (hub_revoke).  In a cluster, a function's classic
 * PUBLISH reaches every node, so each instance hears an announcement once
 * per primary: revoke_add() says whether it is new.
 *
 * Going down: all connections are closed; they are made again after a
 * second, and again every second until they can be.  One warning per
 * state change.
 *
 * THREADS: everything here runs in the control thread, but control_start
 * and control_stop (main).  It takes the hub lock (hub_revoke) and the
 * revocation table's lock, never both at once.
 */
#include "autoconf.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <unistd.h>

#include "answers.h"
#include "cluster.h"
#include "config.h"
#include "control.h"
#include "control_int.h"
#include "hub_revoke.h"
#include "log.h"
#include "presence.h"
#include "revoke.h"
#include "stats.h"
#include "slot.h"
#include "util.h"



/* a revocation new to this instance: end its open streams */
static void
control_apply(struct control *ctl, const char *name, size_t len,
    uint64_t since_ms)
{
	size_t	 n;

	n = hub_revoke(ctl->hub, name, len, (time_t)(since_ms / 1000));
	STATS_ADD(revocations, 1);
	STATS_ADD(revoked_streams, n);
	log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("channel", name),
	    LOG_NUM("streams", n)), "revoke: %.*s: %zu open streams ended",
	    (int)len, name, n);
}

static redisContext *
control_connect(struct control *ctl, const struct control_node *n,
    int select_db)
{
	const struct redis_url	*u = &ctl->cfg->redis_url;
	struct timeval		 tv;
	redisContext		*c;
	redisReply		*r;

	tv.tv_sec = ctl->cfg->redis_timeout_ms / 1000;
	tv.tv_usec = (ctl->cfg->redis_timeout_ms % 1000) * 1000;
	c = n->port == 0 ? redisConnectUnixWithTimeout(u->path, tv) :
	    redisConnectWithTimeout(n->host, n->port, tv);
	if (c == NULL)
		return NULL;
	if (c->err)
		goto bad;
	redisSetTimeout(c, tv);
	if (u->password != NULL) {
		r = u->user != NULL ? redisCommand(c, "AUTH %s %s", u->user,
		    u->password) : redisCommand(c, "AUTH %s", u->password);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			freeReplyObject(r);
			goto bad;
		}
		freeReplyObject(r);
	}
	if (select_db && u->db != 0) {
		r = redisCommand(c, "SELECT %d", u->db);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			freeReplyObject(r);
			goto bad;
		}
		freeReplyObject(r);
	}
	return c;
bad:
	redisFree(c);
	return NULL;
}

/* the primaries to use, into ctl->nodes: 0, or -1 */
static int
control_find_nodes(struct control *ctl)
{
	const struct config	*cfg = ctl->cfg;
	struct util_addr	 a[CONTROL_NODES_MAX];
	struct control_node	 probe;
	redisContext		*c;

	redisReply		*r;
	char			 err[256];
	size_t			 n, i, k;
	int			 found = 0;

	ctl->nnodes = 0;
	if (cfg->redis_cluster == NULL && cfg->redis_sentinel == NULL) {
		if (cfg->redis_url.is_unix)
			ctl->nodes[0].port = 0;
		else {
			snprintf(ctl->nodes[0].host, UTIL_HOST_MAX, "%s",
			    cfg->redis_url.host);
			ctl->nodes[0].port = cfg->redis_url.port;
		}
		ctl->nnodes = 1;
		return 0;
	}
	if (util_parse_addrs(cfg->redis_cluster != NULL ? cfg->redis_cluster :
	    cfg->redis_sentinel, a, CONTROL_NODES_MAX, &n, err,
	    sizeof(err)) == -1)
		return -1;
	for (i = 0; i < n && !found; i++) {
		memset(&probe, 0, sizeof(probe));
		snprintf(probe.host, sizeof(probe.host), "%.*s",
		    (int)sizeof(probe.host) - 1, a[i].host);
		probe.port = a[i].port;
		if (cfg->redis_sentinel != NULL) {
			struct timeval tv = { cfg->redis_timeout_ms / 1000,
			    (cfg->redis_timeout_ms % 1000) * 1000 };

			if ((c = redisConnectWithTimeout(a[i].host, a[i].port,
			    tv)) == NULL)
				continue;
			if (c->err) {
				redisFree(c);
				continue;
			}
			redisSetTimeout(c, tv);
			if (cfg->sentinel_password != NULL) {
				r = redisCommand(c, "AUTH %s",
				    cfg->sentinel_password);
				freeReplyObject(r);
			}
			r = redisCommand(c, "SENTINEL get-master-addr-by-name "
			    "%s", cfg->redis_sentinel_master);
			if (r != NULL && answers_sentinel_master(r,
			    ctl->nodes[0].host, UTIL_HOST_MAX,
			    &ctl->nodes[0].port) == ANSWERS_MASTER_AT) {
				ctl->nnodes = 1;
				found = 1;
			}
			freeReplyObject(r);
			redisFree(c);
			continue;
		}
		if ((c = control_connect(ctl, &probe, 0)) == NULL)
			continue;
		r = redisCommand(c, "CLUSTER SLOTS");
		if (r != NULL && answers_cluster_slots(&ctl->map, r, a[i].host, err,
		    sizeof(err)) == 0 && ctl->map.nprimaries > 0) {
			ctl->have_map = 1;
			for (k = 0; k < ctl->map.nprimaries &&
			    k < CONTROL_NODES_MAX; k++) {
				snprintf(ctl->nodes[k].host, UTIL_HOST_MAX,
				    "%s", ctl->map.primaries[k].host);
				ctl->nodes[k].port = ctl->map.primaries[k].port;
			}
			ctl->nnodes = k;
			found = 1;
		}
		freeReplyObject(r);
		redisFree(c);
	}
	return found ? 0 : -1;
}

static void
control_down(struct control *ctl)
{
	size_t	 i;

	for (i = 0; i < CONTROL_NODES_MAX; i++) {
		if (ctl->nodes[i].cmd != NULL)
			redisFree(ctl->nodes[i].cmd);
		if (ctl->nodes[i].sub != NULL)
			redisFree(ctl->nodes[i].sub);
		ctl->nodes[i].cmd = ctl->nodes[i].sub = NULL;
		ctl->nodes[i].announced = 0;
	}
	ctl->up = 0;
}

/* every revocation key of node n, appended to *e (grown) */
static int
control_scan(struct control *ctl, struct control_node *n,
    struct revoke_entry **e, size_t *ne, size_t *cap)
{
	redisReply		*r, *g, *keys;
	char			 cursor[32] = "0";
	unsigned long long	 since, until;
	const char		*v, *ch;
	char			*end;
	size_t			 i;
	int			 ok = -1;

	do {
		r = redisCommand(n->cmd, "SCAN %s MATCH sserelay:*:r COUNT "
		    CONTROL_SCAN_COUNT, cursor);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
		    r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY)
			goto bad;
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		keys = r->element[1];
		for (i = 0; i < keys->elements; i++)
			redisAppendCommand(n->cmd, "GET %b",
			    keys->element[i]->str, keys->element[i]->len);
		for (i = 0; i < keys->elements; i++) {
			if (redisGetReply(n->cmd, (void **)&g) != REDIS_OK)
				goto bad;
			/* "<since_ms>:<until_ms>:<channel>" */
			if (g->type == REDIS_REPLY_STRING) {
				v = g->str;
				since = strtoull(v, &end, 10);
				if (*end == ':') {
					until = strtoull(end + 1, &end, 10);
					ch = end + 1;
					if (*end == ':' && *ch != '\0') {
						if (*ne == *cap) {
							struct revoke_entry *m;

							*cap = *cap ? *cap * 2 : 16;
							if ((m = realloc(*e, *cap *
							    sizeof(**e))) == NULL) {
								freeReplyObject(g);
								goto bad;
							}
							*e = m;
						}
						(*e)[*ne].len = g->len -
						    (size_t)(ch - v);
						if (((*e)[*ne].name = malloc(
						    (*e)[*ne].len + 1)) == NULL) {
							freeReplyObject(g);
							goto bad;
						}
						memcpy((*e)[*ne].name, ch,
						    (*e)[*ne].len + 1);
						(*e)[*ne].since_ms = since;
						(*e)[*ne].until_ms = until;
						(*ne)++;
					}
				}
			}
			freeReplyObject(g);
		}
		freeReplyObject(r);
		r = NULL;
	} while (strcmp(cursor, "0") != 0);
	ok = 0;
bad:
	freeReplyObject(r);
	return ok;
}

/* read every revocation key; apply what is new */
static int
control_sync(struct control *ctl)
{
	struct revoke_entry	*e = NULL;
	size_t			 ne = 0, cap = 0, i;
	int			*fresh = NULL, r = -1;

	for (i = 0; i < ctl->nnodes; i++)
		if (control_scan(ctl, &ctl->nodes[i], &e, &ne, &cap) == -1)
			goto done;
	if ((fresh = calloc(ne ? ne : 1, sizeof(*fresh))) == NULL ||
	    revoke_sync(e, ne, fresh, revoke_now_ms()) == -1)
		goto done;
	for (i = 0; i < ne; i++)
		if (fresh[i])
			control_apply(ctl, e[i].name, e[i].len, e[i].since_ms);
	r = 0;
done:
	for (i = 0; i < ne; i++)
		free(e[i].name);
	free(e);
	free(fresh);
	return r;
}



/* connect, load, subscribe, read: 0 when up */
static int
control_up(struct control *ctl)
{
	struct control_node	*n;
	redisReply		*r;
	size_t			 i;
	int			 cluster = ctl->cfg->redis_cluster != NULL;

	if (control_find_nodes(ctl) == -1)
		return -1;
	for (i = 0; i < ctl->nnodes; i++) {
		n = &ctl->nodes[i];
		if ((n->cmd = control_connect(ctl, n, !cluster)) == NULL ||
		    (n->sub = control_connect(ctl, n, !cluster)) == NULL)
			return -1;
		r = redisCommand(n->cmd, "FUNCTION LOAD REPLACE %b",
		    control_lua, control_lua_len);
		if (r == NULL)
			return -1;
		if (r->type == REDIS_REPLY_ERROR && !ctl->no_functions) {
			ctl->no_functions = 1;
			log_kv(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("redis",
			    n->host)), "control: FUNCTION LOAD at %s:%d: %s "
			    "(revocation needs Redis 7 Functions)", n->host,
			    n->port, r->str);
		}
		freeReplyObject(r);
		r = redisCommand(n->sub, "SUBSCRIBE " CONTROL_CHANNEL);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return -1;
		}
		freeReplyObject(r);
		n->rx_ms = n->ping_ms = util_now_ms();
	}
	if (control_sync(ctl) == -1)
		return -1;
	ctl->up = 1;
	ctl->presence_sent = 0;		/* send everything again */
	return 0;
}

static void
control_message(struct control *ctl, const redisReply *m)
{
	unsigned long long	 since, until;
	const char		*ch;
	size_t			 chlen;
	char			 op;

	if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 ||
	    m->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(m->element[0]->str, "message") != 0 ||
	    m->element[2]->type != REDIS_REPLY_STRING)
		return;		/* subscribe confirmations, pongs */
	if (revoke_parse(m->element[2]->str, m->element[2]->len, &op, &since,
	    &until, &ch, &chlen) == -1) {
		log_debug("control: not an announcement on " CONTROL_CHANNEL);
		return;
	}
	if (op == 'u') {
		if (revoke_remove(ch, chlen))
			log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("channel",
			    ch)), "revoke: %.*s: revocation ended early",
			    (int)chlen, ch);
		return;
	}
	if (revoke_add(ch, chlen, since, until, revoke_now_ms()) == 1)
		control_apply(ctl, ch, chlen, since);
}

/* one pass over the subscribed connections: -1 when one is lost */
static int
control_poll(struct control *ctl)
{
	struct pollfd		 pfd[CONTROL_NODES_MAX];
	struct control_node	*n;
	redisReply		*m;
	uint64_t		 now;
	size_t			 i;
	int			 done;

	for (i = 0; i < ctl->nnodes; i++) {
		pfd[i].fd = ctl->nodes[i].sub->fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	if (poll(pfd, ctl->nnodes, CONTROL_POLL_MS) == -1 && errno != EINTR)
		return -1;
	now = util_now_ms();
	for (i = 0; i < ctl->nnodes; i++) {
		n = &ctl->nodes[i];
		if (pfd[i].revents != 0) {
			if (redisBufferRead(n->sub) != REDIS_OK)
				return -1;
			n->rx_ms = now;
			for (;;) {
				m = NULL;
				if (redisGetReplyFromReader(n->sub,
				    (void **)&m) != REDIS_OK)
					return -1;
				if (m == NULL)
					break;
				control_message(ctl, m);
				freeReplyObject(m);
			}
		}
		if (now - n->ping_ms >= CONTROL_PING_MS) {
			n->ping_ms = now;
			redisAppendCommand(n->sub, "PING");
			do {
				if (redisBufferWrite(n->sub, &done) !=
				    REDIS_OK)
					return -1;
			} while (!done);
		}
		if (now - n->rx_ms > CONTROL_PING_MS +
		    ctl->cfg->redis_timeout_ms)
			return -1;
	}
	return 0;
}

static void *
control_main(void *arg)
{
	struct control	*ctl = arg;
	uint64_t	 now;

	pthread_setname_np(pthread_self(), "sserelay-ctl");
	while (!atomic_load(&ctl->stop)) {
		now = util_now_ms();
		if (!ctl->up && now >= ctl->retry_ms) {
			if (control_up(ctl) == 0) {
				if (ctl->warned)
					log_info("control: Redis is back; "
					    "revocations read again");
				ctl->warned = 0;
			} else {
				control_down(ctl);
				if (!ctl->warned)
					log_warnx("control: cannot reach Redis; "
					    "trying every second");
				ctl->warned = 1;
				ctl->retry_ms = now + CONTROL_RETRY_MS;
			}
			if (!ctl->first_done) {
				pthread_mutex_lock(&ctl->first_lock);
				ctl->first_done = 1;
				pthread_cond_signal(&ctl->first_cond);
				pthread_mutex_unlock(&ctl->first_lock);
			}
		}
		if (ctl->up) {
			if (control_poll(ctl) == -1 ||
			    control_presence(ctl, util_now_ms()) == -1) {
				control_down(ctl);
				log_warnx("control: a Redis connection was "
				    "lost; reconnecting");
				ctl->warned = 1;
				ctl->retry_ms = util_now_ms() +
				    CONTROL_RETRY_MS;
			}
		} else
			poll(NULL, 0, CONTROL_POLL_MS);
		if (now >= ctl->expire_ms) {
			revoke_expire(revoke_now_ms());
			ctl->expire_ms = now + 1000;
		}
	}
	/* the streams are closed by now: their counts go to Redis */
	if (ctl->up && control_presence(ctl, util_now_ms()) == -1)
		log_warnx("presence: the last counts could not be sent");
	control_down(ctl);
	return NULL;
}

struct control *
control_start(const struct config *cfg, struct hub *hub, char *err,
    size_t errlen)
{
	struct control	*ctl;
	int		 e;

	if ((ctl = calloc(1, sizeof(*ctl))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ctl->cfg = cfg;
	ctl->hub = hub;
	cluster_map_init(&ctl->map);
	TAILQ_INIT(&ctl->leaves);
	{
		char	 host[24] = "";

		gethostname(host, sizeof(host) - 1);
		snprintf(ctl->instance, sizeof(ctl->instance), "%s:%d:%08x",
		    host, (int)getpid(), util_random());
	}
	pthread_mutex_init(&ctl->first_lock, NULL);
	pthread_cond_init(&ctl->first_cond, NULL);
	if ((e = pthread_create(&ctl->thread, NULL, control_main, ctl)) !=
	    0) {
		snprintf(err, errlen, "control thread: %s", strerror(e));
		free(ctl);
		return NULL;
	}
	/*
	 * No stream is admitted before the revocations in force are read
	 * (or Redis was found unreachable): an instance started after a
	 * revocation refuses from its first request.
	 */
	pthread_mutex_lock(&ctl->first_lock);
	while (!ctl->first_done)
		pthread_cond_wait(&ctl->first_cond, &ctl->first_lock);
	pthread_mutex_unlock(&ctl->first_lock);
	return ctl;
}

void
control_stop(struct control *ctl)
{
	struct control_leave	*l;

	if (ctl == NULL)
		return;
	atomic_store(&ctl->stop, 1);
	pthread_join(ctl->thread, NULL);
	revoke_clear();
	presence_clear();
	while ((l = TAILQ_FIRST(&ctl->leaves)) != NULL) {
		TAILQ_REMOVE(&ctl->leaves, l, entry);
		control_leave_free(l);
	}
	cluster_map_free(&ctl->map);
	pthread_mutex_destroy(&ctl->first_lock);
	pthread_cond_destroy(&ctl->first_cond);
	free(ctl);
}
