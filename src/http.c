/*
 * http.c - the libmicrohttpd daemons: setup, TLS, dispatch by path,
 * completion, shutdown.  /events is in http_events.c, /healthz,
 * /metrics and /status in http_admin.c, every other answer in http_reply.c (see
 * http.h).
 *
 * DESIGN
 * MHD runs its own epoll threads (a pool of workers) with suspend/resume:
 * it accepts, does TLS handshakes, parses requests and gives every answer
 * but a stream's body, which the writer threads write (writer.c, see
 * http_events.c).  The handler answers on its second call (DESIGN.md:
 * queuing on the first adds "Connection: close"), and routes by path.
 *
 * MHD's own workers: a stream's connection stays in MHD's list of
 * suspended connections while its writer has it, and MHD walks a
 * worker's whole list whenever one of them is resumed, which is what a
 * stream's end does.  One worker per HTTP_STREAMS_PER_THREAD connections
 * of the limit keeps that walk short (a few hundred ns a stream's end per
 * connection of its worker); they sleep otherwise.  Each holds an epoll
 * and an eventfd, which the connection limit leaves out: with 20,000 open
 * files the daemon still takes 19,900 connections.
 *
 * Shutdown: stop accepting, close every stream through the hub with a
 * final jittered "retry:", let the writers write them out, let go of
 * those that did not finish in time, then stop the daemon
 * (MHD_stop_daemon with suspended connections would leak them, so none
 * is left suspended).
 *
 * THREADS: http_start, http_reload and http_stop run in main; the rest in
 * MHD's workers (see http_int.h).
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
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

#include "auth.h"
#include "config.h"
#include "frame.h"
#include "http.h"
#include "http_int.h"
#include "hub.h"
#include "log.h"
#include "quota.h"
#include "secret.h"
#include "stats.h"
#include "util.h"
#include "writer.h"

#define HTTP_FD_RESERVE	40	/* descriptors kept for Redis, logs, ... */
/*
 * MHD's workers: one per this many connections of the limit, at least one
 * per core, at most HTTP_THREADS_MAX (see the top).
 */
#define HTTP_STREAMS_PER_THREAD	1024
#define HTTP_THREADS_MAX	16

/* append one item to opts (an MHD_OptionItem array), nopt counting */
#define HTTP_OPT(o, v, p)	do {					\
	opts[nopt].option = (o);					\
	opts[nopt].value = (intptr_t)(v);				\
	opts[nopt].ptr_value = (void *)(p);				\
	nopt++;								\
} while (0)

extern const char	 http_demo_html[];	/* demo_html.c */
extern const size_t	 http_demo_html_len;

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
http_demo(struct MHD_Connection *conn)
{
	return http_reply(NULL, conn, MHD_HTTP_OK, "text/html; charset=utf-8",
	    http_demo_html, http_demo_html_len);
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
	/* a stream held until it may open (http_events), now woken */
	if (*con_cls != &http_request_marker)
		return http_events_resumed(h, conn, *con_cls);
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
		return http_events(h, conn, version, head, con_cls);
	}
	if (h->cfg->demo && (strcmp(url, "/") == 0 ||
	    strcmp(url, "/demo.html") == 0)) {
		if (!get && !head)
			return http_text(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "method not allowed: use GET");
		return http_demo(conn);
	}
	/* with --metrics-listen these live on the other listener only */
	if (h->cfg->metrics_listen == NULL && http_admin_path(url))
		return http_admin(h, conn, url, get || head);
	return http_text(h, conn, MHD_HTTP_NOT_FOUND, h->cfg->demo ?
	    "not found: streams are at /events?user=ID&upload=ID, the demo at /" :
	    "not found: streams are at /events?user=ID&upload=ID");
}

/* --metrics-listen: /healthz, /metrics and /status, nothing else */
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
	if (http_admin_path(url))
		return http_admin(h, conn, url,
		    strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		    strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
	return http_text(NULL, conn, MHD_HTTP_NOT_FOUND,
	    "not found: this listener serves /metrics, /healthz and /status");
}

static void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http	*h = cls;
	void		*s;

	if (*con_cls == NULL || *con_cls == &http_request_marker) {
		*con_cls = NULL;
		return;
	}
	s = *con_cls;
	*con_cls = NULL;
	http_events_completed(h, s);
}

/*
 * The connections MHD may hold: the open-file limit (raised to its hard
 * maximum) less what the daemon keeps for itself and what each of its
 * `threads` threads holds (MHD's workers and the writers: an epoll and an
 * eventfd each), or --max-connections below that.
 */
static unsigned
http_connection_limit(const struct config *cfg, unsigned threads)
{
	struct rlimit	 rl;
	unsigned	 limit, reserve = HTTP_FD_RESERVE + 2 * threads;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 1000;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
			    (unsigned long long)rl.rlim_max);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	limit = rl.rlim_cur > reserve * 2 ?
	    (unsigned)(rl.rlim_cur - reserve) : (unsigned)rl.rlim_cur / 2;
	if (rl.rlim_cur == RLIM_INFINITY)
		limit = 1000000;
	if (cfg->max_connections != 0) {
		if (cfg->max_connections <= limit)
			limit = cfg->max_connections;
		else if (threads > 0)	/* not for http_threads' estimate */
			log_warnx("--max-connections %u is above what the "
			    "open-file limit allows; using %u",
			    cfg->max_connections, limit);
	}
	return limit;
}

/* MHD's workers: as many as the connection limit calls for */
static unsigned
http_threads(unsigned limit)
{
	long		 cores;
	unsigned	 n;

	n = limit / HTTP_STREAMS_PER_THREAD + (limit % HTTP_STREAMS_PER_THREAD
	    != 0);
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores > 0 && n < (unsigned)cores)
		n = (unsigned)cores;
	return n > HTTP_THREADS_MAX ? HTTP_THREADS_MAX : n < 1 ? 1 : n;
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
	char	 e[256];
	char	*buf;
	size_t	 n;

	if ((buf = secret_read_file(path, 1024 * 1024, &n, e, sizeof(e))) ==
	    NULL) {
		snprintf(err, errlen, "%s: %s", opt, e);
		return NULL;
	}
	if (strstr(buf, "-----BEGIN ") == NULL) {
		snprintf(err, errlen, "%s: %s: no PEM data in it", opt, path);
		secret_free(buf, n);
		return NULL;
	}
	return buf;
}

static void
http_free_secret(char *s)
{
	if (s != NULL)
		secret_free(s, strlen(s));
}

/* what http_start made, the daemons stopped or never started */
static void
http_free(struct http *h)
{
	frame_unref(h->hello);
	auth_free(h->auth);
	quota_free(h->quota);
	http_free_secret(h->tls_cert);
	http_free_secret(h->tls_key);
	pthread_mutex_destroy(&h->hello_lock);
	free(h);
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
http_start(const struct config *cfg, struct hub *hub, struct writers *ws,
    char *err, size_t errlen)
{
	struct http		*h;
	struct sockaddr_storage	 ss, mss;
	struct MHD_OptionItem	 opts[16];
	size_t			 nopt;
	unsigned		 flags, limit, threads;
	int			 ipv6, mipv6 = 0;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cfg = cfg;
	h->hub = hub;
	h->writers = ws;
	pthread_mutex_init(&h->hello_lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &h->started);
	if (http_events_frames(h) == -1) {
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
	threads = http_threads(http_connection_limit(cfg, 0));
	limit = http_connection_limit(cfg, threads + writers_count(ws));
	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	if (h->tls_cert != NULL)
		flags |= MHD_USE_TLS;
	/*
	 * One option list, built item by item: a conditional option in the
	 * middle of a varargs list ends the list there when it is off (that
	 * dropped --threads whenever TLS was).
	 */
	nopt = 0;
	HTTP_OPT(MHD_OPTION_SOCK_ADDR, 0, &ss);
	HTTP_OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_completed, h);
	HTTP_OPT(MHD_OPTION_CONNECTION_LIMIT, limit, NULL);
	HTTP_OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->conn_memory, NULL);
	HTTP_OPT(MHD_OPTION_CONNECTION_TIMEOUT, cfg->client_timeout_s, NULL);
	HTTP_OPT(MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL);
	if (h->tls_cert != NULL) {
		HTTP_OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert);
		HTTP_OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key);
	}
	if (threads > 1)
		HTTP_OPT(MHD_OPTION_THREAD_POOL_SIZE, threads, NULL);
	HTTP_OPT(MHD_OPTION_END, 0, NULL);
	h->d = MHD_start_daemon(flags, (uint16_t)cfg->listen_port, NULL, NULL,
	    http_handler, h,
	    MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL,
	    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
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
		log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("listen",
		    cfg->metrics_listen)), "metrics and health on %s",
		    cfg->metrics_listen);
	}
	STATS_SET(connections_max, limit);
	STATS_SET(streams_max, cfg->max_streams);
	/* what MHD was given, not what was asked for */
	log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("host", cfg->listen_host),
	    LOG_NUM("port", cfg->listen_port), LOG_NUM("writers",
	    writers_count(ws)), LOG_NUM("threads", threads),
	    LOG_NUM("connections", limit)), "listening on %s%s%s%s:%d, %u "
	    "writer threads, %u HTTP threads (MHD %s), up to %u "
	    "connections%s", h->tls_cert != NULL ? "https://" : "",
	    ipv6 ? "[" : "", cfg->listen_host, ipv6 ? "]" : "",
	    cfg->listen_port, writers_count(ws), threads,
	    threads > 1 ? "thread pool" : "internal thread", limit,
	    h->auth != NULL ? ", JWT required" : "");
	return h;
bad:
	http_free(h);
	return NULL;
}

void
http_reload(struct http *h)
{
	/* the retry: of new streams and of streams closed as too slow */
	if (http_events_frames(h) == -1)
		log_warnx("reload: out of memory; retry: unchanged");
	STATS_SET(streams_max, h->cfg->max_streams);	/* a live setting */
}

/* wait up to timeout_ms for every stream to be completed; 1 if all were */
static int
http_wait_streams(unsigned timeout_ms)
{
	unsigned	 waited = 0;

	while (atomic_load(&stats.streams_open) > 0 && waited < timeout_ms) {
		usleep(10 * 1000);
		waited += 10;
	}
	return atomic_load(&stats.streams_open) == 0;
}

void
http_stop(struct http *h, unsigned timeout_ms)
{
	MHD_socket	 fd;

	if (h == NULL)
		return;
	if ((fd = MHD_quiesce_daemon(h->d)) != MHD_INVALID_SOCKET)
		close(fd);
	http_events_close_all(h);
	if (!http_wait_streams(timeout_ms)) {
		log_info("shutdown: %lu streams did not finish in %u ms; "
		    "closing them", atomic_load(&stats.streams_open),
		    timeout_ms);
		/* their writers let go of them: MHD closes and completes */
		writers_abort(h->writers);
		if (!http_wait_streams(5000))
			log_warnx("shutdown: %lu streams still open",
			    atomic_load(&stats.streams_open));
	}
	MHD_stop_daemon(h->d);
	if (h->metrics_d != NULL)
		MHD_stop_daemon(h->metrics_d);
	http_free(h);
}
