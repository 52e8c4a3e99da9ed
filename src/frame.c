/*
 * frame.c - immutable refcounted SSE frames and the JSON envelope.
 *
 * A frame is encoded once per message and shared by every subscriber;
 * see frame.h for who holds references.
 */
#include "autoconf.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "sse.h"

struct frame *
frame_new(const void *p, size_t len)
{
	struct frame	*f;

	if ((f = malloc(sizeof(*f) + len)) == NULL)
		return NULL;
	atomic_init(&f->refs, 1);
	f->len = len;
	if (len)
		memcpy(f->data, p, len);
	return f;
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
 * Copy p into out, replacing every invalid UTF-8 sequence (overlong forms,
 * surrogates, code points past U+10FFFF, truncated sequences) with U+FFFD,
 * so that JSON made from it is valid UTF-8.  Returns 1 if anything was
 * replaced.
 */
static int
frame_utf8_clean(struct sbuf *out, const unsigned char *p, size_t len)
{
	static const char repl[] = "\xef\xbf\xbd";
	size_t		 i = 0, n, k;
	unsigned	 cp, min;
	int		 replaced = 0;

	while (i < len) {
		unsigned char c = p[i];

		if (c < 0x80) {
			n = 1;
			goto good;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2; cp = c & 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3; cp = c & 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4; cp = c & 0x07; min = 0x10000;
		} else
			goto bad;
		if (i + n > len)
			goto bad;
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
good:
		if (sbuf_add(out, p + i, n) == -1)
			return -1;
		i += n;
		continue;
bad:
		/* skip the lead byte and any continuation bytes after it */
		i++;
		while (i < len && (p[i] & 0xc0) == 0x80)
			i++;
		if (sbuf_add(out, repl, 3) == -1)
			return -1;
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

/* the payload as a json-c object if it is strict JSON, else NULL */
static struct json_object *
frame_parse_json(const char *p, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*o;
	size_t			 end;

	if (len == 0 || len > INT32_MAX || memchr(p, '\0', len) != NULL)
		return NULL;
	if (!frame_utf8_valid((const unsigned char *)p, len))
		return NULL;
	if ((tok = json_tokener_new()) == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, p, (int)len);
	if (o == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	/* only white space may follow the value */
	for (end = (size_t)json_tokener_get_parse_end(tok); end < len; end++)
		if (strchr(" \t\r\n", p[end]) == NULL) {
			json_object_put(o);
			json_tokener_free(tok);
			return NULL;
		}
	json_tokener_free(tok);
	return o;
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

int
frame_json_envelope(struct sbuf *out, const char *channel, size_t channel_len,
    const char *payload, size_t payload_len)
{
	struct json_object	*env, *ch, *data;
	const char		*s;
	size_t			 slen;
	int			 r = -1;

	if (payload_len > INT32_MAX || channel_len > INT32_MAX)
		return -1;
	if ((env = json_object_new_object()) == NULL)
		return -1;
	if ((ch = frame_json_string(channel, channel_len)) == NULL)
		goto done;
	json_object_object_add(env, "channel", ch);
	if ((data = frame_parse_json(payload, payload_len)) == NULL &&
	    (data = frame_json_string(payload, payload_len)) == NULL)
		goto done;
	json_object_object_add(env, "data", data);
	s = json_object_to_json_string_length(env,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &slen);
	if (s != NULL)
		r = sbuf_add(out, s, slen);
done:
	json_object_put(env);
	return r;
}

struct frame *
frame_message(const char *id, const char *channel, size_t channel_len,
    const char *payload, size_t payload_len, enum frame_format format)
{
	struct sbuf	 b;
	struct frame	*f = NULL;
	size_t		 envstart;

	sbuf_init(&b);
	if (sse_id(&b, id, strlen(id)) == -1)
		goto done;
	if (format == FRAME_FORMAT_RAW) {
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
	f = frame_new(b.data, b.len);
done:
	sbuf_free(&b);
	return f;
}
