/*
 * answers.h - what Redis answers, read off hiredis reply trees.
 *
 * Every reply the broker's connections read (link.c's subscribed and
 * command connections, the cluster map's, the sentinels') is taken apart
 * here and nowhere else: the pub/sub kinds and their channels, refusals
 * and MOVED/ASK redirections, ROLE, CLUSTER SLOTS, the sentinels' answers
 * and +switch-master, and the history reads of --history redis.  The
 * connections decide what to do; this file only says what a reply is.
 *
 * Pure: no I/O, no allocation but the history entries and the slot map
 * they fill in, so the unit tests feed hand-made reply trees.  The
 * strings handed back point into the reply: valid until it is freed.
 *
 * THREADS: any; the broker thread calls it.
 */
#ifndef SSERELAY_ANSWERS_H
#define SSERELAY_ANSWERS_H

#include <stddef.h>

#include "util.h"

struct redisReply;
struct cluster_map;
struct durable_read;

/* ---- a subscribed connection (RESP2: arrays led by a kind word) ---- */

enum answers_kind {
	ANSWERS_OTHER = 0,	/* nothing we use: dropped */
	ANSWERS_MESSAGE,	/* message, smessage, pmessage */
	ANSWERS_SUBSCRIBED,	/* subscribe, ssubscribe: one channel */
	ANSWERS_UNSUBSCRIBED,	/* unsubscribe, sunsubscribe: one channel */
	ANSWERS_PSUBSCRIBED,	/* psubscribe: one pattern */
	ANSWERS_PONG,		/* ["pong", ""], or +PONG outside */
	ANSWERS_ERROR,		/* a refusal: see answers_refusal() */
};

struct answers_pubsub {
	enum answers_kind	 kind;
	const char		*word;		/* "smessage"...; NULL if none */
	const char		*channel;	/* MESSAGE, (UN)SUBSCRIBED */
	size_t			 channel_len;
	const char		*payload;	/* MESSAGE: binary, use len */
	size_t			 payload_len;
};

/*
 * What r is.  A known kind in a shape that is not its own (a channel that
 * is no string, a message without payload) is ANSWERS_OTHER with word
 * set, so it can be logged.  0, or -1 when r is ANSWERS_OTHER.
 */
int	answers_pubsub(const struct redisReply *, struct answers_pubsub *);

/* ---- refusals ---- */

enum answers_refusal_kind {
	ANSWERS_REFUSED = 0,	/* NOPERM, ERR, WRONGTYPE, ... */
	ANSWERS_MOVED,		/* the slot lives elsewhere for good */
	ANSWERS_ASK,		/* the slot is moving */
};

struct answers_refusal {
	enum answers_refusal_kind kind;
	char			 code[32];	/* "NOPERM", "MOVED", ... */
	const char		*text;		/* the whole error */
	/* MOVED and ASK, when they read right (redirect_ok) */
	int			 redirect_ok;
	unsigned		 slot;
	char			 host[UTIL_HOST_MAX];	/* "": the node asked */
	int			 port;
};

/* an error reply taken apart; -1 if r is no error */
int	answers_refusal(const struct redisReply *, struct answers_refusal *);

/* ---- plain commands ---- */

/* ROLE: 0 if the server says "master"; else -1, with what it said */
int	answers_role_master(const struct redisReply *, const char **said);

/* FCALL_RO sserelay_version: 0 if it is version, else -1 (other: its) */
int	answers_library_version(const struct redisReply *, const char *version,
	    const char **other);

/*
 * CLUSTER SLOTS into m, replacing what it held: [[start, end, [host, port,
 * id, ...], replica...], ...].  Only the first node of a range, its
 * primary, counts.  An empty host stands for asked_host; "?" (an endpoint
 * not known yet) leaves the range unserved.  0, or -1 with err (m
 * unchanged).
 */
int	answers_cluster_slots(struct cluster_map *, const struct redisReply *,
	    const char *asked_host, char *err, size_t errlen);

/*
 * Channel i's FCALL_RO sserelay_read answer into r: [status, epoch, offset,
 * (offset, time_us, data)...].  An error reply is a DURABLE_FAILED read
 * (0); -1 when r is not the shape of an answer (DURABLE_FAILED too).
 */
int	answers_history(struct durable_read *, size_t i,
	    const struct redisReply *);

/* ---- sentinels ---- */

enum answers_master {
	ANSWERS_MASTER_AT = 0,	/* host and port set */
	ANSWERS_MASTER_UNKNOWN,	/* nil: no master of that name */
	ANSWERS_MASTER_BAD,	/* an error, or not [host, port] */
};

/* SENTINEL get-master-addr-by-name */
enum answers_master answers_sentinel_master(const struct redisReply *,
	    char *host, size_t hostlen, int *port);

struct answers_switch {
	char		 name[256];
	char		 from[UTIL_HOST_MAX];
	int		 from_port;
	char		 to[UTIL_HOST_MAX];
	int		 to_port;
};

/*
 * A +switch-master message's payload, "NAME OLDIP OLDPORT NEWIP NEWPORT".
 * 0, or -1 if it is not of that form.
 */
int	answers_switch_master(const char *payload, size_t len,
	    struct answers_switch *);

#endif
