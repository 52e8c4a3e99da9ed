/*
 * http_admin.c - what an operator reads: GET /healthz and GET /metrics,
 * one stats snapshot (see stats.h) rendered as JSON or as Prometheus
 * text, and GET /status, the page that draws /healthz (src/status.html,
 * built in).  Served on --metrics-listen, or on the main listener when
 * that is not given.
 *
 * THREADS: MHD's workers; the counters are atomics, read without a lock.
 */
#include "autoconf.h"

#include <microhttpd.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "http_int.h"
#include "hub.h"
#include "quota.h"
#include "sse.h"
#include "stats.h"

/* stats.h counts each family's values; their owners name them */
_Static_assert(STATS_NRESETS == HUB_NRESETS,
    "stats.h's STATS_NRESETS is enum hub_reset's count");
_Static_assert(STATS_NAUTH == AUTH_NRESULTS && AUTH_OK == 0,
    "stats.h's STATS_NAUTH is enum auth_result's count, AUTH_OK not shown");
_Static_assert(STATS_NLIMITS == QUOTA_NLIMITS && QUOTA_OK == 0,
    "stats.h's STATS_NLIMITS is enum quota_limit's count, QUOTA_OK not "
    "shown");

extern const char	 http_status_html[];	/* status_html.c */
extern const size_t	 http_status_html_len;

int
http_admin_path(const char *url)
{
	return strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0 ||
	    strcmp(url, "/status") == 0;
}

/* the label values of the stats' families: their owners' names */
static void
http_admin_labels(struct stats_labels *l)
{
	size_t	 i;

	for (i = 0; i < STATS_NRESETS; i++)
		l->resets[i] = hub_reset_name((enum hub_reset)i);
	for (i = 0; i < STATS_NAUTH; i++)
		l->auth_refusals[i] = auth_name((enum auth_result)i);
	for (i = 0; i < STATS_NLIMITS; i++)
		l->limit_refusals[i] = quota_limit_name((enum quota_limit)i);
}

/* the groups of numbers that mean something with this configuration */
static unsigned
http_admin_groups(const struct config *cfg)
{
	unsigned	 g = STATS_GROUP(STATS_ALWAYS);

	/* --history redis keeps none here; the hub's numbers stay 0 */
	if (cfg->history_size > 0 && !cfg->history_redis)
		g |= STATS_GROUP(STATS_HISTORY);
	return g;
}

enum MHD_Result
http_admin(struct http *h, struct MHD_Connection *conn, const char *url,
    int get_or_head)
{
	struct stats_snapshot	 snap;
	struct stats_labels	 labels;
	struct timespec		 now;
	struct sbuf		 b;
	enum MHD_Result		 r = MHD_NO;
	int			 metrics, rc;

	if (!get_or_head)
		return http_text(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed: use GET");
	if (strcmp(url, "/status") == 0)
		return http_reply(NULL, conn, MHD_HTTP_OK,
		    "text/html; charset=utf-8", http_status_html,
		    http_status_html_len);
	metrics = strcmp(url, "/metrics") == 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	stats_snapshot(&snap, (uint64_t)(now.tv_sec - h->started.tv_sec),
	    (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000);
	snap.groups = http_admin_groups(h->cfg);
	http_admin_labels(&labels);
	snap.labels = &labels;
	sbuf_init(&b);
	rc = metrics ? stats_render_prometheus(&b, &snap) :
	    stats_render_json(&b, &snap);
	if (rc == -1)
		goto done;
	if (metrics)
		r = http_reply(NULL, conn, MHD_HTTP_OK,
		    "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	else
		r = http_reply(NULL, conn, snap.redis_up ? MHD_HTTP_OK :
		    MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", b.data,
		    b.len);
done:
	sbuf_free(&b);
	return r;
}
