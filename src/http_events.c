/*
 * http_events.c - GET /events: admission and the stream's body.
 *
 * DESIGN
 * A request is admitted in this order: the query (query.c), access
 * control (auth.c, --auth jwt), the connection limits (quota.c), then a
 * struct stream is made, its opening frame queued, and it joins the hub
 * (hub_add, which also answers a Last-Event-ID).  Each refusal is one
 * answer with a one-line reason; a limit answers 200 with "event:
 * overload" because any other status stops EventSource for good.
 *
 * The body is an endless chunked response whose content reader copies
 * queued frames out of the stream's ring (stream_read).  When the ring is
 * empty the reader suspends the connection in the same call that returns
 * 0 (a 0 without a suspend makes MHD spin); the hub resumes it when
 * something is queued.  A stream is freed only in
 * http_events_completed(), from MHD's completion callback, after it has
 * left the hub: nothing else frees one.
 *
 * THREADS: everything here runs in MHD's workers, but
 * http_events_frames (main, at start and on SIGHUP) and
 * http_events_close_all (main, at shutdown).
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "channel.h"
#include "config.h"
#include "frame.h"
#include "http_int.h"
#include "hub.h"
#include "log.h"
#include "query.h"
#include "quota.h"
#include "stats.h"
#include "stream.h"
#include "util.h"

static enum MHD_Result
http_events_query_pair(void *cls, enum MHD_ValueKind kind, const char *key,
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
http_events_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream	*s = cls;
	ssize_t		 n;

	n = stream_read(s, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n;
}

static ssize_t
http_events_no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	return MHD_CONTENT_READER_END_OF_STREAM;
}

static void
http_events_suspend(struct stream *s)
{
	MHD_suspend_connection(s->conn);
}

static void
http_events_resume(struct stream *s)
{
	MHD_resume_connection(s->conn);
}

/* the token: Authorization: Bearer, then the cookie, then the query */
static const char *
http_events_token(struct http *h, struct MHD_Connection *conn,
    const struct query *q)
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
http_events_authorize(struct http *h, struct MHD_Connection *conn,
    const struct query *q, const char *ip, time_t *expires,
    enum MHD_Result *r)
{
	struct auth_id		 ids[QUERY_CHANNELS_MAX];
	const struct auth_id	*denied;
	char			 msg[200];
	enum auth_result	 a;
	size_t			 i;

	if (!q->has_user) {
		*r = http_text(h, conn, MHD_HTTP_BAD_REQUEST, "missing user "
		    "parameter (required with --auth jwt)");
		return 1;
	}
	/* every kind's ids but the user's; broadcast channels need nothing */
	for (i = 0; i < q->nids; i++) {
		ids[i].kind = q->kinds[q->ids[i].kind].name;
		ids[i].id = q->ids[i].id;
	}
	a = auth_check(h->auth, http_events_token(h, conn, q), q->user,
	    ids, q->nids, time(NULL), expires, &denied);
	if (a == AUTH_OK)
		return 0;
	STATS_ADD(auth_refusals[a], 1);
	if (a == AUTH_UPLOAD || a == AUTH_CHANNEL)
		/* "upload not allowed: u7", "room not allowed: secret" */
		snprintf(msg, sizeof(msg), "%s not allowed: %s", denied->kind,
		    denied->id);
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
http_events_overload(struct http *h, struct MHD_Connection *conn,
    enum quota_limit hit)
{
	struct frame	*f;
	enum MHD_Result	 r;
	unsigned	 retry = h->cfg->retry_ms;

	STATS_ADD(limit_refusals[hit], 1);
	log_debug("http: over the %s stream limit", quota_limit_name(hit));
	/* between retry and 4 x retry: refused clients come back spread */
	retry += retry ? util_random() % (3 * retry + 1) : 0;
	if ((f = frame_overload(retry, quota_limit_name(hit))) == NULL)
		return MHD_NO;
	r = http_reply(h, conn, MHD_HTTP_OK, "text/event-stream", f->data,
	    f->len);
	frame_unref(f);
	return r;
}

/*
 * HEAD answers what GET would, short of the body and a slot.  MHD 0.9.75
 * writes the last-chunk of a chunked response even for HEAD (a client
 * reusing the connection would read it as its next answer), and an empty
 * buffer gets "Content-Length: 0", which RFC 9110 forbids when the GET
 * body is longer.  So: unknown length, not chunked, and the connection
 * closes after the headers.
 */
static enum MHD_Result
http_events_head(struct http *h, struct MHD_Connection *conn)
{
	struct MHD_Response	*resp;
	enum MHD_Result		 r;

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024,
	    http_events_no_body, NULL, NULL);
	if (resp == NULL)
		return MHD_NO;
	MHD_set_response_options(resp, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT,
	    MHD_RO_END);
	http_stream_headers(h, conn, resp);
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

/*
 * The stream's channels: its user's, each id's (PREFIX+ID of its kind;
 * the query's kinds are the table's, in its order), then the broadcast
 * channels; names[i] of lens[i] bytes.  No two are the same: ids are
 * distinct within a kind, no prefix begins another, and no broadcast
 * channel is under a prefix (channel.h).
 */
static size_t
http_events_channels(const struct config *cfg, const struct query *q,
    char names[][CHANNEL_LEN_MAX + 1], const char **chan, size_t *lens)
{
	const struct channel_table *t = &cfg->channels;
	const struct channel_kind *user;
	size_t		 n = 0, i;

	if (q->has_user && (user = channel_kind_find(t, QUERY_USER)) != NULL) {
		lens[n] = (size_t)snprintf(names[n], sizeof(names[n]), "%s%s",
		    user->prefix, q->user);
		chan[n] = names[n];
		n++;
	}
	for (i = 0; i < q->nids; i++, n++) {
		lens[n] = (size_t)snprintf(names[n], sizeof(names[n]), "%s%s",
		    t->kinds[q->ids[i].kind].prefix, q->ids[i].id);
		chan[n] = names[n];
	}
	for (i = 0; i < t->nbroadcasts && n < QUERY_CHANNELS_MAX; i++, n++) {
		chan[n] = t->broadcasts[i];
		lens[n] = strlen(t->broadcasts[i]);
	}
	return n;
}

/* a new stream for conn, its opening frame queued; NULL out of memory */
static struct stream *
http_events_stream(struct http *h, struct MHD_Connection *conn, size_t n,
    time_t expires)
{
	const struct config	*cfg = h->cfg;
	struct stream		*s;

	if ((s = stream_new(cfg->ring_size, n, cfg->history_redis)) == NULL)
		return NULL;
	/* accepted until exp + leeway: it ends when acceptance would */
	s->expires = expires != 0 ? expires + (time_t)cfg->jwt_leeway_s : 0;
	s->conn = conn;
	s->suspend = http_events_suspend;
	s->resume = http_events_resume;
	pthread_mutex_lock(&h->hello_lock);
	if (stream_push(s, h->hello) != STREAM_PUSH_QUEUED)
		fatalx("http_events: no room for the opening frame");
	pthread_mutex_unlock(&h->hello_lock);
	return s;
}

/* the stream's response: headers now, the body as the ring fills */
static enum MHD_Result
http_events_respond(struct http *h, struct MHD_Connection *conn,
    struct stream *s)
{
	struct MHD_Response	*resp;
	enum MHD_Result		 r;

	/*
	 * MHD allocates block_size bytes inside every response, and a
	 * chunked reader is offered the connection's whole write buffer
	 * anyway: a small block saves 4 KiB of RSS per idle stream.
	 */
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64,
	    http_events_reader, s, NULL);
	if (resp == NULL)
		return MHD_NO;		/* MHD closes: completion frees s */
	s->answered = 1;
	http_stream_headers(h, conn, resp);
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

enum MHD_Result
http_events(struct http *h, struct MHD_Connection *conn, int head,
    void **con_cls)
{
	const struct config	*cfg = h->cfg;
	struct query		 q;
	struct stream		*s;
	struct hub_resume	 res;
	struct quota_hold	 hold;
	enum quota_limit	 hit;
	time_t			 expires = 0;
	char			 ip[INET6_ADDRSTRLEN];
	const char		*last_id;
	const char		*chan[QUERY_CHANNELS_MAX];
	size_t			 lens[QUERY_CHANNELS_MAX], n;
	char			 names[QUERY_CHANNELS_MAX][CHANNEL_LEN_MAX + 1];
	enum MHD_Result		 r;

	channel_query_init(&cfg->channels, &q);
	query_max_last(&q, cfg->max_last);
	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND,
	    http_events_query_pair, &q);
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
	    http_events_authorize(h, conn, &q, ip, &expires, &r))
		return r;
	if (head)
		return http_events_head(h, conn);
	if ((hit = quota_acquire(h->quota, cfg->max_streams,
	    cfg->max_streams_per_ip, cfg->max_streams_per_user, ip,
	    q.has_user ? q.user : NULL, &hold)) != QUOTA_OK)
		return http_events_overload(h, conn, hit);

	n = http_events_channels(cfg, &q, names, chan, lens);
	if ((s = http_events_stream(h, conn, n, expires)) == NULL) {
		quota_release(h->quota, &hold);
		log_warnx("http: out of memory for a new stream");
		return http_text(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "out of memory");
	}
	/* the stream holds the limits' counts from now on, and gives them
	 * back where it is freed */
	s->hold = hold;
	/* browsers resume with the header; first connections use the query */
	last_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Last-Event-ID");
	if (last_id == NULL && q.has_last_event_id)
		last_id = q.last_event_id;
	if (hub_add(h->hub, s, chan, lens, n, last_id, q.last, &res) == -1) {
		quota_release(h->quota, &s->hold);
		stream_free(s);
		return http_text(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "shutting down");
	}
	if (res.reset != -1)
		log_debug("http: resume from '%.40s': reset (%s)", last_id,
		    hub_reset_name((enum hub_reset)res.reset));
	else if (last_id != NULL)
		log_debug("http: resume from '%.40s': %zu events replayed",
		    last_id, res.replayed);
	else if (q.last > 0 && !cfg->history_redis)
		log_debug("http: last=%u: a backlog of %zu events", q.last,
		    res.backlog);
	/* from here on only http_events_completed() frees s */
	*con_cls = s;
	/*
	 * Held until Redis confirms its channels: the client must not see
	 * the stream open before what is published reaches it.  The handler
	 * is called again when the hub releases it.
	 */
	if (res.held && stream_hold(s))
		return MHD_YES;
	return http_events_respond(h, conn, s);
}

enum MHD_Result
http_events_resumed(struct http *h, struct MHD_Connection *conn,
    void *con_cls)
{
	struct stream	*s = con_cls;

	if (s->answered)
		return MHD_NO;		/* never twice */
	return http_events_respond(h, conn, s);
}

void
http_events_completed(struct http *h, void *con_cls)
{
	struct stream	*s = con_cls;

	hub_remove(h->hub, s);
	quota_release(h->quota, &s->hold);
	stream_free(s);
}

int
http_events_frames(struct http *h)
{
	struct frame	*hello, *slow;

	/* every stream opens with the retry: and a comment, flushed at once */
	if ((hello = frame_retry(h->cfg->retry_ms, "sserelay")) == NULL)
		return -1;
	/* a stream closed as too slow tells its client when to come back */
	if ((slow = frame_retry(h->cfg->retry_ms, NULL)) == NULL) {
		frame_unref(hello);
		return -1;
	}
	hub_set_slow_final(h->hub, slow);
	frame_unref(slow);
	pthread_mutex_lock(&h->hello_lock);
	frame_unref(h->hello);
	h->hello = hello;
	pthread_mutex_unlock(&h->hello_lock);
	return 0;
}

static struct frame *
http_events_final(void *arg)
{
	unsigned	 retry_ms = *(unsigned *)arg;

	/* spread the clients' return over one more retry interval */
	return frame_retry(retry_ms + (retry_ms ? util_random() %
	    (retry_ms + 1) : 0), NULL);
}

void
http_events_close_all(struct http *h)
{
	unsigned	 retry_ms = h->cfg->retry_ms;

	hub_close_all(h->hub, http_events_final, &retry_ms);
}
