/*
 * channel.h - kinds of channel and broadcast channels: which Redis
 * channels a stream's query names.  Pure: no I/O.
 *
 * A kind is a query parameter and a channel prefix: with the kind
 * room=chat:room:, /events?room=general subscribes the stream to
 * chat:room:general.  Two are always there, user=user: (at most one id:
 * the stream's user) and upload=upload: (at most 16); --channel adds
 * others or gives these new prefixes, --channel-max their maxima.  A
 * broadcast channel (--broadcast) is in every stream.
 *
 * Where a setting came from decides what happens when it is given twice:
 * a default is replaced silently, a file line by a flag; two file lines
 * setting one thing are an error naming the first; on the command line the
 * last one wins, as for every option.  A broadcast list given by flags
 * replaces the file's.
 *
 * What channel_table_check() makes sure of, once everything is read:
 * every kind has a prefix; no prefix begins another (a channel would be of
 * two kinds, and in pattern mode arrive twice); no broadcast channel is a
 * channel of a kind (the same); and a stream's channels stay within
 * QUERY_CHANNELS_MAX: the kinds' maxima plus the broadcast channels.
 *
 * THREADS: main fills a table while it reads the configuration; after
 * that every thread reads it, and only the maxima change (SIGHUP, atomic).
 */
#ifndef SSERELAY_CHANNEL_H
#define SSERELAY_CHANNEL_H

#include <limits.h>
#include <stddef.h>

#include "query.h"

#define CHANNEL_PREFIX_MAX	64	/* bytes in a kind's prefix */
/* the longest channel of a stream: a prefix and an id, or a broadcast */
#define CHANNEL_LEN_MAX		(CHANNEL_PREFIX_MAX + QUERY_ID_MAX)

/* where a setting came from: a default, a file line (1...), the flags */
#define CHANNEL_FROM_DEFAULT	0u
#define CHANNEL_FROM_FLAGS	UINT_MAX

struct channel_kind {
	char		*name;		/* the query parameter */
	char		*prefix;	/* NULL while only its maximum is known */
	_Atomic unsigned max;		/* ids per stream; SIGHUP may change it */
	unsigned	 prefix_from;	/* CHANNEL_FROM_*, or the file's line */
	unsigned	 max_from;
};

struct channel_table {
	struct channel_kind kinds[QUERY_KINDS_MAX];
	size_t		 nkinds;
	char		*broadcasts[QUERY_CHANNELS_MAX];
	size_t		 nbroadcasts;
	unsigned	 broadcasts_from;
};

/* the kind called name, or NULL */
struct channel_kind *channel_kind_find(const struct channel_table *,
		    const char *name);
/*
 * The kind name has channels prefix+ID: a new kind (at most 1 id until
 * its maximum is set), or a new prefix for one.  0, or -1 with err set
 * (the reason, without the option's name).
 */
int		 channel_kind_prefix(struct channel_table *, const char *name,
		    const char *prefix, unsigned from, char *err,
		    size_t errlen);
/* The kind name has at most max ids per stream (the user kind: 1). */
int		 channel_kind_max(struct channel_table *, const char *name,
		    unsigned max, unsigned from, char *err, size_t errlen);
/* Every stream also gets the channel name. */
int		 channel_broadcast(struct channel_table *, const char *name,
		    unsigned from, char *err, size_t errlen);
/* What no single setting can check (above): 0, or -1 with err set. */
int		 channel_table_check(const struct channel_table *, char *err,
		    size_t errlen);
void		 channel_table_free(struct channel_table *);

/*
 * Channels per stream at most: the kinds' maxima and the broadcast
 * channels.
 */
size_t		 channel_table_total(const struct channel_table *);
/* A query for a stream of t's kinds (query.h), their maxima as now. */
void		 channel_query_init(const struct channel_table *,
		    struct query *);

/*
 * Pattern mode: "PSUBSCRIBE" (command), then each kind's PREFIX* and each
 * broadcast channel with its glob characters escaped, so that it matches
 * itself only.  argv and lens point into p until channel_patterns_free.
 * 0, or -1 out of memory.
 */
struct channel_patterns {
	size_t		 argc;		/* the command and its patterns */
	const char	**argv;
	size_t		*lens;
	char		*buf;
};
int		 channel_patterns(const struct channel_table *,
		    const char *command, struct channel_patterns *);
void		 channel_patterns_free(struct channel_patterns *);

#endif
