/*
 * sse.c - Server-Sent Events encoding (WHATWG), pure, no I/O.
 *
 * Payload bytes are not necessarily a C string: lengths everywhere.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

void
sbuf_init(struct sbuf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void
sbuf_free(struct sbuf *b)
{
	free(b->data);
	sbuf_init(b);
}

void
sbuf_reset(struct sbuf *b)
{
	b->len = 0;
}

static int
sbuf_reserve(struct sbuf *b, size_t more)
{
	size_t	 cap;
	char	*p;

	if (more > (size_t)-1 / 2 - b->len)
		return -1;
	if (b->len + more <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	if ((p = realloc(b->data, cap)) == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
sbuf_add(struct sbuf *b, const void *p, size_t len)
{
	if (sbuf_reserve(b, len) == -1)
		return -1;
	if (len)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	return 0;
}

int
sbuf_addstr(struct sbuf *b, const char *s)
{
	return sbuf_add(b, s, strlen(s));
}

int
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sbuf_reserve(b, (size_t)n + 1) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int
sse_data(struct sbuf *b, const char *p, size_t len)
{
	size_t	 start = b->len, i = 0, line;

	do {
		line = i;
		while (i < len && p[i] != '\r' && p[i] != '\n')
			i++;
		if (sbuf_add(b, "data: ", 6) == -1 ||
		    sbuf_add(b, p + line, i - line) == -1 ||
		    sbuf_add(b, "\n", 1) == -1) {
			b->len = start;
			return -1;
		}
		if (i < len) {
			/* CRLF is one line break, CR or LF alone is one too */
			if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
				i++;
			i++;
			if (i == len) {
				/* a trailing break ends a last, empty line */
				if (sbuf_add(b, "data: \n", 7) == -1) {
					b->len = start;
					return -1;
				}
			}
		}
	} while (i < len);
	return 0;
}

static int
sse_field_safe(const char *p, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (p[i] == '\0' || p[i] == '\r' || p[i] == '\n')
			return 0;
	return 1;
}

int
sse_id(struct sbuf *b, const char *id, size_t len)
{
	size_t	 start = b->len;

	if (!sse_field_safe(id, len))
		return -1;
	if (sbuf_add(b, "id: ", 4) == -1 || sbuf_add(b, id, len) == -1 ||
	    sbuf_add(b, "\n", 1) == -1) {
		b->len = start;
		return -1;
	}
	return 0;
}

int
sse_event(struct sbuf *b, const char *name)
{
	size_t	 start = b->len;

	if (!sse_field_safe(name, strlen(name)))
		return -1;
	if (sbuf_addstr(b, "event: ") == -1 || sbuf_addstr(b, name) == -1 ||
	    sbuf_add(b, "\n", 1) == -1) {
		b->len = start;
		return -1;
	}
	return 0;
}

int
sse_retry(struct sbuf *b, unsigned long ms)
{
	return sbuf_printf(b, "retry: %lu\n", ms);
}

int
sse_comment(struct sbuf *b, const char *text)
{
	size_t	 start = b->len;
	const char *p = text, *e;

	do {
		e = p + strcspn(p, "\r\n");
		if (sbuf_add(b, ": ", 2) == -1 ||
		    sbuf_add(b, p, (size_t)(e - p)) == -1 ||
		    sbuf_add(b, "\n", 1) == -1) {
			b->len = start;
			return -1;
		}
		if (*e == '\r' && e[1] == '\n')
			e++;
		p = *e ? e + 1 : e;
	} while (*p);
	return 0;
}

int
sse_end(struct sbuf *b)
{
	return sbuf_add(b, "\n", 1);
}
