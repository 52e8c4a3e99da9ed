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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "config.h"
#include "frame.h"
#include "http.h"
#include "history.h"
#include "hub.h"
#include "log.h"
#include "query.h"
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
};

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

static enum MHD_Result
http_text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	struct MHD_Response	*resp;
	char			 body[256];
	enum MHD_Result		 r;
	int			 n;

	n = snprintf(body, sizeof(body), "%s\n", msg);
	resp = MHD_create_response_from_buffer((size_t)n, body,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		    HTTP_ALLOW);
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
http_options(struct MHD_Connection *conn)
{
	struct MHD_Response	*resp;
	enum MHD_Result		 r;

	resp = MHD_create_response_from_buffer(0, NULL,
	    MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, HTTP_ALLOW);
	r = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
http_demo(struct MHD_Connection *conn)
{
	struct MHD_Response	*resp;
	enum MHD_Result		 r;

	resp = MHD_create_response_from_buffer(http_demo_html_len,
	    (void *)http_demo_html, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/html; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache");
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
http_healthz(struct http *h, struct MHD_Connection *conn)
{
	struct broker_stats	*bs = broker_stats(h->broker);
	struct hub_stats	*hs = hub_stats(h->hub);
	struct json_object	*o, *resets;
	struct history_stats	 hist;
	struct MHD_Response	*resp;
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
	resp = MHD_create_response_from_buffer(len, (void *)s,
	    MHD_RESPMEM_MUST_COPY);
	json_object_put(o);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache");
	r = MHD_queue_response(conn, up ? MHD_HTTP_OK :
	    MHD_HTTP_SERVICE_UNAVAILABLE, resp);
	MHD_destroy_response(resp);
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

static void
http_sse_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
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
	const char		*last_id;
	const char		*chan[QUERY_UPLOADS_MAX + 1];
	size_t			 lens[QUERY_UPLOADS_MAX + 1], n = 0, i;
	char			 names[QUERY_UPLOADS_MAX + 1][QUERY_ID_MAX + 80];
	enum MHD_Result		 r;

	query_init(&q, cfg->max_uploads);
	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND,
	    http_query_pair, &q);
	if (query_finish(&q) == -1) {
		log_debug("http: 400 %s", q.error);
		return http_text(conn, MHD_HTTP_BAD_REQUEST, q.error);
	}
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
		r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
		MHD_destroy_response(resp);
		return r;
	}

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
		log_warnx("http: out of memory for a new stream");
		return http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "out of memory");
	}
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
		stream_free(s);
		return http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
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
		return http_options(conn);
	if (strcmp(url, "/events") == 0) {
		if (!get && !head)
			return http_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "method not allowed: use GET");
		return http_events(h, conn, head, con_cls);
	}
	if (h->cfg->demo && (strcmp(url, "/") == 0 ||
	    strcmp(url, "/demo.html") == 0)) {
		if (!get && !head)
			return http_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "method not allowed: use GET");
		return http_demo(conn);
	}
	if (strcmp(url, "/healthz") == 0) {
		if (!get && !head)
			return http_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "method not allowed: use GET");
		return http_healthz(h, conn);
	}
	return http_text(conn, MHD_HTTP_NOT_FOUND, h->cfg->demo ?
	    "not found: streams are at /events?user=ID&upload=ID, the demo at /" :
	    "not found: streams are at /events?user=ID&upload=ID");
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
http_address(const struct config *cfg, struct sockaddr_storage *ss,
    int *ipv6, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res;
	const char	*host = cfg->listen_host;
	char		 port[8];
	int		 e;

	if (strcmp(host, "*") == 0)
		host = "0.0.0.0";
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", cfg->listen_port);
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "--listen: %s: %s", cfg->listen_host,
		    gai_strerror(e));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*ipv6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return 0;
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

struct http *
http_start(const struct config *cfg, struct hub *hub, struct broker *broker,
    char *err, size_t errlen)
{
	struct http		*h;
	struct sockaddr_storage	 ss;
	unsigned		 flags, limit;
	int			 ipv6;

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
		free(h);
		return NULL;
	}
	if (http_address(cfg, &ss, &ipv6, err, errlen) == -1)
		goto bad;
	if (http_slow_final(cfg, hub) == -1) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	limit = http_connection_limit(cfg);
	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(flags, (uint16_t)cfg->listen_port, NULL, NULL,
	    http_handler, h,
	    MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, h,
	    MHD_OPTION_CONNECTION_LIMIT, limit,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->conn_memory,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->client_timeout_s,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
	    cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
	    cfg->threads, MHD_OPTION_END);
	if (h->d == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%d (address in use, "
		    "or not an address of this host?)", cfg->listen_host,
		    cfg->listen_port);
		goto bad;
	}
	log_info("listening on %s%s%s:%d, %u threads, up to %u connections",
	    ipv6 ? "[" : "", cfg->listen_host, ipv6 ? "]" : "",
	    cfg->listen_port, cfg->threads, limit);
	return h;
bad:
	frame_unref(h->hello);
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
	frame_unref(h->hello);
	pthread_mutex_destroy(&h->hello_lock);
	free(h);
}
