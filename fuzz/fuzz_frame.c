/*
 * fuzz_frame.c - libFuzzer target for the SSE/JSON encoder:
 * frame_message() in src/frame.c (with src/sse.c), both formats.  The
 * first byte says how many of the following bytes are the channel; the
 * rest is the payload (binary: NUL, CR, invalid UTF-8 all welcome).
 * Invariants, JSON format: "id: ...\n", exactly one "data: " line, then the
 * blank line; no CR or NUL anywhere; the line parses with json-c to an
 * object with "channel" (equal to the channel when that is valid UTF-8)
 * and "data": the payload as a string when it is valid UTF-8, unless the
 * payload is strict RFC 8259 JSON (checked by the small validator below),
 * in which case "data" is the payload's text without the white space
 * outside strings, and equals json-c's parse of it; strict JSON at most
 * 32 values deep (json-c's default) with no number that could overflow
 * is always embedded so.  Raw format: the data
 * lines joined with LF give the payload with CRLF and CR turned into LF.
 * A presence announcement ("\0sre:join:<data>" or "\0sre:leave:<data>",
 * published by src/control.lua) is "event: join" or "leave" in either
 * format, its data lines giving <data> as in the raw format.
 */
#include "autoconf.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define ID	"0badf00d-42"

/* ---- a strict RFC 8259 validator (no extensions), depth-limited ------ */

struct jv {
	const unsigned char *p, *end;
	int	 depth, maxdepth, bignum, allow_ctrl;
};

static void
jv_ws(struct jv *v)
{
	while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' ||
	    *v->p == '\n' || *v->p == '\r'))
		v->p++;
}

static int jv_value(struct jv *);

static int
jv_lit(struct jv *v, const char *s)
{
	size_t	 n = strlen(s);

	if ((size_t)(v->end - v->p) < n || memcmp(v->p, s, n) != 0)
		return 0;
	v->p += n;
	return 1;
}

static int
jv_string(struct jv *v)
{
	int	 i;

	v->p++;		/* the opening quote */
	while (v->p < v->end) {
		unsigned char c = *v->p++;

		if (c == '"')
			return 1;
		if (c < 0x20 && !v->allow_ctrl)
			return 0;
		if (c == '\\') {
			if (v->p >= v->end)
				return 0;
			c = *v->p++;
			if (c == 'u') {
				for (i = 0; i < 4; i++, v->p++)
					if (v->p >= v->end ||
					    strchr("0123456789abcdefABCDEF",
					    *v->p) == NULL || *v->p == 0)
						return 0;
			} else if (strchr("\"\\/bfnrt", c) == NULL || c == 0)
				return 0;
		}
	}
	return 0;
}

static int
jv_number(struct jv *v)
{
	const unsigned char *s = v->p;
	int	 digits = 0;

	if (v->p < v->end && *v->p == '-')
		v->p++;
	if (v->p < v->end && *v->p == '0')
		v->p++, digits++;
	else if (v->p < v->end && *v->p >= '1' && *v->p <= '9')
		while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
			v->p++, digits++;
	else
		return 0;
	if (v->p < v->end && *v->p == '.') {
		v->p++;
		if (v->p >= v->end || *v->p < '0' || *v->p > '9')
			return 0;
		while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
			v->p++, digits++;
	}
	if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
		v->bignum = 1;		/* may overflow to infinity */
		v->p++;
		if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
			v->p++;
		if (v->p >= v->end || *v->p < '0' || *v->p > '9')
			return 0;
		while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
			v->p++;
	}
	if (digits > 15)
		v->bignum = 1;		/* beyond int64/double exactness */
	(void)s;
	return 1;
}

static int
jv_value(struct jv *v)
{
	int	 r = 0;

	jv_ws(v);
	if (v->p >= v->end)
		return 0;
	if (++v->depth > v->maxdepth)
		v->maxdepth = v->depth;
	if (v->depth > 1000)
		return 0;
	switch (*v->p) {
	case '{':
		v->p++;
		jv_ws(v);
		if (v->p < v->end && *v->p == '}') {
			v->p++;
			r = 1;
			break;
		}
		for (;;) {
			jv_ws(v);
			if (v->p >= v->end || *v->p != '"' || !jv_string(v))
				break;
			jv_ws(v);
			if (v->p >= v->end || *v->p++ != ':')
				break;
			if (!jv_value(v))
				break;
			jv_ws(v);
			if (v->p < v->end && *v->p == ',') {
				v->p++;
				continue;
			}
			if (v->p < v->end && *v->p == '}') {
				v->p++;
				r = 1;
			}
			break;
		}
		break;
	case '[':
		v->p++;
		jv_ws(v);
		if (v->p < v->end && *v->p == ']') {
			v->p++;
			r = 1;
			break;
		}
		for (;;) {
			if (!jv_value(v))
				break;
			jv_ws(v);
			if (v->p < v->end && *v->p == ',') {
				v->p++;
				continue;
			}
			if (v->p < v->end && *v->p == ']') {
				v->p++;
				r = 1;
			}
			break;
		}
		break;
	case '"':
		r = jv_string(v);
		break;
	case 't':
		r = jv_lit(v, "true");
		break;
	case 'f':
		r = jv_lit(v, "false");
		break;
	case 'n':
		r = jv_lit(v, "null");
		break;
	default:
		r = jv_number(v);
		break;
	}
	v->depth--;
	return r;
}

/* 1 if p is one strict JSON value with white space around it */
static int
json_strict(const unsigned char *p, size_t len, int *maxdepth, int *bignum,
    int allow_ctrl)
{
	struct jv	 v = { p, p + len, 0, 0, 0, allow_ctrl };
	int		 r;

	r = jv_value(&v);
	jv_ws(&v);
	*maxdepth = v.maxdepth;
	*bignum = v.bignum;
	return r && v.p == v.end;
}

/* 1 if valid UTF-8 (no overlongs, surrogates, or past U+10FFFF) */
static int
utf8_valid(const unsigned char *p, size_t len)
{
	size_t	 i = 0, n, k;
	unsigned char lo, hi;

	while (i < len) {
		unsigned char c = p[i];

		lo = 0x80, hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf)
			n = 2;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			if (c == 0xe0)
				lo = 0xa0;
			if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			if (c == 0xf0)
				lo = 0x90;
			if (c == 0xf4)
				hi = 0x8f;
		} else
			return 0;
		for (k = 1; k < n; k++) {
			if (i + k >= len || p[i + k] < lo || p[i + k] > hi)
				return 0;
			lo = 0x80, hi = 0xbf;
		}
		i += n;
	}
	return 1;
}

static const char *
expect(const char *p, const char *end, const char *s)
{
	size_t	 n = strlen(s);

	if ((size_t)(end - p) < n || memcmp(p, s, n) != 0)
		abort();
	return p + n;
}

/*
 * 1 if the envelope line ends in ,"data":<pl without the white space
 * outside its strings>}
 */
static int
same_text(const char *pl, size_t plen, const char *line, size_t llen)
{
	char	*want;
	size_t	 i, n = 0;
	int	 in = 0, r;

	if ((want = malloc(plen + 10)) == NULL)
		return 1;
	memcpy(want, ",\"data\":", 8);
	n = 8;
	for (i = 0; i < plen; i++) {
		if (in) {
			if (pl[i] == '\\' && i + 1 < plen)
				want[n++] = pl[i++];
			else if (pl[i] == '"')
				in = 0;
		} else if (pl[i] == '"')
			in = 1;
		else if (strchr(" \t\r\n", pl[i]) != NULL)
			continue;
		want[n++] = pl[i];
	}
	want[n++] = '}';
	r = llen >= n && memcmp(line + llen - n, want, n) == 0;
	free(want);
	return r;
}

static void
check_json(const char *ch, size_t chlen, const char *pl, size_t plen)
{
	struct frame		*f;
	struct json_object	*env, *c, *d, *ref;
	struct json_tokener	*tok;
	const char		*p, *end, *nl;
	int			 depth = 0, bignum = 0, strict;
	int			 pdepth, pbignum;
	int			 is_payload_string;

	strict = memchr(pl, '\0', plen) == NULL &&
	    utf8_valid((const unsigned char *)pl, plen) &&
	    json_strict((const unsigned char *)pl, plen, &depth, &bignum, 0);
	pdepth = depth;
	pbignum = bignum;
	f = frame_message(ID, ch, chlen, pl, plen, FRAME_FORMAT_JSON);
	if (f == NULL)
		return;			/* out of memory only */
	p = f->data;
	end = f->data + f->len;
	if (memchr(p, '\r', f->len) != NULL || memchr(p, '\0', f->len) != NULL)
		abort();
	if (f->len < 2 || memcmp(end - 2, "\n\n", 2) != 0)
		abort();
	p = expect(p, end, "id: " ID "\n");
	p = expect(p, end, "data: ");
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL || nl + 2 != end)
		abort();		/* exactly one data line, then "\n" */

	/* what browsers JSON.parse(): it must be strict JSON */
	if (!json_strict((const unsigned char *)p, (size_t)(nl - p), &depth,
	    &bignum, 0))
		abort();
	/*
	 * The encoder embeds a payload as JSON when json-c's default tokener
	 * (JSON_TOKENER_DEFAULT_DEPTH deep) takes it, and the envelope adds
	 * one level: re-parse it with one level more than the default, or a
	 * valid 32-deep payload looks like a broken frame.  Browsers'
	 * JSON.parse has no such limit.
	 */
	if ((tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH + 1)) == NULL)
		goto out;
	env = json_tokener_parse_ex(tok, p, (int)(nl - p));
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != (size_t)(nl - p) ||
	    !json_object_is_type(env, json_type_object))
		abort();
	json_tokener_free(tok);
	if (!json_object_object_get_ex(env, "channel", &c) ||
	    !json_object_is_type(c, json_type_string) ||
	    !json_object_object_get_ex(env, "data", &d) ||
	    json_object_object_length(env) != 2)
		abort();
	if (utf8_valid((const unsigned char *)ch, chlen) &&
	    ((size_t)json_object_get_string_len(c) != chlen ||
	    memcmp(json_object_get_string(c), ch, chlen) != 0))
		abort();
	if (!utf8_valid((const unsigned char *)json_object_get_string(c),
	    (size_t)json_object_get_string_len(c)))
		abort();

	is_payload_string = json_object_is_type(d, json_type_string) &&
	    (size_t)json_object_get_string_len(d) == plen &&
	    memcmp(json_object_get_string(d), pl, plen) == 0;
	if (!is_payload_string) {
		if (json_object_is_type(d, json_type_string) &&
		    !utf8_valid((const unsigned char *)pl, plen)) {
			/* invalid UTF-8 cleaned: the result is valid */
			if (!utf8_valid((const unsigned char *)
			    json_object_get_string(d),
			    (size_t)json_object_get_string_len(d)))
				abort();
		} else {
			/* embedded as JSON: it must be JSON, parsed right */
			if (!strict)
				abort();
			tok = json_tokener_new();
			ref = json_tokener_parse_ex(tok, pl, (int)plen);
			if (json_tokener_get_error(tok) ==
			    json_tokener_continue)
				ref = json_tokener_parse_ex(tok, " ", 1);
			json_tokener_free(tok);
			if (!json_object_equal(ref, d))
				abort();
			json_object_put(ref);
			if (!same_text(pl, plen, p, (size_t)(nl - p)))
				abort();
		}
	} else if (strict && pdepth <= 32 && !pbignum &&
	    !(plen >= 2 && pl[0] == '"'))
		abort();	/* strict JSON sent as a string */
	json_object_put(env);
out:
	frame_unref(f);
}

/*
 * The frame of pl in format: "id: ...\n", then "event: <event>\n" when
 * event is not NULL, then data lines that, joined with LF, give pl from
 * skip on with CRLF and CR turned into LF, then the blank line.
 */
static void
check_lines(const char *pl, size_t plen, enum frame_format format,
    const char *event, size_t skip)
{
	struct frame	*f;
	const char	*p, *end, *nl;
	char		*want, *got;
	size_t		 i, wlen = 0, glen = 0, nlines = 0;

	f = frame_message(ID, "c", 1, pl, plen, format);
	if (f == NULL)
		return;
	p = f->data;
	end = f->data + f->len;
	if (f->len < 2 || memcmp(end - 2, "\n\n", 2) != 0)
		abort();
	p = expect(p, end, "id: " ID "\n");
	if (event != NULL) {
		p = expect(p, end, "event: ");
		p = expect(p, end, event);
		p = expect(p, end, "\n");
	}
	pl += skip;
	plen -= skip;
	want = malloc(plen + 1);
	got = malloc(f->len + 1);
	for (i = 0; i < plen; i++) {
		if (pl[i] == '\r') {
			want[wlen++] = '\n';
			if (i + 1 < plen && pl[i + 1] == '\n')
				i++;
		} else
			want[wlen++] = pl[i];
	}
	/* data lines up to the final blank line */
	while (p < end - 1) {
		p = expect(p, end, "data: ");
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL || memchr(p, '\r', (size_t)(nl - p)) != NULL)
			abort();
		if (nlines++ > 0)
			got[glen++] = '\n';
		memcpy(got + glen, p, (size_t)(nl - p));
		glen += (size_t)(nl - p);
		p = nl + 1;
	}
	if (p != end - 1 || *p != '\n')
		abort();
	if (glen != wlen || memcmp(got, want, wlen) != 0)
		abort();
	free(want);
	free(got);
	frame_unref(f);
}

/*
 * 1 if pl is a presence announcement (src/control.lua): "\0sre:join:" or
 * "\0sre:leave:" and at least one byte more; its event and the length of
 * the prefix.
 */
static int
presence(const char *pl, size_t plen, const char **event, size_t *skip)
{
	static const char *const names[] = { "join", "leave" };
	size_t	 i, n;

	for (i = 0; i < 2; i++) {
		n = 5 + strlen(names[i]) + 1;
		if (plen > n && memcmp(pl, "\0sre:", 5) == 0 &&
		    memcmp(pl + 5, names[i], n - 6) == 0 && pl[n - 1] == ':') {
			*event = names[i];
			*skip = n;
			return 1;
		}
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *event;
	size_t	 chlen, skip;
	char	*ch, *pl;

	if (size == 0)
		return 0;
	chlen = data[0];
	data++, size--;
	if (chlen > size)
		chlen = size;
	/* separate copies so ASan sees any read past either */
	ch = malloc(chlen ? chlen : 1);
	pl = malloc(size - chlen ? size - chlen : 1);
	memcpy(ch, data, chlen);
	memcpy(pl, data + chlen, size - chlen);
	if (presence(pl, size - chlen, &event, &skip)) {
		/* a presence announcement: its event, any format */
		check_lines(pl, size - chlen, FRAME_FORMAT_JSON, event, skip);
		check_lines(pl, size - chlen, FRAME_FORMAT_RAW, event, skip);
	} else {
		check_json(ch, chlen, pl, size - chlen);
		check_lines(pl, size - chlen, FRAME_FORMAT_RAW, NULL, 0);
	}
	free(ch);
	free(pl);
	return 0;
}
