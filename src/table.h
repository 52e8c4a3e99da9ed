/*
 * table.h - hash table from binary keys (channel names) to a pointer.
 *
 * Not locked: its owner serialises access (the hub lock for both users).
 * Keys are copied; values are the caller's.
 */
#ifndef SSERELAY_TABLE_H
#define SSERELAY_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct table_entry {
	struct table_entry	*next;		/* hash chain */
	void			*value;
	uint32_t		 hash;
	size_t			 len;
	char			 key[];
};

struct table {
	struct table_entry	**bucket;
	size_t			  nbuckets;	/* power of two */
	size_t			  count;
};

int		 table_init(struct table *);	/* 1024 buckets */
/* at least nbuckets buckets (rounded up to a power of two); it grows */
int		 table_init_size(struct table *, size_t nbuckets);
/* the entries must have been removed (their values are not freed) */
void		 table_free(struct table *);
struct table_entry *table_find(const struct table *, const char *, size_t);
/* a new entry with value NULL; NULL if out of memory.  Key not present. */
struct table_entry *table_insert(struct table *, const char *, size_t);
void		 table_remove(struct table *, struct table_entry *);

#endif
