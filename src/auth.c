/*
 * auth.c - JWT access control with libjwt.  Rules in auth.h.
 *
 * The key is read once at startup; a secret is wiped before it is freed.
 * Nothing here logs a token.
 */
#include "autoconf.h"

#include <errno.h>
#include <json-c/json.h>
#include <jwt.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "secret.h"

#define AUTH_KEY_MAX	(64 * 1024)

struct auth {
	jwt_alg_t	 alg;
	unsigned char	*key;
	size_t		 key_len;
	const char	*issuer;	/* the config's, which outlives us */
	const char	*audience;
	const char	*claim;
	long		 leeway;
};

static const struct {
	const char	*text;
	const char	*name;
	unsigned	 status;
} auth_results[AUTH_NRESULTS] = {
	[AUTH_OK] =		{ "ok", "ok", 200 },
	[AUTH_MISSING] =	{ "missing token", "missing", 401 },
	[AUTH_INVALID] =	{ "invalid token", "invalid", 401 },
	[AUTH_EXPIRED] =	{ "token expired", "expired", 401 },
	[AUTH_NOT_YET_VALID] =	{ "token not yet valid", "not_yet_valid", 401 },
	[AUTH_NO_EXP] =		{ "token has no exp", "no_exp", 401 },
	[AUTH_ISSUER] =		{ "wrong issuer", "issuer", 401 },
	[AUTH_AUDIENCE] =	{ "wrong audience", "audience", 401 },
	[AUTH_USER] =		{ "token is for another user", "user", 403 },
	[AUTH_UPLOAD] =		{ "upload not allowed", "upload", 403 },
	[AUTH_CHANNEL] =	{ "channel not allowed", "channel", 403 },
};

unsigned
auth_status(enum auth_result r)
{
	return auth_results[r].status;
}

const char *
auth_text(enum auth_result r)
{
	return auth_results[r].text;
}

const char *
auth_name(enum auth_result r)
{
	return auth_results[r].name;
}

static int
auth_read_key(struct auth *a, const char *path, char *err, size_t errlen)
{
	char	 e[256];

	if ((a->key = (unsigned char *)secret_read_file(path, AUTH_KEY_MAX,
	    &a->key_len, e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "--jwt-key-file: %s", e);
		return -1;
	}
	return 0;
}

/*
 * The public key must be of the algorithm's type (RSA for RS256, EC on
 * P-256 for ES256): a wrong one would start fine and refuse every token.
 * OpenSSL's libcrypto reads it; libjwt uses the same library.
 */
static int
auth_key_fits(const struct auth *a, const char *alg, const char *path,
    char *err, size_t errlen)
{
	EVP_PKEY	*pk;
	BIO		*bio;
	char		 curve[64] = "";
	size_t		 len = 0;
	int		 type, ok;

	if ((bio = BIO_new_mem_buf(a->key, (int)a->key_len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk == NULL) {
		snprintf(err, errlen, "--jwt-key-file: %s: not a readable public "
		    "key", path);
		return -1;
	}
	type = EVP_PKEY_base_id(pk);
	if (a->alg == JWT_ALG_RS256)
		ok = type == EVP_PKEY_RSA;
	else {
		ok = type == EVP_PKEY_EC &&
		    EVP_PKEY_get_utf8_string_param(pk, "group", curve,
		    sizeof(curve), &len) == 1 &&
		    strcmp(curve, "prime256v1") == 0;
	}
	EVP_PKEY_free(pk);
	if (!ok) {
		snprintf(err, errlen, "--jwt-key-file: %s: %s needs %s public "
		    "key", path, alg, a->alg == JWT_ALG_RS256 ? "an RSA" :
		    "a P-256 EC");
		return -1;
	}
	return 0;
}

struct auth *
auth_new(const struct config *cfg, char *err, size_t errlen)
{
	struct auth	*a;
	int		 pem;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->alg = jwt_str_alg(cfg->jwt_algorithm);
	if (a->alg != JWT_ALG_HS256 && a->alg != JWT_ALG_HS384 &&
	    a->alg != JWT_ALG_HS512 && a->alg != JWT_ALG_RS256 &&
	    a->alg != JWT_ALG_ES256) {
		snprintf(err, errlen, "--jwt-algorithm: %s is not supported",
		    cfg->jwt_algorithm);
		goto bad;
	}
	if (auth_read_key(a, cfg->jwt_key_file, err, errlen) == -1)
		goto bad;
	pem = strstr((char *)a->key, "-----BEGIN PUBLIC KEY-----") != NULL ||
	    strstr((char *)a->key, "-----BEGIN RSA PUBLIC KEY-----") != NULL;
	if (a->alg == JWT_ALG_RS256 || a->alg == JWT_ALG_ES256) {
		if (!pem) {
			snprintf(err, errlen, "--jwt-key-file: %s: %s needs a "
			    "public key in PEM (-----BEGIN PUBLIC KEY-----)",
			    cfg->jwt_key_file, cfg->jwt_algorithm);
			goto bad;
		}
		if (auth_key_fits(a, cfg->jwt_algorithm, cfg->jwt_key_file,
		    err, errlen) == -1)
			goto bad;
	} else {
		/* a secret: one trailing newline is the editor's, not ours */
		if (a->key[a->key_len - 1] == '\n')
			a->key[--a->key_len] = '\0';
		if (a->key[a->key_len - 1] == '\r')
			a->key[--a->key_len] = '\0';
		if (pem) {
			snprintf(err, errlen, "--jwt-key-file: %s: a PEM key is "
			    "no secret for %s", cfg->jwt_key_file,
			    cfg->jwt_algorithm);
			goto bad;
		}
		if (a->key_len < 16) {
			snprintf(err, errlen, "--jwt-key-file: %s: a secret "
			    "shorter than 16 bytes is too weak",
			    cfg->jwt_key_file);
			goto bad;
		}
	}
	a->issuer = cfg->jwt_issuer;
	a->audience = cfg->jwt_audience;
	a->claim = cfg->jwt_claim;
	a->leeway = (long)cfg->jwt_leeway_s;
	return a;
bad:
	auth_free(a);
	return NULL;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	secret_free((char *)a->key, a->key_len);
	free(a);
}

/* the JSON value of a claim, parsed; NULL if absent */
static struct json_object *
auth_claim_json(jwt_t *jwt, const char *name)
{
	struct json_object	*o;
	char			*s;

	if ((s = jwt_get_grants_json(jwt, name)) == NULL)
		return NULL;
	o = json_tokener_parse(s);
	free(s);
	return o;
}

static int
auth_audience_ok(struct auth *a, jwt_t *jwt)
{
	struct json_object	*o, *v;
	size_t			 i, n;
	int			 ok = 0;

	if ((o = auth_claim_json(jwt, "aud")) == NULL)
		return 0;
	if (json_object_is_type(o, json_type_string))
		ok = strcmp(json_object_get_string(o), a->audience) == 0;
	else if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		for (i = 0; i < n && !ok; i++) {
			v = json_object_array_get_idx(o, i);
			ok = json_object_is_type(v, json_type_string) &&
			    strcmp(json_object_get_string(v), a->audience) == 0;
		}
	}
	json_object_put(o);
	return ok;
}

/* 1 if the list of patterns allows id */
static int
auth_id_allowed(struct json_object *list, const char *id)
{
	struct json_object	*v;
	const char		*p;
	size_t			 i, n, len;

	n = json_object_array_length(list);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(list, i);
		if (!json_object_is_type(v, json_type_string))
			continue;
		p = json_object_get_string(v);
		len = strlen(p);
		if (len > 0 && p[len - 1] == '*') {
			if (strncmp(p, id, len - 1) == 0)
				return 1;
		} else if (strcmp(p, id) == 0)
			return 1;
	}
	return 0;
}

/*
 * The list of a kind in the claim: <claim>.<kind>, but "uploads" for the
 * upload kind, the name tokens have always used (query.c keeps "uploads"
 * from being a kind's name, so no two kinds share a list).
 */
static struct json_object *
auth_list(struct json_object *claim, const char *kind)
{
	struct json_object	*list = NULL;

	if (claim == NULL)
		return NULL;
	json_object_object_get_ex(claim, strcmp(kind, "upload") == 0 ?
	    "uploads" : kind, &list);
	if (list == NULL || !json_object_is_type(list, json_type_array))
		return NULL;
	return list;
}

static enum auth_result
auth_ids(struct auth *a, jwt_t *jwt, const struct auth_id *ids, size_t n,
    const struct auth_id **denied)
{
	struct json_object	*claim, *list;
	size_t			 i;
	enum auth_result	 r = AUTH_OK;

	if (n == 0)
		return AUTH_OK;
	claim = auth_claim_json(jwt, a->claim);
	for (i = 0; i < n; i++) {
		list = auth_list(claim, ids[i].kind);
		if (list == NULL || !auth_id_allowed(list, ids[i].id)) {
			*denied = &ids[i];
			r = strcmp(ids[i].kind, "upload") == 0 ? AUTH_UPLOAD :
			    AUTH_CHANNEL;
			break;
		}
	}
	json_object_put(claim);
	return r;
}

enum auth_result
auth_check(struct auth *a, const char *token, const char *user,
    const struct auth_id *ids, size_t n, time_t now, time_t *exp,
    time_t *iat, const struct auth_id **denied)
{
	jwt_t			*jwt = NULL;
	const char		*s;
	long			 v;
	enum auth_result	 r;

	*denied = NULL;
	if (token == NULL || *token == '\0')
		return AUTH_MISSING;
	/* the signature is checked with our key, whatever alg it names */
	if (jwt_decode(&jwt, token, a->key, (int)a->key_len) != 0 ||
	    jwt == NULL)
		return AUTH_INVALID;
	if (jwt_get_alg(jwt) != a->alg) {
		r = AUTH_INVALID;
		goto done;
	}
	errno = 0;
	v = jwt_get_grant_int(jwt, "exp");
	if (errno == ENOENT || v <= 0) {
		r = AUTH_NO_EXP;
		goto done;
	}
	if (v + a->leeway <= (long)now) {
		r = AUTH_EXPIRED;
		goto done;
	}
	*exp = (time_t)v;
	/* a revocation refuses the tokens issued before it (revoke.h) */
	errno = 0;
	v = jwt_get_grant_int(jwt, "iat");
	*iat = errno == ENOENT || v < 0 ? 0 : (time_t)v;
	errno = 0;
	v = jwt_get_grant_int(jwt, "nbf");
	if (errno != ENOENT && v - a->leeway > (long)now) {
		r = AUTH_NOT_YET_VALID;
		goto done;
	}
	if (a->issuer != NULL && ((s = jwt_get_grant(jwt, "iss")) == NULL ||
	    strcmp(s, a->issuer) != 0)) {
		r = AUTH_ISSUER;
		goto done;
	}
	if (a->audience != NULL && !auth_audience_ok(a, jwt)) {
		r = AUTH_AUDIENCE;
		goto done;
	}
	if (user == NULL || (s = jwt_get_grant(jwt, "sub")) == NULL ||
	    strcmp(s, user) != 0) {
		r = AUTH_USER;
		goto done;
	}
	r = auth_ids(a, jwt, ids, n, denied);
done:
	jwt_free(jwt);
	return r;
}
