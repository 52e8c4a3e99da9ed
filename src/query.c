/*
 * query.c - validation of /events query parameters, no I/O.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "query.h"

/*
 * The parameters the query takes for itself, and those kept for later:
 * no kind of channel may be named like one.
 */
static const char *const query_reserved[] = {
	"lastEventId",		/* resume, for polyfills and first connections */
	"access_token",		/* the JWT */
	"_",			/* cache busters (jQuery, polyfills) */
	"last",			/* ?last=N, the newest first */
	"uploads",		/* the upload kind's JWT claim */
	NULL
};

void
query_init(struct query *q, size_t room)
{
	memset(q, 0, sizeof(*q));
	if (room == 0 || room > QUERY_CHANNELS_MAX)
		room = QUERY_CHANNELS_MAX;
	q->room = room;
}

void
query_max_last(struct query *q, unsigned max_last)
{
	q->max_last = max_last;
}

int
query_kind(struct query *q, const char *name, size_t max)
{
	if (q->nkinds == QUERY_KINDS_MAX)
		return -1;
	q->kinds[q->nkinds].name = name;
	q->kinds[q->nkinds].max = max > 0 ? max : 1;
	q->kinds[q->nkinds].n = 0;
	q->nkinds++;
	return 0;
}

int
query_id_safe(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > QUERY_ID_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == ':' || c == '@' || c == '-')
			continue;
		return 0;
	}
	return 1;
}

int
query_name_check(const char *name, char *err, size_t errlen)
{
	size_t	 i, len = strlen(name);

	for (i = 0; query_reserved[i] != NULL; i++)
		if (strcmp(name, query_reserved[i]) == 0) {
			snprintf(err, errlen, "reserved: the query takes "
			    "lastEventId, access_token, last and _ for itself "
			    "and keeps uploads");
			return -1;
		}
	if (len == 0 || len > QUERY_NAME_MAX)
		goto bad;
	if (!((name[0] >= 'a' && name[0] <= 'z') ||
	    (name[0] >= 'A' && name[0] <= 'Z')))
		goto bad;
	for (i = 1; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
			continue;
		goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "not a parameter name: 1 to %d of A-Z a-z 0-9 "
	    "_ . -, a letter first", QUERY_NAME_MAX);
	return -1;
}

static int
query_fail(struct query *q, const char *msg)
{
	if (q->error == NULL)
		q->error = msg;
	return -1;
}

static int
query_bad_id(struct query *q, const char *what, size_t len)
{
	if (len == 0)
		snprintf(q->errbuf, sizeof(q->errbuf), "empty %s id", what);
	else if (len > QUERY_ID_MAX)
		snprintf(q->errbuf, sizeof(q->errbuf),
		    "%s id longer than %d bytes", what, QUERY_ID_MAX);
	else
		snprintf(q->errbuf, sizeof(q->errbuf),
		    "invalid %s id: allowed are 1-%d of A-Z a-z 0-9 . _ : @ -",
		    what, QUERY_ID_MAX);
	return query_fail(q, q->errbuf);
}

/*
 * "user, upload or room" into buf: the kinds' names, as many as fit (a
 * list cut short ends in "..."), so that a reason stays one short line.
 */
static void
query_names(const struct query *q, char *buf, size_t len)
{
	static const char	 more[] = ", ...";
	const char		*sep;
	size_t			 i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < q->nkinds; i++) {
		sep = i == 0 ? "" : i + 1 == q->nkinds ? " or " : ", ";
		/* room is always left for the "..." */
		if (n + strlen(sep) + strlen(q->kinds[i].name) +
		    sizeof(more) > len) {
			memcpy(buf + n, more, sizeof(more));
			return;
		}
		n += (size_t)snprintf(buf + n, len - n, "%s%s", sep,
		    q->kinds[i].name);
	}
}

/*
 * A parameter that is neither a kind nor one of the query's own.  Its name
 * is repeated in the reason when it is short and plain (the reason must
 * stay one line of text); the kinds are listed, since a typo is the
 * likely cause.
 */
static int
query_unknown(struct query *q, const char *key)
{
	char	 names[160];
	size_t	 len = strlen(key);

	query_names(q, names, sizeof(names));
	if (len <= QUERY_NAME_MAX && query_id_safe(key, len))
		snprintf(q->errbuf, sizeof(q->errbuf), "unknown parameter "
		    "'%s' (channels: %s)", key, names);
	else
		snprintf(q->errbuf, sizeof(q->errbuf), "unknown parameter "
		    "(channels: %s)", names);
	return query_fail(q, q->errbuf);
}

/* an id of the kind k */
static int
query_add_id(struct query *q, size_t k, const char *value, size_t value_len)
{
	struct query_kind	*kind = &q->kinds[k];
	size_t			 i;

	if (!query_id_safe(value, value_len))
		return query_bad_id(q, kind->name, value_len);
	if (strcmp(kind->name, QUERY_USER) == 0) {
		if (q->has_user)
			return query_fail(q, "duplicate user parameter");
		if (q->nids + 1 > q->room)
			goto full;
		memcpy(q->user, value, value_len);
		q->user[value_len] = '\0';
		q->has_user = 1;
		return 0;
	}
	for (i = 0; i < q->nids; i++)
		if (q->ids[i].kind == k && strlen(q->ids[i].id) == value_len &&
		    memcmp(q->ids[i].id, value, value_len) == 0)
			return 0;
	if (kind->n == kind->max) {
		snprintf(q->errbuf, sizeof(q->errbuf), "too many %s parameters "
		    "(max %zu)", kind->name, kind->max);
		return query_fail(q, q->errbuf);
	}
	/* the kinds' maxima fit by configuration, unless a reload raised
	   them past it: the stream's arrays are what this guards */
	if (q->nids + (size_t)q->has_user + 1 > q->room ||
	    q->nids == QUERY_CHANNELS_MAX)
		goto full;
	q->ids[q->nids].kind = k;
	memcpy(q->ids[q->nids].id, value, value_len);
	q->ids[q->nids].id[value_len] = '\0';
	q->nids++;
	kind->n++;
	return 0;
full:
	snprintf(q->errbuf, sizeof(q->errbuf), "too many channels (max %zu)",
	    q->room);
	return query_fail(q, q->errbuf);
}

/* ?last=N: a plain decimal number, 0..max_last */
static int
query_last(struct query *q, const char *value, size_t len)
{
	unsigned long	 v = 0;
	size_t		 i;

	if (q->has_last)
		return query_fail(q, "duplicate last parameter");
	for (i = 0; i < len; i++) {
		if (value[i] < '0' || value[i] > '9')
			break;
		if (v <= q->max_last)
			v = v * 10 + (unsigned long)(value[i] - '0');
	}
	if (len == 0 || i < len) {
		snprintf(q->errbuf, sizeof(q->errbuf), "last must be a number "
		    "from 0 to %u", q->max_last);
		return query_fail(q, q->errbuf);
	}
	if (v > q->max_last) {
		if (q->max_last == 0)
			return query_fail(q, "last is turned off here "
			    "(max-last 0)");
		snprintf(q->errbuf, sizeof(q->errbuf), "last is over this "
		    "server's bound of %u", q->max_last);
		return query_fail(q, q->errbuf);
	}
	q->last = (unsigned)v;
	q->has_last = 1;
	return 0;
}

int
query_add(struct query *q, const char *key, const char *value,
    size_t value_len)
{
	size_t	 k;

	if (q->error != NULL)
		return -1;
	if (*key == '\0')
		return 0;
	if (value == NULL)
		value_len = 0, value = "";
	for (k = 0; k < q->nkinds; k++)
		if (strcmp(key, q->kinds[k].name) == 0)
			return query_add_id(q, k, value, value_len);
	if (strcmp(key, "access_token") == 0) {
		if (q->access_token != NULL)
			return query_fail(q, "duplicate access_token parameter");
		/* one with a NUL cannot be a token: make it fail as one */
		q->access_token = memchr(value, '\0', value_len) != NULL ?
		    "invalid" : value;
	} else if (strcmp(key, "last") == 0) {
		return query_last(q, value, value_len);
	} else if (strcmp(key, "lastEventId") == 0) {
		/*
		 * For the resume logic.  One that cannot be an id (too long, a
		 * NUL) must not be dropped silently: it is kept as a value the
		 * id parser refuses, so the stream starts with a reset.
		 */
		if (q->has_last_event_id)
			return query_fail(q, "duplicate lastEventId parameter");
		if (value_len > QUERY_LAST_ID_MAX ||
		    memchr(value, '\0', value_len) != NULL) {
			value = "invalid";
			value_len = strlen(value);
		}
		memcpy(q->last_event_id, value, value_len);
		q->last_event_id[value_len] = '\0';
		q->has_last_event_id = 1;
	} else if (strcmp(key, "_") != 0)
		return query_unknown(q, key);
	return 0;
}

int
query_finish(struct query *q)
{
	char	 names[160];

	if (q->error != NULL)
		return -1;
	if (!q->has_user && q->nids == 0) {
		/* "missing user or upload parameter" with the default kinds */
		query_names(q, names, sizeof(names));
		snprintf(q->errbuf, sizeof(q->errbuf), "missing %s parameter",
		    names);
		return query_fail(q, q->errbuf);
	}
	return 0;
}
