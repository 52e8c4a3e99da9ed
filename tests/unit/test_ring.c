/*
 * test_ring.c - the bounded FIFO of frame references (ring.h).
 *
 * The reference rules are checked on frames the test holds itself:
 * ring_push takes one, ring_pop hands it over, a full ring takes none,
 * ring_free drops the queued ones.
 */
#include <stdio.h>
#include <stdlib.h>

#include "frame.h"
#include "ring.h"
#include "tap.h"

static unsigned
refs(struct frame *f)
{
	return atomic_load(&f->refs);
}

static struct frame *
mk(unsigned n)
{
	char buf[32];
	int len;

	len = snprintf(buf, sizeof(buf), "frame %u\n\n", n);
	return frame_new(buf, (size_t)len);
}

static void
test_basic(void)
{
	struct ring r;
	struct frame *f[5], *p;
	int i;

	for (i = 0; i < 5; i++)
		f[i] = mk((unsigned)i);

	is_int(ring_init(&r, 4), 0, "ring_init 4: 0");
	is_int(ring_count(&r), 0, "new ring: empty");
	ok(!ring_full(&r), "new ring: not full");
	ok(ring_peek(&r) == NULL, "new ring: peek NULL");
	ok(ring_pop(&r) == NULL, "new ring: pop NULL");

	is_int(ring_push(&r, f[0]), 0, "push 0: 0");
	is_int(refs(f[0]), 2, "push takes a reference");
	is_int(ring_push(&r, f[1]), 0, "push 1: 0");
	is_int(ring_push(&r, f[2]), 0, "push 2: 0");
	is_int(ring_count(&r), 3, "three queued");
	ok(ring_peek(&r) == f[0], "peek: the oldest");
	is_int(refs(f[0]), 2, "peek takes no reference");
	is_int(ring_count(&r), 3, "peek does not remove");

	p = ring_pop(&r);
	ok(p == f[0], "pop: the oldest first");
	is_int(refs(f[0]), 2, "pop hands the ring's reference over");
	frame_unref(p);
	is_int(refs(f[0]), 1, "caller drops the popped reference");
	is_int(ring_count(&r), 2, "two left");

	is_int(ring_push(&r, f[3]), 0, "push 3: 0");
	is_int(ring_push(&r, f[4]), 0, "push 4: 0 (wraps)");
	ok(ring_full(&r), "four queued: full");
	is_int(ring_count(&r), 4, "count 4");
	is_int(ring_push(&r, f[0]), -1, "push on a full ring: -1");
	is_int(refs(f[0]), 1, "a refused push takes no reference");
	is_int(ring_count(&r), 4, "a refused push queues nothing");

	for (i = 1; i <= 4; i++) {
		p = ring_pop(&r);
		ok(p == f[i], "pop %d in order", i);
		if (p)
			frame_unref(p);
	}
	ok(ring_pop(&r) == NULL, "drained: pop NULL");
	ok(!ring_full(&r) && ring_count(&r) == 0, "drained: empty");
	for (i = 0; i < 5; i++)
		is_int(refs(f[i]), 1, "frame %d: back to the creator's ref", i);

	/* the same frame queued twice holds two references */
	ring_push(&r, f[2]);
	ring_push(&r, f[2]);
	is_int(refs(f[2]), 3, "same frame pushed twice: two ring refs");
	ring_free(&r);
	is_int(refs(f[2]), 1, "ring_free drops both");

	for (i = 0; i < 5; i++)
		frame_unref(f[i]);
}

static void
test_wrap(void)
{
	struct ring r;
	struct frame *f[16], *p;
	unsigned pushed = 0, popped = 0, step, k, bad = 0, badhead = 0;
	unsigned badcount = 0;

	for (k = 0; k < 16; k++)
		f[k] = mk(k);
	ring_init(&r, 5);
	/*
	 * Varying bursts of pushes and pops, the ring 0..5 deep, so head
	 * and tail wrap around the 5 slots hundreds of times.
	 */
	for (step = 0; step < 3000; step++) {
		unsigned npush = step % 4, npop = (step * 7 + 1) % 4;

		for (k = 0; k < npush && !ring_full(&r); k++) {
			if (ring_push(&r, f[pushed % 16]) != 0)
				bad++;
			pushed++;
		}
		for (k = 0; k < npop; k++) {
			p = ring_pop(&r);
			if (p == NULL) {
				if (pushed != popped)
					bad++;
				break;
			}
			if (p != f[popped % 16])
				bad++;
			frame_unref(p);
			popped++;
		}
		if (r.head >= r.size || r.size > r.cap)
			badhead++;
		if (ring_count(&r) != pushed - popped)
			badcount++;
	}
	ok(pushed > 3 * 5 * 100, "wrap: %u pushes through 5 slots", pushed);
	is_int(bad, 0, "wrap: FIFO order kept on every pop");
	is_int(badhead, 0, "wrap: head below the allocated size, size <= cap");
	is_int(badcount, 0, "wrap: count matches pushes - pops");
	while ((p = ring_pop(&r)) != NULL) {
		if (p != f[popped % 16])
			bad++;
		frame_unref(p);
		popped++;
	}
	is_int(bad, 0, "wrap: drain in order");
	is_int(pushed, popped, "wrap: everything pushed came out");
	for (k = 0, bad = 0; k < 16; k++)
		if (refs(f[k]) != 1)
			bad++;
	is_int(bad, 0, "wrap: every frame back to one reference");
	ring_free(&r);
	for (k = 0; k < 16; k++)
		frame_unref(f[k]);
}

/*
 * Slots grow on demand (ring.h): check growth while the queue is
 * wrapped, up to a cap that is not a power of two, against a plain
 * array model of the queue.
 */
static void
test_grow(void)
{
	struct ring r;
	struct frame *f[64], *p, *model[4096];
	size_t mhead = 0, mtail = 0, cap = 37;
	unsigned long x = 7;
	unsigned step, k, bad = 0, badsize = 0, refused = 0, n;

	for (k = 0; k < 64; k++)
		f[k] = mk(k);
	is_int(ring_init(&r, 256), 0, "ring_init 256");
	ok(r.size < 256, "an idle ring does not allocate all 256 slots "
	    "(size %zu)", r.size);
	ring_free(&r);

	/* wrap the small initial array, then grow while wrapped */
	ring_init(&r, cap);
	for (k = 0; k < 6; k++)
		ring_push(&r, f[k]);
	for (k = 0; k < 4; k++) {
		p = ring_pop(&r);
		bad += p != f[k];
		frame_unref(p);
	}
	for (k = 6; k < 45; k++) {
		if (ring_push(&r, f[k]) != 0)
			refused++;
	}
	is_int(refused, 45 - 6 - (cap - 2), "grow: refused exactly past cap");
	is_int(ring_count(&r), cap, "grow: full at cap 37");
	ok(ring_full(&r), "grow: ring_full at cap");
	for (k = 4; k < 4 + cap; k++) {
		p = ring_pop(&r);
		bad += p != f[k];
		if (p)
			frame_unref(p);
	}
	is_int(bad, 0, "grow while wrapped: order kept");
	ring_free(&r);

	/* random pushes and pops against the model */
	ring_init(&r, cap);
	for (step = 0; step < 20000; step++) {
		x = x * 6364136223846793005UL + 1442695040888963407UL;
		n = (unsigned)(x >> 33) % 100;
		if (n < 55) {
			struct frame *g = f[step % 64];
			int full = mtail - mhead == cap;
			int rc = ring_push(&r, g);

			if (full ? rc != -1 : rc != 0)
				bad++;
			if (!full)
				model[mtail++ % 4096] = g;
		} else {
			p = ring_pop(&r);
			if (mtail == mhead)
				bad += p != NULL;
			else {
				bad += p != model[mhead++ % 4096];
				if (p)
					frame_unref(p);
			}
		}
		if (ring_count(&r) != mtail - mhead)
			bad++;
		if (r.size > r.cap || r.head >= r.size)
			badsize++;
	}
	is_int(bad, 0, "random push/pop vs a model: same results");
	is_int(badsize, 0, "random push/pop: size <= cap, head < size");
	ring_free(&r);
	for (k = 0, bad = 0; k < 64; k++) {
		bad += refs(f[k]) != 1;
		frame_unref(f[k]);
	}
	is_int(bad, 0, "grow: every reference returned");
}

static void
test_free(void)
{
	struct ring r;
	struct frame *f[3], *p;
	int i;

	for (i = 0; i < 3; i++)
		f[i] = mk((unsigned)i);
	ring_init(&r, 3);
	/* wrap first so the queued slots straddle the end of the array */
	ring_push(&r, f[0]);
	ring_push(&r, f[0]);
	p = ring_pop(&r);
	frame_unref(p);
	p = ring_pop(&r);
	frame_unref(p);
	ring_push(&r, f[0]);
	ring_push(&r, f[1]);
	ring_push(&r, f[2]);
	ok(ring_full(&r), "free: ring full across the wrap");
	for (i = 0; i < 3; i++)
		is_int(refs(f[i]), 2, "free: frame %d queued", i);
	ring_free(&r);
	for (i = 0; i < 3; i++)
		is_int(refs(f[i]), 1, "ring_free dropped frame %d's ref", i);

	/* capacity 1 */
	is_int(ring_init(&r, 1), 0, "ring_init 1: 0");
	is_int(ring_push(&r, f[0]), 0, "cap 1: push");
	is_int(ring_push(&r, f[1]), -1, "cap 1: second push refused");
	is_int(refs(f[1]), 1, "cap 1: refused push took no ref");
	p = ring_pop(&r);
	ok(p == f[0], "cap 1: pop");
	frame_unref(p);
	is_int(ring_push(&r, f[1]), 0, "cap 1: push after pop");
	ring_free(&r);
	is_int(refs(f[1]), 1, "cap 1: ring_free dropped it");

	/* an empty ring frees cleanly */
	ring_init(&r, 8);
	ring_free(&r);
	ok(1, "empty ring_free");

	for (i = 0; i < 3; i++)
		frame_unref(f[i]);
}

int
main(void)
{
	test_basic();
	test_wrap();
	test_grow();
	test_free();
	return done_testing();
}
