/*
 * http_admin.c - GET /healthz and GET /metrics: one stats snapshot (see
 * stats.h), rendered as JSON or as Prometheus text.  Served on the main
 * listener, or on --metrics-listen alone.
 *
 * THREADS: MHD's workers; the counters are atomics, read without a lock.
 */
#include "autoconf.h"

#include <microhttpd.h>
#include <string.h>
#include <time.h>

#include "http_int.h"
#include "sse.h"
#include "stats.h"

enum MHD_Result
http_admin(struct http *h, struct MHD_Connection *conn, const char *url,
    int get_or_head)
{
	struct stats_snapshot	 snap;
	struct timespec		 now;
	struct sbuf		 b;
	enum MHD_Result		 r = MHD_NO;
	int			 metrics, rc;

	if (!get_or_head)
		return http_text(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed: use GET");
	metrics = strcmp(url, "/metrics") == 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	stats_snapshot(&snap, (uint64_t)(now.tv_sec - h->started.tv_sec));
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
