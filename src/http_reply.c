/*
 * http_reply.c - every answer the front end gives but a stream's body:
 * whole replies, one-line refusals, OPTIONS and its CORS preflight, and
 * the headers of an event stream.  Used by http.c, http_events.c and
 * http_admin.c.
 *
 * CORS: --cors-origin lists exact origins; a request from one of them gets
 * it echoed with Access-Control-Allow-Credentials (never "*", which a
 * credentialed EventSource refuses), and every answer says Vary: Origin.
 */
#include "autoconf.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "frame.h"
#include "http_int.h"
#include "sse.h"

/* what every event stream's answer says of itself, in this order */
static const char *const http_reply_sse_headers[][2] = {
	{ MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream" },
	{ MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache" },
	{ "X-Accel-Buffering", "no" },
};

/* the request's Origin when --cors-origin lists it exactly, else NULL */
static const char *
http_reply_origin(struct http *h, struct MHD_Connection *conn)
{
	const char	*origin, *p, *e;
	size_t		 len;

	if (h->cfg->cors_origins == NULL || (origin =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin")) ==
	    NULL)
		return NULL;
	len = strlen(origin);
	for (p = h->cfg->cors_origins; *p != '\0'; p = *e ? e + 1 : e) {
		while (*p == ' ')
			p++;
		e = p + strcspn(p, ",");
		if ((size_t)(e - p) == len && strncmp(p, origin, len) == 0)
			return origin;
	}
	return NULL;
}

static void
http_reply_cors(struct MHD_Response *resp, const char *origin)
{
	/* caches must not hand one origin's answer to another */
	MHD_add_response_header(resp, "Vary", "Origin");
	if (origin == NULL)
		return;
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
	MHD_add_response_header(resp, "Access-Control-Allow-Credentials",
	    "true");
}

static void
http_reply_sse(struct MHD_Response *resp)
{
	size_t	 i;

	for (i = 0; i < sizeof(http_reply_sse_headers) /
	    sizeof(http_reply_sse_headers[0]); i++)
		MHD_add_response_header(resp, http_reply_sse_headers[i][0],
		    http_reply_sse_headers[i][1]);
}

void
http_stream_headers(struct http *h, struct MHD_Connection *conn,
    struct MHD_Response *resp)
{
	http_reply_sse(resp);
	http_reply_cors(resp, http_reply_origin(h, conn));
}

struct frame *
http_stream_head(struct http *h, struct MHD_Connection *conn, int chunked)
{
	const char	*origin = http_reply_origin(h, conn);
	struct sbuf	 b;
	struct frame	*f = NULL;
	char		 date[64];
	struct tm	 tm;
	time_t		 now = time(NULL);
	size_t		 i;
	int		 bad;

	/* as libmicrohttpd writes the head of any other answer */
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	sbuf_init(&b);
	bad = sbuf_printf(&b, "HTTP/1.1 200 OK\r\nDate: %s\r\n%s", date,
	    chunked ? "" : "Connection: close\r\n");
	for (i = 0; i < sizeof(http_reply_sse_headers) /
	    sizeof(http_reply_sse_headers[0]); i++)
		bad |= sbuf_printf(&b, "%s: %s\r\n",
		    http_reply_sse_headers[i][0], http_reply_sse_headers[i][1]);
	bad |= sbuf_addstr(&b, "Vary: Origin\r\n");
	if (origin != NULL)
		bad |= sbuf_printf(&b, "Access-Control-Allow-Origin: %s\r\n"
		    "Access-Control-Allow-Credentials: true\r\n", origin);
	bad |= sbuf_printf(&b, "%s\r\n", chunked ?
	    "Transfer-Encoding: chunked\r\n" : "");
	if (!bad)
		f = frame_new(b.data, b.len);
	sbuf_free(&b);
	return f;
}

enum MHD_Result
http_reply(struct http *h, struct MHD_Connection *conn, unsigned status,
    const char *type, const void *body, size_t len)
{
	struct MHD_Response	*resp;
	enum MHD_Result		 r;

	resp = MHD_create_response_from_buffer(len, (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (strcmp(type, "text/event-stream") == 0)
		http_reply_sse(resp);
	else {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    type);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
		    "no-cache");
	}
	if (h != NULL)
		http_reply_cors(resp, http_reply_origin(h, conn));
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		    HTTP_ALLOW);
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

enum MHD_Result
http_text(struct http *h, struct MHD_Connection *conn, unsigned status,
    const char *msg)
{
	char	 body[256];
	int	 n;

	n = snprintf(body, sizeof(body), "%s\n", msg);
	return http_reply(h, conn, status, "text/plain; charset=utf-8", body,
	    (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
}

enum MHD_Result
http_options(struct http *h, struct MHD_Connection *conn)
{
	struct MHD_Response	*resp;
	const char		*origin = http_reply_origin(h, conn);
	enum MHD_Result		 r;

	resp = MHD_create_response_from_buffer(0, NULL,
	    MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, HTTP_ALLOW);
	http_reply_cors(resp, origin);
	if (origin != NULL && MHD_lookup_connection_value(conn,
	    MHD_HEADER_KIND, "Access-Control-Request-Method") != NULL) {
		/* a preflight: what a cross-origin EventSource may send */
		MHD_add_response_header(resp, "Access-Control-Allow-Methods",
		    HTTP_ALLOW);
		MHD_add_response_header(resp, "Access-Control-Allow-Headers",
		    "Authorization, Last-Event-ID, Cache-Control");
		MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
	}
	r = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, resp);
	MHD_destroy_response(resp);
	return r;
}
