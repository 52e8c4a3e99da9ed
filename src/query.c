/*
 * query.c - validation of /events query parameters, no I/O.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "query.h"

void
query_init(struct query *q, size_t max_uploads, unsigned max_last)
{
	memset(q, 0, sizeof(*q));
	q->max_last = max_last;
	if (max_uploads == 0 || max_uploads > QUERY_UPLOADS_MAX)
		max_uploads = QUERY_UPLOADS_MAX;
	q->max_uploads = max_uploads;
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
	size_t	 i;

	if (q->error != NULL)
		return -1;
	if (value == NULL)
		value_len = 0, value = "";
	if (strcmp(key, "user") == 0) {
		if (q->has_user)
			return query_fail(q, "duplicate user parameter");
		if (!query_id_safe(value, value_len))
			return query_bad_id(q, "user", value_len);
		memcpy(q->user, value, value_len);
		q->user[value_len] = '\0';
		q->has_user = 1;
	} else if (strcmp(key, "upload") == 0) {
		if (!query_id_safe(value, value_len))
			return query_bad_id(q, "upload", value_len);
		for (i = 0; i < q->nuploads; i++)
			if (strlen(q->uploads[i]) == value_len &&
			    memcmp(q->uploads[i], value, value_len) == 0)
				return 0;
		if (q->nuploads == q->max_uploads) {
			snprintf(q->errbuf, sizeof(q->errbuf),
			    "too many upload parameters (max %zu)",
			    q->max_uploads);
			return query_fail(q, q->errbuf);
		}
		memcpy(q->uploads[q->nuploads], value, value_len);
		q->uploads[q->nuploads][value_len] = '\0';
		q->nuploads++;
	} else if (strcmp(key, "access_token") == 0) {
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
		if (value_len > QUERY_ID_MAX ||
		    memchr(value, '\0', value_len) != NULL) {
			value = "invalid";
			value_len = strlen(value);
		}
		memcpy(q->last_event_id, value, value_len);
		q->last_event_id[value_len] = '\0';
		q->has_last_event_id = 1;
	}
	return 0;
}

int
query_finish(struct query *q)
{
	if (q->error != NULL)
		return -1;
	if (!q->has_user && q->nuploads == 0)
		return query_fail(q, "missing user or upload parameter");
	return 0;
}
