/*
 * sentinel.h - where the Redis master is, according to Redis Sentinel.
 *
 * With --redis-sentinel the daemon does not connect to a fixed address:
 * it asks the sentinels (SENTINEL get-master-addr-by-name NAME), one after
 * the other until one answers, and connects there; after every loss it
 * asks again instead of retrying an address that may be a demoted or dead
 * server.  One sentinel connection stays subscribed to +switch-master, so
 * a failover is known the moment the sentinels decide it, not when a PING
 * times out.
 *
 * Everything goes through link.c, in the broker's poll loop: no call here
 * blocks, but sentinel_probe(), used once at startup.
 *
 * THREADS: the broker thread only (sentinel_probe: main, before it starts).
 */
#ifndef SSERELAY_SENTINEL_H
#define SSERELAY_SENTINEL_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

struct sentinel;

struct sentinel_ops {
	/* the master is at host:port (an answer to sentinel_resolve) */
	void	(*master)(void *arg, const char *host, int port);
	/* the sentinels failed over NAME to host:port */
	void	(*switched)(void *arg, const char *host, int port);
};

/*
 * addrs: "HOST:PORT[,HOST:PORT...]"; password: the sentinels' own (NULL:
 * none).  NULL with err set if addrs cannot be read.
 */
struct sentinel	*sentinel_new(const char *addrs, const char *name,
		    const char *password, unsigned timeout_ms,
		    const struct sentinel_ops *, void *arg, char *err,
		    size_t errlen);
void		 sentinel_free(struct sentinel *);
/* ask for the master (again); the answer comes through ops->master */
void		 sentinel_resolve(struct sentinel *);
/* "name at host:port, ..." for logs */
const char	*sentinel_describe(const struct sentinel *);

/*
 * The poll loop: sentinel_pollfds() fills up to 2 entries of pfd and
 * returns how many; sentinel_handle() takes them back after poll.
 */
size_t		 sentinel_pollfds(struct sentinel *, struct pollfd *);
void		 sentinel_handle(struct sentinel *, const struct pollfd *,
		    size_t n, uint64_t now_ms);
/* ms until it has something to do */
uint64_t	 sentinel_next_ms(const struct sentinel *, uint64_t now_ms);

/*
 * Startup check, blocking up to timeout_ms per sentinel: 0 when one of them
 * knows the master, or when none answered (they may be starting: the
 * daemon retries); -1 with err when the sentinels that answered all say
 * they know no master of that name.
 */
int		 sentinel_probe(const char *addrs, const char *name,
		    const char *password, unsigned timeout_ms, char *err,
		    size_t errlen);

#endif
