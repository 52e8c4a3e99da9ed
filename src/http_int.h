/*
 * http_int.h - what the front end's files share (see http.h).
 *
 * THREADS: struct http is written by main before MHD starts and after it
 * stops; MHD's workers only read it, but for hello, swapped by SIGHUP
 * under hello_lock.
 */
#ifndef SSERELAY_HTTP_INT_H
#define SSERELAY_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <time.h>

struct config;
struct hub;
struct auth;
struct quota;
struct frame;
struct writers;

#define HTTP_ALLOW	"GET, HEAD, OPTIONS"

struct http {
	struct MHD_Daemon	*d;
	struct MHD_Daemon	*metrics_d;	/* --metrics-listen, or NULL */
	const struct config	*cfg;
	struct hub		*hub;
	struct writers		*writers;	/* write the streams */
	struct timespec		 started;	/* CLOCK_MONOTONIC */
	pthread_mutex_t		 hello_lock;
	struct frame		*hello;		/* every stream opens with it */
	struct auth		*auth;		/* NULL: --auth none */
	struct quota		*quota;
	char			*tls_cert;	/* PEM text, kept for MHD */
	char			*tls_key;
};

/* http_reply.c: answers */
/*
 * Queue a whole answer: the body (copied), its type, no-cache, the CORS
 * headers when h is given, Allow on a 405.  Every answer but a stream
 * goes through here.
 */
enum MHD_Result	 http_reply(struct http *, struct MHD_Connection *,
		    unsigned status, const char *type, const void *body,
		    size_t len);
/* a one-line text answer: errors, refusals */
enum MHD_Result	 http_text(struct http *, struct MHD_Connection *,
		    unsigned status, const char *msg);
/* the event-stream headers, and CORS for the request's origin */
void		 http_stream_headers(struct http *, struct MHD_Connection *,
		    struct MHD_Response *);
/*
 * The same as the head of a stream its writer writes: the status line,
 * the date, the headers above, chunked (HTTP/1.1) or to the close
 * (HTTP/1.0), and the blank line.  NULL if out of memory.
 */
struct frame	*http_stream_head(struct http *, struct MHD_Connection *,
		    int chunked);
/* OPTIONS on any path, and the CORS preflight */
enum MHD_Result	 http_options(struct http *, struct MHD_Connection *);

/* http_events.c: /events */
enum MHD_Result	 http_events(struct http *, struct MHD_Connection *,
		    const char *version, int head, void **con_cls);
/* the handler called again for a stream its writer gave back */
enum MHD_Result	 http_events_resumed(struct http *, struct MHD_Connection *,
		    void *con_cls);
/* MHD's completion of a stream (con_cls was set by http_events) */
void		 http_events_completed(struct http *, void *con_cls);
/* the frames that depend on live settings: at start and on SIGHUP */
int		 http_events_frames(struct http *);
/* shutdown: end every stream with a jittered retry: */
void		 http_events_close_all(struct http *);

/* http_admin.c: /healthz, /metrics and /status */
int		 http_admin_path(const char *url);
enum MHD_Result	 http_admin(struct http *, struct MHD_Connection *,
		    const char *url, int get_or_head);

#endif
