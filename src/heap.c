/*
 * heap.c - binary min-heap of deadlines.  See heap.h.
 */
#include "autoconf.h"

#include <stdlib.h>

#include "heap.h"

void
heap_init(struct heap *h)
{
	h->node = NULL;
	h->n = h->size = 0;
}

void
heap_free(struct heap *h)
{
	free(h->node);
	heap_init(h);
}

static void
heap_put(struct heap *h, size_t i, struct heap_node *hn)
{
	h->node[i] = hn;
	hn->at = i;
}

static void
heap_up(struct heap *h, size_t i)
{
	struct heap_node	*hn = h->node[i];
	size_t			 parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (h->node[parent]->key <= hn->key)
			break;
		heap_put(h, i, h->node[parent]);
		i = parent;
	}
	heap_put(h, i, hn);
}

static void
heap_down(struct heap *h, size_t i)
{
	struct heap_node	*hn = h->node[i];
	size_t			 child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= h->n)
			break;
		if (child + 1 < h->n &&
		    h->node[child + 1]->key < h->node[child]->key)
			child++;
		if (hn->key <= h->node[child]->key)
			break;
		heap_put(h, i, h->node[child]);
		i = child;
	}
	heap_put(h, i, hn);
}

int
heap_set(struct heap *h, struct heap_node *hn, uint64_t key)
{
	struct heap_node	**node;
	size_t			  size;

	if (hn->at != HEAP_NONE) {
		if (key < hn->key) {
			hn->key = key;
			heap_up(h, hn->at);
		} else if (key > hn->key) {
			hn->key = key;
			heap_down(h, hn->at);
		}
		return 0;
	}
	if (h->n == h->size) {
		size = h->size ? h->size * 2 : 64;
		if ((node = realloc(h->node, size * sizeof(*node))) == NULL)
			return -1;
		h->node = node;
		h->size = size;
	}
	hn->key = key;
	heap_put(h, h->n++, hn);
	heap_up(h, h->n - 1);
	return 0;
}

void
heap_remove(struct heap *h, struct heap_node *hn)
{
	size_t			 i = hn->at;
	struct heap_node	*last;

	if (i == HEAP_NONE)
		return;
	hn->at = HEAP_NONE;
	last = h->node[--h->n];
	if (i == h->n)
		return;
	heap_put(h, i, last);
	/* the last one moves up or down from the hole, never both */
	if (i > 0 && h->node[(i - 1) / 2]->key > last->key)
		heap_up(h, i);
	else
		heap_down(h, i);
}

struct heap_node *
heap_first(const struct heap *h)
{
	return h->n > 0 ? h->node[0] : NULL;
}

size_t
heap_count(const struct heap *h)
{
	return h->n;
}
