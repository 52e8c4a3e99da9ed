/*
 * ring.h - bounded FIFO of frame references, one per stream.
 *
 * Not locked: the owner (struct stream) serialises access with its mutex.
 * A slot holds one reference to its frame (see frame.h).
 */
#ifndef SSERELAY_RING_H
#define SSERELAY_RING_H

#include <stddef.h>

struct frame;

struct ring {
	struct frame	**slot;
	size_t		  size;		/* slots allocated */
	size_t		  cap;		/* most slots it may grow to */
	size_t		  head;		/* next to pop */
	size_t		  count;
};

/*
 * Slots are allocated on demand, RING_INITIAL first, doubling up to cap:
 * an idle stream costs a few pointers, not cap of them.
 */
#define RING_INITIAL	8

int		 ring_init(struct ring *, size_t cap);
/* drops every reference still queued, then frees the slots */
void		 ring_free(struct ring *);
/*
 * takes a new reference on success; -1 (and no reference) when full, or
 * when growing failed for want of memory
 */
int		 ring_push(struct ring *, struct frame *);
/* hands the slot's reference to the caller; NULL when empty */
struct frame	*ring_pop(struct ring *);
/* the newest slot's reference, to take back a push; NULL when empty */
struct frame	*ring_pop_newest(struct ring *);
struct frame	*ring_peek(const struct ring *);
size_t		 ring_count(const struct ring *);
int		 ring_full(const struct ring *);

#endif
