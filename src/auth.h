/*
 * auth.h - JWT access control (libjwt): who may open which stream.
 *
 * The token's alg must be the configured one (so "none", or an HS token
 * signed with an RSA public key as its secret, never passes), exp is
 * required, nbf/iss/aud are checked when present or configured, sub must
 * be the stream's user, and every other id the stream asks for must be
 * allowed by the list <jwt-claim>.<kind> (exact ids, or prefixes ending
 * in '*'): <jwt-claim>.room for ?room=, and for ?upload= the claim's
 * "uploads", as it always was.  Broadcast channels need no claim.
 *
 * Thread-safe after auth_new(): auth_check() only reads the key.
 */
#ifndef SSERELAY_AUTH_H
#define SSERELAY_AUTH_H

#include <stddef.h>
#include <time.h>

struct config;
struct auth;

enum auth_result {
	AUTH_OK = 0,
	AUTH_MISSING,		/* 401 */
	AUTH_INVALID,		/* 401: signature, format, alg */
	AUTH_EXPIRED,		/* 401 */
	AUTH_NOT_YET_VALID,	/* 401 */
	AUTH_NO_EXP,		/* 401 */
	AUTH_ISSUER,		/* 401 */
	AUTH_AUDIENCE,		/* 401 */
	AUTH_USER,		/* 403: sub is another user */
	AUTH_UPLOAD,		/* 403: an upload the claim does not allow */
	AUTH_CHANNEL,		/* 403: an id of another kind, the same */
	AUTH_NRESULTS
};

/* one id a stream asks for, and its kind's name ("upload", "room") */
struct auth_id {
	const char	*kind;
	const char	*id;
};

struct auth	*auth_new(const struct config *, char *err, size_t errlen);
void		 auth_free(struct auth *);
/*
 * Check token (NULL: none was sent) for a stream of user and the n ids
 * at time now.  AUTH_OK with *exp set to the token's expiry and *iat to
 * when it was issued (unix seconds; 0 without iat); otherwise the refusal, and for AUTH_UPLOAD and AUTH_CHANNEL
 * *denied is the first id refused.
 */
enum auth_result auth_check(struct auth *, const char *token,
		    const char *user, const struct auth_id *ids, size_t n,
		    time_t now, time_t *exp, time_t *iat,
		    const struct auth_id **denied);
/* 401 or 403 */
unsigned	 auth_status(enum auth_result);
/* the one-line reason for the response body */
const char	*auth_text(enum auth_result);
/* short name for metrics labels: "missing", "invalid", ... */
const char	*auth_name(enum auth_result);

#endif
