/*
 * control.h - the control thread (sserelay-ctl): revocations (and
 * presence) shared through Redis by every instance.
 *
 * It has its own Redis connections, apart from the broker's, so nothing
 * here ever holds up a message: per primary (one; or each of a cluster's)
 * a command connection, which loads the Function library src/control.lua
 * and reads keys, and a connection subscribed to the announcements
 * (sserelay:control).  See control.c for the design.
 */
#ifndef SSERELAY_CONTROL_H
#define SSERELAY_CONTROL_H

#include <stddef.h>

struct config;
struct hub;
struct control;

/* starts the thread; NULL with err if it cannot (out of memory) */
struct control	*control_start(const struct config *, struct hub *,
		    char *err, size_t errlen);
void		 control_stop(struct control *);

#endif
