/*
 * test_auth.c - JWT access control (auth.h) with fixed keys and tokens.
 *
 * The keys and tokens are in auth_fixtures.h, made once offline by
 * make_auth_fixtures.py (Debian's python3-jwt); every token expires in
 * 2100 unless it is about expiry, and auth_check() is given `now`, so no
 * clock is involved.  Each key is written to a temporary file, since
 * auth_new() reads --jwt-key-file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "auth_fixtures.h"
#include "config.h"
#include "tap.h"

static char	 tmpl[] = "/tmp/test_auth.XXXXXX";
static char	*tmpdir;
static int	 nfiles;

/* a file holding len bytes of data; its path (static storage) */
static const char *
keyfile(const char *data, size_t len)
{
	static char	 paths[32][64];
	char		*p;
	FILE		*fp;

	if (nfiles >= 32)
		abort();
	p = paths[nfiles++];
	snprintf(p, sizeof(paths[0]), "%s/key%d", tmpdir, nfiles);
	if ((fp = fopen(p, "wb")) == NULL ||
	    fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
		perror(p);
		exit(1);
	}
	return p;
}

/* the configuration auth_new() reads, as config.c would leave it */
static void
cfg_init(struct config *c, const char *alg, const char *keypath)
{
	memset(c, 0, sizeof(*c));
	c->auth_jwt = 1;
	c->jwt_algorithm = (char *)alg;
	c->jwt_key_file = (char *)keypath;
	c->jwt_claim = (char *)"sserelay";
	c->jwt_leeway_s = 30;
}

static struct auth *
new_auth(const char *alg, const char *keypath, const char *iss,
    const char *aud, unsigned leeway)
{
	struct config	 c;
	struct auth	*a;
	char		 err[512] = "";

	cfg_init(&c, alg, keypath);
	c.jwt_issuer = (char *)iss;
	c.jwt_audience = (char *)aud;
	c.jwt_leeway_s = leeway;
	if ((a = auth_new(&c, err, sizeof(err))) == NULL)
		diag("auth_new(%s, %s): %s", alg, keypath, err);
	return a;
}

/* auth_check for user alice and up to two ids of kind, at `now` */
static enum auth_result
check_kind(struct auth *a, const char *token, const char *user,
    const char *kind, const char *up1, const char *up2, long now,
    const char **denied)
{
	struct auth_id	 ids[2];
	const struct auth_id *d = NULL;
	size_t		 n = 0;
	time_t		 exp = 0, iat = 0;
	enum auth_result r;

	if (up1 != NULL)
		ids[n].kind = kind, ids[n++].id = up1;
	if (up2 != NULL)
		ids[n].kind = kind, ids[n++].id = up2;
	r = auth_check(a, token, user, ids, n, (time_t)now, &exp, &iat, &d);
	if (denied != NULL)
		*denied = d != NULL ? d->id : NULL;
	return r;
}

/* the same for uploads */
static enum auth_result
check(struct auth *a, const char *token, const char *user,
    const char *up1, const char *up2, long now, const char **denied)
{
	return check_kind(a, token, user, "upload", up1, up2, now, denied);
}

#define CHECK(a, tok, user, u1, u2, now, want, ...)			\
	is_int(check((a), (tok), (user), (u1), (u2), (now), NULL), (want), \
	    __VA_ARGS__)

static void
test_results(void)
{
	static const struct {
		enum auth_result r;
		unsigned	 status;
		const char	*name, *text;
	} rs[] = {
		{ AUTH_MISSING, 401, "missing", "missing token" },
		{ AUTH_INVALID, 401, "invalid", "invalid token" },
		{ AUTH_EXPIRED, 401, "expired", "token expired" },
		{ AUTH_NOT_YET_VALID, 401, "not_yet_valid",
		    "token not yet valid" },
		{ AUTH_NO_EXP, 401, "no_exp", "token has no exp" },
		{ AUTH_ISSUER, 401, "issuer", "wrong issuer" },
		{ AUTH_AUDIENCE, 401, "audience", "wrong audience" },
		{ AUTH_USER, 403, "user", "token is for another user" },
		{ AUTH_UPLOAD, 403, "upload", "upload not allowed" },
		{ AUTH_CHANNEL, 403, "channel", "channel not allowed" },
	};
	size_t	 i;

	for (i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		is_int(auth_status(rs[i].r), rs[i].status, "%s: status %u",
		    rs[i].name, rs[i].status);
		is_str(auth_name(rs[i].r), rs[i].name, "%s: metrics label",
		    rs[i].name);
		is_str(auth_text(rs[i].r), rs[i].text, "%s: body \"%s\"",
		    rs[i].name, rs[i].text);
	}
}

static void
test_hs256(const char *secret)
{
	struct auth	*a;
	const char	*denied = NULL;
	const struct auth_id *d = NULL;
	time_t		 exp = 0, iat = 0;
	struct auth_id	 ups[1] = { { "upload", "u7" } };
	enum auth_result r;

	a = new_auth("HS256", secret, NULL, NULL, 30);
	if (!ok(a != NULL, "HS256 with a secret file"))
		return;

	r = auth_check(a, HS_OK, "alice", ups, 1, TEST_NOW, &exp, &iat, &d);
	is_int(r, AUTH_OK, "HS256 token for alice, upload u7: ok");
	is_int(exp, TEST_FAR, "...and *exp is the token's exp");
	ok(d == NULL, "...and nothing denied");
	CHECK(a, HS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_OK,
	    "no upload asked: ok");
	CHECK(a, HS_OK, "alice", "team-42", "team-4", TEST_NOW, AUTH_OK,
	    "team-4* allows team-42 and team-4");
	is_int(check(a, HS_OK, "alice", "u7", "u70", TEST_NOW, &denied),
	    AUTH_UPLOAD, "u70 is not u7 (no '*'): upload refused");
	is_str(denied, "u70", "...and the refused upload is named");
	is_int(check(a, HS_OK, "alice", "team-5", "u7", TEST_NOW, &denied),
	    AUTH_UPLOAD, "team-5 does not match team-4*");
	is_str(denied, "team-5", "...the first refused one is named");
	CHECK(a, HS_OK, "bob", NULL, NULL, TEST_NOW, AUTH_USER,
	    "sub alice, user bob: another user");
	CHECK(a, HS_OK, NULL, NULL, NULL, TEST_NOW, AUTH_USER,
	    "no user parameter: another user");
	CHECK(a, HS_OK, "alic", NULL, NULL, TEST_NOW, AUTH_USER,
	    "user alic (a prefix of alice): another user");
	CHECK(a, HS_NOSUB, "alice", NULL, NULL, TEST_NOW, AUTH_USER,
	    "a token without sub: another user");

	CHECK(a, HS_NOCLAIM, "alice", NULL, NULL, TEST_NOW, AUTH_OK,
	    "no sserelay claim: the user's own channel is ok");
	CHECK(a, HS_NOCLAIM, "alice", "u7", NULL, TEST_NOW, AUTH_UPLOAD,
	    "no sserelay claim: no upload");
	CHECK(a, HS_STAR, "alice", "anything", "x.y:z@w", TEST_NOW, AUTH_OK,
	    "uploads [\"*\"]: every upload");
	CHECK(a, HS_UPLOADS_NOT_ARRAY, "alice", "u7", NULL, TEST_NOW,
	    AUTH_UPLOAD, "uploads a string, not an array: no upload");
	CHECK(a, HS_APPCLAIM, "alice", "u7", NULL, TEST_NOW, AUTH_UPLOAD,
	    "uploads under another claim than --jwt-claim: not looked at");

	/* other kinds: <claim>.<kind>; the upload kind keeps "uploads" */
	is_int(check_kind(a, HS_KINDS, "alice", "room", "general", "team-9",
	    TEST_NOW, &denied), AUTH_OK, "room general and team-9 (team-*): "
	    "ok");
	is_int(check_kind(a, HS_KINDS, "alice", "room", "general", "random",
	    TEST_NOW, &denied), AUTH_CHANNEL, "room random: not in "
	    "sserelay.room: refused as a channel");
	is_str(denied, "random", "...and the refused room is named");
	is_int(check_kind(a, HS_OK, "alice", "room", "general", NULL,
	    TEST_NOW, &denied), AUTH_CHANNEL, "a token without a room list: "
	    "no room");
	is_int(check_kind(a, HS_KINDS, "alice", "team", "general", NULL,
	    TEST_NOW, &denied), AUTH_CHANNEL, "the room list is not the team "
	    "kind's");
	CHECK(a, HS_KINDS, "alice", "u7", NULL, TEST_NOW, AUTH_OK,
	    "uploads u7: the upload kind reads \"uploads\"");
	CHECK(a, HS_KINDS, "alice", "u9", NULL, TEST_NOW, AUTH_UPLOAD,
	    "upload u9 is only under \"upload\", which is not read");
	{
		struct auth_id	 mixed[3] = { { "upload", "u7" },
		    { "room", "team-x" }, { "room", "secret" } };

		d = NULL;
		r = auth_check(a, HS_KINDS, "alice", mixed, 3, TEST_NOW, &exp,
		    &iat, &d);
		ok(r == AUTH_CHANNEL && d == &mixed[2], "upload u7, room "
		    "team-x and room secret: the first refused, room secret, "
		    "is named");
	}

	/* expiry, with --jwt-leeway 30: refused once exp + 30 has come */
	CHECK(a, HS_EXP_NOW, "alice", NULL, NULL, TEST_NOW - 1000, AUTH_OK,
	    "exp in the future: ok");
	CHECK(a, HS_EXP_NOW, "alice", NULL, NULL, TEST_NOW + 29, AUTH_OK,
	    "exp passed 29 s ago, leeway 30: ok");
	CHECK(a, HS_EXP_NOW, "alice", NULL, NULL, TEST_NOW + 30, AUTH_EXPIRED,
	    "exp passed 30 s ago, leeway 30: expired");
	CHECK(a, HS_EXP_NOW, "alice", NULL, NULL, TEST_NOW + 86400,
	    AUTH_EXPIRED, "exp passed a day ago: expired");
	CHECK(a, HS_NOEXP, "alice", NULL, NULL, TEST_NOW, AUTH_NO_EXP,
	    "no exp: refused, no_exp");
	CHECK(a, HS_EXP_ZERO, "alice", NULL, NULL, TEST_NOW, AUTH_NO_EXP,
	    "exp 0: no_exp");
	CHECK(a, HS_EXP_STRING, "alice", NULL, NULL, TEST_NOW, AUTH_NO_EXP,
	    "exp as a string: no_exp");
	/* nbf = NOW + 100: accepted from NOW + 70 on */
	CHECK(a, HS_NBF, "alice", NULL, NULL, TEST_NOW, AUTH_NOT_YET_VALID,
	    "nbf 100 s ahead, leeway 30: not yet valid");
	CHECK(a, HS_NBF, "alice", NULL, NULL, TEST_NOW + 69,
	    AUTH_NOT_YET_VALID, "nbf 31 s ahead: not yet valid");
	CHECK(a, HS_NBF, "alice", NULL, NULL, TEST_NOW + 70, AUTH_OK,
	    "nbf 30 s ahead, leeway 30: ok");

	/* what is not an HS256 token signed with this secret */
	CHECK(a, NULL, "alice", NULL, NULL, TEST_NOW, AUTH_MISSING,
	    "no token: missing");
	CHECK(a, "", "alice", NULL, NULL, TEST_NOW, AUTH_MISSING,
	    "an empty token: missing");
	CHECK(a, "not-a-token", "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
	    "garbage: invalid");
	CHECK(a, "a.b.c", "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
	    "three dots of garbage: invalid");
	CHECK(a, HS_WRONG_SECRET, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
	    "signed with another secret: invalid");
	CHECK(a, NONE, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
	    "alg none: invalid");
	CHECK(a, HS384_OK, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
	    "HS384 under --jwt-algorithm HS256, same secret: invalid");
	CHECK(a, RS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
	    "an RS256 token under HS256: invalid");
	CHECK(a, ES_OK, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
	    "an ES256 token under HS256: invalid");
	{
		char	 tampered[sizeof(HS_OK)];
		size_t	 n = sizeof(HS_OK) - 1;

		memcpy(tampered, HS_OK, sizeof(HS_OK));
		tampered[n - 2] = tampered[n - 2] == 'A' ? 'B' : 'A';
		CHECK(a, tampered, "alice", NULL, NULL, TEST_NOW,
		    AUTH_INVALID, "HS_OK with its signature changed: invalid");
	}
	auth_free(a);

	/* the claim's name is --jwt-claim */
	{
		struct config	 c;
		char		 err[256];

		cfg_init(&c, "HS256", secret);
		c.jwt_claim = (char *)"app";
		a = auth_new(&c, err, sizeof(err));
		CHECK(a, HS_APPCLAIM, "alice", "u7", NULL, TEST_NOW, AUTH_OK,
		    "--jwt-claim app: app.uploads allows u7");
		CHECK(a, HS_OK, "alice", "u7", NULL, TEST_NOW, AUTH_UPLOAD,
		    "--jwt-claim app: the sserelay claim is not looked at");
		auth_free(a);
	}

	/* --jwt-leeway 0 */
	a = new_auth("HS256", secret, NULL, NULL, 0);
	CHECK(a, HS_EXP_NOW, "alice", NULL, NULL, TEST_NOW - 1, AUTH_OK,
	    "leeway 0: one second before exp: ok");
	CHECK(a, HS_EXP_NOW, "alice", NULL, NULL, TEST_NOW, AUTH_EXPIRED,
	    "leeway 0: at exp: expired");
	CHECK(a, HS_NBF, "alice", NULL, NULL, TEST_NOW + 99,
	    AUTH_NOT_YET_VALID, "leeway 0: a second before nbf: not yet valid");
	CHECK(a, HS_NBF, "alice", NULL, NULL, TEST_NOW + 100, AUTH_OK,
	    "leeway 0: at nbf: ok");
	auth_free(a);
}

static void
test_iss_aud(const char *secret)
{
	struct auth	*a;

	a = new_auth("HS256", secret, "https://app.example", NULL, 30);
	CHECK(a, HS_ISS, "alice", NULL, NULL, TEST_NOW, AUTH_OK,
	    "--jwt-issuer https://app.example, iss the same: ok");
	CHECK(a, HS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_ISSUER,
	    "--jwt-issuer set, no iss: wrong issuer");
	auth_free(a);
	a = new_auth("HS256", secret, "https://other.example", NULL, 30);
	CHECK(a, HS_ISS, "alice", NULL, NULL, TEST_NOW, AUTH_ISSUER,
	    "--jwt-issuer https://other.example, iss https://app.example: "
	    "wrong issuer");
	auth_free(a);
	a = new_auth("HS256", secret, NULL, NULL, 30);
	CHECK(a, HS_ISS, "alice", NULL, NULL, TEST_NOW, AUTH_OK,
	    "no --jwt-issuer: iss not checked");
	CHECK(a, HS_AUD_OTHER, "alice", NULL, NULL, TEST_NOW, AUTH_OK,
	    "no --jwt-audience: aud not checked");
	auth_free(a);

	a = new_auth("HS256", secret, NULL, "sserelay", 30);
	CHECK(a, HS_AUD_STR, "alice", NULL, NULL, TEST_NOW, AUTH_OK,
	    "--jwt-audience sserelay, aud \"sserelay\": ok");
	CHECK(a, HS_AUD_ARR, "alice", NULL, NULL, TEST_NOW, AUTH_OK,
	    "aud [other, sserelay]: ok");
	CHECK(a, HS_AUD_OTHER, "alice", NULL, NULL, TEST_NOW, AUTH_AUDIENCE,
	    "aud [other]: wrong audience");
	CHECK(a, HS_AUD_NUM, "alice", NULL, NULL, TEST_NOW, AUTH_AUDIENCE,
	    "aud 7: wrong audience");
	CHECK(a, HS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_AUDIENCE,
	    "no aud: wrong audience");
	/* the order of the checks: expiry before issuer before audience
	 * before user */
	CHECK(a, HS_AUD_OTHER, "bob", NULL, NULL, TEST_NOW, AUTH_AUDIENCE,
	    "wrong audience and another user: the audience is named");
	auth_free(a);
	a = new_auth("HS256", secret, "https://app.example", "sserelay", 30);
	CHECK(a, HS_EXP_NOW, "bob", NULL, NULL, TEST_NOW + 3600, AUTH_EXPIRED,
	    "expired, no iss, no aud, another user: expired is named");
	CHECK(a, HS_OK, "bob", NULL, NULL, TEST_NOW, AUTH_ISSUER,
	    "no iss, no aud, another user: the issuer is named");
	auth_free(a);
}

static void
test_public_keys(const char *rsa, const char *ec, const char *secret)
{
	struct auth	*a;

	a = new_auth("RS256", rsa, NULL, NULL, 30);
	if (ok(a != NULL, "RS256 with an RSA public key")) {
		CHECK(a, RS_OK, "alice", "u7", NULL, TEST_NOW, AUTH_OK,
		    "RS256 token: ok");
		CHECK(a, RS_OK, "bob", NULL, NULL, TEST_NOW, AUTH_USER,
		    "RS256 token, user bob: another user");
		CHECK(a, RS_OTHER_KEY, "alice", NULL, NULL, TEST_NOW,
		    AUTH_INVALID, "RS256 signed with another key: invalid");
		CHECK(a, HS_RSA_PUB, "alice", NULL, NULL, TEST_NOW,
		    AUTH_INVALID, "HS256 signed with the RSA public key as "
		    "the secret: invalid");
		CHECK(a, HS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
		    "an HS256 token under RS256: invalid");
		CHECK(a, ES_OK, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
		    "an ES256 token under RS256: invalid");
		CHECK(a, NONE, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
		    "alg none under RS256: invalid");
		auth_free(a);
	}
	a = new_auth("ES256", ec, NULL, NULL, 30);
	if (ok(a != NULL, "ES256 with a P-256 public key")) {
		CHECK(a, ES_OK, "alice", "team-4x", NULL, TEST_NOW, AUTH_OK,
		    "ES256 token: ok");
		CHECK(a, RS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
		    "an RS256 token under ES256: invalid");
		CHECK(a, HS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
		    "an HS256 token under ES256: invalid");
		auth_free(a);
	}
	a = new_auth("HS384", secret, NULL, NULL, 30);
	CHECK(a, HS384_OK, "alice", "u7", NULL, TEST_NOW, AUTH_OK,
	    "--jwt-algorithm HS384: the HS384 token is ok");
	CHECK(a, HS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
	    "--jwt-algorithm HS384: an HS256 token is invalid");
	auth_free(a);
}

/* auth_new() refuses: NULL, and an error naming the option */
static void
refused(const char *alg, const char *path, const char *want,
    const char *desc)
{
	struct config	 c;
	struct auth	*a;
	char		 err[512] = "";

	cfg_init(&c, alg, path);
	a = auth_new(&c, err, sizeof(err));
	ok(a == NULL && strstr(err, want) != NULL, "%s: refused (%s)", desc,
	    err);
	auth_free(a);
}

static void
test_keys(const char *rsa, const char *ec, const char *secret)
{
	char		 missing[128];
	struct auth	*a;

	snprintf(missing, sizeof(missing), "%s/no-such-file", tmpdir);
	refused("HS256", missing, "no-such-file", "a key file that is not "
	    "there");
	refused("HS256", keyfile("", 0), "empty", "an empty key file");
	refused("HS256", keyfile("0123456789abcde\n", 16), "16 bytes",
	    "a 15-byte secret (plus its newline)");
	refused("HS256", rsa, "PEM", "a PEM public key as an HS256 secret");
	refused("RS256", secret, "PEM", "RS256 with a secret, not a PEM key");
	refused("RS256", ec, "RSA", "RS256 with an EC key");
	refused("ES256", rsa, "P-256", "ES256 with an RSA key");
	refused("RS256", keyfile("-----BEGIN PUBLIC KEY-----\nxxxx\n"
	    "-----END PUBLIC KEY-----\n", 57), "not a readable public key",
	    "RS256 with a broken PEM");
	refused("none", secret, "not supported", "--jwt-algorithm none");
	refused("PS256", rsa, "not supported", "--jwt-algorithm PS256");

	/* one trailing newline (or CRLF) is the editor's, not the secret's */
	a = new_auth("HS256", keyfile(HS_SECRET "\r\n",
	    sizeof(HS_SECRET) + 1), NULL, NULL, 30);
	CHECK(a, HS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_OK,
	    "a secret file ending in CRLF: the token signed without it is ok");
	auth_free(a);
	a = new_auth("HS256", keyfile(HS_SECRET "\n\n",
	    sizeof(HS_SECRET) + 1), NULL, NULL, 30);
	CHECK(a, HS_OK, "alice", NULL, NULL, TEST_NOW, AUTH_INVALID,
	    "a secret file ending in two newlines: only one is dropped");
	auth_free(a);
}

int
main(void)
{
	const char	*secret, *rsa, *ec;
	int		 i;

	if ((tmpdir = mkdtemp(tmpl)) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	secret = keyfile(HS_SECRET, sizeof(HS_SECRET) - 1);
	rsa = keyfile(RSA_PUB_PEM, sizeof(RSA_PUB_PEM) - 1);
	ec = keyfile(EC_PUB_PEM, sizeof(EC_PUB_PEM) - 1);

	test_results();
	test_hs256(secret);
	test_iss_aud(secret);
	test_public_keys(rsa, ec, secret);
	test_keys(rsa, ec, secret);

	for (i = 1; i <= nfiles; i++) {
		char	 p[96];

		snprintf(p, sizeof(p), "%s/key%d", tmpdir, i);
		unlink(p);
	}
	rmdir(tmpdir);
	return done_testing();
}
