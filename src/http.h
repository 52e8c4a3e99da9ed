/*
 * http.h - libmicrohttpd front: routes, the SSE content reader,
 * suspend/resume, /healthz, and the clean drain at shutdown.
 */
#ifndef SSERELAY_HTTP_H
#define SSERELAY_HTTP_H

#include <stddef.h>

struct config;
struct hub;
struct broker;
struct http;

struct http	*http_start(const struct config *, struct hub *,
		    struct broker *, char *err, size_t errlen);
/*
 * What http_start would refuse short of binding: the JWT key, the TLS
 * certificate and key, the trusted proxies.  For -t.  0, or -1 with err.
 */
int		 http_check(const struct config *, char *err, size_t errlen);
/* SIGHUP: apply the live settings http.c keeps copies of (retry:) */
void		 http_reload(struct http *);
/*
 * Stop accepting, end every stream after a final jittered retry:, wait
 * up to timeout_ms for them to finish, then stop the daemon.
 */
void		 http_stop(struct http *, unsigned timeout_ms);

#endif
