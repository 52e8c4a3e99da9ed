/*
 * http.c - the libmicrohttpd front end.
 *
 * DESIGN
 * MHD runs its own epoll threads (a pool of --threads workers) with
 * suspend/resume.  Each GET /events becomes a struct stream, registered in
 * the hub, with an endless chunked response whose content reader copies
 * queued frames out of the stream's ring.  When the ring is empty the
 * reader suspends the connection in the same call that returns 0 (a 0
 * without a suspend makes MHD spin); the broker resumes it when something
 * is queued.  A stream is freed only in http_completed(), MHD's
 * completion callback, after it has left the hub: nothing else frees one.
 *
 * Shutdown: stop accepting, close every stream through the hub with a
 * final jittered "retry:", wake them, let the readers end their bodies,
 * then stop the daemon (MHD_stop_daemon with suspended connections would
 * leak them, so none is left suspended).
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "config.h"
#include "frame.h"
#include "http.h"
#include "quota.h"
#include "metrics.h"
#include "auth.h"
#include "history.h"
#include "hub.h"
#include "log.h"
#include "query.h"
#include "sse.h"
#include "stream.h"
#include "util.h"

#define HTTP_ALLOW	"GET, HEAD, OPTIONS"
#define HTTP_FD_RESERVE	64	/* descriptors kept for Redis, logs, ... */

extern const char	 http_demo_html[];	/* demo_html.c */
extern const size_t	 http_demo_html_len;

struct http {
	struct MHD_Daemon	*d;
	const struct config	*cfg;
	struct hub		*hub;
	struct broker		*broker;
	pthread_mutex_t		 hello_lock;	/* swapped by http_reload */
	struct frame		*hello;
	struct timespec		 started;	/* CLOCK_MONOTONIC */
	struct auth		*auth;		/* NULL: --auth none */
	struct quota		*quota;
	struct MHD_Daemon	*metrics_d;	/* --metrics-listen, or NULL */
	char			*tls_cert;	/* PEM text, kept for MHD */
	char			*tls_key;
	atomic_ulong		 auth_refusals[AUTH_NRESULTS];
	atomic_ulong		 limit_refusals[3];	/* global, ip, user */
};

static const char *const http_limit_names[3] = { "global", "ip", "user" };

static enum MHD_Result http_admin(struct http *, struct MHD_Connection *,
		    const char *, int);

/* con_cls of a request that is not (yet) a stream */
static int http_request_marker;

static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char	 msg[512];
	size_t	 n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	/* the connection limit is an operator's concern, the rest is noise */
	if (strstr(msg, "limit") != NULL)
		log_warnx("http: %s", msg);
	else
		log_debug("http: %s", msg);
}

/* the request's Origin when --cors-origin lists it exactly, else NULL */
static const char *
http_cors_origin(struct http *h, struct MHD_Connection *conn)
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
http_cors(struct MHD_Response *resp, const char *origin)
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
http_sse_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
}

/*
 * Queue a whole answer: the body (copied), its type, no-cache, the CORS
 * headers when h is given, Allow on a 405.  Every answer but a stream
 * goes through here.
 */
static enum MHD_Result
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
		http_sse_headers(resp);
	else {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    type);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
		    "no-cache");
	}
	if (h != NULL)
		http_cors(resp, http_cors_origin(h, conn));
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		    HTTP_ALLOW);
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* a one-line text answer: errors, refusals */
static enum MHD_Result
http_text(struct http *h, struct MHD_Connection *conn, unsigned status,
    const char *msg)
{
	char	 body[256];
	int	 n;

	n = snprintf(body, sizeof(body), "%s\n", msg);
	return http_reply(h, conn, status, "text/plain; charset=utf-8", body,
	    (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1);
}

static enum MHD_Result
http_options(struct http *h, struct MHD_Connection *conn)
{
	struct MHD_Response	*resp;
	const char		*origin = http_cors_origin(h, conn);
	enum MHD_Result		 r;

	resp = MHD_create_response_from_buffer(0, NULL,
	    MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, HTTP_ALLOW);
	http_cors(resp, origin);
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

static enum MHD_Result
http_demo(struct MHD_Connection *conn)
{
	return http_reply(NULL, conn, MHD_HTTP_OK, "text/html; charset=utf-8",
	    http_demo_html, http_demo_html_len);
}

static enum MHD_Result
http_healthz(struct http *h, struct MHD_Connection *conn)
{
	struct broker_stats	*bs = broker_stats(h->broker);
	struct hub_stats	*hs = hub_stats(h->hub);
	struct json_object	*o, *resets;
	struct history_stats	 hist;
	struct timespec		 now;
	size_t			 i;
	const char		*s;
	size_t			 len;
	enum MHD_Result		 r;
	int			 up = atomic_load(&bs->redis_up);

#define JADD(k, v)	json_object_object_add(o, k, v)
	if ((o = json_object_new_object()) == NULL)
		return MHD_NO;
	JADD("status", json_object_new_string(up ? "ok" : "degraded"));
	JADD("redis", json_object_new_string(up ? "up" : "down"));
	JADD("streams", json_object_new_int64(
	    (int64_t)atomic_load(&hs->streams_open)));
	clock_gettime(CLOCK_MONOTONIC, &now);
	JADD("uptime_s", json_object_new_int64(
	    (int64_t)(now.tv_sec - h->started.tv_sec)));
	JADD("version", json_object_new_string(PACKAGE_VERSION));
	JADD("streams_total", json_object_new_int64(
	    (int64_t)atomic_load(&hs->streams_total)));
	JADD("slow_closes", json_object_new_int64(
	    (int64_t)atomic_load(&hs->slow_closes)));
	JADD("events", json_object_new_int64(
	    (int64_t)atomic_load(&hs->events)));
	JADD("heartbeats", json_object_new_int64(
	    (int64_t)atomic_load(&hs->heartbeats)));
	JADD("redis_messages", json_object_new_int64(
	    (int64_t)atomic_load(&bs->messages)));
	JADD("redis_reconnects", json_object_new_int64(
	    (int64_t)atomic_load(&bs->reconnects)));
	JADD("resumes", json_object_new_int64(
	    (int64_t)atomic_load(&hs->resumes)));
	JADD("replayed", json_object_new_int64(
	    (int64_t)atomic_load(&hs->replayed)));
	if ((resets = json_object_new_object()) != NULL) {
		for (i = 0; i < HUB_RESET_REASONS; i++)
			json_object_object_add(resets, hub_reset_reasons[i],
			    json_object_new_int64(
			    (int64_t)atomic_load(&hs->resets[i])));
		JADD("resets", resets);
	}
	hub_history_stats(h->hub, &hist);
	JADD("history_messages", json_object_new_int64(
	    (int64_t)hist.messages));
	JADD("history_bytes", json_object_new_int64((int64_t)hist.bytes));
	JADD("history_channels", json_object_new_int64(
	    (int64_t)hist.channels));
	JADD("history_evicted", json_object_new_int64((int64_t)
	    (hist.evicted_count + hist.evicted_ttl + hist.evicted_memory)));
#undef JADD
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	r = http_reply(NULL, conn, up ? MHD_HTTP_OK :
	    MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", s, len);
	json_object_put(o);
	return r;
}

static enum MHD_Result
http_query_pair(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct query	*q = cls;

	if (key_size != strlen(key)) {
		q->error = "NUL byte in a parameter name";
		return MHD_NO;
	}
	if (query_add(q, key, value, value ? value_size : 0) == -1)
		return MHD_NO;
	return MHD_YES;
}

static ssize_t
http_stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream	*s = cls;
	ssize_t		 n;

	n = stream_read(s, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n;
}

static ssize_t
http_no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	return MHD_CONTENT_READER_END_OF_STREAM;
}

static void
http_suspend(struct stream *s)
{
	MHD_suspend_connection(s->conn);
}

static void
http_resume(struct stream *s)
{
	MHD_resume_connection(s->conn);
}

/* the token: Authorization: Bearer, then the cookie, then the query */
static const char *
http_token(struct http *h, struct MHD_Connection *conn, const struct query *q)
{
	const char	*v;

	v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (v != NULL && strncasecmp(v, "Bearer ", 7) == 0) {
		for (v += 7; *v == ' '; v++)
			;
		return v;
	}
	if ((v = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND,
	    h->cfg->jwt_cookie)) != NULL)
		return v;
	return q->access_token;
}

/*
 * --auth jwt: 1 with *r the queued refusal when the stream may not be
 * opened, 0 (and *expires) when it may.
 */
static int
http_authorize(struct http *h, struct MHD_Connection *conn,
    const struct query *q, const char *ip, time_t *expires,
    enum MHD_Result *r)
{
	const char	*uploads[QUERY_UPLOADS_MAX], *denied;
	char		 msg[200];
	enum auth_result a;
	size_t		 i;

	if (!q->has_user) {
		*r = http_text(h, conn, MHD_HTTP_BAD_REQUEST, "missing user "
		    "parameter (required with --auth jwt)");
		return 1;
	}
	for (i = 0; i < q->nuploads; i++)
		uploads[i] = q->uploads[i];
	a = auth_check(h->auth, http_token(h, conn, q), q->user, uploads,
	    q->nuploads, time(NULL), expires, &denied);
	if (a == AUTH_OK)
		return 0;
	atomic_fetch_add(&h->auth_refusals[a], 1);
	if (a == AUTH_UPLOAD)
		snprintf(msg, sizeof(msg), "%s: %s", auth_text(a), denied);
	else
		snprintf(msg, sizeof(msg), "%s", auth_text(a));
	/* never the token itself */
	log_info("auth: %u %s (user %s, from %s)", auth_status(a), msg,
	    q->user, ip);
	*r = http_text(h, conn, auth_status(a), msg);
	return 1;
}

/*
 * Over a connection limit: a 200 that tells EventSource to come back
 * later (any other status would stop it for good), then the end.
 */
static enum MHD_Result
http_overload(struct http *h, struct MHD_Connection *conn, const char *hit)
{
	struct sbuf		 b;
	enum MHD_Result		 r = MHD_NO;
	unsigned		 retry = h->cfg->retry_ms, i;

	for (i = 0; i < 3; i++)
		if (strcmp(hit, http_limit_names[i]) == 0)
			atomic_fetch_add(&h->limit_refusals[i], 1);
	log_debug("http: over the %s stream limit", hit);
	/* between retry and 4 x retry: refused clients come back spread */
	retry += retry ? util_random() % (3 * retry + 1) : 0;
	sbuf_init(&b);
	if (sbuf_printf(&b, "retry: %u\nevent: overload\ndata: "
	    "{\"limit\":\"%s\"}\n\n", retry, hit) == -1)
		goto done;
	r = http_reply(h, conn, MHD_HTTP_OK, "text/event-stream", b.data,
	    b.len);
done:
	sbuf_free(&b);
	return r;
}

static enum MHD_Result
http_events(struct http *h, struct MHD_Connection *conn, int head,
    void **con_cls)
{
	const struct config	*cfg = h->cfg;
	struct query		 q;
	struct stream		*s;
	struct MHD_Response	*resp;
	struct hub_resume	 res;
	struct quota_hold	 hold;
	time_t			 expires = 0;
	char			 ip[INET6_ADDRSTRLEN];
	const char		*last_id, *hit;
	const char		*chan[QUERY_UPLOADS_MAX + 1];
	size_t			 lens[QUERY_UPLOADS_MAX + 1], n = 0, i;
	char			 names[QUERY_UPLOADS_MAX + 1][QUERY_ID_MAX + 80];
	enum MHD_Result		 r;

	query_init(&q, cfg->max_uploads);
	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND,
	    http_query_pair, &q);
	if (query_finish(&q) == -1) {
		log_debug("http: 400 %s", q.error);
		return http_text(h, conn, MHD_HTTP_BAD_REQUEST, q.error);
	}

	/* the client behind any trusted proxy: for the log and the limits */
	quota_client_ip(h->quota, MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS)->client_addr,
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "X-Forwarded-For"), ip, sizeof(ip));
	if (h->auth != NULL &&
	    http_authorize(h, conn, &q, ip, &expires, &r))
		return r;
	/* HEAD answers what GET would, short of the body and a slot */
	if (head) {
		/*
		 * The headers a GET gets and no body.  MHD 0.9.75 writes the
		 * last-chunk of a chunked response even for HEAD (a client
		 * reusing the connection would read it as its next answer),
		 * and an empty buffer gets "Content-Length: 0", which RFC 9110
		 * forbids when the GET body is longer.  So: unknown length,
		 * not chunked, and the connection closes after the headers.
		 */
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
		    1024, http_no_body, NULL, NULL);
		if (resp == NULL)
			return MHD_NO;
		MHD_set_response_options(resp, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT,
		    MHD_RO_END);
		http_sse_headers(resp);
		http_cors(resp, http_cors_origin(h, conn));
		r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
		MHD_destroy_response(resp);
		return r;
	}
	if ((hit = quota_acquire(h->quota, cfg->max_streams,
	    cfg->max_streams_per_ip, cfg->max_streams_per_user, ip,
	    q.has_user ? q.user : NULL, &hold)) != NULL)
		return http_overload(h, conn, hit);

	if (q.has_user) {
		lens[n] = (size_t)snprintf(names[n], sizeof(names[n]), "%s%s",
		    cfg->user_prefix, q.user);
		chan[n] = names[n];
		n++;
	}
	for (i = 0; i < q.nuploads; i++, n++) {
		lens[n] = (size_t)snprintf(names[n], sizeof(names[n]), "%s%s",
		    cfg->upload_prefix, q.uploads[i]);
		chan[n] = names[n];
	}

	if ((s = stream_new(cfg->ring_size, n)) == NULL) {
		quota_release(h->quota, &hold);
		log_warnx("http: out of memory for a new stream");
		return http_text(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "out of memory");
	}
	/* the stream holds the limits' counts from now on, and gives them
	 * back where it is freed */
	s->hold = hold;
	/* accepted until exp + leeway: it ends when acceptance would */
	s->expires = expires != 0 ? expires + (time_t)cfg->jwt_leeway_s : 0;
	s->conn = conn;
	s->suspend = http_suspend;
	s->resume = http_resume;
	/* nobody else sees s yet: no stream lock for the opening frame */
	pthread_mutex_lock(&h->hello_lock);
	if (ring_push(&s->ring, h->hello) == -1)
		fatalx("http_events: ring too small for the opening frame");
	pthread_mutex_unlock(&h->hello_lock);
	/*
	 * MHD allocates block_size bytes inside every response, and a
	 * chunked reader is offered the connection's whole write buffer
	 * anyway: a small block saves 4 KiB of RSS per idle stream.
	 */
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64,
	    http_stream_reader, s, NULL);
	if (resp == NULL) {
		quota_release(h->quota, &s->hold);
		stream_free(s);
		return MHD_NO;
	}
	/* browsers resume with the header; first connections use the query */
	last_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Last-Event-ID");
	if (last_id == NULL && q.has_last_event_id)
		last_id = q.last_event_id;
	if (hub_add(h->hub, s, chan, lens, n, last_id, &res) == -1) {
		MHD_destroy_response(resp);
		quota_release(h->quota, &s->hold);
		stream_free(s);
		return http_text(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "shutting down");
	}
	if (res.reset != NULL)
		log_debug("http: resume from '%.40s': reset (%s)", last_id,
		    res.reset);
	else if (last_id != NULL)
		log_debug("http: resume from '%.40s': %zu events replayed",
		    last_id, res.replayed);
	/* from here on only http_completed() frees s */
	*con_cls = s;
	http_sse_headers(resp);
	http_cors(resp, http_cors_origin(h, conn));
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
http_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http	*h = cls;
	int		 get, head;

	if (*con_cls == NULL) {
		/* headers only; answer on the second call (see DESIGN.md) */
		*con_cls = &http_request_marker;
		return MHD_YES;
	}
	if (*con_cls != &http_request_marker)
		return MHD_NO;		/* a stream called back again */
	if (*upload_data_size != 0) {
		/* a body we do not want: skip it, answer at its end */
		*upload_data_size = 0;
		return MHD_YES;
	}
	get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
	head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
		return http_options(h, conn);
	if (strcmp(url, "/events") == 0) {
		if (!get && !head)
			return http_text(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "method not allowed: use GET");
		return http_events(h, conn, head, con_cls);
	}
	if (h->cfg->demo && (strcmp(url, "/") == 0 ||
	    strcmp(url, "/demo.html") == 0)) {
		if (!get && !head)
			return http_text(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "method not allowed: use GET");
		return http_demo(conn);
	}
	/* with --metrics-listen these two live on the other listener only */
	if (h->cfg->metrics_listen == NULL &&
	    (strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0))
		return http_admin(h, conn, url, get || head);
	return http_text(h, conn, MHD_HTTP_NOT_FOUND, h->cfg->demo ?
	    "not found: streams are at /events?user=ID&upload=ID, the demo at /" :
	    "not found: streams are at /events?user=ID&upload=ID");
}

static enum MHD_Result
http_metrics(struct http *h, struct MHD_Connection *conn)
{
	struct hub_stats	*hs = hub_stats(h->hub);
	struct broker_stats	*bs = broker_stats(h->broker);
	struct metrics_labeled	 resets[HUB_RESET_REASONS];
	struct metrics_labeled	 auth[AUTH_NRESULTS - 1];
	struct metrics_labeled	 limits[3];
	struct metrics_snapshot	 m;
	struct history_stats	 hist;
	struct sbuf		 b;
	enum MHD_Result		 r = MHD_NO;
	size_t			 i;

	memset(&m, 0, sizeof(m));
	m.streams_open = atomic_load(&hs->streams_open);
	m.streams_opened = atomic_load(&hs->streams_total);
	m.heartbeats = atomic_load(&hs->heartbeats);
	m.slow_closes = atomic_load(&hs->slow_closes);
	m.resumes = atomic_load(&hs->resumes);
	m.resume_events = atomic_load(&hs->replayed);
	m.redis_up = (uint64_t)atomic_load(&bs->redis_up);
	m.redis_reconnects = atomic_load(&bs->reconnects);
	m.redis_messages = atomic_load(&bs->messages);
	hub_history_stats(h->hub, &hist);
	m.history_messages = hist.messages;
	m.history_bytes = hist.bytes;
	for (i = 0; i < HUB_RESET_REASONS; i++) {
		resets[i].name = hub_reset_reasons[i];
		resets[i].value = atomic_load(&hs->resets[i]);
	}
	m.resets = resets;
	m.nresets = HUB_RESET_REASONS;
	for (i = 1; i < AUTH_NRESULTS; i++) {
		auth[i - 1].name = auth_name((enum auth_result)i);
		auth[i - 1].value = atomic_load(&h->auth_refusals[i]);
	}
	m.auth = auth;
	m.nauth = AUTH_NRESULTS - 1;
	for (i = 0; i < 3; i++) {
		limits[i].name = http_limit_names[i];
		limits[i].value = atomic_load(&h->limit_refusals[i]);
	}
	m.limits = limits;
	m.nlimits = 3;
	sbuf_init(&b);
	if (metrics_render(&b, &m) == -1)
		goto done;
	r = http_reply(NULL, conn, MHD_HTTP_OK,
	    "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
done:
	sbuf_free(&b);
	return r;
}

/* /healthz and /metrics, on the main listener or on --metrics-listen */
static enum MHD_Result
http_admin(struct http *h, struct MHD_Connection *conn, const char *url,
    int get_or_head)
{
	if (!get_or_head)
		return http_text(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed: use GET");
	if (strcmp(url, "/metrics") == 0)
		return http_metrics(h, conn);
	return http_healthz(h, conn);
}

/* --metrics-listen: /healthz and /metrics, nothing else */
static enum MHD_Result
http_admin_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http	*h = cls;

	if (*con_cls == NULL) {
		*con_cls = &http_request_marker;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0)
		return http_admin(h, conn, url,
		    strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		    strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
	return http_text(NULL, conn, MHD_HTTP_NOT_FOUND,
	    "not found: this listener serves /metrics and /healthz");
}

static void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http	*h = cls;
	struct stream	*s;

	if (*con_cls == NULL || *con_cls == &http_request_marker) {
		*con_cls = NULL;
		return;
	}
	s = *con_cls;
	*con_cls = NULL;
	hub_remove(h->hub, s);
	quota_release(h->quota, &s->hold);
	stream_free(s);
}

static unsigned
http_connection_limit(const struct config *cfg)
{
	struct rlimit	 rl;
	unsigned	 limit;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 1000;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
			    (unsigned long long)rl.rlim_max);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	limit = rl.rlim_cur > HTTP_FD_RESERVE * 2 ?
	    (unsigned)(rl.rlim_cur - HTTP_FD_RESERVE) :
	    (unsigned)rl.rlim_cur / 2;
	if (rl.rlim_cur == RLIM_INFINITY)
		limit = 1000000;
	if (cfg->max_connections != 0) {
		if (cfg->max_connections > limit)
			log_warnx("--max-connections %u is above what the "
			    "open-file limit allows; using %u",
			    cfg->max_connections, limit);
		else
			limit = cfg->max_connections;
	}
	return limit;
}

static int
http_address(const char *opt, const char *host0, int portn,
    struct sockaddr_storage *ss, int *ipv6, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res;
	const char	*host = host0;
	char		 port[8];
	int		 e;

	if (strcmp(host, "*") == 0)
		host = "0.0.0.0";
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", portn);
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s: %s", opt, host0,
		    gai_strerror(e));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*ipv6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return 0;
}

/* a PEM file's text, for MHD; NULL with err set */
static char *
http_read_pem(const char *opt, const char *path, char *err, size_t errlen)
{
	FILE	*fp;
	char	*buf;
	size_t	 n;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s: %s", opt, path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(1024 * 1024 + 1)) == NULL) {
		fclose(fp);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, 1024 * 1024, fp);
	fclose(fp);
	buf[n] = '\0';
	if (strstr(buf, "-----BEGIN ") == NULL) {
		snprintf(err, errlen, "%s: %s: no PEM data in it", opt, path);
		explicit_bzero(buf, n);
		free(buf);
		return NULL;
	}
	return buf;
}

static void
http_free_secret(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* what every stream opens with: the retry: and a comment, flushed at once */
static struct frame *
http_hello(const struct config *cfg)
{
	return frame_retry(cfg->retry_ms, "sserelay");
}

/* a stream closed as too slow tells its client when to come back */
static int
http_slow_final(const struct config *cfg, struct hub *hub)
{
	struct frame	*f;

	if ((f = frame_retry(cfg->retry_ms, NULL)) == NULL)
		return -1;
	hub_set_slow_final(hub, f);
	frame_unref(f);
	return 0;
}

int
http_check(const struct config *cfg, char *err, size_t errlen)
{
	struct auth	*a = NULL;
	struct quota	*q;
	char		*pem;

	if (cfg->auth_jwt && (a = auth_new(cfg, err, errlen)) == NULL)
		return -1;
	auth_free(a);
	if ((q = quota_new(cfg->trusted_proxies, err, errlen)) == NULL)
		return -1;
	quota_free(q);
	if (cfg->tls_cert != NULL) {
		if ((pem = http_read_pem("--tls-cert", cfg->tls_cert, err,
		    errlen)) == NULL)
			return -1;
		http_free_secret(pem);
		if ((pem = http_read_pem("--tls-key", cfg->tls_key, err,
		    errlen)) == NULL)
			return -1;
		http_free_secret(pem);
	}
	return 0;
}

struct http *
http_start(const struct config *cfg, struct hub *hub, struct broker *broker,
    char *err, size_t errlen)
{
	struct http		*h;
	struct sockaddr_storage	 ss, mss;
	unsigned		 flags, limit;
	int			 ipv6, mipv6 = 0;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cfg = cfg;
	h->hub = hub;
	h->broker = broker;
	pthread_mutex_init(&h->hello_lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &h->started);
	if ((h->hello = http_hello(cfg)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	if (http_address("--listen", cfg->listen_host, cfg->listen_port, &ss,
	    &ipv6, err, errlen) == -1)
		goto bad;
	if (cfg->metrics_listen != NULL && http_address("--metrics-listen",
	    cfg->metrics_host, cfg->metrics_port, &mss, &mipv6, err,
	    errlen) == -1)
		goto bad;
	if (http_slow_final(cfg, hub) == -1) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	if (cfg->auth_jwt && (h->auth = auth_new(cfg, err, errlen)) == NULL)
		goto bad;
	if ((h->quota = quota_new(cfg->trusted_proxies, err, errlen)) ==
	    NULL)
		goto bad;
	if (cfg->tls_cert != NULL &&
	    ((h->tls_cert = http_read_pem("--tls-cert", cfg->tls_cert, err,
	    errlen)) == NULL ||
	    (h->tls_key = http_read_pem("--tls-key", cfg->tls_key, err,
	    errlen)) == NULL))
		goto bad;
	limit = http_connection_limit(cfg);
	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	if (h->tls_cert != NULL)
		flags |= MHD_USE_TLS;
	h->d = MHD_start_daemon(flags, (uint16_t)cfg->listen_port, NULL, NULL,
	    http_handler, h,
	    MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
	    MHD_OPTION_CONNECTION_LIMIT, limit,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->conn_memory,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->client_timeout_s,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
	    h->tls_cert != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
	    h->tls_cert,
	    MHD_OPTION_HTTPS_MEM_KEY, h->tls_key,
	    cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
	    cfg->threads, MHD_OPTION_END);
	if (h->d == NULL) {
		if (h->tls_cert != NULL)
			snprintf(err, errlen, "cannot serve HTTPS on %s:%d: "
			    "--tls-cert/--tls-key not a matching certificate "
			    "and key, or the address is in use",
			    cfg->listen_host, cfg->listen_port);
		else
			snprintf(err, errlen, "cannot listen on %s:%d (address "
			    "in use, or not an address of this host?)",
			    cfg->listen_host, cfg->listen_port);
		goto bad;
	}
	if (cfg->metrics_listen != NULL) {
		h->metrics_d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
		    MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
		    (mipv6 ? MHD_USE_IPv6 : 0), (uint16_t)cfg->metrics_port,
		    NULL, NULL, http_admin_handler, h,
		    MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&mss,
		    MHD_OPTION_CONNECTION_LIMIT, 64u,
		    MHD_OPTION_CONNECTION_TIMEOUT, 10u,
		    MHD_OPTION_END);
		if (h->metrics_d == NULL) {
			snprintf(err, errlen, "--metrics-listen: cannot listen "
			    "on %s", cfg->metrics_listen);
			MHD_stop_daemon(h->d);
			goto bad;
		}
		log_info("metrics and health on %s", cfg->metrics_listen);
	}
	log_info("listening on %s%s%s%s:%d, %u threads, up to %u connections%s",
	    h->tls_cert != NULL ? "https://" : "", ipv6 ? "[" : "",
	    cfg->listen_host, ipv6 ? "]" : "", cfg->listen_port, cfg->threads,
	    limit, h->auth != NULL ? ", JWT required" : "");
	return h;
bad:
	frame_unref(h->hello);
	auth_free(h->auth);
	quota_free(h->quota);
	http_free_secret(h->tls_cert);
	http_free_secret(h->tls_key);
	pthread_mutex_destroy(&h->hello_lock);
	free(h);
	return NULL;
}

void
http_reload(struct http *h)
{
	struct frame	*f;

	/* the retry: of new streams and of streams closed as too slow */
	if ((f = http_hello(h->cfg)) == NULL ||
	    http_slow_final(h->cfg, h->hub) == -1) {
		frame_unref(f);
		log_warnx("reload: out of memory; retry: unchanged");
		return;
	}
	pthread_mutex_lock(&h->hello_lock);
	frame_unref(h->hello);
	h->hello = f;
	pthread_mutex_unlock(&h->hello_lock);
}

struct http_final {
	unsigned	 retry_ms;
};

static struct frame *
http_final_frame(void *arg)
{
	struct http_final *hf = arg;

	/* spread the clients' return over one more retry interval */
	return frame_retry(hf->retry_ms +
	    (hf->retry_ms ? util_random() % (hf->retry_ms + 1) : 0), NULL);
}

void
http_stop(struct http *h, unsigned timeout_ms)
{
	struct http_final	 hf;
	struct hub_stats	*hs;
	MHD_socket		 fd;
	unsigned		 waited = 0;

	if (h == NULL)
		return;
	hs = hub_stats(h->hub);
	if ((fd = MHD_quiesce_daemon(h->d)) != MHD_INVALID_SOCKET)
		close(fd);
	hf.retry_ms = h->cfg->retry_ms;
	hub_lock(h->hub);
	hub_close_all_locked(h->hub, http_final_frame, &hf);
	hub_wake_locked(h->hub);
	hub_unlock(h->hub);
	while (atomic_load(&hs->streams_open) > 0 && waited < timeout_ms) {
		usleep(10 * 1000);
		waited += 10;
	}
	if (atomic_load(&hs->streams_open) > 0)
		log_info("shutdown: %lu streams did not finish in %u ms; "
		    "closing them", atomic_load(&hs->streams_open), timeout_ms);
	MHD_stop_daemon(h->d);
	if (h->metrics_d != NULL)
		MHD_stop_daemon(h->metrics_d);
	frame_unref(h->hello);
	auth_free(h->auth);
	quota_free(h->quota);
	http_free_secret(h->tls_cert);
	http_free_secret(h->tls_key);
	pthread_mutex_destroy(&h->hello_lock);
	free(h);
}
