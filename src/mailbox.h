/*
 * mailbox.h - requests from the other threads to the broker thread.
 *
 * The broker never waits for a client and HTTP workers never wait for
 * Redis: a thread that wants the broker to act (subscribe a channel that
 * got its first stream, let go of one that lost its last, stop) posts a
 * request here and goes on.  The broker keeps mailbox_fd() in its poll
 * set; the fd is readable while requests are waiting.
 *
 * THREADS: one mutex guards the queue; it is the innermost lock (a poster
 * may hold the hub lock and a stream lock).  Requests are taken in the
 * order they were posted.
 */
#ifndef SSERELAY_MAILBOX_H
#define SSERELAY_MAILBOX_H

#include <stddef.h>
#include <sys/queue.h>

enum mailbox_op {
	MAILBOX_WAKE = 0,	/* nothing to do but look at the stop flag */
	MAILBOX_INTEREST,	/* a channel got its first local stream */
	MAILBOX_NO_INTEREST,	/* a channel lost its last local stream */
	MAILBOX_READ,		/* a stream's history to read (ptr) */
	MAILBOX_HUB_WORK,	/* the hub has work for the broker's
				   thread (hub_work) */
};

struct mailbox_item {
	STAILQ_ENTRY(mailbox_item) entry;
	enum mailbox_op	 op;
	void		*ptr;		/* READ: the request */
	void		(*ptr_free)(void *);	/* if never taken */
	size_t		 len;
	char		 channel[];	/* len bytes, then a NUL */
};

STAILQ_HEAD(mailbox_items, mailbox_item);

struct mailbox;

struct mailbox	*mailbox_new(void);
/* frees the requests still queued */
void		 mailbox_free(struct mailbox *);
/* queue a request; -1 if out of memory (nothing queued) */
int		 mailbox_post(struct mailbox *, enum mailbox_op,
		    const char *channel, size_t len);
/*
 * Queue a request that carries an object (READ); ptr_free frees it if the
 * request is freed without being taken (mailbox_items_free).  -1 if out
 * of memory (nothing queued, ptr still the caller's).
 */
int		 mailbox_post_ptr(struct mailbox *, enum mailbox_op, void *ptr,
		    void (*ptr_free)(void *));
/* make the fd readable without a request (see MAILBOX_WAKE) */
void		 mailbox_wake(struct mailbox *);
/*
 * Move every waiting request, oldest first, to the end of out (an
 * initialised list, the caller's to free with mailbox_items_free, which
 * frees each ptr still set: set it to NULL to keep it) and make the fd
 * unreadable until the next post.
 */
void		 mailbox_take(struct mailbox *, struct mailbox_items *out);
void		 mailbox_items_free(struct mailbox_items *);
int		 mailbox_fd(const struct mailbox *);
/* requests waiting now */
size_t		 mailbox_count(struct mailbox *);

#endif
