/*
 * control_int.h - what the control thread's files share (control.c, its
 * connections, revocations and loop; control_presence.c, presence in
 * Redis and join/leave).  Private to them.
 */

#ifndef CONTROL_INT_H
#define CONTROL_INT_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>

#include "cluster.h"
#include "util.h"

struct config;
struct hub;

#define CONTROL_NODES_MAX	64
#define CONTROL_CHANNEL		"sserelay:control"
#define CONTROL_PING_MS		1000
#define CONTROL_RETRY_MS	1000
#define CONTROL_POLL_MS		100
#define CONTROL_SCAN_COUNT	"1000"

extern const char	 control_lua[];		/* control_lua.c */
extern const size_t	 control_lua_len;

struct control_node {
	char		 host[UTIL_HOST_MAX];
	int		 port;		/* 0: the unix socket of --redis */
	redisContext	*cmd;
	redisContext	*sub;
	uint64_t	 rx_ms;		/* sub: last byte in */
	uint64_t	 ping_ms;	/* sub: last PING out */
	unsigned	 announced;	/* cmd: publishes not answered yet */
};

/* a leave to check once the grace is over */
struct control_leave {
	TAILQ_ENTRY(control_leave) entry;
	uint64_t	 due_ms;
	char		*chan;
	size_t		 chlen;
	char		*who;
	size_t		 wlen;
};
TAILQ_HEAD(control_leaves, control_leave);

struct control {
	const struct config	*cfg;
	struct hub		*hub;
	pthread_t		 thread;
	atomic_int		 stop;
	struct control_node	 nodes[CONTROL_NODES_MAX];
	size_t			 nnodes;
	int			 up;
	int			 warned;	/* down, and said so */
	int			 no_functions;	/* said so */
	uint64_t		 retry_ms;
	uint64_t		 expire_ms;
	struct cluster_map	 map;		/* a cluster's: channel -> node */
	int			 have_map;
	/* presence */
	char			 instance[40];	/* this run's name in Redis */
	int			 presence_sent;	/* it has entries in Redis */
	uint64_t		 refresh_ms;	/* next refresh of them */
	struct control_leaves	 leaves;	/* due in order */
	pthread_mutex_t		 first_lock;	/* control_start waits */
	pthread_cond_t		 first_cond;
	int			 first_done;	/* for the first attempt */
};

/* control_presence.c: send what changed, refresh, leaves due; 0, or -1
 * when a connection failed (the thread goes down and comes up again) */
int	control_presence(struct control *, uint64_t now);
void	control_leave_free(struct control_leave *);

#endif /* CONTROL_INT_H */
