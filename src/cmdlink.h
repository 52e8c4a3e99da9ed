/*
 * cmdlink.h - a Redis server's command connection (--history redis).
 *
 * A subscribed connection can run nothing but (un)subscribe commands and
 * PING, so each server the daemon uses for the history also gets one of
 * these: it makes sure the Function library publishers call is loaded
 * (FCALL_RO sserelay_version; FUNCTION LOAD REPLACE when it is missing or
 * of another version), then runs history reads (FCALL_RO sserelay_read),
 * pipelined, answers in order.  When the connection is lost, the reads not
 * answered yet are sent again on the next one: a read is answered or it
 * waits, it is never lost.
 *
 * THREADS: the broker thread only; link.c does the I/O.
 */
#ifndef SSERELAY_CMDLINK_H
#define SSERELAY_CMDLINK_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"

struct cmdlink;
struct durable_read;

/* channel i of r has its answer (answers_history done) */
typedef void	(*cmdlink_done_fn)(void *arg, struct durable_read *,
		    size_t i);

struct cmdlink	*cmdlink_new(const struct link_target *, unsigned timeout_ms,
		    const char *library, const char *version,
		    cmdlink_done_fn, void *arg);
/* reads still queued are handed back with DURABLE_FAILED */
void		 cmdlink_free(struct cmdlink *);
/*
 * Hand the reads not answered yet to fn (for another server: a cluster
 * slot's new primary) and forget them; done is not called for them.
 */
void		 cmdlink_drain(struct cmdlink *, void (*fn)(void *,
		    struct durable_read *, size_t), void *arg);
/* queue channel i of r */
int		 cmdlink_read(struct cmdlink *, struct durable_read *, size_t i);
/* 1 once the library is loaded and reads flow */
int		 cmdlink_ready(const struct cmdlink *);
const char	*cmdlink_name(const struct cmdlink *);

/* the poll loop, as link.h: 0 or 1 fd */
size_t		 cmdlink_pollfd(struct cmdlink *, struct pollfd *);
void		 cmdlink_handle(struct cmdlink *, short revents,
		    uint64_t now_ms);
uint64_t	 cmdlink_next_ms(const struct cmdlink *, uint64_t now_ms);

#endif
