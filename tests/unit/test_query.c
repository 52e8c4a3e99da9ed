/*
 * test_query.c - /events query validation (query.h).
 *
 * The reasons are the 400 bodies the spec lists, so they are compared
 * exactly; every error string must also be a single line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "tap.h"

#define L(s)	(s), (sizeof(s) - 1)

static int
one_line(const char *s)
{
	return s != NULL && *s != '\0' && strchr(s, '\n') == NULL &&
	    strchr(s, '\r') == NULL;
}

static int
add(struct query *q, const char *k, const char *v)
{
	return query_add(q, k, v, strlen(v));
}

/*
 * One pair alone must be refused, the one-line reason naming the field
 * ("user id" or "upload id"): the spec gives "invalid user id" as an
 * example, and a more precise reason ("empty user id", "user id longer
 * than 128 bytes") is as good.
 */
static void
refused(const char *k, const char *v, size_t vlen, const char *field,
    const char *desc)
{
	struct query q;
	int r;

	query_init(&q, QUERY_UPLOADS_MAX, 10);
	r = query_add(&q, k, v, vlen);
	if (r == 0)
		r = query_finish(&q);
	else
		query_finish(&q);
	is_int(r, -1, "%s: refused", desc);
	ok(q.error != NULL && strstr(q.error, field) != NULL,
	    "%s: reason names the %s: \"%s\"", desc, field,
	    q.error ? q.error : "(null)");
	ok(one_line(q.error), "%s: reason is one line", desc);
}

static void
test_valid(void)
{
	struct query q;
	char id[16];
	int i, bad;

	query_init(&q, 16, 10);
	is_int(add(&q, "user", "alice"), 0, "user only: add");
	is_int(query_finish(&q), 0, "user only: accepted");
	ok(q.has_user, "user only: has_user");
	is_str(q.user, "alice", "user only: user");
	is_int(q.nuploads, 0, "user only: no uploads");
	ok(q.error == NULL, "user only: no error");

	query_init(&q, 16, 10);
	is_int(add(&q, "upload", "u7"), 0, "upload only: add");
	is_int(query_finish(&q), 0, "upload only: accepted");
	ok(!q.has_user, "upload only: no user");
	is_int(q.nuploads, 1, "upload only: one upload");
	is_str(q.uploads[0], "u7", "upload only: id");

	query_init(&q, 16, 10);
	add(&q, "upload", "A");
	add(&q, "user", "bob@example.com");
	add(&q, "upload", "B");
	is_int(query_finish(&q), 0, "both: accepted");
	is_str(q.user, "bob@example.com", "both: user");
	is_int(q.nuploads, 2, "both: two uploads");
	ok(q.nuploads == 2 && strcmp(q.uploads[0], "A") == 0 &&
	    strcmp(q.uploads[1], "B") == 0, "both: uploads in request order");

	query_init(&q, 16, 10);
	for (i = 0, bad = 0; i < 16; i++) {
		snprintf(id, sizeof(id), "up-%d", i);
		bad += add(&q, "upload", id) != 0;
	}
	is_int(bad, 0, "16 uploads: every add 0");
	is_int(query_finish(&q), 0, "16 uploads: accepted");
	is_int(q.nuploads, 16, "16 uploads: all kept");
	is_str(q.uploads[15], "up-15", "16 uploads: last one");

	query_init(&q, 16, 10);
	add(&q, "upload", "x");
	add(&q, "upload", "y");
	add(&q, "upload", "x");
	add(&q, "upload", "y");
	add(&q, "upload", "x");
	is_int(query_finish(&q), 0, "duplicate uploads: accepted");
	is_int(q.nuploads, 2, "duplicate uploads: folded into one each");

	/* duplicates do not count toward the limit */
	query_init(&q, 16, 10);
	for (i = 0; i < 16; i++) {
		snprintf(id, sizeof(id), "u%d", i);
		add(&q, "upload", id);
		add(&q, "upload", id);
	}
	is_int(query_finish(&q), 0,
	    "16 distinct uploads each given twice: accepted");
	is_int(q.nuploads, 16, "16 distinct uploads each given twice: 16");

	/* unknown keys are ignored, whatever their value */
	query_init(&q, 16, 10);
	is_int(add(&q, "_", "1712345678901"), 0, "cache buster: add 0");
	is_int(query_add(&q, "foo", L("bad value * / %\0")), 0,
	    "unknown key with an unsafe value: add 0");
	add(&q, "user", "u");
	add(&q, "users", "x y");
	add(&q, "Upload", "z z");
	is_int(query_finish(&q), 0, "unknown keys ignored: accepted");
	is_int(q.nuploads, 0, "unknown keys: no upload from \"Upload\"");
	is_str(q.user, "u", "unknown keys: user kept");

	/* the id alphabet, and the length limit */
	query_init(&q, 16, 10);
	add(&q, "user", "AZaz09._:@-");
	is_int(query_finish(&q), 0, "all safe characters accepted");
	{
		char s[QUERY_ID_MAX + 2];

		memset(s, 'a', sizeof(s));
		s[QUERY_ID_MAX] = '\0';
		query_init(&q, 16, 10);
		is_int(query_add(&q, "user", s, QUERY_ID_MAX), 0,
		    "128-byte user: add 0");
		is_int(query_finish(&q), 0, "128-byte user: accepted");
		is_int(strlen(q.user), 128, "128-byte user: kept whole");
		query_init(&q, 16, 10);
		query_add(&q, "upload", s, QUERY_ID_MAX);
		is_int(query_finish(&q), 0, "128-byte upload: accepted");
		is_int(strlen(q.uploads[0]), 128, "128-byte upload: kept");
	}

	/* the configured maximum */
	query_init(&q, 3, 10);
	add(&q, "upload", "a");
	add(&q, "upload", "b");
	add(&q, "upload", "c");
	is_int(query_finish(&q), 0, "max 3: three uploads accepted");
}

static void
test_errors(void)
{
	struct query q;
	char id[16], s[QUERY_ID_MAX + 2];
	int i, r, any;

	query_init(&q, 16, 10);
	is_int(query_finish(&q), -1, "nothing: refused");
	is_str(q.error, "missing user or upload parameter", "nothing: reason");
	query_init(&q, 16, 10);
	add(&q, "_", "1");
	add(&q, "x", "y");
	is_int(query_finish(&q), -1, "only unknown keys: refused");
	is_str(q.error, "missing user or upload parameter",
	    "only unknown keys: reason");
	ok(one_line(q.error), "missing: one line");

	query_init(&q, 16, 10);
	for (i = 0, any = 0; i < 17; i++) {
		snprintf(id, sizeof(id), "up-%d", i);
		if (add(&q, "upload", id) != 0)
			any = 1;
	}
	r = query_finish(&q);
	is_int(r, -1, "17 uploads: refused");
	is_str(q.error, "too many upload parameters (max 16)",
	    "17 uploads: reason");
	ok(one_line(q.error), "17 uploads: one line");
	(void)any;	/* the limit may be found by add or by finish */

	query_init(&q, 3, 10);
	for (i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "up-%d", i);
		add(&q, "upload", id);
	}
	is_int(query_finish(&q), -1, "max 3, 4 uploads: refused");
	is_str(q.error, "too many upload parameters (max 3)",
	    "max 3: the reason names the configured maximum");

	query_init(&q, 16, 10);
	add(&q, "user", "a");
	add(&q, "user", "b");
	is_int(query_finish(&q), -1, "duplicate user: refused");
	is_str(q.error, "duplicate user parameter", "duplicate user: reason");
	query_init(&q, 16, 10);
	add(&q, "user", "a");
	add(&q, "user", "a");
	is_int(query_finish(&q), -1, "same user twice: refused too");
	is_str(q.error, "duplicate user parameter", "same user twice: reason");

	/* after the first error later pairs are ignored */
	query_init(&q, 16, 10);
	add(&q, "user", "bad id");
	is_int(add(&q, "user", "good"), -1, "pair after an error: -1");
	is_int(add(&q, "upload", "good"), -1, "upload after an error: -1");
	is_int(query_finish(&q), -1, "after an error: still refused");
	ok(q.error && strstr(q.error, "user id") && !strstr(q.error, "upload"),
	    "after an error: the first reason: \"%s\"",
	    q.error ? q.error : "(null)");

	refused("user", L(""), "user id", "empty user");
	refused("upload", L(""), "upload id", "empty upload");
	memset(s, 'a', sizeof(s));
	s[QUERY_ID_MAX + 1] = '\0';
	refused("user", s, QUERY_ID_MAX + 1, "user id",
	    "129-byte user");
	refused("upload", s, QUERY_ID_MAX + 1, "upload id",
	    "129-byte upload");
	refused("user", L("a b"), "user id", "space in user");
	refused("user", L("a*"), "user id", "'*' in user");
	refused("upload", L("*"), "upload id", "'*' upload");
	refused("user", L("a%41"), "user id", "'%' in user");
	refused("user", L("a/b"), "user id", "'/' in user");
	refused("upload", L("../x"), "upload id", "'/' in upload");
	refused("user", L("ab\0cd"), "user id", "NUL inside user");
	refused("upload", L("ab\0"), "upload id",
	    "NUL at the end of upload");
	refused("user", L("\xc3\xa9t\xc3\xa9"), "user id",
	    "non-ASCII user");
	refused("upload", L("a\xff"), "upload id",
	    "invalid UTF-8 upload");
	refused("user", L("a\nb"), "user id", "LF in user");
	refused("user", L("a?b"), "user id", "'?' in user");
	refused("upload", L("a+b"), "upload id", "'+' in upload");
	refused("upload", L("a#b"), "upload id", "'#' in upload");

	/* an invalid upload among valid ones */
	query_init(&q, 16, 10);
	add(&q, "user", "ok");
	add(&q, "upload", "fine");
	add(&q, "upload", "no good");
	is_int(query_finish(&q), -1, "one bad upload among good: refused");
	ok(q.error && strstr(q.error, "upload id"),
	    "one bad upload: reason names the upload id: \"%s\"",
	    q.error ? q.error : "(null)");
}

static void
test_id_safe(void)
{
	char s[QUERY_ID_MAX + 1];
	int c, bad = 0;

	is_int(query_id_safe(L("abc")), 1, "id_safe abc");
	is_int(query_id_safe(L("A-Z.a_z:0@9")), 1, "id_safe punctuation");
	is_int(query_id_safe("", 0), 0, "id_safe empty");
	memset(s, 'x', sizeof(s));
	is_int(query_id_safe(s, QUERY_ID_MAX), 1, "id_safe 128 bytes");
	is_int(query_id_safe(s, QUERY_ID_MAX + 1), 0, "id_safe 129 bytes");
	is_int(query_id_safe(L("a\0b")), 0, "id_safe NUL inside");
	is_int(query_id_safe("abc", 2), 1, "id_safe honours the length");
	/* every byte value on its own */
	for (c = 0; c < 256; c++) {
		char b = (char)c;
		int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == ':' || c == '@' || c == '-';

		if (query_id_safe(&b, 1) != want) {
			diag("byte 0x%02x: got %d", c, !want);
			bad++;
		}
	}
	is_int(bad, 0, "id_safe: exactly [A-Za-z0-9._:@-] for all 256 bytes");
}

/* ?last=N: 0..max-last, a plain number; anything else a 400 reason */
static void
test_last(void)
{
	struct query q;
	static const char *bad[] = { "-1", "x", "", "1.5", "+3", " 3", "3 ",
	    "0x3", "11", "99999999999999999999999", "3\0" };
	size_t i;

	query_init(&q, 16, 10);
	add(&q, "user", "u");
	is_int(query_finish(&q), 0, "no last: accepted");
	is_int(q.last, 0, "no last: 0");
	query_init(&q, 16, 10);
	add(&q, "user", "u");
	add(&q, "last", "3");
	is_int(query_finish(&q), 0, "last=3: accepted");
	is_int(q.last, 3, "last=3: 3");
	query_init(&q, 16, 10);
	add(&q, "last", "10");
	add(&q, "upload", "a");
	is_int(query_finish(&q), 0, "last=10, the bound: accepted");
	is_int(q.last, 10, "last=10: 10");
	query_init(&q, 16, 10);
	add(&q, "user", "u");
	add(&q, "last", "0007");
	is_int(q.last, 7, "last=0007: 7");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strcmp(bad[i], "3\0") == 0 ? 2 : strlen(bad[i]);

		query_init(&q, 16, 10);
		add(&q, "user", "u");
		query_add(&q, "last", bad[i], len);
		is_int(query_finish(&q), -1, "last=\"%s\": refused", bad[i]);
		ok(q.error != NULL && strncmp(q.error, "last ", 5) == 0 &&
		    strchr(q.error, '\n') == NULL,
		    "last=\"%s\": one line naming last: \"%s\"", bad[i],
		    q.error ? q.error : "(null)");
	}
	query_init(&q, 16, 10);
	add(&q, "user", "u");
	add(&q, "last", "11");
	ok(q.error && strstr(q.error, "bound of 10"),
	    "over the bound: says the bound: \"%s\"", q.error);
	query_init(&q, 16, 10);
	add(&q, "user", "u");
	add(&q, "last", "1");
	add(&q, "last", "2");
	ok(q.error && strstr(q.error, "duplicate last"), "two last: refused");
	query_init(&q, 16, 0);
	add(&q, "user", "u");
	add(&q, "last", "0");
	is_int(query_finish(&q), 0, "max-last 0: last=0 still accepted");
	query_init(&q, 16, 0);
	add(&q, "user", "u");
	add(&q, "last", "1");
	ok(q.error && strstr(q.error, "turned off"),
	    "max-last 0: last=1 refused as off: \"%s\"", q.error);
}

int
main(void)
{
	test_valid();
	test_errors();
	test_id_safe();
	test_last();
	return done_testing();
}
