/*
 * frame.c - immutable refcounted SSE frames and the JSON envelope.
 *
 * A frame is encoded once per message and shared by every subscriber;
 * see frame.h for who holds references.
 */
#include "autoconf.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "sse.h"
#include "utf8.h"

/* json-c's output: one line, '/' as it is */
#define FRAME_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct frame *
frame_new(const void *p, size_t len)
{
	struct frame	*f;

	if ((f = malloc(sizeof(*f) + len)) == NULL)
		return NULL;
	atomic_init(&f->refs, 1);
	f->message = 0;
	f->stamp = FRAME_STAMP_NONE;
	f->chan = NULL;
	f->epoch = 0;
	f->offset = 0;
	f->recv_us = 0;
	f->len = len;
	if (len)
		memcpy(f->data, p, len);
	return f;
}

struct frame *
frame_set_position(const void *chan, uint32_t epoch, uint64_t offset)
{
	struct frame	*f;

	if ((f = frame_new(NULL, 0)) == NULL)
		return NULL;
	f->stamp = FRAME_STAMP_SET;
	f->chan = chan;
	f->epoch = epoch;
	f->offset = offset;
	return f;
}

static struct json_object *frame_json_string(const char *, size_t);

/* the frame of what b holds, if ok; b is freed either way */
static struct frame *
frame_of(struct sbuf *b, int ok)
{
	struct frame	*f = ok ? frame_new(b->data, b->len) : NULL;

	sbuf_free(b);
	return f;
}

struct frame *
frame_retry(unsigned long ms, const char *comment)
{
	struct sbuf	 b;

	sbuf_init(&b);
	return frame_of(&b, sse_retry(&b, ms) == 0 && (comment == NULL ||
	    sse_comment(&b, comment) == 0) && sse_end(&b) == 0);
}

struct frame *
frame_reset(const char *id, const char *reason)
{
	struct sbuf	 b;
	struct frame	*f;

	sbuf_init(&b);
	f = frame_of(&b, (id == NULL || sse_id(&b, id, strlen(id)) == 0) &&
	    sse_event(&b, "reset") == 0 && sbuf_printf(&b,
	    "data: {\"reason\":\"%s\"}\n", reason) == 0 && sse_end(&b) == 0);
	if (f != NULL && id == NULL)
		f->stamp = FRAME_STAMP_ID;
	return f;
}

struct frame *
frame_overload(unsigned long ms, const char *limit)
{
	struct sbuf	 b;

	sbuf_init(&b);
	return frame_of(&b, sse_retry(&b, ms) == 0 &&
	    sse_event(&b, "overload") == 0 && sbuf_printf(&b,
	    "data: {\"limit\":\"%s\"}\n", limit) == 0 && sse_end(&b) == 0);
}

struct frame *
frame_presence(const char *channel, size_t channel_len, char *const *who,
    const size_t *wlens, size_t n, unsigned long long anonymous)
{
	struct json_object	*o, *v, *users;
	struct sbuf		 b;
	const char		*s;
	size_t			 i, slen;
	int			 ok = 0;

	sbuf_init(&b);
	if ((o = json_object_new_object()) == NULL)
		return NULL;
	if ((v = frame_json_string(channel, channel_len)) == NULL ||
	    json_object_object_add(o, "channel", v) != 0 ||
	    (users = json_object_new_array_ext((int)n)) == NULL ||
	    json_object_object_add(o, "users", users) != 0)
		goto done;
	for (i = 0; i < n; i++)
		if ((v = frame_json_string(who[i], wlens[i])) == NULL ||
		    json_object_array_add(users, v) != 0)
			goto done;
	if ((v = json_object_new_uint64(anonymous)) == NULL ||
	    json_object_object_add(o, "anonymous", v) != 0)
		goto done;
	s = json_object_to_json_string_length(o, FRAME_JSON_FLAGS, &slen);
	ok = s != NULL && sse_event(&b, "presence") == 0 &&
	    sbuf_add(&b, "data: ", 6) == 0 && sbuf_add(&b, s, slen) == 0 &&
	    sbuf_add(&b, "\n", 1) == 0 && sse_end(&b) == 0;
done:
	json_object_put(o);
	return frame_of(&b, ok);
}

struct frame *
frame_ping(void)
{
	struct sbuf	 b;

	sbuf_init(&b);
	return frame_of(&b, sse_comment(&b, "ping") == 0);
}

struct frame *
frame_ref(struct frame *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

void
frame_unref(struct frame *f)
{
	unsigned	 old;

	if (f == NULL)
		return;
	old = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
	if (old == 0)
		fatalx("frame_unref against refcount 0");
	if (old == 1)
		free(f);
}

/*
 * Copy p into out, replacing invalid UTF-8 with U+FFFD the way the WHATWG
 * decoder in browsers does: one U+FFFD per maximal subpart (the longest
 * prefix of a valid sequence, or one byte), so the text matches what a
 * browser would show had it decoded the raw bytes.  Overlong forms,
 * surrogates and code points past U+10FFFF are invalid.  Returns 1 if
 * anything was replaced, 0 if not, -1 if out of memory.
 */
static int
frame_utf8_clean(struct sbuf *out, const unsigned char *p, size_t len)
{
	static const char repl[] = "\xef\xbf\xbd";
	size_t		 i = 0, n, bad;
	int		 replaced = 0;

	while (i < len) {
		if ((n = utf8_seq(p + i, len - i, &bad)) > 0) {
			if (sbuf_add(out, p + i, n) == -1)
				return -1;
			i += n;
			continue;
		}
		if (sbuf_add(out, repl, 3) == -1)
			return -1;
		i += bad;
		replaced = 1;
	}
	return replaced;
}

/* length of an RFC 8259 number at p, or 0 if the text there is none */
static size_t
frame_json_number(const unsigned char *p, size_t len)
{
	size_t	 i = 0, d;

	if (i < len && p[i] == '-')
		i++;
	if (i < len && p[i] == '0')
		i++;
	else if (i < len && p[i] >= '1' && p[i] <= '9')
		while (i < len && p[i] >= '0' && p[i] <= '9')
			i++;
	else
		return 0;
	if (i < len && p[i] == '.') {
		for (d = ++i; i < len && p[i] >= '0' && p[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	if (i < len && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < len && (p[i] == '+' || p[i] == '-'))
			i++;
		for (d = i; i < len && p[i] >= '0' && p[i] <= '9'; i++)
			;
		if (i == d)
			return 0;
	}
	return i;
}

/*
 * The payload's JSON, checked and written in one pass (frame_json_scan):
 * what json-c's strict parser with its default depth takes, less what
 * RFC 8259 does not (json-c takes single quotes, raw control characters
 * in strings, "1." or "01"), less numbers that are infinite as doubles
 * (json-c reads 1e400 as inf).  Written as it came, white space outside
 * strings dropped: the same value for any JSON parser (json-c would
 * write it again: "\u00e9" as "é", 99999999999999999999 saturated,
 * duplicate names once), without building a tree of it, which cost
 * about a fifth of the daemon's CPU per message (issue 19).
 */
#define FRAME_JSON_DEPTH	32	/* json-c's default: scalars count */

struct frame_jscan {
	const unsigned char	*p, *end;
	struct sbuf		*out;
	int			 depth;
};

static void
frame_jscan_ws(struct frame_jscan *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int
frame_jscan_hex4(const unsigned char *p, const unsigned char *end)
{
	int	 i;

	if (end - p < 4)
		return 0;
	for (i = 0; i < 4; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		    (p[i] >= 'a' && p[i] <= 'f') || (p[i] >= 'A' && p[i] <= 'F')))
			return 0;
	return 1;
}

/* a string, at its opening quote: 1 and copied, 0 if it is none */
static int
frame_jscan_string(struct frame_jscan *j)
{
	const unsigned char	*s = j->p++;
	size_t			 n, bad;

	while (j->p < j->end) {
		if (*j->p == '"') {
			j->p++;
			return sbuf_add(j->out, s, (size_t)(j->p - s)) == -1 ?
			    -1 : 1;
		}
		if (*j->p < 0x20)
			return 0;
		if (*j->p == '\\') {
			if (j->end - j->p < 2)
				return 0;
			if (j->p[1] == 'u') {
				if (!frame_jscan_hex4(j->p + 2, j->end))
					return 0;
				j->p += 6;
			} else if (strchr("\"\\/bfnrt", j->p[1]) != NULL &&
			    j->p[1] != '\0')
				j->p += 2;
			else
				return 0;
		} else if (*j->p < 0x80)
			j->p++;
		else if ((n = utf8_seq(j->p, (size_t)(j->end - j->p),
		    &bad)) > 0)
			j->p += n;
		else
			return 0;
	}
	return 0;
}

/* a number: 1 and copied, 0 if it is none or infinite as a double */
static int
frame_jscan_number(struct frame_jscan *j)
{
	char	 buf[64], *copy = buf;
	size_t	 n, k;
	double	 d;

	if ((n = frame_json_number(j->p, (size_t)(j->end - j->p))) == 0)
		return 0;
	for (k = 0; k < n; k++)
		if (j->p[k] == '.' || j->p[k] == 'e' || j->p[k] == 'E')
			break;
	if (k < n) {
		/* a double to json-c: it must be finite */
		if (n >= sizeof(buf) && (copy = malloc(n + 1)) == NULL)
			return -1;
		memcpy(copy, j->p, n);
		copy[n] = '\0';
		d = strtod(copy, NULL);
		if (copy != buf)
			free(copy);
		if (!isfinite(d))
			return 0;
	}
	if (sbuf_add(j->out, j->p, n) == -1)
		return -1;
	j->p += n;
	return 1;
}

static int
frame_jscan_word(struct frame_jscan *j, const char *w)
{
	size_t	 n = strlen(w);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
		return 0;
	j->p += n;
	return sbuf_add(j->out, w, n) == -1 ? -1 : 1;
}

static int	frame_jscan_value(struct frame_jscan *);

/* an object or array, at its bracket: its members */
static int
frame_jscan_members(struct frame_jscan *j, unsigned char close)
{
	int	 r;

	if (sbuf_add(j->out, j->p++, 1) == -1)
		return -1;
	frame_jscan_ws(j);
	if (j->p < j->end && *j->p == close)
		goto end;
	for (;;) {
		if (close == '}') {
			if (j->p >= j->end || *j->p != '"')
				return 0;
			if ((r = frame_jscan_string(j)) != 1)
				return r;
			frame_jscan_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return 0;
			if (sbuf_add(j->out, j->p++, 1) == -1)
				return -1;
		}
		if ((r = frame_jscan_value(j)) != 1)
			return r;
		frame_jscan_ws(j);
		if (j->p >= j->end)
			return 0;
		if (*j->p == close)
			break;
		if (*j->p != ',')
			return 0;
		if (sbuf_add(j->out, j->p++, 1) == -1)
			return -1;
		frame_jscan_ws(j);
	}
end:
	return sbuf_add(j->out, j->p++, 1) == -1 ? -1 : 1;
}

/* one value, white space before it skipped: 1, 0 if none, -1 no memory */
static int
frame_jscan_value(struct frame_jscan *j)
{
	int	 r;

	frame_jscan_ws(j);
	if (j->p >= j->end || ++j->depth > FRAME_JSON_DEPTH)
		return 0;
	switch (*j->p) {
	case '{':
		r = frame_jscan_members(j, '}');
		break;
	case '[':
		r = frame_jscan_members(j, ']');
		break;
	case '"':
		r = frame_jscan_string(j);
		break;
	case 't':
		r = frame_jscan_word(j, "true");
		break;
	case 'f':
		r = frame_jscan_word(j, "false");
		break;
	case 'n':
		r = frame_jscan_word(j, "null");
		break;
	default:
		r = frame_jscan_number(j);
		break;
	}
	j->depth--;
	return r;
}

/*
 * 1 if the payload is one JSON value (white space around it allowed),
 * appended to out as it came but white space outside strings; 0 if it is
 * none (out as it was); -1 if out of memory.
 */
static int
frame_json_scan(struct sbuf *out, const char *p, size_t len)
{
	struct frame_jscan	 j;
	size_t			 start = out->len;
	int			 r;

	j.p = (const unsigned char *)p;
	j.end = j.p + len;
	j.out = out;
	j.depth = 0;
	if ((r = frame_jscan_value(&j)) == 1) {
		frame_jscan_ws(&j);
		if (j.p != j.end)
			r = 0;
	}
	if (r != 1)
		out->len = start;
	return r;
}

static struct json_object *
frame_json_string(const char *p, size_t len)
{
	struct sbuf		 clean;
	struct json_object	*o;

	sbuf_init(&clean);
	if (frame_utf8_clean(&clean, (const unsigned char *)p, len) == -1) {
		sbuf_free(&clean);
		return NULL;
	}
	o = json_object_new_string_len(clean.data ? clean.data : "",
	    (int)clean.len);
	sbuf_free(&clean);
	return o;
}

/* o as JSON, appended to out (o NULL: null); -1 if out of memory */
static int
frame_json_add(struct sbuf *out, struct json_object *o)
{
	const char	*s;
	size_t		 slen;

	if ((s = json_object_to_json_string_length(o, FRAME_JSON_FLAGS,
	    &slen)) == NULL)
		return -1;
	return sbuf_add(out, s, slen);
}

/*
 * The JSON string of p, appended to out, as json-c writes it: printable
 * ASCII but '"' and '\\' stands as it is (a channel's name, nearly
 * always), anything else goes through json-c.
 */
static int
frame_json_add_string(struct sbuf *out, const char *p, size_t len)
{
	const unsigned char	*u = (const unsigned char *)p;
	struct json_object	*o;
	size_t			 i;
	int			 r;

	for (i = 0; i < len; i++)
		if (u[i] < 0x20 || u[i] > 0x7e || u[i] == '"' || u[i] == '\\')
			break;
	if (i == len)
		return sbuf_add(out, "\"", 1) == -1 ||
		    sbuf_add(out, p, len) == -1 ||
		    sbuf_add(out, "\"", 1) == -1 ? -1 : 0;
	if ((o = frame_json_string(p, len)) == NULL)
		return -1;
	r = frame_json_add(out, o);
	json_object_put(o);
	return r;
}

/*
 * {"channel":...,"data":...}: the payload as it is when it is JSON
 * (frame_json_scan), else as a string.
 */
int
frame_json_envelope(struct sbuf *out, const char *channel, size_t channel_len,
    const char *payload, size_t payload_len)
{
	struct json_object	*data;
	size_t			 start = out->len;
	int			 r;

	if (payload_len > INT32_MAX || channel_len > INT32_MAX)
		return -1;
	if (sbuf_add(out, "{\"channel\":", 11) == -1 ||
	    frame_json_add_string(out, channel, channel_len) == -1 ||
	    sbuf_add(out, ",\"data\":", 8) == -1)
		goto fail;
	if ((r = frame_json_scan(out, payload, payload_len)) == -1)
		goto fail;
	if (r == 0) {
		if ((data = frame_json_string(payload, payload_len)) == NULL)
			goto fail;
		r = frame_json_add(out, data);
		json_object_put(data);
		if (r == -1)
			goto fail;
	}
	if (sbuf_add(out, "}", 1) == -1)
		goto fail;
	return 0;
fail:
	out->len = start;
	return -1;
}

/*
 * A presence announcement (src/control.lua publishes them on the channel):
 * "\0sre:join:<data>" or "\0sre:leave:<data>".  Its data, and in *namelen
 * the length of the event's name (after the 5 bytes of the prefix); NULL
 * for any other payload.
 */
static const char *
frame_presence_event(const char *p, size_t len, size_t *namelen)
{
	if (len > 10 && memcmp(p, "\0sre:join:", 10) == 0) {
		*namelen = 4;
		return p + 10;
	}
	if (len > 11 && memcmp(p, "\0sre:leave:", 11) == 0) {
		*namelen = 5;
		return p + 11;
	}
	return NULL;
}

struct frame *
frame_message(const char *id, const char *channel, size_t channel_len,
    const char *payload, size_t payload_len, enum frame_format format)
{
	struct sbuf	 b;
	struct frame	*f = NULL;
	size_t		 envstart, evlen;
	const char	*ev;

	sbuf_init(&b);
	if (id != NULL && sse_id(&b, id, strlen(id)) == -1)
		goto done;
	if ((ev = frame_presence_event(payload, payload_len, &evlen)) !=
	    NULL) {
		/* "event: join" or "leave", its data as it is, any format */
		if (sbuf_add(&b, "event: ", 7) == -1 ||
		    sbuf_add(&b, payload + 5, evlen) == -1 ||
		    sbuf_add(&b, "\n", 1) == -1 ||
		    sse_data(&b, ev, payload_len - (size_t)(ev - payload)) == -1)
			goto done;
	} else if (format == FRAME_FORMAT_RAW) {
		if (sse_data(&b, payload, payload_len) == -1)
			goto done;
	} else {
		if (sbuf_add(&b, "data: ", 6) == -1)
			goto done;
		envstart = b.len;
		if (frame_json_envelope(&b, channel, channel_len, payload,
		    payload_len) == -1)
			goto done;
		/* json-c's plain output never holds CR or LF: one line */
		if (memchr(b.data + envstart, '\n', b.len - envstart) != NULL ||
		    memchr(b.data + envstart, '\r', b.len - envstart) != NULL)
			fatalx("frame_message: line break in JSON envelope");
		if (sbuf_add(&b, "\n", 1) == -1)
			goto done;
	}
	if (sse_end(&b) == -1)
		goto done;
	if ((f = frame_new(b.data, b.len)) != NULL)
		f->message = 1;
done:
	sbuf_free(&b);
	return f;
}
