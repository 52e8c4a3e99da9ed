/*
 * broker.h - the Redis thread: the one hiredis subscriber connection.
 *
 * It owns the connection, runs the get_message loop (poll with a short
 * timeout, one read, drain the reader), encodes each message once into a
 * frame, fans it out through the hub, queues heartbeats and wakes streams.
 * It never blocks on a client.
 */
#ifndef SSERELAY_BROKER_H
#define SSERELAY_BROKER_H

#include <stdatomic.h>

struct config;
struct hub;
struct broker;

struct broker_stats {
	atomic_int	 redis_up;
	atomic_ulong	 messages;	/* pmessages received */
	atomic_ulong	 reconnects;
};

struct broker	*broker_start(const struct config *, struct hub *,
		    char *err, size_t errlen);
void		 broker_stop(struct broker *);
struct broker_stats *broker_stats(struct broker *);

#endif
