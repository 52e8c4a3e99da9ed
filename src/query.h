/*
 * query.h - validation of the /events query string, no I/O.
 *
 * The caller names the kinds of channel first (query_kind: a parameter
 * name and how many ids of it a stream may give), then feeds every decoded
 * (key, value) pair in request order; query_finish() then says whether the
 * request is acceptable.  Reasons are one line, fit for a 400 body.
 *
 * The kind named "user" is the stream's user: one id at most, kept in
 * q->user (access control and the per-user limit read it there), and a
 * second one is refused even when equal.  The ids of every other kind are
 * kept in q->ids in request order; a repeated id of a kind counts once.
 *
 * Besides the kinds, only these parameters are accepted: lastEventId
 * (resume), access_token (the JWT) and _ (cache busters).  Anything else,
 * a typo such as uplaod=u7 above all, is refused rather than ignored: it
 * would subscribe to nothing and look like silence.
 */
#ifndef SSERELAY_QUERY_H
#define SSERELAY_QUERY_H

#include <stddef.h>

#define QUERY_ID_MAX		128	/* bytes in one id */
#define QUERY_NAME_MAX		32	/* bytes in a kind's parameter name */
#define QUERY_KINDS_MAX		16	/* kinds of channel */
/*
 * Channels per stream, all kinds and broadcast channels together.  Each
 * costs the stream one membership in the hub (struct hub_sub, 40 bytes on
 * LP64) for as long as it is open, and the request being admitted about
 * 370 bytes of the worker's stack (its id here, 144; its name, pointer and
 * length in http_events, 209; its auth_id, 16): 64 keep those under 3 KiB
 * and 24 KiB.
 */
#define QUERY_CHANNELS_MAX	64
#define QUERY_UPLOADS_MAX	16	/* --max-uploads at most */
#define QUERY_USER		"user"	/* the kind that is the stream's user */
/*
 * A Last-Event-ID in the query: with --history redis an id holds the
 * position of every channel of the stream (position.h: 1417 bytes for 64)
 */
#define QUERY_LAST_ID_MAX	1536

struct query_kind {
	const char	*name;		/* the parameter; the caller's string */
	size_t		 max;		/* ids per stream */
	size_t		 n;		/* ids given so far */
};

struct query_id {
	size_t		 kind;		/* index in q->kinds */
	char		 id[QUERY_ID_MAX + 1];
};

struct query {
	struct query_kind kinds[QUERY_KINDS_MAX];
	size_t		 nkinds;
	size_t		 room;		/* ids this stream may have, user too */
	char		 user[QUERY_ID_MAX + 1];
	int		 has_user;
	struct query_id	 ids[QUERY_CHANNELS_MAX];	/* all but the user */
	size_t		 nids;
	char		 last_event_id[QUERY_LAST_ID_MAX + 1];
	int		 has_last_event_id;
	unsigned	 last;		/* ?last=N, 0..max_last */
	int		 has_last;
	unsigned	 max_last;
	const char	*access_token;	/* the caller's value: not copied */
	const char	*error;		/* first error, static or errbuf */
	char		 errbuf[256];
};

/*
 * A query for a stream that may have room channels named by its
 * parameters (QUERY_CHANNELS_MAX less its broadcast channels).
 */
void	 query_init(struct query *, size_t room);
/* the largest ?last=N accepted (query_init: 0, the parameter only as 0) */
void	 query_max_last(struct query *, unsigned max_last);
/*
 * A kind of channel: the parameter name (kept as a pointer: it must
 * outlive q) and its ids per stream.  0, or -1 when there are already
 * QUERY_KINDS_MAX kinds.
 */
int	 query_kind(struct query *, const char *name, size_t max);
/*
 * One decoded pair; value may contain NUL (value_len says how long).
 * Returns 0, or -1 once an error has been recorded (later pairs are then
 * ignored).  A pair with an empty name is ignored.
 */
int	 query_add(struct query *, const char *key, const char *value,
	    size_t value_len);
/* 0 if acceptable; -1 with q->error set */
int	 query_finish(struct query *);
/* 1 if s[0..len) is a safe id: 1..128 bytes of [A-Za-z0-9._:@-] */
int	 query_id_safe(const char *s, size_t len);
/*
 * Whether name may be a kind's parameter: 1 to QUERY_NAME_MAX bytes of
 * A-Z a-z 0-9 _ . -, a letter first, and none of the parameters the query
 * takes for itself (lastEventId, access_token, _) or keeps for what is
 * coming (last), nor "uploads" (the upload kind's JWT claim).  0, or -1
 * with err set ("not ..." without the name).
 */
int	 query_name_check(const char *name, char *err, size_t errlen);

#endif
