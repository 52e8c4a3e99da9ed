/*
 * table.c - chained hash table with binary keys; grows by doubling so
 * chains stay short (one entry a bucket on average at most).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "table.h"

#define TABLE_INITIAL	1024

static uint32_t
table_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	while (len--) {
		h ^= (unsigned char)*p++;
		h *= 16777619u;
	}
	return h;
}

int
table_init(struct table *t)
{
	return table_init_size(t, TABLE_INITIAL);
}

int
table_init_size(struct table *t, size_t nbuckets)
{
	/* a power of two: the bucket is the hash's low bits */
	for (t->nbuckets = 1; t->nbuckets < nbuckets; t->nbuckets *= 2)
		;
	t->count = 0;
	if ((t->bucket = calloc(t->nbuckets, sizeof(*t->bucket))) == NULL)
		return -1;
	return 0;
}

void
table_free(struct table *t)
{
	free(t->bucket);
	t->bucket = NULL;
	t->nbuckets = t->count = 0;
}

struct table_entry *
table_find(const struct table *t, const char *key, size_t len)
{
	struct table_entry	*e;
	uint32_t		 hash = table_hash(key, len);

	for (e = t->bucket[hash & (t->nbuckets - 1)]; e != NULL; e = e->next)
		if (e->hash == hash && e->len == len &&
		    memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

static void
table_grow(struct table *t)
{
	struct table_entry	**nb, *e, *next;
	size_t			  n = t->nbuckets * 2, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < t->nbuckets; i++)
		for (e = t->bucket[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	free(t->bucket);
	t->bucket = nb;
	t->nbuckets = n;
}

struct table_entry *
table_insert(struct table *t, const char *key, size_t len)
{
	struct table_entry	*e;

	if ((e = calloc(1, sizeof(*e) + len)) == NULL)
		return NULL;
	e->hash = table_hash(key, len);
	e->len = len;
	memcpy(e->key, key, len);
	if (t->count >= t->nbuckets)
		table_grow(t);
	e->next = t->bucket[e->hash & (t->nbuckets - 1)];
	t->bucket[e->hash & (t->nbuckets - 1)] = e;
	t->count++;
	return e;
}

void
table_remove(struct table *t, struct table_entry *e)
{
	struct table_entry	**pp;

	for (pp = &t->bucket[e->hash & (t->nbuckets - 1)]; *pp != e;
	    pp = &(*pp)->next)
		;
	*pp = e->next;
	t->count--;
	free(e);
}
