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

/* the default kinds: user (1) and upload (max_uploads) */
static void
dinit(struct query *q, size_t max_uploads)
{
	query_init(q, QUERY_CHANNELS_MAX);
	query_kind(q, "user", 1);
	query_kind(q, "upload", max_uploads);
}

/* the i-th id of the query, or "" */
static const char *
id_at(const struct query *q, size_t i)
{
	return i < q->nids ? q->ids[i].id : "";
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

	dinit(&q, QUERY_UPLOADS_MAX);
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

	dinit(&q, 16);
	is_int(add(&q, "user", "alice"), 0, "user only: add");
	is_int(query_finish(&q), 0, "user only: accepted");
	ok(q.has_user, "user only: has_user");
	is_str(q.user, "alice", "user only: user");
	is_int(q.nids, 0, "user only: no uploads");
	ok(q.error == NULL, "user only: no error");

	dinit(&q, 16);
	is_int(add(&q, "upload", "u7"), 0, "upload only: add");
	is_int(query_finish(&q), 0, "upload only: accepted");
	ok(!q.has_user, "upload only: no user");
	is_int(q.nids, 1, "upload only: one upload");
	is_str(id_at(&q, 0), "u7", "upload only: id");
	is_int(q.ids[0].kind, 1, "upload only: of the upload kind");

	dinit(&q, 16);
	add(&q, "upload", "A");
	add(&q, "user", "bob@example.com");
	add(&q, "upload", "B");
	is_int(query_finish(&q), 0, "both: accepted");
	is_str(q.user, "bob@example.com", "both: user");
	is_int(q.nids, 2, "both: two uploads");
	ok(q.nids == 2 && strcmp(id_at(&q, 0), "A") == 0 &&
	    strcmp(id_at(&q, 1), "B") == 0, "both: uploads in request order");

	dinit(&q, 16);
	for (i = 0, bad = 0; i < 16; i++) {
		snprintf(id, sizeof(id), "up-%d", i);
		bad += add(&q, "upload", id) != 0;
	}
	is_int(bad, 0, "16 uploads: every add 0");
	is_int(query_finish(&q), 0, "16 uploads: accepted");
	is_int(q.nids, 16, "16 uploads: all kept");
	is_str(id_at(&q, 15), "up-15", "16 uploads: last one");

	dinit(&q, 16);
	add(&q, "upload", "x");
	add(&q, "upload", "y");
	add(&q, "upload", "x");
	add(&q, "upload", "y");
	add(&q, "upload", "x");
	is_int(query_finish(&q), 0, "duplicate uploads: accepted");
	is_int(q.nids, 2, "duplicate uploads: folded into one each");

	/* duplicates do not count toward the limit */
	dinit(&q, 16);
	for (i = 0; i < 16; i++) {
		snprintf(id, sizeof(id), "u%d", i);
		add(&q, "upload", id);
		add(&q, "upload", id);
	}
	is_int(query_finish(&q), 0,
	    "16 distinct uploads each given twice: accepted");
	is_int(q.nids, 16, "16 distinct uploads each given twice: 16");

	/* the query's own parameters are taken, whatever else is given */
	dinit(&q, 16);
	is_int(add(&q, "_", "1712345678901"), 0, "cache buster _: add 0");
	is_int(add(&q, "lastEventId", "6a3f09c2-1"), 0, "lastEventId: add 0");
	is_int(add(&q, "access_token", "x.y.z"), 0, "access_token: add 0");
	is_int(query_add(&q, "", L("x")), 0, "an empty name: ignored");
	add(&q, "user", "u");
	is_int(query_finish(&q), 0, "_, lastEventId, access_token: accepted");
	is_str(q.user, "u", "...and the user kept");
	is_str(q.last_event_id, "6a3f09c2-1", "...the lastEventId kept");
	is_str(q.access_token, "x.y.z", "...the token kept");

	/* the id alphabet, and the length limit */
	dinit(&q, 16);
	add(&q, "user", "AZaz09._:@-");
	is_int(query_finish(&q), 0, "all safe characters accepted");
	{
		char s[QUERY_ID_MAX + 2];

		memset(s, 'a', sizeof(s));
		s[QUERY_ID_MAX] = '\0';
		dinit(&q, 16);
		is_int(query_add(&q, "user", s, QUERY_ID_MAX), 0,
		    "128-byte user: add 0");
		is_int(query_finish(&q), 0, "128-byte user: accepted");
		is_int(strlen(q.user), 128, "128-byte user: kept whole");
		dinit(&q, 16);
		query_add(&q, "upload", s, QUERY_ID_MAX);
		is_int(query_finish(&q), 0, "128-byte upload: accepted");
		is_int(strlen(id_at(&q, 0)), 128, "128-byte upload: kept");
	}

	/* the configured maximum */
	dinit(&q, 3);
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

	dinit(&q, 16);
	is_int(query_finish(&q), -1, "nothing: refused");
	is_str(q.error, "missing user or upload parameter", "nothing: reason");
	dinit(&q, 16);
	add(&q, "_", "1");
	is_int(query_finish(&q), -1, "only a cache buster: refused");
	is_str(q.error, "missing user or upload parameter",
	    "only a cache buster: reason");
	ok(one_line(q.error), "missing: one line");

	dinit(&q, 16);
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

	dinit(&q, 3);
	for (i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "up-%d", i);
		add(&q, "upload", id);
	}
	is_int(query_finish(&q), -1, "max 3, 4 uploads: refused");
	is_str(q.error, "too many upload parameters (max 3)",
	    "max 3: the reason names the configured maximum");

	dinit(&q, 16);
	add(&q, "user", "a");
	add(&q, "user", "b");
	is_int(query_finish(&q), -1, "duplicate user: refused");
	is_str(q.error, "duplicate user parameter", "duplicate user: reason");
	dinit(&q, 16);
	add(&q, "user", "a");
	add(&q, "user", "a");
	is_int(query_finish(&q), -1, "same user twice: refused too");
	is_str(q.error, "duplicate user parameter", "same user twice: reason");

	/* after the first error later pairs are ignored */
	dinit(&q, 16);
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
	dinit(&q, 16);
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

/* the kinds of a deployment with rooms and teams (--channel) */
static void
kinit(struct query *q, size_t room)
{
	query_init(q, room);
	query_kind(q, "user", 1);
	query_kind(q, "upload", 16);
	query_kind(q, "room", 2);
	query_kind(q, "team", 1);
}

static void
test_kinds(void)
{
	struct query q;
	char name[40], id[16];
	int i, bad;

	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "user", "alice");
	add(&q, "room", "general");
	add(&q, "room", "random");
	add(&q, "upload", "u7");
	add(&q, "team", "t1");
	is_int(query_finish(&q), 0, "user, two rooms, an upload, a team: "
	    "accepted");
	is_str(q.user, "alice", "...the user");
	ok(q.nids == 4 && q.ids[0].kind == 2 && q.ids[1].kind == 2 &&
	    q.ids[2].kind == 1 && q.ids[3].kind == 3, "...four ids, each of "
	    "its kind, in request order");
	ok(strcmp(id_at(&q, 0), "general") == 0 &&
	    strcmp(id_at(&q, 1), "random") == 0 &&
	    strcmp(id_at(&q, 3), "t1") == 0, "...and their values");

	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "room", "general");
	is_int(query_finish(&q), 0, "a room alone, no user: accepted");

	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "room", "a");
	add(&q, "room", "a");
	add(&q, "room", "b");
	add(&q, "room", "b");
	is_int(query_finish(&q), 0, "rooms a, a, b, b (max 2): duplicates "
	    "count once");
	is_int(q.nids, 2, "...two rooms kept");
	add(&q, "room", "c");
	is_str(q.error, "too many room parameters (max 2)", "a third room: "
	    "refused, the reason names the kind and its maximum");

	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "team", "t1");
	add(&q, "team", "t2");
	is_int(query_finish(&q), -1, "two teams (max 1): refused");
	is_str(q.error, "too many team parameters (max 1)", "...reason");
	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "team", "t1");
	add(&q, "team", "t1");
	is_int(query_finish(&q), 0, "one team twice (max 1): counts once");

	/* the same id in two kinds is two channels */
	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "room", "x");
	add(&q, "team", "x");
	add(&q, "upload", "x");
	is_int(q.nids, 3, "room x, team x, upload x: three ids");

	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "room", "bad id");
	ok(q.error != NULL && strstr(q.error, "invalid room id") != NULL,
	    "a bad room id: the reason names the room: \"%s\"",
	    q.error ? q.error : "(null)");

	kinit(&q, QUERY_CHANNELS_MAX);
	is_int(query_finish(&q), -1, "nothing: refused");
	is_str(q.error, "missing user, upload, room or team parameter",
	    "nothing: the reason lists every kind");

	/* a typo or an unknown parameter is refused, naming the kinds */
	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "user", "alice");
	is_int(add(&q, "uplaod", "u7"), -1, "uplaod=u7: refused at once");
	is_int(query_finish(&q), -1, "...and the query");
	is_str(q.error, "unknown parameter 'uplaod' (channels: user, upload, "
	    "room or team)", "...the reason names it and the kinds");
	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "Upload", "u7");
	is_str(q.error, "unknown parameter 'Upload' (channels: user, upload, "
	    "room or team)", "names are case-sensitive: Upload is unknown");
	kinit(&q, QUERY_CHANNELS_MAX);
	query_add(&q, "a b\r\nX-Evil: 1", L("v"));
	is_str(q.error, "unknown parameter (channels: user, upload, room or "
	    "team)", "a name that is not plain is not repeated");
	ok(one_line(q.error), "...one line");
	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "last", "5");
	ok(q.error != NULL && strncmp(q.error, "last is turned off", 18) == 0,
	    "last is the query's own, not a kind: \"%s\"", q.error);
	kinit(&q, QUERY_CHANNELS_MAX);
	add(&q, "foo", "bar");
	ok(q.error != NULL && strstr(q.error, "'foo'") != NULL,
	    "foo=bar: refused");

	/* no user kind: user= is unknown like any other name */
	query_init(&q, QUERY_CHANNELS_MAX);
	query_kind(&q, "room", 4);
	add(&q, "user", "alice");
	is_str(q.error, "unknown parameter 'user' (channels: room)",
	    "without a user kind, user is unknown");

	/* every channel a stream may have: room, broadcasts left aside */
	query_init(&q, 5);
	query_kind(&q, "user", 1);
	query_kind(&q, "room", QUERY_CHANNELS_MAX);
	add(&q, "user", "u");
	for (i = 0, bad = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		bad += add(&q, "room", id) != 0;
	}
	is_int(bad, 0, "room for 5: a user and four rooms");
	is_int(add(&q, "room", "r4"), -1, "a fifth room: refused");
	is_str(q.error, "too many channels (max 5)", "...the stream's bound");
	query_init(&q, 2);
	query_kind(&q, "user", 1);
	query_kind(&q, "room", QUERY_CHANNELS_MAX);
	add(&q, "room", "a");
	add(&q, "room", "b");
	add(&q, "user", "u");
	is_str(q.error, "too many channels (max 2)", "room for 2: the user "
	    "after two rooms is refused too");
	query_init(&q, 0);
	is_int(q.room, QUERY_CHANNELS_MAX, "room 0: QUERY_CHANNELS_MAX");

	/* QUERY_KINDS_MAX kinds, long names: the reason stays one line */
	query_init(&q, QUERY_CHANNELS_MAX);
	{
		static char names[QUERY_KINDS_MAX][QUERY_NAME_MAX + 1];

		for (i = 0, bad = 0; i < QUERY_KINDS_MAX; i++) {
			memset(names[i], 'a' + i, QUERY_NAME_MAX);
			names[i][QUERY_NAME_MAX] = '\0';
			bad += query_kind(&q, names[i], 1) != 0;
		}
		is_int(bad, 0, "%d kinds", QUERY_KINDS_MAX);
		is_int(query_kind(&q, "one-more", 1), -1, "one more: -1");
		query_finish(&q);
		ok(one_line(q.error) && strlen(q.error) < sizeof(q.errbuf) - 1 &&
		    strstr(q.error, ", ...") != NULL, "16 long names: the "
		    "reason is cut with \", ...\": \"%s\"", q.error);
	}

	/* the names a kind may have */
	{
		static const char *good[] = { "room", "Room", "r", "a1",
		    "chat.room", "x_y", "x-y", "user", "upload", "lastEventIds",
		    "access", NULL };
		static const char *refused[] = { "", "1room", "_room", "-x",
		    "a b", "a=b", "a&b", "a*", "caf\xc3\xa9", "lastEventId",
		    "access_token", "_", "last", "uploads", NULL };
		char err[200];

		for (i = 0, bad = 0; good[i] != NULL; i++)
			if (query_name_check(good[i], err, sizeof(err)) != 0) {
				diag("refused: '%s': %s", good[i], err);
				bad++;
			}
		is_int(bad, 0, "good kind names accepted");
		for (i = 0, bad = 0; refused[i] != NULL; i++)
			if (query_name_check(refused[i], err, sizeof(err)) !=
			    -1 || !one_line(err)) {
				diag("accepted: '%s'", refused[i]);
				bad++;
			}
		is_int(bad, 0, "bad and reserved names refused, one line each");
		query_name_check("last", err, sizeof(err));
		ok(strstr(err, "reserved") != NULL, "last: reserved: \"%s\"",
		    err);
		memset(name, 'n', QUERY_NAME_MAX + 1);
		name[QUERY_NAME_MAX] = '\0';
		is_int(query_name_check(name, err, sizeof(err)), 0,
		    "a 32-byte name");
		name[QUERY_NAME_MAX] = 'n';
		name[QUERY_NAME_MAX + 1] = '\0';
		is_int(query_name_check(name, err, sizeof(err)), -1,
		    "a 33-byte name: refused");
	}
}

/* ?last=N: 0..max-last, a plain number; anything else a 400 reason */
static void
linit(struct query *q, unsigned max_last)
{
	dinit(q, QUERY_UPLOADS_MAX);
	query_max_last(q, max_last);
}

static void
test_last(void)
{
	struct query q;
	static const char *bad[] = { "-1", "x", "", "1.5", "+3", " 3", "3 ",
	    "0x3", "11", "99999999999999999999999", "3\0" };
	size_t i;
	char id[QUERY_LAST_ID_MAX + 2];

	linit(&q, 10);
	add(&q, "user", "u");
	is_int(query_finish(&q), 0, "no last: accepted");
	is_int(q.last, 0, "no last: 0");
	linit(&q, 10);
	add(&q, "user", "u");
	add(&q, "last", "3");
	is_int(query_finish(&q), 0, "last=3: accepted");
	is_int(q.last, 3, "last=3: 3");
	linit(&q, 10);
	add(&q, "last", "10");
	add(&q, "upload", "a");
	is_int(query_finish(&q), 0, "last=10, the bound: accepted");
	is_int(q.last, 10, "last=10: 10");
	linit(&q, 10);
	add(&q, "user", "u");
	add(&q, "last", "0007");
	is_int(q.last, 7, "last=0007: 7");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strcmp(bad[i], "3\0") == 0 ? 2 : strlen(bad[i]);

		linit(&q, 10);
		add(&q, "user", "u");
		query_add(&q, "last", bad[i], len);
		is_int(query_finish(&q), -1, "last=\"%s\": refused", bad[i]);
		ok(q.error != NULL && strncmp(q.error, "last ", 5) == 0 &&
		    one_line(q.error),
		    "last=\"%s\": one line naming last: \"%s\"", bad[i],
		    q.error ? q.error : "(null)");
	}
	linit(&q, 10);
	add(&q, "user", "u");
	add(&q, "last", "11");
	ok(q.error && strstr(q.error, "bound of 10"),
	    "over the bound: says the bound: \"%s\"", q.error);
	linit(&q, 10);
	add(&q, "user", "u");
	add(&q, "last", "1");
	add(&q, "last", "2");
	ok(q.error && strstr(q.error, "duplicate last"), "two last: refused");
	linit(&q, 0);
	add(&q, "user", "u");
	add(&q, "last", "0");
	is_int(query_finish(&q), 0, "max-last 0: last=0 still accepted");
	linit(&q, 0);
	add(&q, "user", "u");
	add(&q, "last", "1");
	ok(q.error && strstr(q.error, "turned off"),
	    "max-last 0: last=1 refused as off: \"%s\"", q.error);

	/* a durable id of many channels fits; a longer one is kept as
	   "invalid", so the stream starts with a reset, not a 400 */
	memset(id, 'a', sizeof(id));
	id[QUERY_LAST_ID_MAX] = '\0';
	linit(&q, 10);
	add(&q, "user", "u");
	add(&q, "lastEventId", id);
	is_int(query_finish(&q), 0, "a lastEventId of %d bytes: accepted",
	    QUERY_LAST_ID_MAX);
	is_int((int)strlen(q.last_event_id), QUERY_LAST_ID_MAX, "and kept whole");
	id[QUERY_LAST_ID_MAX] = 'a';
	id[QUERY_LAST_ID_MAX + 1] = '\0';
	linit(&q, 10);
	add(&q, "user", "u");
	add(&q, "lastEventId", id);
	is_int(query_finish(&q), 0, "one byte longer: accepted");
	is_str(q.last_event_id, "invalid", "kept as invalid (a reset)");
}

int
main(void)
{
	test_valid();
	test_errors();
	test_kinds();
	test_id_safe();
	test_last();
	return done_testing();
}
