/*
 * ring.c - bounded FIFO of frame references.  Not locked: see ring.h.
 */
#include "autoconf.h"

#include <stdlib.h>

#include "frame.h"
#include "ring.h"

int
ring_init(struct ring *r, size_t cap)
{
	if (cap == 0)
		cap = 1;
	r->size = cap < RING_INITIAL ? cap : RING_INITIAL;
	if ((r->slot = calloc(r->size, sizeof(*r->slot))) == NULL)
		return -1;
	r->cap = cap;
	r->head = r->count = 0;
	return 0;
}

void
ring_free(struct ring *r)
{
	struct frame	*f;

	if (r->slot == NULL)
		return;
	while ((f = ring_pop(r)) != NULL)
		frame_unref(f);
	free(r->slot);
	r->slot = NULL;
	r->cap = r->size = 0;
}

/* double the slots, unwrapping the queue to the front of the new array */
static int
ring_grow(struct ring *r)
{
	struct frame	**slot;
	size_t		  size = r->size * 2, i;

	if (size > r->cap)
		size = r->cap;
	if ((slot = calloc(size, sizeof(*slot))) == NULL)
		return -1;
	for (i = 0; i < r->count; i++)
		slot[i] = r->slot[(r->head + i) % r->size];
	free(r->slot);
	r->slot = slot;
	r->size = size;
	r->head = 0;
	return 0;
}

int
ring_push(struct ring *r, struct frame *f)
{
	if (r->count == r->cap)
		return -1;
	if (r->count == r->size && ring_grow(r) == -1)
		return -1;
	r->slot[(r->head + r->count) % r->size] = frame_ref(f);
	r->count++;
	return 0;
}

struct frame *
ring_pop(struct ring *r)
{
	struct frame	*f;

	if (r->count == 0)
		return NULL;
	f = r->slot[r->head];
	r->slot[r->head] = NULL;
	r->head = (r->head + 1) % r->size;
	r->count--;
	return f;
}

struct frame *
ring_pop_newest(struct ring *r)
{
	struct frame	*f;
	size_t		 i;

	if (r->count == 0)
		return NULL;
	i = (r->head + r->count - 1) % r->size;
	f = r->slot[i];
	r->slot[i] = NULL;
	r->count--;
	return f;
}

struct frame *
ring_peek(const struct ring *r)
{
	return r->count ? r->slot[r->head] : NULL;
}

size_t
ring_count(const struct ring *r)
{
	return r->count;
}

int
ring_full(const struct ring *r)
{
	return r->count == r->cap;
}
