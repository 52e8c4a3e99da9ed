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
 * Then the connection leaves libmicrohttpd's loop: the handler suspends
 * it (MHD touches neither its socket nor its TLS session while it is
 * suspended; no response is ever queued) and hands the socket to the
 * stream's writer (writer.c), which writes the response head
 * (http_stream_head: what MHD would have written) and the body: chunked
 * for HTTP/1.1, to the close for HTTP/1.0.  When the body ends or the
 * client goes, the writer resumes the connection (http_events_done); MHD
 * calls the handler again, which answers MHD_NO: MHD closes the
 * connection and calls the completion, so its counts and limits stay
 * right.  A stream is freed only in http_events_completed(), after it
 * has left the hub: nothing else frees one.
 *
 * THREADS: everything here runs in MHD's workers, but
 * http_events_frames (main, at start and on SIGHUP),
 * http_events_close_all (main, at shutdown) and http_events_done (a
 * writer).
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
#include "presence.h"
#include "quota.h"
#include "revoke.h"
#include "stats.h"
#include "stream.h"
#include "util.h"
#include "writer.h"

/* a log line about a new stream (log.h): its id, user, client, reason */
#define HTTP_EVENTS_FIELDS(s, q, ip, reason)				\
	LOG_FIELDS(LOG_NUM("stream", (s)->id),				\
	    LOG_STR("user", (q)->has_user ? (q)->user : NULL),		\
	    LOG_STR("client", (ip)), LOG_STR("reason", (reason)))

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
http_events_no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	return MHD_CONTENT_READER_END_OF_STREAM;
}

/* s->done: its writer let go of it; MHD closes it (see the top) */
static void
http_events_done(struct stream *s)
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
    const struct query *q, const char *ip, time_t *expires, time_t *iat,
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
	    ids, q->nids, time(NULL), expires, iat, &denied);
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
	log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_NUM("status", auth_status(a)),
	    LOG_STR("reason", auth_name(a)), LOG_STR("user", q->user),
	    LOG_STR("client", ip)), "auth: %u %s (user %s, from %s)",
	    auth_status(a), msg, q->user, ip);
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
	log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_STR("reason",
	    quota_limit_name(hit))), "http: over the %s stream limit",
	    quota_limit_name(hit));
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

/*
 * A new stream for conn, its head set and its opening frame queued; NULL
 * out of memory.
 */
static struct stream *
http_events_stream(struct http *h, struct MHD_Connection *conn,
    int chunked, size_t n, time_t expires, time_t iat)
{
	const struct config	*cfg = h->cfg;
	struct stream		*s;
	struct frame		*head;

	if ((s = stream_new(cfg->ring_size, n, cfg->history_redis)) == NULL)
		return NULL;
	if ((head = http_stream_head(h, conn, chunked)) == NULL) {
		stream_free(s);
		return NULL;
	}
	stream_set_head(s, head);
	frame_unref(head);
	/* accepted until exp + leeway: it ends when acceptance would */
	s->expires = expires != 0 ? expires + (time_t)cfg->jwt_leeway_s : 0;
	s->iat = iat;
	s->chunked = chunked;
	s->conn = conn;
	s->done = http_events_done;
	pthread_mutex_lock(&h->hello_lock);
	if (stream_push(s, h->hello) != STREAM_PUSH_QUEUED)
		fatalx("http_events: no room for the opening frame");
	pthread_mutex_unlock(&h->hello_lock);
	return s;
}

/*
 * Out of MHD's loop and into its writer's: MHD must be done with the
 * socket (suspended) before the writer may touch it.
 */
static enum MHD_Result
http_events_hand_over(struct http *h, struct MHD_Connection *conn,
    struct stream *s)
{
	const union MHD_ConnectionInfo	*ci;
	void				*tls = NULL;
	int				 fd;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	fd = ci != NULL ? ci->connect_fd : -1;
	if (h->tls_cert != NULL) {
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_GNUTLS_SESSION);
		tls = ci != NULL ? ci->tls_session : NULL;
	}
	if (fd == -1 || (h->tls_cert != NULL && tls == NULL)) {
		log_warnx("http: a stream's socket cannot be had from MHD");
		return MHD_NO;		/* MHD closes: completion frees s */
	}
	MHD_suspend_connection(conn);
	writers_assign(h->writers, s);
	writer_attach(s, fd, tls);
	return MHD_YES;
}

enum MHD_Result
http_events(struct http *h, struct MHD_Connection *conn, const char *version,
    int head, void **con_cls)
{
	const struct config	*cfg = h->cfg;
	struct query		 q;
	struct stream		*s;
	struct hub_resume	 res;
	struct quota_slot	 slot;
	enum quota_limit	 hit;
	time_t			 expires = 0, iat = 0;
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
		log_kv(LOG_LEVEL_DEBUG, LOG_FIELDS(LOG_NUM("status", 400),
		    LOG_STR("reason", q.error)), "http: 400 %s", q.error);
		return http_text(h, conn, MHD_HTTP_BAD_REQUEST, q.error);
	}

	/* the client behind any trusted proxy: for the log and the limits */
	quota_client_ip(h->quota, MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS)->client_addr,
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "X-Forwarded-For"), ip, sizeof(ip));
	if (h->auth != NULL &&
	    http_events_authorize(h, conn, &q, ip, &expires, &iat, &r))
		return r;
	n = http_events_channels(cfg, &q, names, chan, lens);
	/* FCALL sserelay_revoke: EventSource does not come back after 403 */
	if (revoke_refused(chan, lens, n, iat, revoke_now_ms())) {
		STATS_ADD(revoke_refusals, 1);
		log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_NUM("status", 403),
		    LOG_STR("reason", "revoked"), LOG_STR("user", q.has_user ?
		    q.user : NULL), LOG_STR("client", ip)),
		    "http: 403 revoked (user %s, from %s)", q.has_user ?
		    q.user : "-", ip);
		return http_text(h, conn, MHD_HTTP_FORBIDDEN, "revoked");
	}
	if (head)
		return http_events_head(h, conn);
	if ((hit = quota_acquire(h->quota, cfg->max_streams,
	    cfg->max_streams_per_ip, cfg->max_streams_per_user, ip,
	    q.has_user ? q.user : NULL, &slot)) != QUOTA_OK)
		return http_events_overload(h, conn, hit);

	if ((s = http_events_stream(h, conn, strcmp(version,
	    MHD_HTTP_VERSION_1_0) != 0, n, expires, iat)) == NULL) {
		quota_release(h->quota, &slot);
		log_warnx("http: out of memory for a new stream");
		return http_text(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "out of memory");
	}
	/* the stream holds the limits' counts from now on, and gives them
	 * back where it is freed */
	s->slot = slot;
	/* browsers resume with the header; first connections use the query */
	last_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Last-Event-ID");
	if (last_id == NULL && q.has_last_event_id)
		last_id = q.last_event_id;
	/* counted in presence (sent to Redis by the control thread) before
	   it joins the hub, so that a snapshot it is given counts it */
	s->presence = presence_open(chan, lens, n, presence_who(q.has_user,
	    q.user));
	if (hub_add(h->hub, s, chan, lens, n, last_id, q.last, &res) == -1) {
		presence_close(s->presence);
		s->presence = NULL;
		quota_release(h->quota, &s->slot);
		stream_free(s);
		return http_text(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "shutting down");
	}
	if (res.reset != -1)
		log_kv(LOG_LEVEL_DEBUG, HTTP_EVENTS_FIELDS(s, &q, ip,
		    hub_reset_name((enum hub_reset)res.reset)),
		    "http: resume from '%.40s': reset (%s)", last_id,
		    hub_reset_name((enum hub_reset)res.reset));
	else if (last_id != NULL)
		log_kv(LOG_LEVEL_DEBUG, HTTP_EVENTS_FIELDS(s, &q, ip, NULL),
		    "http: resume from '%.40s': %zu events replayed",
		    last_id, res.replayed);
	else if (q.last > 0 && !cfg->history_redis)
		log_kv(LOG_LEVEL_DEBUG, HTTP_EVENTS_FIELDS(s, &q, ip, NULL),
		    "http: last=%u: a backlog of %zu events", q.last,
		    res.backlog);
	/*
	 * From here on only http_events_completed() frees s.  A stream awaiting
	 * until Redis confirms its channels (res.awaiting) goes to its writer
	 * too, which writes nothing, its head included, until the hub
	 * releases it: the client must not see the stream open before what
	 * is published reaches it.
	 */
	*con_cls = s;
	return http_events_hand_over(h, conn, s);
}

enum MHD_Result
http_events_resumed(struct http *h, struct MHD_Connection *conn,
    void *con_cls)
{
	/* its writer gave it back: MHD closes it, then completes it */
	return MHD_NO;
}

void
http_events_completed(struct http *h, void *con_cls)
{
	struct stream	*s = con_cls;

	hub_remove(h->hub, s);
	presence_close(s->presence);
	s->presence = NULL;
	quota_release(h->quota, &s->slot);
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
	hub_set_retry(h->hub, slow);
	writers_set_retry(h->writers, slow);
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
