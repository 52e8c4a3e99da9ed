/*
 * channel.c - kinds of channel and broadcast channels.  Rules in
 * channel.h.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "log.h"
#include "util.h"

/* a channel name that Redis reads as a glob: prefixes may not have these */
#define CHANNEL_GLOB	"*?[]\\"

/* 0 a default, 1 a file line, 2 the flags */
static int
channel_from_rank(unsigned from)
{
	return from == CHANNEL_FROM_DEFAULT ? 0 :
	    from == CHANNEL_FROM_FLAGS ? 2 : 1;
}

/*
 * May a setting from `from` replace one from `old`?  1 yes, 0 no (an
 * earlier source never replaces a later one), -1 with err set: two lines
 * of one file.
 */
static int
channel_replaces(unsigned old, unsigned from, const char *what,
    const char *name, char *err, size_t errlen)
{
	int	 o = channel_from_rank(old), f = channel_from_rank(from);

	if (o == 1 && f == 1)
		return util_err(err, errlen, "the %s of %s is already set "
		    "on line %u", what, name, old);
	return f >= o;
}

struct channel_kind *
channel_kind_find(const struct channel_table *t, const char *name)
{
	size_t	 i;

	for (i = 0; i < t->nkinds; i++)
		if (strcmp(t->kinds[i].name, name) == 0)
			return (struct channel_kind *)&t->kinds[i];
	return NULL;
}

/* the kind called name, made (at most 1 id) if there is none */
static struct channel_kind *
channel_kind_get(struct channel_table *t, const char *name, char *err,
    size_t errlen)
{
	struct channel_kind	*k;
	char			 e[160];

	if ((k = channel_kind_find(t, name)) != NULL)
		return k;
	if (query_name_check(name, e, sizeof(e)) == -1) {
		util_err(err, errlen, "'%s': %s", name, e);
		return NULL;
	}
	if (t->nkinds == QUERY_KINDS_MAX) {
		util_err(err, errlen, "'%s': more than %d kinds of channel",
		    name, QUERY_KINDS_MAX);
		return NULL;
	}
	k = &t->kinds[t->nkinds++];
	memset(k, 0, sizeof(*k));
	k->name = util_strdup(name);
	atomic_store(&k->max, 1);
	return k;
}

int
channel_kind_prefix(struct channel_table *t, const char *name,
    const char *prefix, unsigned from, char *err, size_t errlen)
{
	struct channel_kind	*k;
	int			 r;

	/* a prefix becomes a PSUBSCRIBE pattern: no glob characters */
	if (strpbrk(prefix, CHANNEL_GLOB) != NULL ||
	    strlen(prefix) > CHANNEL_PREFIX_MAX)
		return util_err(err, errlen, "a prefix is at most %d bytes "
		    "and none of * ? [ ] \\, got '%s'", CHANNEL_PREFIX_MAX,
		    prefix);
	if ((k = channel_kind_get(t, name, err, errlen)) == NULL)
		return -1;
	if ((r = channel_replaces(k->prefix_from, from, "prefix", name, err,
	    errlen)) <= 0)
		return r;
	free(k->prefix);
	k->prefix = util_strdup(prefix);
	k->prefix_from = from;
	return 0;
}

int
channel_kind_max(struct channel_table *t, const char *name, unsigned max,
    unsigned from, char *err, size_t errlen)
{
	struct channel_kind	*k;
	int			 r;

	if (strcmp(name, QUERY_USER) == 0 && max != 1)
		return util_err(err, errlen, "user: a stream has one user, "
		    "got %u", max);
	if (max < 1 || max > QUERY_CHANNELS_MAX)
		return util_err(err, errlen, "%s: expected 1 to %d ids per "
		    "stream, got %u", name, QUERY_CHANNELS_MAX, max);
	if ((k = channel_kind_get(t, name, err, errlen)) == NULL)
		return -1;
	if ((r = channel_replaces(k->max_from, from, "maximum", name, err,
	    errlen)) <= 0)
		return r;
	atomic_store(&k->max, max);
	k->max_from = from;
	return 0;
}

int
channel_broadcast(struct channel_table *t, const char *name, unsigned from,
    char *err, size_t errlen)
{
	size_t	 i, len = strlen(name);

	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			break;
	if (len == 0 || len > CHANNEL_LEN_MAX || i < len)
		return util_err(err, errlen, "a channel is 1 to %d bytes, "
		    "no control characters, got '%.*s'", CHANNEL_LEN_MAX,
		    (int)i, name);
	/* the flags' list replaces the file's */
	if (channel_from_rank(from) > channel_from_rank(t->broadcasts_from)) {
		for (i = 0; i < t->nbroadcasts; i++)
			free(t->broadcasts[i]);
		t->nbroadcasts = 0;
	}
	t->broadcasts_from = from;
	for (i = 0; i < t->nbroadcasts; i++)
		if (strcmp(t->broadcasts[i], name) == 0)
			return util_err(err, errlen, "'%s' is given twice",
			    name);
	if (t->nbroadcasts == QUERY_CHANNELS_MAX)
		return util_err(err, errlen, "more than %d broadcast "
		    "channels", QUERY_CHANNELS_MAX);
	t->broadcasts[t->nbroadcasts++] = util_strdup(name);
	return 0;
}

size_t
channel_table_total(const struct channel_table *t)
{
	size_t	 i, n = t->nbroadcasts;

	for (i = 0; i < t->nkinds; i++)
		n += atomic_load(&t->kinds[i].max);
	return n;
}

int
channel_table_check(const struct channel_table *t, char *err, size_t errlen)
{
	const struct channel_kind *a, *b;
	size_t		 i, j, la, lb, total;

	for (i = 0; i < t->nkinds; i++)
		if (t->kinds[i].prefix == NULL)
			return util_err(err, errlen, "--channel-max %s: no "
			    "such kind of channel (--channel %s=PREFIX makes "
			    "one)", t->kinds[i].name, t->kinds[i].name);
	for (i = 0; i < t->nkinds; i++) {
		a = &t->kinds[i];
		la = strlen(a->prefix);
		for (j = i + 1; j < t->nkinds; j++) {
			b = &t->kinds[j];
			lb = strlen(b->prefix);
			if (strncmp(a->prefix, b->prefix, la < lb ? la : lb)
			    != 0)
				continue;
			if (la == lb)
				return util_err(err, errlen, "--channel: the "
				    "kinds %s and %s have the same prefix '%s'",
				    a->name, b->name, a->prefix);
			if (la > lb) {
				const struct channel_kind *x = a;

				a = b, b = x;
			}
			return util_err(err, errlen, "--channel: the prefix "
			    "of %s ('%s') begins that of %s ('%s'): a channel "
			    "would be of both kinds", a->name, a->prefix,
			    b->name, b->prefix);
		}
	}
	for (i = 0; i < t->nbroadcasts; i++)
		for (j = 0; j < t->nkinds; j++) {
			a = &t->kinds[j];
			if (strncmp(t->broadcasts[i], a->prefix,
			    strlen(a->prefix)) == 0)
				return util_err(err, errlen, "--broadcast "
				    "%s: a channel of the kind %s (prefix '%s'); "
				    "a broadcast channel must be outside every "
				    "kind's prefix", t->broadcasts[i], a->name,
				    a->prefix);
		}
	if ((total = channel_table_total(t)) > QUERY_CHANNELS_MAX)
		return util_err(err, errlen, "--channel-max, --broadcast: "
		    "a stream could have %zu channels (the kinds' maxima add "
		    "up to %zu, plus %zu broadcast), more than %d", total,
		    total - t->nbroadcasts, t->nbroadcasts,
		    QUERY_CHANNELS_MAX);
	return 0;
}

void
channel_table_free(struct channel_table *t)
{
	size_t	 i;

	for (i = 0; i < t->nkinds; i++) {
		free(t->kinds[i].name);
		free(t->kinds[i].prefix);
	}
	for (i = 0; i < t->nbroadcasts; i++)
		free(t->broadcasts[i]);
	memset(t, 0, sizeof(*t));
}

void
channel_query_init(const struct channel_table *t, struct query *q)
{
	size_t	 i;

	query_init(q, QUERY_CHANNELS_MAX - t->nbroadcasts);
	for (i = 0; i < t->nkinds; i++)
		query_kind(q, t->kinds[i].name, atomic_load(&t->kinds[i].max));
}

int
channel_patterns(const struct channel_table *t, const char *command,
    struct channel_patterns *p)
{
	size_t	 i, j, size, n = 0;
	char	*w;

	memset(p, 0, sizeof(*p));
	size = strlen(command) + 1;
	for (i = 0; i < t->nkinds; i++)
		size += strlen(t->kinds[i].prefix) + 2;
	for (i = 0; i < t->nbroadcasts; i++)
		size += 2 * strlen(t->broadcasts[i]) + 1;
	p->argc = 1 + t->nkinds + t->nbroadcasts;
	if ((p->argv = calloc(p->argc, sizeof(*p->argv))) == NULL ||
	    (p->lens = calloc(p->argc, sizeof(*p->lens))) == NULL ||
	    (p->buf = malloc(size)) == NULL) {
		channel_patterns_free(p);
		return -1;
	}
	w = p->buf;
	p->argv[n] = w;
	p->lens[n++] = strlen(command);
	w += sprintf(w, "%s", command) + 1;
	for (i = 0; i < t->nkinds; i++) {
		p->argv[n] = w;
		p->lens[n] = (size_t)sprintf(w, "%s*", t->kinds[i].prefix);
		w += p->lens[n++] + 1;
	}
	for (i = 0; i < t->nbroadcasts; i++) {
		p->argv[n] = w;
		for (j = 0; t->broadcasts[i][j] != '\0'; j++) {
			if (strchr(CHANNEL_GLOB, t->broadcasts[i][j]) != NULL)
				*w++ = '\\';
			*w++ = t->broadcasts[i][j];
		}
		*w++ = '\0';
		p->lens[n] = (size_t)(w - p->argv[n]) - 1;
		n++;
	}
	return 0;
}

void
channel_patterns_free(struct channel_patterns *p)
{
	free(p->argv);
	free(p->lens);
	free(p->buf);
	memset(p, 0, sizeof(*p));
}
