/*
 * hub_presence.c - the presence snapshots owed to new streams
 * (--presence-events; see hub_presence.h).
 *
 * A channel is on hub->owed while any of its subscriptions is owed one
 * (sub->present 1) or has been asked for (2), counted in nowed, so that
 * a pass of the control thread looks at those channels only, not at
 * every channel.  A stream that joins after a read was asked for waits
 * for the next read: the read may not count it yet.
 *
 * THREADS: under the hub lock (hub.h); the control thread calls the two
 * functions of hub_presence.h.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "hub_int.h"
#include "hub_presence.h"
#include "stream.h"

void
hub_presence_owe(struct hub *h, struct hub_sub *sub)
{
	struct hub_channel	*c = sub->channel;

	if (!h->presence)
		return;
	sub->present = 1;
	if (c->nowed++ == 0)
		TAILQ_INSERT_TAIL(&h->owed, c, owed_entry);
}

void
hub_presence_forget(struct hub *h, struct hub_sub *sub)
{
	struct hub_channel	*c = sub->channel;

	if (sub->present == 0)
		return;
	sub->present = 0;
	if (--c->nowed == 0)
		TAILQ_REMOVE(&h->owed, c, owed_entry);
}

int
hub_presence_owed(struct hub *h, char ***namesp, size_t **lensp, size_t *np)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	char			**names = NULL;
	size_t			*lens = NULL, n = 0, max = 0;

	*namesp = NULL;
	*lensp = NULL;
	*np = 0;
	pthread_mutex_lock(&h->lock);
	TAILQ_FOREACH(c, &h->owed, owed_entry)
		max++;
	if (max == 0) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	if ((names = calloc(max, sizeof(*names))) == NULL ||
	    (lens = calloc(max, sizeof(*lens))) == NULL)
		goto bad;
	TAILQ_FOREACH(c, &h->owed, owed_entry) {
		if ((names[n] = malloc(c->entry->len + 1)) == NULL)
			goto bad;
		memcpy(names[n], c->entry->key, c->entry->len);
		names[n][c->entry->len] = '\0';
		lens[n++] = c->entry->len;
	}
	/* only now, when nothing can fail */
	TAILQ_FOREACH(c, &h->owed, owed_entry)
		LIST_FOREACH(sub, &c->subs, entry)
			if (sub->present == 1)
				sub->present = 2;
	pthread_mutex_unlock(&h->lock);
	*namesp = names;
	*lensp = lens;
	*np = n;
	return 0;
bad:
	pthread_mutex_unlock(&h->lock);
	while (n-- > 0)
		free(names[n]);
	free(names);
	free(lens);
	return -1;
}

size_t
hub_presence_give(struct hub *h, const char *name, size_t len,
    struct frame *f)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	size_t			 n = 0;

	pthread_mutex_lock(&h->lock);
	if ((c = hub_find(h, name, len)) != NULL && c->nowed > 0) {
		LIST_FOREACH(sub, &c->subs, entry) {
			if (sub->present != 2)
				continue;
			hub_presence_forget(h, sub);
			n += hub_push(h, sub->stream, f);
		}
		hub_wake(h);
	}
	pthread_mutex_unlock(&h->lock);
	return n;
}
