/*
 * heap.h - a binary min-heap of deadlines, intrusive: each member embeds
 * a struct heap_node (its key and its place in the heap), so adding,
 * moving and removing one allocates nothing but the heap's array, which
 * doubles as it grows.
 *
 * Not locked: one owner thread (a writer, see writer.c).
 */
#ifndef SSERELAY_HEAP_H
#define SSERELAY_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_NONE	((size_t)-1)	/* a node in no heap */

struct heap_node {
	uint64_t	 key;		/* smallest first */
	size_t		 at;		/* its index, or HEAP_NONE */
};

struct heap {
	struct heap_node **node;
	size_t		  n;
	size_t		  size;		/* slots allocated */
};

void		 heap_init(struct heap *);
/* the members are not touched: each must have been removed first */
void		 heap_free(struct heap *);
static inline void
heap_node_init(struct heap_node *hn)
{
	hn->key = 0;
	hn->at = HEAP_NONE;
}
/* add with key, or move to key if already in: O(log n); -1 out of memory */
int		 heap_set(struct heap *, struct heap_node *, uint64_t key);
/* remove if in the heap (harmless otherwise): O(log n) */
void		 heap_remove(struct heap *, struct heap_node *);
/* the smallest key's node, or NULL when empty */
struct heap_node *heap_first(const struct heap *);
size_t		 heap_count(const struct heap *);

#endif
