/*
 * broker_int.h - the broker's insides, shared by its files (broker.h is
 * what the rest of the daemon sees).
 *
 *   broker.c		the thread: poll loop, mail, redis_up, start, stop
 *   broker_batch.c	messages and channel events, handed to the hub in
 *			batches, in the order read
 *   broker_node.c	one Redis server subscribed on: connect, backoff,
 *			lost and found
 *   broker_subs.c	what a node subscribes, and the answers
 *   broker_history.c	--history redis: reads routed to their node
 *   broker_single.c	the topologies, one table of operations each
 *   broker_sentinel.c	(struct broker_topology), chosen once at start:
 *   broker_cluster.c	nothing else asks which topology it runs
 *
 * THREADS: the broker thread only, but broker_start/broker_stop/
 * broker_check (main).
 */
#ifndef SSERELAY_BROKER_INT_H
#define SSERELAY_BROKER_INT_H

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "cluster.h"
#include "link.h"
#include "subs.h"
#include "util.h"

struct broker;
struct broker_node;
struct cmdlink;
struct config;
struct durable_read;
struct hub;
struct hub_message;
struct mailbox;
struct sentinel;

#define BROKER_BACKOFF_MIN_MS		100
#define BROKER_BACKOFF_MAX_MS		5000
#define BROKER_REFUSED_MAX_MS		1000
#define BROKER_BATCH_CHANNELS		500	/* named in one command */
#define BROKER_RETRY_MS			1000	/* a refused channel */
#define BROKER_MOVED_RETRY_MS		50	/* a moved one: after the map */
#define BROKER_CLUSTER_REFRESH_MS	10000
#define BROKER_CLUSTER_FAILING_MS	500	/* while a primary is down */

/*
 * What differs between one Redis, Sentinel and Cluster: where a channel
 * is subscribed, what a node does once connected, what a loss means, what
 * else the loop waits for.  Every function is set but where said.
 */
struct broker_topology {
	const char	*name;
	/* the (un)subscribe commands: SUBSCRIBE or SSUBSCRIBE */
	const char	*subscribe;
	const char	*unsubscribe;
	/* logged when a node subscribes exact channels; NULL: the count */
	const char	*label;
	/* a ready node dropped on purpose (kill) counts as a reconnect */
	int		 kill_is_outage;
	/* publishers use SPUBLISH (the history library's publish) */
	int		 spublish;
	/* make the nodes known at start; 0, or -1 with err */
	int		(*start)(struct broker *, char *err, size_t errlen);
	/* before the thread starts: see broker_check() */
	int		(*check)(const struct config *, char *err,
			    size_t errlen);
	/*
	 * Route: the node a channel is subscribed on (NULL: none yet) and
	 * its group (channels of one group go in one command).
	 */
	struct broker_node *(*route)(struct broker *, const char *, size_t,
			    unsigned *group);
	/* the node that serves a channel's history, NULL for now */
	struct broker_node *(*history_node)(struct broker *, const char *,
			    size_t);
	/*
	 * A node's handshake is done: subscribe (broker_subs_start), or ask
	 * it something first (set role_check); checked gets the answer.
	 */
	void		(*ready)(struct broker *, struct broker_node *);
	void		(*checked)(struct broker *, struct broker_node *,
			    redisReply *);
	/* a node went down (backoff set): what to ask, when to go again */
	void		(*down)(struct broker *, struct broker_node *,
			    uint64_t now);
	/*
	 * Redis says the routes are old (MOVED, a channel it let go of by
	 * itself); NULL where routes never change.
	 */
	void		(*reroute)(struct broker *, uint64_t now);
	/* with exact subscriptions: 1 if Redis counts as up */
	int		(*up)(struct broker *);
	/* each pass, before poll: connections of its own, timers */
	void		(*step)(struct broker *, uint64_t now);
	/*
	 * What to wait for besides the nodes: fill pfd (at most
	 * BROKER_TOPOLOGY_FDS), lower *wait; then handle them after poll.
	 */
	size_t		(*pollfds)(struct broker *, struct pollfd *,
			    uint64_t now, uint64_t *wait);
	void		(*handle)(struct broker *, const struct pollfd *,
			    size_t, uint64_t now);
};

#define BROKER_TOPOLOGY_FDS	2

extern const struct broker_topology broker_single;
extern const struct broker_topology broker_sentinel;
extern const struct broker_topology broker_cluster_sharded;
extern const struct broker_topology broker_cluster_classic;

/* broker_single.c: one node, shared with Sentinel */
struct broker_node *broker_single_route(struct broker *, const char *,
		    size_t, unsigned *);
struct broker_node *broker_single_history_node(struct broker *,
		    const char *, size_t);
int		 broker_single_up(struct broker *);
void		 broker_single_nothing(struct broker *, uint64_t);

/* an (un)subscribe command sent, waiting for its answers */
struct broker_sent {
	TAILQ_ENTRY(broker_sent) entry;
	int			 subscribe;	/* 1, 0 */
	size_t			 n;		/* channels named */
	size_t			 answered;
	char			**names;
	size_t			*lens;
};

TAILQ_HEAD(broker_sent_list, broker_sent);

/* how a node stands; redis_up and the "lost" warnings follow it */
enum broker_node_health {
	BROKER_NODE_NEW = 0,	/* not subscribed yet, nothing failed */
	BROKER_NODE_FAILED,	/* failed since it last subscribed (said) */
};

/* one Redis server the broker subscribes on */
struct broker_node {
	TAILQ_ENTRY(broker_node) entry;
	struct broker		*b;
	int			 id;		/* subs.h's node */
	struct link_target	 target;
	char			 host[UTIL_HOST_MAX];
	struct link		*link;		/* NULL between attempts */
	int			 ready;		/* subscribed as it should be */
	int			 ever_ready;
	int			 kill;		/* drop the link at the check */
	int			 known;		/* its address is known */
	int			 role_check;	/* sentinel: ROLE asked */
	int			 wanted;	/* keep it connected */
	int			 stale;		/* cluster: not a primary now */
	enum broker_node_health	 health;
	unsigned		 attempts;	/* failed connects in a row */
	uint64_t		 next_attempt_ms;
	unsigned		 patterns_waiting; /* PSUBSCRIBE answers */
	struct broker_sent_list	 sent;		/* unanswered, oldest first */
	struct cmdlink		*history;	/* --history redis */
};

TAILQ_HEAD(broker_nodes, broker_node);

/* a channel of a history read that waits for its node */
struct broker_history_wait {
	TAILQ_ENTRY(broker_history_wait) entry;
	struct durable_read	*r;
	size_t			 i;
};

TAILQ_HEAD(broker_history_waits, broker_history_wait);

struct broker {
	const struct config	*cfg;
	const struct broker_topology *topo;
	struct hub		*hub;
	struct mailbox		*mailbox;
	pthread_t		 thread;
	atomic_int		 stop;

	struct broker_nodes	 nodes;
	int			 next_id;
	struct subs		*subs;		/* exact subscriptions */
	struct sentinel		*sentinel;

	/* cluster */
	struct cluster_map	 map;
	int			 map_ok;
	struct util_addr	 seeds[UTIL_SEEDS_MAX];
	size_t			 nseeds;
	struct link		*control;	/* CLUSTER SLOTS, while asked */
	char			 control_host[UTIL_HOST_MAX];
	size_t			 control_next;	/* candidate to ask next */
	enum link_question	 control_q;
	uint64_t		 next_refresh_ms;
	int			 map_failing;	/* no candidate answered */
	struct broker_node	*classic;	/* cluster classic: the node */

	/* --history redis */
	char			*library;
	char			*library_version;
	struct broker_history_waits unrouted;	/* no node for them yet */

	redisReply		**batch;	/* message replies of one read */
	struct hub_message	*msgs;		/* their messages */
	size_t			 nbatch, batch_cap;
	/* channel events of one read, in a run of one kind */
	enum subs_event		 ev;
	char			**ev_names;
	size_t			*ev_lens;
	size_t			 nev, ev_cap;
	int			 up;		/* what redis_up says now */
};

/* broker_batch.c */
int		 broker_batch_init(struct broker *);
void		 broker_batch_free(struct broker *);
void		 broker_batch_message(struct broker *, redisReply *,
		    const char *channel, size_t, const char *payload, size_t);
void		 broker_batch_flush(struct broker *);
void		 broker_batch_events(struct broker *);
void		 broker_batch_notify(void *, enum subs_event, const char **,
		    const size_t *, size_t);

/* broker_node.c */
struct broker_node *broker_node_new(struct broker *, const char *host,
		    int port);
void		 broker_node_free(struct broker *, struct broker_node *);
struct broker_node *broker_node_find(struct broker *, const char *, int);
struct broker_node *broker_node_by_id(struct broker *, int);
void		 broker_node_address(struct broker_node *, const char *, int);
int		 broker_node_may_connect(const struct broker_node *);
void		 broker_node_connect(struct broker *, struct broker_node *,
		    uint64_t now);
void		 broker_node_check(struct broker *, struct broker_node *,
		    uint64_t now);
void		 broker_node_close(struct broker_node *);

/* broker_subs.c */
extern const struct subs_ops broker_subs_ops;
void		 broker_subs_start(struct broker *, struct broker_node *);
void		 broker_subs_clear(struct broker_node *);
void		 broker_subs_reply(void *, struct link *, redisReply *);

/* broker_history.c */
void		 broker_history_post(struct broker *, struct durable_read *);
void		 broker_history_connect(struct broker *, struct broker_node *);
void		 broker_history_unroute(void *, struct durable_read *, size_t);
void		 broker_history_retry(struct broker *);
void		 broker_history_fail(struct broker *);

#endif
