/*
 * test_heap.c - the deadline heap (heap.h): order, moves both ways,
 * removal from anywhere, against a sorted oracle over random operations.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "tap.h"

#define N	2000

struct item {
	struct heap_node node;
	int		 in;
};

/* every parent's key is at most its children's, and every at is right */
static int
heap_ok(const struct heap *h)
{
	size_t	 i;

	for (i = 0; i < h->n; i++) {
		if (h->node[i]->at != i)
			return 0;
		if (i > 0 && h->node[(i - 1) / 2]->key > h->node[i]->key)
			return 0;
	}
	return 1;
}

int
main(void)
{
	static struct item it[N];
	struct heap h;
	struct heap_node *hn;
	uint64_t last, want;
	unsigned seed = 12345;
	size_t i, in = 0, k;
	int bad = 0, order = 0, ops;

	heap_init(&h);
	ok(heap_first(&h) == NULL, "an empty heap has no first");
	for (i = 0; i < N; i++)
		heap_node_init(&it[i].node);
	heap_remove(&h, &it[0].node);
	is_int(heap_count(&h), 0, "removing a node in no heap is harmless");

	/* random adds, moves (up and down) and removals */
	for (ops = 0; ops < 50000; ops++) {
		k = (size_t)rand_r(&seed) % N;
		switch (rand_r(&seed) % 4) {
		case 0:
		case 1:
			if (heap_set(&h, &it[k].node,
			    (uint64_t)(rand_r(&seed) % 100000)) == -1)
				bad++;
			if (!it[k].in)
				in++;
			it[k].in = 1;
			break;
		case 2:
			heap_remove(&h, &it[k].node);
			if (it[k].in)
				in--;
			it[k].in = 0;
			break;
		case 3:
			if ((hn = heap_first(&h)) != NULL) {
				/* the first is the smallest of all that are in */
				want = UINT64_MAX;
				for (i = 0; i < N; i++)
					if (it[i].in && it[i].node.key < want)
						want = it[i].node.key;
				bad += hn->key != want;
			}
			break;
		}
		if (ops % 1000 == 0 && !heap_ok(&h))
			bad++;
	}
	is_int(bad, 0, "50,000 random operations: the heap property, every "
	    "node's place, and the first always the smallest");
	is_int(heap_count(&h), in, "the count follows adds and removals");

	/* draining gives the keys in order */
	last = 0;
	while ((hn = heap_first(&h)) != NULL) {
		order += hn->key < last;
		last = hn->key;
		heap_remove(&h, hn);
		bad += hn->at != HEAP_NONE;
	}
	is_int(order, 0, "drained smallest first");
	is_int(bad, 0, "a removed node is in no heap");

	/* equal keys, and a node moved to its own key */
	for (i = 0; i < 10; i++)
		heap_set(&h, &it[i].node, 7);
	heap_set(&h, &it[3].node, 7);
	ok(heap_ok(&h) && heap_count(&h) == 10, "equal keys; a no-op move");
	heap_set(&h, &it[5].node, 1);
	ok(heap_first(&h) == &it[5].node, "moved down in key: first");
	heap_set(&h, &it[5].node, 100);
	ok(heap_first(&h) != &it[5].node && heap_ok(&h),
	    "moved up in key: no longer first");
	heap_free(&h);
	return done_testing();
}
