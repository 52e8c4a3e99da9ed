/*
 * test_frame.c - refcounted frames and the message encoding (frame.h).
 *
 * JSON format: exact bytes for the common cases, and for every payload
 * (binary, invalid UTF-8, lenient-but-not-strict JSON) the invariants the
 * browser depends on: exactly one "data: " line, valid UTF-8, and the
 * envelope decodes back (json-c) to the channel and the payload.
 */
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "frame.h"
#include "sse.h"
#include "tap.h"

#define L(s)	(s), (sizeof(s) - 1)

#define ID	"a1b2c3d4-7"

static unsigned
refs(struct frame *f)
{
	return atomic_load(&f->refs);
}

/* strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF */
static int
utf8_valid(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, k, need;
	unsigned long cp, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf) {
			need = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if (s[i] >= 0xe0 && s[i] <= 0xef) {
			need = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			need = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (n - i - 1 < need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static int
contains(const char *p, size_t n, const char *needle, size_t nlen)
{
	size_t i;

	for (i = 0; i + nlen <= n; i++)
		if (memcmp(p + i, needle, nlen) == 0)
			return 1;
	return 0;
}

/* "id: ID\ndata: " env "\n\n" */
static char *
expect_json(const char *env, size_t envlen, size_t *outlen)
{
	static const char pre[] = "id: " ID "\ndata: ";
	char *e;

	e = malloc(sizeof(pre) - 1 + envlen + 2);
	memcpy(e, pre, sizeof(pre) - 1);
	memcpy(e + sizeof(pre) - 1, env, envlen);
	memcpy(e + sizeof(pre) - 1 + envlen, "\n\n", 2);
	*outlen = sizeof(pre) - 1 + envlen + 2;
	return e;
}

/* payload on channel "c", json format, compared with the envelope */
static void
json_case(const char *payload, size_t plen, const char *env, size_t envlen,
    const char *desc)
{
	struct frame *f;
	char *e;
	size_t elen;

	f = frame_message(ID, L("c"), payload, plen, FRAME_FORMAT_JSON);
	ok(f != NULL, "json %s: frame made", desc);
	if (f == NULL)
		return;
	e = expect_json(env, envlen, &elen);
	is_mem(f->data, f->len, e, elen, "json %s: bytes", desc);
	free(e);
	frame_unref(f);
}

/* n levels of open/close around inner: embedded as JSON or not */
static void
depth_case(int n, const char *open, const char *close, const char *inner,
    int json, const char *desc)
{
	struct sbuf	 b, want;
	int		 i;

	sbuf_init(&b);
	sbuf_init(&want);
	for (i = 0; i < n; i++)
		sbuf_add(&b, open, strlen(open));
	sbuf_add(&b, inner, strlen(inner));
	for (i = 0; i < n; i++)
		sbuf_add(&b, close, strlen(close));
	sbuf_add(&want, "{\"channel\":\"c\",\"data\":", 22);
	if (json)
		sbuf_add(&want, b.data, b.len);
	else
		for (sbuf_add(&want, "\"", 1), i = 0; i < (int)b.len; i++)
			sbuf_add(&want, b.data[i] == '"' ? "\\\"" : b.data + i,
			    b.data[i] == '"' ? 2 : 1);
	if (!json)
		sbuf_add(&want, "\"", 1);
	sbuf_add(&want, "}", 1);
	json_case(b.data, b.len, want.data, want.len, desc);
	sbuf_free(&b);
	sbuf_free(&want);
}

/*
 * The invariants of a json frame: "id: ID\n", one "data: " line with no
 * CR/LF in it, the blank line, valid UTF-8; the data line parses back
 * with json-c into {"channel":..., "data":...}.  Returns the parsed
 * envelope (caller puts it) or NULL.
 */
static json_object *
json_frame_check(struct frame *f, const char *desc)
{
	static const char pre[] = "id: " ID "\ndata: ";
	const char *body;
	size_t blen, i;
	int lines_ok;
	json_tokener *tok;
	json_object *o = NULL;

	ok(f != NULL, "%s: frame made", desc);
	if (f == NULL)
		return NULL;
	lines_ok = f->len >= sizeof(pre) - 1 + 2 &&
	    memcmp(f->data, pre, sizeof(pre) - 1) == 0 &&
	    memcmp(f->data + f->len - 2, "\n\n", 2) == 0;
	body = f->data + sizeof(pre) - 1;
	blen = lines_ok ? f->len - (sizeof(pre) - 1) - 2 : 0;
	for (i = 0; lines_ok && i < blen; i++)
		if (body[i] == '\n' || body[i] == '\r')
			lines_ok = 0;
	ok(lines_ok, "%s: id line, exactly one data line, blank line", desc);
	if (!lines_ok) {
		tap_dump("frame", f->data, f->len);
		return NULL;
	}
	ok(utf8_valid(f->data, f->len), "%s: frame is valid UTF-8", desc);
	ok(!contains(body, blen, "\0", 1), "%s: no raw NUL in the frame",
	    desc);

	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)blen);
	if (o != NULL && tok->char_offset != (int)blen) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	ok(o != NULL && json_object_is_type(o, json_type_object),
	    "%s: data line is one strict JSON object", desc);
	if (o == NULL)
		tap_dump("data", body, blen);
	return o;
}

static void
test_refs(void)
{
	struct frame *f, *g;

	f = frame_new(L("abc"));
	ok(f != NULL, "frame_new: made");
	is_int(refs(f), 1, "frame_new: one reference, the creator's");
	is_mem(f->data, f->len, L("abc"), "frame_new: copies the bytes");
	g = frame_ref(f);
	ok(g == f, "frame_ref: returns the frame");
	is_int(refs(f), 2, "frame_ref: two references");
	frame_ref(f);
	is_int(refs(f), 3, "frame_ref again: three");
	frame_unref(f);
	frame_unref(f);
	is_int(refs(f), 1, "two frame_unref: back to one");
	frame_unref(f);		/* frees; ASan reports misuse */

	f = frame_new(L("a\0b\xff"));
	is_mem(f->data, f->len, L("a\0b\xff"), "frame_new: binary-safe copy");
	frame_unref(f);

	f = frame_new("", 0);
	ok(f != NULL && f->len == 0, "frame_new of 0 bytes");
	if (f)
		frame_unref(f);
}

static void
test_json(void)
{
	struct frame *f;
	json_object *o, *d;
	char big[200];
	size_t i;

	f = frame_message(ID, L("upload:u7"), L("{\"pct\":40}"),
	    FRAME_FORMAT_JSON);
	ok(f != NULL, "frame_message json: made");
	is_int(refs(f), 1, "frame_message: one reference");
	is_mem(f->data, f->len,
	    L("id: a1b2c3d4-7\ndata: {\"channel\":\"upload:u7\",\"data\":{\"pct\":40}}\n\n"),
	    "json: the documented example, exact bytes");
	frame_unref(f);

	json_case(L("hello"), L("{\"channel\":\"c\",\"data\":\"hello\"}"),
	    "non-JSON text becomes a JSON string");
	json_case(L(""), L("{\"channel\":\"c\",\"data\":\"\"}"),
	    "empty payload becomes \"\"");
	json_case(L("a\r\nb\nc\rd"),
	    L("{\"channel\":\"c\",\"data\":\"a\\r\\nb\\nc\\rd\"}"),
	    "CR/LF in a string payload are escaped: one data line");
	json_case(L("{\n  \"a\": 1,\n  \"b\": [1, 2, {\"c\": null}]\n}\n"),
	    L("{\"channel\":\"c\",\"data\":{\"a\":1,\"b\":[1,2,{\"c\":null}]}}"),
	    "pretty multi-line JSON object ends up on one line");
	json_case(L("  {\"a\":\"x\\ny\"}  \r\n"),
	    L("{\"channel\":\"c\",\"data\":{\"a\":\"x\\ny\"}}"),
	    "JSON with surrounding whitespace is still JSON");
	json_case(L("a\0b"), L("{\"channel\":\"c\",\"data\":\"a\\u0000b\"}"),
	    "NUL becomes \\u0000");
	json_case(L("a\xff" "b"),
	    L("{\"channel\":\"c\",\"data\":\"a\xef\xbf\xbd" "b\"}"),
	    "invalid byte becomes U+FFFD");
	json_case(L("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
	    L("{\"channel\":\"c\",\"data\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}"),
	    "valid UTF-8 text is kept");
	json_case(L("say \"hi\" \\ \t"),
	    L("{\"channel\":\"c\",\"data\":\"say \\\"hi\\\" \\\\ \\t\"}"),
	    "quotes, backslash and tab are escaped");

	/* strict JSON scalars and containers are embedded as they are */
	json_case(L("42"), L("{\"channel\":\"c\",\"data\":42}"),
	    "a bare number is JSON");
	json_case(L("true"), L("{\"channel\":\"c\",\"data\":true}"),
	    "true is JSON");
	json_case(L("null"), L("{\"channel\":\"c\",\"data\":null}"),
	    "null is JSON");
	json_case(L("\"s\""), L("{\"channel\":\"c\",\"data\":\"s\"}"),
	    "a JSON string is embedded as JSON");
	json_case(L("[1,\"x\",{}]"),
	    L("{\"channel\":\"c\",\"data\":[1,\"x\",{}]}"), "an array is JSON");
	json_case(L("{\"e\":\"\\u00e9\",\"n\":99999999999999999999,\"z\":-0}"),
	    L("{\"channel\":\"c\",\"data\":{\"e\":\"\\u00e9\","
	    "\"n\":99999999999999999999,\"z\":-0}}"),
	    "JSON is written as it came: escapes, big numbers, -0");
	json_case(L(" [ 1 ,\t{ \"a b\" : \" x \" } ]\r\n"),
	    L("{\"channel\":\"c\",\"data\":[1,{\"a b\":\" x \"}]}"),
	    "white space outside strings is dropped, inside kept");
	json_case(L("[-1.5e308,1e-400,0.5E+2]"),
	    L("{\"channel\":\"c\",\"data\":[-1.5e308,1e-400,0.5E+2]}"),
	    "finite doubles are JSON, written as they came");
	json_case(L("[1e400]"), L("{\"channel\":\"c\",\"data\":\"[1e400]\"}"),
	    "a number infinite as a double is not JSON");
	json_case(L("[01]"), L("{\"channel\":\"c\",\"data\":\"[01]\"}"),
	    "a leading zero is not JSON");
	json_case(L("\"a\\x\""),
	    L("{\"channel\":\"c\",\"data\":\"\\\"a\\\\x\\\"\"}"),
	    "an unknown escape is not JSON");
	json_case(L("\"\\u12\""),
	    L("{\"channel\":\"c\",\"data\":\"\\\"\\\\u12\\\"\"}"),
	    "a short \\u escape is not JSON");
	/* json-c's default depth, 32 values deep (scalars count) */
	depth_case(32, "[", "]", "", 1, "32 nested arrays are JSON");
	depth_case(33, "[", "]", "", 0, "33 nested arrays are text");
	depth_case(31, "{\"a\":", "}", "1", 1,
	    "31 nested objects around a number are JSON");
	depth_case(32, "{\"a\":", "}", "1", 0,
	    "32 nested objects around a number are text");

	/* lenient json-c syntax that strict JSON refuses: embedded as text */
	json_case(L("{'a':1}"), L("{\"channel\":\"c\",\"data\":\"{'a':1}\"}"),
	    "single quotes are not JSON");
	json_case(L("[1,]"), L("{\"channel\":\"c\",\"data\":\"[1,]\"}"),
	    "a trailing comma is not JSON");
	json_case(L("{\"a\":1,}"),
	    L("{\"channel\":\"c\",\"data\":\"{\\\"a\\\":1,}\"}"),
	    "a trailing comma in an object is not JSON");
	json_case(L("NaN"), L("{\"channel\":\"c\",\"data\":\"NaN\"}"),
	    "NaN is not JSON");
	json_case(L("Infinity"), L("{\"channel\":\"c\",\"data\":\"Infinity\"}"),
	    "Infinity is not JSON");
	json_case(L("{\"a\":1} trailing"),
	    L("{\"channel\":\"c\",\"data\":\"{\\\"a\\\":1} trailing\"}"),
	    "JSON followed by garbage is not JSON");
	json_case(L("{\"a\":1}{\"b\":2}"),
	    L("{\"channel\":\"c\",\"data\":\"{\\\"a\\\":1}{\\\"b\\\":2}\"}"),
	    "two JSON values are not one");
	json_case(L("{\"a\":1"),
	    L("{\"channel\":\"c\",\"data\":\"{\\\"a\\\":1\"}"),
	    "an unterminated object is not JSON");
	json_case(L("[1,2"), L("{\"channel\":\"c\",\"data\":\"[1,2\"}"),
	    "an unterminated array is not JSON");
	json_case(L("/*c*/1"), L("{\"channel\":\"c\",\"data\":\"/*c*/1\"}"),
	    "a comment is not JSON");
	json_case(L("tru"), L("{\"channel\":\"c\",\"data\":\"tru\"}"),
	    "a truncated literal is not JSON");
	json_case(L("{\"a\":\"x\0y\"}"),
	    L("{\"channel\":\"c\",\"data\":\"{\\\"a\\\":\\\"x\\u0000y\\\"}\"}"),
	    "a raw NUL inside a JSON string is not JSON");

	/* invariants on harder inputs */
	f = frame_message(ID, L("c"), L("{\"a\":\"\xff\"}"),
	    FRAME_FORMAT_JSON);
	o = json_frame_check(f, "invalid UTF-8 inside a JSON string");
	json_object_put(o);
	if (f)
		frame_unref(f);

	{
		static const char *bad[] = {
			"\xc0\xaf",		/* overlong '/' */
			"\xe0\x80\xaf",		/* overlong */
			"\xed\xa0\x80",		/* surrogate D800 */
			"\xf4\x90\x80\x80",	/* above U+10FFFF */
			"\xf8\x88\x80\x80\x80",	/* 5-byte form */
			"ab\xe2\x82",		/* truncated at the end */
			"\x80\xbf",		/* lone continuations */
		};
		struct frame *ff;
		char desc[64];

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			ff = frame_message(ID, L("c"), bad[i],
			    strlen(bad[i]), FRAME_FORMAT_JSON);
			snprintf(desc, sizeof(desc), "bad UTF-8 #%zu", i);
			o = json_frame_check(ff, desc);
			ok(ff && contains(ff->data, ff->len,
			    L("\xef\xbf\xbd")), "%s: has U+FFFD", desc);
			json_object_put(o);
			if (ff)
				frame_unref(ff);
		}
	}

	/* channel: binary, escaped, and valid UTF-8 in the output */
	f = frame_message(ID, L("user:a\"b\\c\xff"), L("1"), FRAME_FORMAT_JSON);
	o = json_frame_check(f, "channel with quote, backslash, bad byte");
	if (o && json_object_object_get_ex(o, "channel", &d))
		is_mem(json_object_get_string(d), (size_t)json_object_get_string_len(d),
		    L("user:a\"b\\c\xef\xbf\xbd"), "channel decodes back");
	else
		ok(0, "channel decodes back");
	json_object_put(o);
	if (f)
		frame_unref(f);

	/* round trip: a binary, valid-UTF-8 text decodes back exactly */
	{
		static const char p[] = "line1\r\nline2\n\0\x01\x1f \"q\" \\ /"
		    " \xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80 end";

		f = frame_message(ID, L("c"), p, sizeof(p) - 1,
		    FRAME_FORMAT_JSON);
		o = json_frame_check(f, "control chars, U+2028, emoji");
		if (o && json_object_object_get_ex(o, "data", &d) &&
		    json_object_is_type(d, json_type_string))
			is_mem(json_object_get_string(d),
			    (size_t)json_object_get_string_len(d), p,
			    sizeof(p) - 1, "payload decodes back exactly");
		else
			ok(0, "payload decodes back exactly");
		json_object_put(o);
		if (f)
			frame_unref(f);
	}

	/* deep nesting beyond json-c's default depth: still a valid frame */
	for (i = 0; i < 100; i++) {
		big[i] = '[';
		big[199 - i] = ']';
	}
	f = frame_message(ID, L("c"), big, sizeof(big), FRAME_FORMAT_JSON);
	o = json_frame_check(f, "100 nested arrays");
	json_object_put(o);
	if (f)
		frame_unref(f);

	/* 256 KiB of pseudo-random bytes */
	{
		size_t n = 256 * 1024;
		char *p = malloc(n);
		unsigned long x = 12345;

		for (i = 0; i < n; i++) {
			x = x * 1103515245 + 12345;
			p[i] = (char)(x >> 16);
		}
		f = frame_message(ID, L("c"), p, n, FRAME_FORMAT_JSON);
		o = json_frame_check(f, "256 KiB random bytes");
		json_object_put(o);
		if (f)
			frame_unref(f);
		free(p);
	}
}

static void
test_raw(void)
{
	struct frame *f;

	f = frame_message(ID, L("upload:u7"), L("a\nb\r\nc\rd"),
	    FRAME_FORMAT_RAW);
	ok(f != NULL, "raw: made");
	if (f) {
		is_mem(f->data, f->len,
		    L("id: a1b2c3d4-7\ndata: a\ndata: b\ndata: c\ndata: d\n\n"),
		    "raw: CR, LF, CRLF split lines, exact bytes");
		is_int(refs(f), 1, "raw: one reference");
		frame_unref(f);
	}
	f = frame_message(ID, L("c"), L(""), FRAME_FORMAT_RAW);
	if (f) {
		is_mem(f->data, f->len, L("id: a1b2c3d4-7\ndata: \n\n"),
		    "raw: empty payload gives one data line");
		frame_unref(f);
	} else
		ok(0, "raw: empty payload gives one data line");
	f = frame_message(ID, L("c"), L("{\"pct\":40}"), FRAME_FORMAT_RAW);
	if (f) {
		is_mem(f->data, f->len,
		    L("id: a1b2c3d4-7\ndata: {\"pct\":40}\n\n"),
		    "raw: no envelope");
		frame_unref(f);
	} else
		ok(0, "raw: no envelope");
	f = frame_message(ID, L("c"), L("x\0\xff"), FRAME_FORMAT_RAW);
	if (f) {
		is_mem(f->data, f->len, L("id: a1b2c3d4-7\ndata: x\0\xff\n\n"),
		    "raw: bytes exactly (NUL, invalid UTF-8)");
		frame_unref(f);
	} else
		ok(0, "raw: bytes exactly (NUL, invalid UTF-8)");
}

static void
test_envelope(void)
{
	struct sbuf b;

	sbuf_init(&b);
	sbuf_addstr(&b, ">");
	is_int(frame_json_envelope(&b, L("upload:u7"), L("{\"pct\":40}")), 0,
	    "frame_json_envelope: returns 0");
	is_mem(b.data, b.len,
	    L(">{\"channel\":\"upload:u7\",\"data\":{\"pct\":40}}"),
	    "frame_json_envelope: appends the envelope only");
	sbuf_reset(&b);
	frame_json_envelope(&b, L("user:alice"), L("hi\nthere"));
	is_mem(b.data, b.len,
	    L("{\"channel\":\"user:alice\",\"data\":\"hi\\nthere\"}"),
	    "frame_json_envelope: text payload as a string");
	frame_json_envelope(&b, L("c"), L("[]"));
	is_mem(b.data, b.len,
	    L("{\"channel\":\"user:alice\",\"data\":\"hi\\nthere\"}"
	    "{\"channel\":\"c\",\"data\":[]}"),
	    "frame_json_envelope: appends again");
	sbuf_reset(&b);
	frame_json_envelope(&b, L("a:b/c"), L("1"));
	ok(b.len > 0 && !contains(b.data, b.len, L("\n")),
	    "frame_json_envelope: one line");
	sbuf_free(&b);
}

/* who is on a channel, for a new stream (--presence-events) */
static void
test_presence(void)
{
	struct frame	*f;
	char		*who[3] = { "alice", "b\"ob", "bad\xff" };
	size_t		 wlens[3] = { 5, 4, 4 };

	f = frame_presence(L("upload:u7"), who, wlens, 3, 2);
	ok(f != NULL, "frame_presence: a frame");
	is_mem(f->data, f->len, L("event: presence\ndata: "
	    "{\"channel\":\"upload:u7\",\"users\":[\"alice\",\"b\\\"ob\","
	    "\"bad\xef\xbf\xbd\"],\"anonymous\":2}\n\n"),
	    "event: presence, one JSON line: the users escaped, invalid "
	    "UTF-8 replaced, the anonymous streams counted");
	frame_unref(f);
	f = frame_presence(L("room:r"), NULL, NULL, 0, 0);
	is_mem(f->data, f->len, L("event: presence\ndata: "
	    "{\"channel\":\"room:r\",\"users\":[],\"anonymous\":0}\n\n"),
	    "nobody there: an empty list");
	frame_unref(f);
}

int
main(void)
{
	test_refs();
	test_json();
	test_raw();
	test_envelope();
	test_presence();
	return done_testing();
}
