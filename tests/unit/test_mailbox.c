/*
 * test_mailbox.c - requests to the broker (mailbox.h): taken in the order
 * posted, the fd readable exactly while something waits, and posts from
 * several threads at once all arriving, as the broker's poll loop sees
 * them.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mailbox.h"
#include "tap.h"

static int
readable(struct mailbox *mb)
{
	struct pollfd pfd = { mailbox_fd(mb), POLLIN, 0 };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

#define NTHREADS	4
#define NPOSTS		5000

static void *
poster(void *arg)
{
	struct mailbox *mb = arg;
	char ch[32];
	int i, n;

	for (i = 0; i < NPOSTS; i++) {
		n = snprintf(ch, sizeof(ch), "c%d", i);
		mailbox_post(mb, MAILBOX_INTEREST, ch, (size_t)n);
	}
	return NULL;
}

int
main(void)
{
	struct mailbox *mb;
	struct mailbox_items items = STAILQ_HEAD_INITIALIZER(items);
	struct mailbox_item *it;
	pthread_t th[NTHREADS];
	char seen[256];
	size_t n, k;
	int i, bad;

	mb = mailbox_new();
	ok(mb != NULL, "mailbox_new");
	ok(!readable(mb), "empty: the fd is not readable");
	is_int(mailbox_post(mb, MAILBOX_INTEREST, "user:a", 6), 0, "post");
	is_int(mailbox_post(mb, MAILBOX_NO_INTEREST, "bin\0x", 5), 0,
	    "post a binary name");
	is_int(mailbox_post(mb, MAILBOX_INTEREST, "user:b", 6), 0, "post");
	ok(readable(mb), "requests waiting: readable");
	is_int(mailbox_count(mb), 3, "three waiting");
	mailbox_take(mb, &items);
	ok(!readable(mb), "taken: not readable any more");
	is_int(mailbox_count(mb), 0, "none waiting");
	k = 0;
	seen[0] = '\0';
	STAILQ_FOREACH(it, &items, entry)
		k += (size_t)snprintf(seen + k, sizeof(seen) - k, "%s:%d:%zu ",
		    it->len == 5 ? "bin" : it->channel, (int)it->op, it->len);
	is_str(seen, "user:a:1:6 bin:2:5 user:b:1:6 ",
	    "taken in the order posted, ops and lengths kept");
	it = STAILQ_FIRST(&items);
	it = STAILQ_NEXT(it, entry);
	is_mem(it->channel, it->len + 1, "bin\0x", (size_t)6,
	    "binary name copied whole, NUL-terminated");
	mailbox_items_free(&items);
	ok(STAILQ_EMPTY(&items), "items freed");

	mailbox_wake(mb);
	ok(readable(mb), "a wake makes it readable");
	mailbox_take(mb, &items);
	ok(STAILQ_EMPTY(&items) && !readable(mb),
	    "a wake carries no request and is cleared by take");

	/* posters on several threads; the taker polls as the broker does */
	for (i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, poster, mb);
	n = 0;
	while (n < (size_t)NTHREADS * NPOSTS) {
		struct pollfd pfd = { mailbox_fd(mb), POLLIN, 0 };

		if (poll(&pfd, 1, 5000) != 1)
			break;
		mailbox_take(mb, &items);
		STAILQ_FOREACH(it, &items, entry)
			n++;
		mailbox_items_free(&items);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	is_int(n, NTHREADS * NPOSTS,
	    "every post from 4 threads seen, woken by the fd alone");
	bad = readable(mb);
	is_int(bad, 0, "and nothing left signalled");
	mailbox_free(mb);
	return done_testing();
}
