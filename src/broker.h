/*
 * broker.h - the Redis thread: the one hiredis subscriber connection.
 *
 * It owns the connection, runs the get_message loop (poll with a short
 * timeout, one read, drain the reader) and hands each batch of messages
 * to the hub.  It never blocks on a client.  Other threads reach it only
 * through its mailbox; it publishes its state in stats (redis_up,
 * redis_messages, redis_reconnects).
 */
#ifndef SSERELAY_BROKER_H
#define SSERELAY_BROKER_H

#include <stddef.h>

struct config;
struct hub;
struct mailbox;
struct broker;

/*
 * Before the thread starts, what can be known wrong at once: a master name
 * no reachable sentinel knows, a cluster seed that is no cluster node.
 * Unreachable servers are not an error (they may be starting): the broker
 * retries them.  0, or -1 with err.  Blocks up to --redis-timeout per
 * server asked.
 */
int		 broker_check(const struct config *, char *err, size_t errlen);
/* the mailbox is the caller's; broker_stop() uses it to wake the thread */
struct broker	*broker_start(const struct config *, struct hub *,
		    struct mailbox *, char *err, size_t errlen);
void		 broker_stop(struct broker *);

#endif
