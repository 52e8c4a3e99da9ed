/*
 * http.h - the libmicrohttpd front end: /events streams, /healthz and
 * /metrics, the demo page, and the clean drain at shutdown.
 *
 * Four files, one concern each (OpenBSD httpd's server*.c split):
 *   http.c        the MHD daemons: setup, TLS, dispatch, completion,
 *                 shutdown
 *   http_events.c /events: admission (query, auth, limits), the stream's
 *                 head and opening frame, hub_add, the hand-over to its
 *                 writer (writer.c)
 *   http_admin.c  /healthz and /metrics, rendered from one stats snapshot
 *   http_reply.c  every other answer: replies, refusals, OPTIONS, CORS
 * http_int.h is what they share.
 */
#ifndef SSERELAY_HTTP_H
#define SSERELAY_HTTP_H

#include <stddef.h>

struct config;
struct hub;
struct http;
struct writers;

/* the streams are written by ws, which must outlive http_stop */
struct http	*http_start(const struct config *, struct hub *,
		    struct writers *ws, char *err, size_t errlen);
/*
 * What http_start would refuse short of binding: the JWT key, the TLS
 * certificate and key, the trusted proxies.  For -t.  0, or -1 with err.
 */
int		 http_check(const struct config *, char *err, size_t errlen);
/* SIGHUP: apply the live settings the front end keeps copies of (retry:) */
void		 http_reload(struct http *);
/*
 * Stop accepting, end every stream after a final jittered retry:, wait
 * up to timeout_ms for them to finish, let go of those that did not
 * (writers_abort), then stop the daemon.
 */
void		 http_stop(struct http *, unsigned timeout_ms);

#endif
