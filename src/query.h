/*
 * query.h - validation of the /events query string, no I/O.
 *
 * The HTTP layer feeds every decoded (key, value) pair in request order;
 * query_finish() then says whether the request is acceptable.  Reasons are
 * one line, fit for a 400 body.
 */
#ifndef SSERELAY_QUERY_H
#define SSERELAY_QUERY_H

#include <stddef.h>

#define QUERY_ID_MAX		128	/* bytes in one user or upload id */
#define QUERY_UPLOADS_MAX	16

struct query {
	char	 user[QUERY_ID_MAX + 1];
	int	 has_user;
	char	 uploads[QUERY_UPLOADS_MAX][QUERY_ID_MAX + 1];
	size_t	 nuploads;
	size_t	 max_uploads;
	char	 last_event_id[QUERY_ID_MAX + 1];
	int	 has_last_event_id;
	unsigned last;		/* ?last=N, 0..max_last */
	int	 has_last;
	unsigned max_last;
	const char *access_token;	/* the caller's value: not copied */
	const char *error;	/* first error, static string */
	char	 errbuf[96];
};

/* max_last: the largest ?last=N accepted (0: the parameter only as 0) */
void	 query_init(struct query *, size_t max_uploads, unsigned max_last);
/*
 * One decoded pair; value may contain NUL (value_len says how long).
 * Unknown keys are ignored (cache busters such as "_=123").  A duplicate
 * upload is folded into one subscription.  Returns 0, or -1 once an error
 * has been recorded (later pairs are then ignored).
 */
int	 query_add(struct query *, const char *key, const char *value,
	    size_t value_len);
/* 0 if acceptable; -1 with q->error set */
int	 query_finish(struct query *);
/* 1 if s[0..len) is a safe id: 1..128 bytes of [A-Za-z0-9._:@-] */
int	 query_id_safe(const char *s, size_t len);

#endif
