/*
 * sse.h - pure Server-Sent Events encoder (WHATWG rules), no I/O.
 *
 * Everything appends to a growable byte buffer.  Payloads are binary:
 * lengths are always passed, never strlen().
 */
#ifndef SSERELAY_SSE_H
#define SSERELAY_SSE_H

#include <stddef.h>

struct sbuf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void	sbuf_init(struct sbuf *);
void	sbuf_free(struct sbuf *);
void	sbuf_reset(struct sbuf *);
/* 0 on success, -1 if out of memory (the buffer is left as it was) */
int	sbuf_add(struct sbuf *, const void *, size_t);
int	sbuf_addstr(struct sbuf *, const char *);
int	sbuf_printf(struct sbuf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * Append one "data: " line per line of the payload: CR, LF and CRLF all
 * split lines.  An empty payload gives one "data: " line.  The bytes are
 * copied as they are (NUL and invalid UTF-8 included).
 */
int	sse_data(struct sbuf *, const char *, size_t);
/* "id: <id>\n"; -1 if the id contains NUL, CR or LF */
int	sse_id(struct sbuf *, const char *, size_t);
/* "event: <name>\n"; -1 if the name contains NUL, CR or LF */
int	sse_event(struct sbuf *, const char *);
/* "retry: <ms>\n" */
int	sse_retry(struct sbuf *, unsigned long);
/* ": <text>\n" for each line of text */
int	sse_comment(struct sbuf *, const char *);
/* the blank line that dispatches an event */
int	sse_end(struct sbuf *);

#endif
