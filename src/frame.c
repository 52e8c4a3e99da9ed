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

static int
frame_utf8_valid(const unsigned char *p, size_t len)
{
	struct sbuf	 tmp;
	int		 r;

	sbuf_init(&tmp);
	r = frame_utf8_clean(&tmp, p, len);
	sbuf_free(&tmp);
	return r == 0;
}

/* length of an RFC 8259 number at p, or 0 if the text there is none */
static size_t
frame_json_number(const char *p, size_t len)
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
 * What json-c's strict mode still takes and RFC 8259 does not, checked
 * token by token outside strings (json-c checks the structure): single-
 * quoted strings, raw control characters inside strings, numbers such as
 * "1.", ".5", "01" or "1.e5" (json-c would even write them back as they
 * came), and literals other than true, false and null.  1 if the payload
 * has any of these, so it is no JSON.
 */
static int
frame_json_lenient(const char *p, size_t len)
{
	static const char *const words[] = { "true", "false", "null" };
	size_t	 i = 0, n, w;

	while (i < len) {
		unsigned char c = (unsigned char)p[i];

		if (c == '"') {
			for (i++; i < len && p[i] != '"'; i++) {
				if ((unsigned char)p[i] < 0x20)
					return 1;
				if (p[i] == '\\')
					i++;
			}
			i++;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if ((n = frame_json_number(p + i, len - i)) == 0)
				return 1;
			i += n;
			/* "1.5.3" or "12abc": the number must end here */
			if (i < len && strchr(" \t\r\n,]}:", p[i]) == NULL)
				return 1;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			for (w = 0; w < 3; w++) {
				n = strlen(words[w]);
				if (len - i >= n && memcmp(p + i, words[w], n) == 0 &&
				    (len - i == n || strchr(" \t\r\n,]}:",
				    p[i + n]) != NULL))
					break;
			}
			if (w == 3)
				return 1;
			i += n;
		} else if (strchr("{}[],: \t\r\n", c) != NULL)
			i++;
		else
			return 1;	/* ' . + and anything else */
	}
	return 0;
}

/* NaN and Infinity pass json-c's strict mode; they are not JSON */
static int
frame_json_finite(struct json_object *o)
{
	size_t	 i, n;

	switch (json_object_get_type(o)) {
	case json_type_double:
		return isfinite(json_object_get_double(o));
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if (!frame_json_finite(json_object_array_get_idx(o, i)))
				return 0;
		return 1;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void)key;
			if (!frame_json_finite(val))
				return 0;
		}
		return 1;
	}
	default:
		return 1;
	}
}

/*
 * 1 if the payload is one strict JSON value (white space around it
 * allowed), with *out the parsed value (NULL for JSON null); 0 if not.
 */
static int
frame_parse_json(const char *p, size_t len, struct json_object **out)
{
	struct json_tokener	*tok;
	struct json_object	*o;
	enum json_tokener_error	 e;
	size_t			 end;

	*out = NULL;
	if (len == 0 || len > INT32_MAX - 1 || memchr(p, '\0', len) != NULL)
		return 0;
	if (!frame_utf8_valid((const unsigned char *)p, len) ||
	    frame_json_lenient(p, len))
		return 0;
	/*
	 * A new tokener for each payload: one reused (json_tokener_reset)
	 * keeps some state of the parse before (fuzz_frame found a payload
	 * parsed wrong after others).
	 */
	if ((tok = json_tokener_new()) == NULL)
		return 0;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, p, (int)len);
	e = json_tokener_get_error(tok);
	if (e == json_tokener_continue) {
		/* a top-level number or word may go on: end it */
		o = json_tokener_parse_ex(tok, " ", 1);
		e = json_tokener_get_error(tok);
		end = len;
	} else
		end = (size_t)json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (e != json_tokener_success || !frame_json_finite(o))
		goto bad;
	/* only white space may follow the value */
	for (; end < len; end++)
		if (strchr(" \t\r\n", p[end]) == NULL)
			goto bad;
	*out = o;
	return 1;
bad:
	json_object_put(o);
	return 0;
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
 * {"channel":...,"data":...}, as json-c would write the object, written
 * here around the two values: one object and its table less a message.
 */
int
frame_json_envelope(struct sbuf *out, const char *channel, size_t channel_len,
    const char *payload, size_t payload_len)
{
	struct json_object	*data;
	int			 r = -1;

	if (payload_len > INT32_MAX || channel_len > INT32_MAX)
		return -1;
	if (!frame_parse_json(payload, payload_len, &data) &&
	    (data = frame_json_string(payload, payload_len)) == NULL)
		return -1;
	if (sbuf_add(out, "{\"channel\":", 11) != -1 &&
	    frame_json_add_string(out, channel, channel_len) != -1 &&
	    sbuf_add(out, ",\"data\":", 8) != -1 &&
	    frame_json_add(out, data) != -1 &&
	    sbuf_add(out, "}", 1) != -1)
		r = 0;
	json_object_put(data);
	return r;
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
