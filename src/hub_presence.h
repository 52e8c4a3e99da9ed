/*
 * hub_presence.h - who is on a channel, for its new streams
 * (--presence-events): the control thread reads the channel's presence
 * from Redis and the hub gives it, as "event: presence", to each stream
 * that joined the channel since the last read (control_presence.c).
 */
#ifndef SSERELAY_HUB_PRESENCE_H
#define SSERELAY_HUB_PRESENCE_H

#include <stddef.h>

struct frame;
struct hub;

/*
 * The channels with streams owed a snapshot, as copies (free them with
 * presence_names_free); those streams are now "asked": hub_presence_give
 * gives them the answer, and a stream joining later waits for the next
 * call.  0, or -1 out of memory (nothing asked).  Takes the hub lock.
 */
int		 hub_presence_owed(struct hub *, char ***names, size_t **lens,
		    size_t *n);
/*
 * f to each stream asked for the channel's snapshot; returns how many.
 * Takes the hub lock.
 */
size_t		 hub_presence_give(struct hub *, const char *channel,
		    size_t len, struct frame *f);

#endif
