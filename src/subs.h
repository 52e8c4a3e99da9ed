/*
 * subs.h - exact subscriptions: which channels the broker subscribes, and
 * when it lets go of them.
 *
 * The hub says when a channel gets its first local stream and when it
 * loses its last (mailbox.h); this module turns that into SUBSCRIBE and
 * UNSUBSCRIBE commands, batched (one command for many channels), and
 * follows Redis's confirmations.  A channel without streams is kept
 * subscribed for the linger (by default the history TTL), so that a
 * client coming back within it still resumes from local history; then it
 * is unsubscribed.  When a connection is lost, every channel it carried is
 * lost: the wanted ones are subscribed again, in batches, on the next one.
 *
 * Each channel is "on" a node (an index the broker gives: 0 with one
 * Redis, a cluster primary's number in a cluster) so that losing one node
 * loses only its channels.
 *
 * Pure bookkeeping, no I/O: the broker sends the commands subs_flush()
 * hands it and reports the confirmations.  THREADS: the broker thread only.
 */
#ifndef SSERELAY_SUBS_H
#define SSERELAY_SUBS_H

#include <stddef.h>
#include <stdint.h>

struct subs;

/* what the hub is told about a channel (see hub_channels) */
enum subs_event {
	SUBS_SUBSCRIBED = 0,	/* Redis confirmed: messages flow from now */
	SUBS_UNSUBSCRIBED,	/* we let go of it (linger over) */
	SUBS_LOST,		/* its connection went away while subscribed */
};

struct subs_stats {
	uint64_t	 channels;	/* subscribed (confirmed) now */
	uint64_t	 subscribe_cmds;
	uint64_t	 unsubscribe_cmds;
};

/*
 * The broker's side, called back from subs_flush and the others:
 * route: which node a channel goes to now and its group (one command
 *   names channels of one group only: a slot under sharded pub/sub);
 *   -1 if there is no connection for it yet.
 * emit: send one command for channels[0..n) of one node and group,
 *   subscribe 1 or 0; 0 if sent, -1 if not (tried again later).
 * notify: tell the hub what happened to channels.
 */
struct subs_ops {
	int	(*route)(void *arg, const char *, size_t, int *node,
		    unsigned *group);
	int	(*emit)(void *arg, int node, int subscribe,
		    const char **channels, const size_t *lens, size_t n);
	void	(*notify)(void *arg, enum subs_event, const char **channels,
		    const size_t *lens, size_t n);
};

struct subs	*subs_new(unsigned linger_ms, size_t batch,
		    const struct subs_ops *, void *arg);
void		 subs_free(struct subs *);
void		 subs_set_linger(struct subs *, unsigned linger_ms);

/* the hub's interest: want 1 (first stream) or 0 (last one gone) */
int		 subs_want(struct subs *, const char *, size_t, int want,
		    uint64_t now_ms);
/*
 * Send what is due: subscriptions asked for, unsubscriptions whose linger
 * is over.  Commands of one kind are batched up to the batch size.
 */
void		 subs_flush(struct subs *, uint64_t now_ms);
/* ms until a linger ends, UINT64_MAX if none */
uint64_t	 subs_next_ms(const struct subs *, uint64_t now_ms);
/*
 * Redis's answer for one channel of a command sent on node: subscribed 1
 * ("subscribe") or 0 ("unsubscribe", also when Redis takes the channel
 * away by itself, as a sharded primary does when its slot moves).
 * 0, or -1 when no command of ours was waiting for it (then nothing
 * changes but what Redis said).
 */
int		 subs_confirmed(struct subs *, int node, const char *, size_t,
		    int subscribed);
/*
 * A command was refused (-MOVED, -CLUSTERDOWN, an ACL ...): its channels
 * are no longer in flight and are tried again at retry_ms or after.
 */
void		 subs_refused(struct subs *, int subscribe, const char **,
		    const size_t *, size_t n, uint64_t retry_ms);
/* node's connection is gone (node -1: every node) */
void		 subs_lost(struct subs *, int node);
/* how many channels are wanted (have local streams or linger) */
size_t		 subs_count(const struct subs *);
void		 subs_get_stats(const struct subs *, struct subs_stats *);

#endif
