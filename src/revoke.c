/*
 * revoke.c - the revocations in force.  See revoke.h.
 *
 * DESIGN
 * A hash table (table.c) from channel name to struct revoke_entry, under
 * one mutex, and an atomic count so that admission costs nothing while
 * nothing is revoked.  Entries are dropped when read after their end
 * (revoke_refused, revoke_add) and by revoke_expire (the control thread,
 * about once a second).
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "revoke.h"
#include "table.h"

static pthread_mutex_t	 revoke_lock = PTHREAD_MUTEX_INITIALIZER;
static struct table	 revoke_table;
static int		 revoke_ready;
static atomic_size_t	 revoke_count;

uint64_t
revoke_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* the lock held: 0, or -1 out of memory */
static int
revoke_init(void)
{
	if (revoke_ready)
		return 0;
	if (table_init(&revoke_table) == -1)
		return -1;
	revoke_ready = 1;
	return 0;
}

/* the lock held */
static void
revoke_drop(struct table_entry *te)
{
	free(te->value);
	table_remove(&revoke_table, te);
	atomic_store(&revoke_count, revoke_table.count);
}

/* revoke_add, the lock held */
static int
revoke_add_locked(const char *name, size_t len, uint64_t since_ms,
    uint64_t until_ms, uint64_t now_ms)
{
	struct table_entry	*te;
	struct revoke_entry	*e;
	int			 r = 0;

	if (until_ms <= now_ms)
		return 0;
	if (revoke_init() == -1) {
		r = -1;
		goto done;
	}
	if ((te = table_find(&revoke_table, name, len)) != NULL) {
		e = te->value;
		r = e->since_ms != since_ms;
		e->since_ms = since_ms;
		e->until_ms = until_ms;
		goto done;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (te = table_insert(&revoke_table, name, len)) == NULL) {
		free(e);
		r = -1;
		goto done;
	}
	e->name = te->key;
	e->len = len;
	e->since_ms = since_ms;
	e->until_ms = until_ms;
	te->value = e;
	atomic_store(&revoke_count, revoke_table.count);
	r = 1;
done:
	return r;
}

int
revoke_add(const char *name, size_t len, uint64_t since_ms,
    uint64_t until_ms, uint64_t now_ms)
{
	int	 r;

	pthread_mutex_lock(&revoke_lock);
	r = revoke_add_locked(name, len, since_ms, until_ms, now_ms);
	pthread_mutex_unlock(&revoke_lock);
	return r;
}

int
revoke_remove(const char *name, size_t len)
{
	struct table_entry	*te;
	int			 r = 0;

	pthread_mutex_lock(&revoke_lock);
	if (revoke_ready &&
	    (te = table_find(&revoke_table, name, len)) != NULL) {
		revoke_drop(te);
		r = 1;
	}
	pthread_mutex_unlock(&revoke_lock);
	return r;
}

/* the lock held: every entry, dropped */
static void
revoke_clear_locked(void)
{
	struct table_entry	*te;
	size_t			 i;

	if (!revoke_ready)
		return;
	for (i = 0; i < revoke_table.nbuckets; i++)
		while ((te = revoke_table.bucket[i]) != NULL)
			revoke_drop(te);
}

int
revoke_sync(const struct revoke_entry *e, size_t n, int *fresh,
    uint64_t now_ms)
{
	struct revoke_entry	*old;
	struct table_entry	*te;
	struct {
		uint64_t	 since_ms;
		int		 held;
	}			*was;
	size_t			 i;

	if ((was = calloc(n ? n : 1, sizeof(*was))) == NULL)
		return -1;
	pthread_mutex_lock(&revoke_lock);
	if (revoke_init() == -1) {
		pthread_mutex_unlock(&revoke_lock);
		free(was);
		return -1;
	}
	for (i = 0; i < n; i++)
		if ((te = table_find(&revoke_table, e[i].name, e[i].len)) !=
		    NULL) {
			old = te->value;
			was[i].held = 1;
			was[i].since_ms = old->since_ms;
		}
	/* in one hold of the lock: no admission sees the table empty */
	revoke_clear_locked();
	for (i = 0; i < n; i++) {
		fresh[i] = !was[i].held || was[i].since_ms != e[i].since_ms;
		if (revoke_add_locked(e[i].name, e[i].len, e[i].since_ms,
		    e[i].until_ms, now_ms) != 1)
			fresh[i] = 0;
	}
	pthread_mutex_unlock(&revoke_lock);
	free(was);
	return 0;
}

int
revoke_refused(const char **names, const size_t *lens, size_t n,
    time_t iat, uint64_t now_ms)
{
	struct table_entry	*te;
	struct revoke_entry	*e;
	size_t			 i;
	int			 r = 0;

	if (atomic_load_explicit(&revoke_count, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&revoke_lock);
	for (i = 0; i < n && r == 0 && revoke_ready; i++) {
		if ((te = table_find(&revoke_table, names[i], lens[i])) ==
		    NULL)
			continue;
		e = te->value;
		if (e->until_ms <= now_ms)
			revoke_drop(te);
		else if ((uint64_t)iat < e->since_ms / 1000)
			r = 1;
	}
	pthread_mutex_unlock(&revoke_lock);
	return r;
}

size_t
revoke_expire(uint64_t now_ms)
{
	struct table_entry	*te, *next;
	size_t			 i, n = 0;

	pthread_mutex_lock(&revoke_lock);
	if (revoke_ready) {
		for (i = 0; i < revoke_table.nbuckets; i++)
			for (te = revoke_table.bucket[i]; te != NULL;
			    te = next) {
				next = te->next;
				if (((struct revoke_entry *)te->value)->
				    until_ms <= now_ms)
					revoke_drop(te);
			}
		n = revoke_table.count;
	}
	pthread_mutex_unlock(&revoke_lock);
	return n;
}

void
revoke_clear(void)
{
	pthread_mutex_lock(&revoke_lock);
	revoke_clear_locked();
	if (revoke_ready) {
		table_free(&revoke_table);
		revoke_ready = 0;
	}
	pthread_mutex_unlock(&revoke_lock);
}

int
revoke_parse(const char *msg, size_t len, char *op,
    unsigned long long *since_ms, unsigned long long *until_ms,
    const char **channel, size_t *chlen)
{
	unsigned long long	 v[2];
	size_t			 i = 2, k;

	if (len < 8 || (msg[0] != 'r' && msg[0] != 'u') || msg[1] != ' ')
		return -1;
	for (k = 0; k < 2; k++) {
		if (i >= len || msg[i] < '0' || msg[i] > '9')
			return -1;
		for (v[k] = 0; i < len && msg[i] >= '0' && msg[i] <= '9'; i++)
			v[k] = v[k] * 10 + (unsigned long long)(msg[i] - '0');
		if (i >= len || msg[i] != ' ')
			return -1;
		i++;
	}
	if (i >= len)
		return -1;
	*op = msg[0];
	*since_ms = v[0];
	*until_ms = v[1];
	*channel = msg + i;
	*chlen = len - i;
	return 0;
}
