/*
 * mailbox.c - a FIFO of requests for the broker with an eventfd that is
 * readable while it is not empty.  See mailbox.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "mailbox.h"

struct mailbox {
	pthread_mutex_t		 lock;
	struct mailbox_items	 items;
	size_t			 count;
	int			 signalled;	/* the eventfd holds a count */
	int			 fd;
};

struct mailbox *
mailbox_new(void)
{
	struct mailbox	*mb;

	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return NULL;
	if ((mb->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		free(mb);
		return NULL;
	}
	STAILQ_INIT(&mb->items);
	pthread_mutex_init(&mb->lock, NULL);
	return mb;
}

void
mailbox_items_free(struct mailbox_items *l)
{
	struct mailbox_item	*it;

	while ((it = STAILQ_FIRST(l)) != NULL) {
		STAILQ_REMOVE_HEAD(l, entry);
		if (it->ptr != NULL && it->ptr_free != NULL)
			it->ptr_free(it->ptr);
		free(it);
	}
}

void
mailbox_free(struct mailbox *mb)
{
	if (mb == NULL)
		return;
	mailbox_items_free(&mb->items);
	close(mb->fd);
	pthread_mutex_destroy(&mb->lock);
	free(mb);
}

/* with the lock held: make the fd readable once */
static void
mailbox_signal(struct mailbox *mb)
{
	uint64_t	 one = 1;

	if (mb->signalled)
		return;
	/* an eventfd write fails only when its counter would overflow */
	if (write(mb->fd, &one, sizeof(one)) != sizeof(one))
		log_warn("mailbox: eventfd write");
	mb->signalled = 1;
}

/* queue it and wake the reader */
static void
mailbox_push(struct mailbox *mb, struct mailbox_item *it)
{
	pthread_mutex_lock(&mb->lock);
	STAILQ_INSERT_TAIL(&mb->items, it, entry);
	mb->count++;
	mailbox_signal(mb);
	pthread_mutex_unlock(&mb->lock);
}

int
mailbox_post(struct mailbox *mb, enum mailbox_op op, const char *channel,
    size_t len)
{
	struct mailbox_item	*it;

	if ((it = malloc(sizeof(*it) + len + 1)) == NULL)
		return -1;
	it->op = op;
	it->ptr = NULL;
	it->ptr_free = NULL;
	it->len = len;
	if (len > 0)
		memcpy(it->channel, channel, len);
	it->channel[len] = '\0';
	mailbox_push(mb, it);
	return 0;
}

int
mailbox_post_ptr(struct mailbox *mb, enum mailbox_op op, void *ptr,
    void (*ptr_free)(void *))
{
	struct mailbox_item	*it;

	if ((it = calloc(1, sizeof(*it) + 1)) == NULL)
		return -1;
	it->op = op;
	it->ptr = ptr;
	it->ptr_free = ptr_free;
	mailbox_push(mb, it);
	return 0;
}

void
mailbox_wake(struct mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mailbox_signal(mb);
	pthread_mutex_unlock(&mb->lock);
}

void
mailbox_take(struct mailbox *mb, struct mailbox_items *out)
{
	uint64_t	 v;

	pthread_mutex_lock(&mb->lock);
	if (mb->signalled) {
		if (read(mb->fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
			log_warn("mailbox: eventfd read");
		mb->signalled = 0;
	}
	STAILQ_CONCAT(out, &mb->items);
	mb->count = 0;
	pthread_mutex_unlock(&mb->lock);
}

int
mailbox_fd(const struct mailbox *mb)
{
	return mb->fd;
}

size_t
mailbox_count(struct mailbox *mb)
{
	size_t	 n;

	pthread_mutex_lock(&mb->lock);
	n = mb->count;
	pthread_mutex_unlock(&mb->lock);
	return n;
}
