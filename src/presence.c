/*
 * presence.c - this instance's presence counts.  See presence.h.
 *
 * DESIGN
 * A table of channels (table.c), each with a table of people: who ->
 * struct presence_who { count, dirty }.  A change marks the person dirty
 * and puts the channel on the dirty list; presence_take() walks that list
 * only, so a pass costs what changed, not what is held.  A person whose
 * count is 0 is kept until it was taken (Redis must hear the 0), then
 * dropped, and a channel with nobody is dropped with them.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "presence.h"
#include "table.h"

#define PRESENCE_WHOS_INITIAL	4	/* buckets of a channel's people */

struct presence_who {
	struct table_entry	*entry;
	unsigned		 count;
	int			 dirty;
};

struct presence_chan {
	struct table_entry	*entry;
	struct table		 whos;
	int			 dirty;
	TAILQ_ENTRY(presence_chan) dirty_entry;
};

struct presence_ref {
	size_t		 n;
	char		*who;
	char		**names;
	size_t		*lens;
};

static pthread_mutex_t	 presence_lock = PTHREAD_MUTEX_INITIALIZER;
static struct table	 presence_chans;
static int		 presence_ready;
static TAILQ_HEAD(, presence_chan) presence_dirty =
    TAILQ_HEAD_INITIALIZER(presence_dirty);

const char *
presence_who(int has_user, const char *user)
{
	return has_user && user != NULL ? user : "";
}

/* the lock held: by delta, who's count on a channel; -1 out of memory */
static int
presence_count(const char *name, size_t len, const char *who, int delta)
{
	struct table_entry	*te, *we;
	struct presence_chan	*c;
	struct presence_who	*w;

	if (!presence_ready) {
		if (table_init(&presence_chans) == -1)
			return -1;
		presence_ready = 1;
	}
	if ((te = table_find(&presence_chans, name, len)) == NULL) {
		if (delta < 0)
			return 0;
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return -1;
		/* most channels have a person or two: the table grows */
		if (table_init_size(&c->whos, PRESENCE_WHOS_INITIAL) == -1 ||
		    (te = table_insert(&presence_chans, name, len)) == NULL) {
			table_free(&c->whos);
			free(c);
			return -1;
		}
		te->value = c;
		c->entry = te;
	}
	c = te->value;
	if ((we = table_find(&c->whos, who, strlen(who))) == NULL) {
		if (delta < 0)
			return 0;
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return -1;
		if ((we = table_insert(&c->whos, who, strlen(who))) == NULL) {
			free(w);
			return -1;
		}
		we->value = w;
		w->entry = we;
	}
	w = we->value;
	if (delta < 0 && w->count == 0)
		return 0;
	w->count += (unsigned)delta;	/* -1 wraps to count - 1 */
	w->dirty = 1;
	if (!c->dirty) {
		c->dirty = 1;
		TAILQ_INSERT_TAIL(&presence_dirty, c, dirty_entry);
	}
	return 0;
}

static void
presence_ref_free(struct presence_ref *r)
{
	size_t	 i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		free(r->names[i]);
	free(r->names);
	free(r->lens);
	free(r->who);
	free(r);
}

struct presence_ref *
presence_open(const char **names, const size_t *lens, size_t n,
    const char *who)
{
	struct presence_ref	*r;
	size_t			 i;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->who = strdup(who)) == NULL ||
	    (r->names = calloc(n ? n : 1, sizeof(*r->names))) == NULL ||
	    (r->lens = calloc(n ? n : 1, sizeof(*r->lens))) == NULL)
		goto bad;
	for (i = 0; i < n; i++, r->n++) {
		if ((r->names[i] = malloc(lens[i] + 1)) == NULL)
			goto bad;
		memcpy(r->names[i], names[i], lens[i]);
		r->names[i][lens[i]] = '\0';
		r->lens[i] = lens[i];
	}
	pthread_mutex_lock(&presence_lock);
	for (i = 0; i < n; i++)
		if (presence_count(names[i], lens[i], who, 1) == -1) {
			/* undo: not counted at all */
			while (i-- > 0)
				presence_count(names[i], lens[i], who, -1);
			pthread_mutex_unlock(&presence_lock);
			goto bad;
		}
	pthread_mutex_unlock(&presence_lock);
	return r;
bad:
	presence_ref_free(r);
	return NULL;
}

void
presence_close(struct presence_ref *r)
{
	size_t	 i;

	if (r == NULL)
		return;
	pthread_mutex_lock(&presence_lock);
	for (i = 0; i < r->n; i++)
		presence_count(r->names[i], r->lens[i], r->who, -1);
	pthread_mutex_unlock(&presence_lock);
	presence_ref_free(r);
}

/* the lock held: one update for w of c into u[k] */
static int
presence_update_of(struct presence_chan *c, struct presence_who *w,
    struct presence_update *u)
{
	u->chlen = c->entry->len;
	u->wlen = w->entry->len;
	u->count = w->count;
	if ((u->chan = malloc(u->chlen + 1)) == NULL)
		return -1;
	if ((u->who = malloc(u->wlen + 1)) == NULL) {
		free(u->chan);
		return -1;
	}
	memcpy(u->chan, c->entry->key, u->chlen);
	u->chan[u->chlen] = '\0';
	memcpy(u->who, w->entry->key, u->wlen);
	u->who[u->wlen] = '\0';
	return 0;
}

/* the lock held: drop c's people at 0, and c if nobody is left */
static void
presence_prune(struct presence_chan *c)
{
	struct table_entry	*we, *next;
	size_t			 i;

	for (i = 0; i < c->whos.nbuckets; i++)
		for (we = c->whos.bucket[i]; we != NULL; we = next) {
			next = we->next;
			if (((struct presence_who *)we->value)->count == 0) {
				free(we->value);
				table_remove(&c->whos, we);
			}
		}
	if (c->whos.count == 0) {
		if (c->dirty)
			TAILQ_REMOVE(&presence_dirty, c, dirty_entry);
		table_free(&c->whos);
		table_remove(&presence_chans, c->entry);
		free(c);
	}
}

int
presence_take(int all, struct presence_update **out, size_t *nout)
{
	struct presence_chan	*c, *next;
	struct presence_who	*w;
	struct presence_update	*u = NULL, *m;
	struct table_entry	*te, *we;
	size_t			 n = 0, cap = 0, i, j;
	int			 r = 0;

	*out = NULL;
	*nout = 0;
	pthread_mutex_lock(&presence_lock);
	if (!presence_ready)
		goto done;
	if (all)
		for (i = 0; i < presence_chans.nbuckets; i++)
			for (te = presence_chans.bucket[i]; te != NULL;
			    te = te->next) {
				c = te->value;
				for (j = 0; j < c->whos.nbuckets; j++)
					for (we = c->whos.bucket[j]; we != NULL;
					    we = we->next)
						((struct presence_who *)
						    we->value)->dirty = 1;
				if (!c->dirty) {
					c->dirty = 1;
					TAILQ_INSERT_TAIL(&presence_dirty, c,
					    dirty_entry);
				}
			}
	for (c = TAILQ_FIRST(&presence_dirty); c != NULL; c = next) {
		next = TAILQ_NEXT(c, dirty_entry);
		for (j = 0; j < c->whos.nbuckets; j++)
			for (we = c->whos.bucket[j]; we != NULL;
			    we = we->next) {
				w = we->value;
				if (!w->dirty)
					continue;
				if (n == cap) {
					cap = cap ? cap * 2 : 64;
					if ((m = realloc(u, cap *
					    sizeof(*u))) == NULL) {
						r = -1;
						goto done;
					}
					u = m;
				}
				if (presence_update_of(c, w, &u[n]) == -1) {
					r = -1;
					goto done;
				}
				n++;
				w->dirty = 0;
			}
		TAILQ_REMOVE(&presence_dirty, c, dirty_entry);
		c->dirty = 0;
		presence_prune(c);
	}
done:
	pthread_mutex_unlock(&presence_lock);
	*out = u;
	*nout = n;
	return r;
}

void
presence_updates_free(struct presence_update *u, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(u[i].chan);
		free(u[i].who);
	}
	free(u);
}

int
presence_channels(char ***names, size_t **lens, size_t *n)
{
	struct table_entry	*te;
	size_t			 i, k = 0, cnt;
	int			 r = 0;

	*names = NULL;
	*lens = NULL;
	*n = 0;
	pthread_mutex_lock(&presence_lock);
	cnt = presence_ready ? presence_chans.count : 0;
	if (cnt == 0)
		goto done;
	if ((*names = calloc(cnt, sizeof(**names))) == NULL ||
	    (*lens = calloc(cnt, sizeof(**lens))) == NULL) {
		r = -1;
		goto done;
	}
	for (i = 0; i < presence_chans.nbuckets; i++)
		for (te = presence_chans.bucket[i]; te != NULL;
		    te = te->next, k++) {
			if (((*names)[k] = malloc(te->len + 1)) == NULL) {
				r = -1;
				goto done;
			}
			memcpy((*names)[k], te->key, te->len);
			(*names)[k][te->len] = '\0';
			(*lens)[k] = te->len;
			*n = k + 1;
		}
done:
	pthread_mutex_unlock(&presence_lock);
	return r;
}

void
presence_names_free(char **names, size_t *lens, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(lens);
}

void
presence_clear(void)
{
	struct table_entry	*te;
	struct presence_chan	*c;
	size_t			 i;

	pthread_mutex_lock(&presence_lock);
	if (presence_ready) {
		for (i = 0; i < presence_chans.nbuckets; i++)
			while ((te = presence_chans.bucket[i]) != NULL) {
				c = te->value;
				/* every count to 0, then pruned whole */
				{
					struct table_entry *we;
					size_t j;

					for (j = 0; j < c->whos.nbuckets; j++)
						for (we = c->whos.bucket[j];
						    we != NULL; we = we->next)
							((struct presence_who *)
							    we->value)->count = 0;
				}
				presence_prune(c);
			}
		table_free(&presence_chans);
		presence_ready = 0;
	}
	pthread_mutex_unlock(&presence_lock);
}
