/*
 * test_stats.c - one stats snapshot, rendered for /healthz (JSON) and for
 * /metrics (Prometheus text 0.0.4), as a monitoring system reads them:
 * the JSON parsed with json-c, the text line by line.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"
#include "stats.h"
#include "tap.h"

/* the value of the sample line "name value" or "name{labels} value" */
static long long
sample(const char *text, const char *name)
{
	const char *p = text;
	size_t n = strlen(name);

	while ((p = strstr(p, name)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return atoll(p + n + 1);
		p += n;
	}
	return -1;
}

static int
has_line(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' ||
		    p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

/*
 * The families' label values are their owners' (the hub, auth, quota):
 * the renderers show whatever the caller names them, these here.
 */
static char		 reset_names[STATS_NRESETS][16];
static char		 auth_names[STATS_NAUTH][16];
static struct stats_labels labels;

static void
fill(struct stats_snapshot *s)
{
	static const char *const limits[STATS_NLIMITS] = {
		"none", "global", "ip", "user"
	};
	size_t	 i;

	memset(s, 0, sizeof(*s));
	/* distinct values, so that a field read from the wrong place shows */
	s->streams_open = 11;
	s->streams_opened = 12;
	s->events_queued = 13;
	s->events_delivered = 14;
	s->bytes_written = 15;
	s->heartbeats = 16;
	s->slow_closes = 17;
	s->resumes = 18;
	s->replayed = 19;
	s->redis_up = 1;
	s->redis_reconnects = 20;
	s->redis_messages = 21;
	s->history_messages = 22;
	s->history_bytes = 23;
	s->history_channels = 24;
	s->history_evicted = 25;
	for (i = 0; i < STATS_NRESETS; i++) {
		s->resets[i] = 100 + i;
		snprintf(reset_names[i], sizeof(reset_names[i]), "reset-%zu",
		    i);
		labels.resets[i] = reset_names[i];
	}
	for (i = 0; i < STATS_NAUTH; i++) {
		s->auth_refusals[i] = 200 + i;
		snprintf(auth_names[i], sizeof(auth_names[i]), i == 0 ? "ok" :
		    "auth-%zu", i);
		labels.auth_refusals[i] = auth_names[i];
	}
	for (i = 0; i < STATS_NLIMITS; i++) {
		s->limit_refusals[i] = 300 + i;
		labels.limit_refusals[i] = limits[i];
	}
	s->labels = &labels;
	s->delivery[0] = 3;		/* <= 50 µs */
	s->delivery[4] = 2;		/* <= 1 ms */
	s->delivery[STATS_BUCKETS] = 1;	/* > 1 s */
	s->delivery_sum_us = 2500000;
	s->uptime_s = 99;
	s->redis_since_s = 42;
	s->version = "9.9.9";
	s->groups = STATS_GROUP(STATS_ALWAYS) | STATS_GROUP(STATS_HISTORY);
}

static int64_t
jint(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return -1;
	return json_object_get_int64(v);
}

static const char *
jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return NULL;
	return json_object_get_string(v);
}

static void
test_json(void)
{
	struct stats_snapshot s;
	struct json_object *o, *r, *a, *l;
	struct sbuf b;
	size_t i;
	int bad;

	fill(&s);
	sbuf_init(&b);
	is_int(stats_render_json(&b, &s), 0, "JSON rendered");
	sbuf_add(&b, "", 1);
	ok(strchr(b.data, '\n') == NULL, "one line");
	o = json_tokener_parse(b.data);
	ok(o != NULL && json_object_is_type(o, json_type_object),
	    "it parses as a JSON object");
	if (o == NULL) {
		sbuf_free(&b);
		return;
	}
	is_str(jstr(o, "status"), "ok", "status ok while Redis is up");
	is_str(jstr(o, "redis"), "up", "redis up");
	is_str(jstr(o, "version"), "9.9.9", "version");
	is_int(jint(o, "uptime_s"), 99, "uptime_s");
	is_int(jint(o, "redis_since_s"), 42, "redis_since_s");
	is_int(jint(o, "streams"), 11, "streams");
	is_int(jint(o, "streams_total"), 12, "streams_total");
	is_int(jint(o, "events"), 13, "events");
	is_int(jint(o, "events_delivered"), 14, "events_delivered");
	is_int(jint(o, "bytes_written"), 15, "bytes_written");
	is_int(jint(o, "heartbeats"), 16, "heartbeats");
	is_int(jint(o, "slow_closes"), 17, "slow_closes");
	is_int(jint(o, "resumes"), 18, "resumes");
	is_int(jint(o, "replayed"), 19, "replayed");
	is_int(jint(o, "redis_reconnects"), 20, "redis_reconnects");
	is_int(jint(o, "redis_messages"), 21, "redis_messages");
	is_int(jint(o, "history_messages"), 22, "history_messages");
	is_int(jint(o, "history_bytes"), 23, "history_bytes");
	is_int(jint(o, "history_channels"), 24, "history_channels");
	is_int(jint(o, "history_evicted"), 25, "history_evicted");
	ok(!json_object_object_get_ex(o, "redis_up", NULL),
	    "redis_up is the redis field, not a number of its own");
	ok(json_object_object_get_ex(o, "resets", &r) &&
	    json_object_object_length(r) == STATS_NRESETS,
	    "resets: one counter per reason");
	for (i = 0, bad = 0; i < STATS_NRESETS; i++)
		bad += jint(r, labels.resets[i]) != (int64_t)(100 + i);
	is_int(bad, 0, "resets: each reason's own value");
	ok(json_object_object_get_ex(o, "auth_refusals", &a) &&
	    json_object_object_length(a) == STATS_NAUTH - 1 &&
	    jint(a, "auth-3") == 203,
	    "auth_refusals: every refusal, not ok");
	ok(json_object_object_get_ex(o, "limit_refusals", &l) &&
	    json_object_object_length(l) == 3 && jint(l, "global") == 301 &&
	    jint(l, "ip") == 302 && jint(l, "user") == 303,
	    "limit_refusals: global, ip, user");
	json_object_put(o);

	s.redis_up = 0;
	sbuf_reset(&b);
	stats_render_json(&b, &s);
	sbuf_add(&b, "", 1);
	o = json_tokener_parse(b.data);
	is_str(o ? jstr(o, "status") : NULL, "degraded", "Redis down: degraded");
	is_str(o ? jstr(o, "redis") : NULL, "down", "redis down");
	json_object_put(o);

	/* a group that is off is not there at all: the page draws none */
	s.groups = STATS_GROUP(STATS_ALWAYS);
	sbuf_reset(&b);
	stats_render_json(&b, &s);
	sbuf_add(&b, "", 1);
	o = json_tokener_parse(b.data);
	ok(o != NULL && !json_object_object_get_ex(o, "history_messages",
	    NULL) && !json_object_object_get_ex(o, "history_evicted", NULL),
	    "history off: no history_* field");
	is_int(o ? jint(o, "streams") : -1, 11, "history off: the rest stays");
	json_object_put(o);
	sbuf_free(&b);
}

static void
test_prometheus(void)
{
	struct stats_snapshot s;
	struct sbuf b;
	const char *t;

	fill(&s);
	sbuf_init(&b);
	is_int(stats_render_prometheus(&b, &s), 0, "Prometheus text rendered");
	sbuf_add(&b, "", 1);
	t = b.data;
	ok(b.len > 1 && t[b.len - 2] == '\n', "ends with a newline");
	ok(has_line(t, "# TYPE sserelay_streams_open gauge"),
	    "streams_open is a gauge");
	ok(has_line(t, "# TYPE sserelay_streams_opened_total counter"),
	    "streams_opened_total is a counter");
	ok(has_line(t, "# HELP sserelay_streams_open Streams open now."),
	    "with its help text");
	is_int(sample(t, "sserelay_streams_open"), 11, "streams_open");
	is_int(sample(t, "sserelay_events_queued_total"), 13, "events_queued");
	is_int(sample(t, "sserelay_events_delivered_total"), 14,
	    "events_delivered");
	is_int(sample(t, "sserelay_redis_up"), 1, "redis_up");
	is_int(sample(t, "sserelay_history_evicted_total"), 25,
	    "history_evicted");
	is_int(sample(t, "sserelay_resets_total{reason=\"reset-7\"}"),
	    107, "resets, by reason");
	is_int(sample(t, "sserelay_limit_refusals_total{limit=\"ip\"}"), 302,
	    "limit refusals, by limit");
	ok(strstr(t, "limit=\"none\"") == NULL && strstr(t,
	    "reason=\"ok\"") == NULL, "no sample for 'not refused'");
	ok(has_line(t, "# TYPE sserelay_delivery_seconds histogram"),
	    "delivery_seconds is a histogram");
	is_int(sample(t, "sserelay_delivery_seconds_bucket{le=\"5e-05\"}"), 3,
	    "first bucket");
	is_int(sample(t, "sserelay_delivery_seconds_bucket{le=\"0.001\"}"), 5,
	    "buckets are cumulative");
	is_int(sample(t, "sserelay_delivery_seconds_bucket{le=\"1\"}"), 5,
	    "up to the last finite bound");
	is_int(sample(t, "sserelay_delivery_seconds_bucket{le=\"+Inf\"}"), 6,
	    "+Inf holds every observation");
	is_int(sample(t, "sserelay_delivery_seconds_count"), 6,
	    "count equals the +Inf bucket");
	ok(has_line(t, "sserelay_delivery_seconds_sum 2.500000"),
	    "sum in seconds");

	s.groups = STATS_GROUP(STATS_ALWAYS);
	sbuf_reset(&b);
	stats_render_prometheus(&b, &s);
	sbuf_add(&b, "", 1);
	t = b.data;
	ok(strstr(t, "sserelay_history_") == NULL,
	    "history off: no sserelay_history_* family");
	is_int(sample(t, "sserelay_streams_open"), 11,
	    "history off: the rest stays");
	sbuf_free(&b);
}

static void
test_counting(void)
{
	struct stats_snapshot s;
	struct stats_local l;

	memset(&stats, 0, sizeof(stats));
	STATS_ADD(slow_closes, 2);
	stats_redis(1, 1000);
	memset(&l, 0, sizeof(l));
	stats_local_delivered(&l, 30, 1);
	stats_local_delivered(&l, 2000000, 1);
	stats_local_delivered(&l, 10, 0);
	l.written = 123;
	l.heartbeats = 4;
	stats_snapshot(&s, 5, 4500);
	is_int(s.events_delivered, 0, "nothing counted before the flush");
	stats_local_flush(&l);
	stats_snapshot(&s, 5, 4500);
	is_int(s.slow_closes, 2, "snapshot: a counter added to");
	is_int(s.redis_up, 1, "snapshot: a gauge set");
	is_int(s.events_delivered, 3, "every delivered event counted");
	is_int(s.delivery[0] + s.delivery[STATS_BUCKETS], 2,
	    "only live ones in the histogram");
	is_int(s.delivery_sum_us, 2000030, "their sum");
	is_int(s.bytes_written, 123, "bytes written");
	is_int(s.heartbeats, 4, "heartbeats written");
	is_int(l.delivered + l.written + l.delivery[0], 0,
	    "the flush empties the local counts");
	is_int(s.uptime_s, 5, "uptime");
	is_int(s.redis_since_s, 3, "Redis up for 3.5 s: redis_since_s 3");
	ok(s.groups == STATS_GROUP(STATS_ALWAYS), "groups: the caller's");
	stats_redis(1, 4000);
	stats_snapshot(&s, 5, 4500);
	is_int(s.redis_since_s, 3, "up again is no change");
	stats_redis(0, 4000);
	stats_snapshot(&s, 5, 4500);
	is_int(s.redis_since_s, 0, "down: a change, timed");
	memset(&stats, 0, sizeof(stats));
	stats_snapshot(&s, 7, 4500);
	is_int(s.redis_since_s, 7, "never changed: since the start");
}

int
main(void)
{
	test_json();
	test_prometheus();
	test_counting();
	return done_testing();
}
