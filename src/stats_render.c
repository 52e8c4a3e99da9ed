/*
 * stats_render.c - a stats snapshot as /healthz's JSON and as /metrics's
 * Prometheus text.  Pure.  See stats.h.
 */
#include "autoconf.h"

#include <stdio.h>

#include "sse.h"
#include "stats.h"

/* a labelled family, the same for both renderers */
struct stats_render_family {
	const char	*key;		/* /healthz object */
	const char	*name;		/* /metrics counter */
	const char	*label;
	const char	*help;
	const uint64_t	*values;
	size_t		 first, n;	/* values[first..n) are shown */
	const char *const *label_value;	/* n of them */
};

static size_t
stats_render_families(const struct stats_snapshot *s,
    struct stats_render_family *fam)
{
	size_t	 k = 0;

#define STATS_FAMILY(f, key, name, label, first, n, help)		\
	fam[k++] = (struct stats_render_family){ key, name, label, help, \
	    s->f, first, n, s->labels->f };
	STATS_FAMILIES(STATS_FAMILY)
#undef STATS_FAMILY
	return k;
}

int
stats_render_json(struct sbuf *b, const struct stats_snapshot *s)
{
	struct stats_render_family	 fam[3];
	size_t			 nfam, i, k;
	int			 r = 0;

	r |= sbuf_printf(b, "{\"status\":\"%s\",\"redis\":\"%s\","
	    "\"redis_since_s\":%llu,\"uptime_s\":%llu,\"version\":\"%s\"",
	    s->redis_up ? "ok" : "degraded", s->redis_up ? "up" : "down",
	    (unsigned long long)s->redis_since_s,
	    (unsigned long long)s->uptime_s, s->version);
#define STATS_JSON(f, type, group, key, name, help)			\
	if (key != NULL && (s->groups & STATS_GROUP(group)))		\
		r |= sbuf_printf(b, ",\"%s\":%llu", (const char *)key,	\
		    (unsigned long long)s->f);
	STATS_FIELDS(STATS_JSON)
#undef STATS_JSON
	nfam = stats_render_families(s, fam);
	for (k = 0; k < nfam; k++) {
		r |= sbuf_printf(b, ",\"%s\":{", fam[k].key);
		for (i = fam[k].first; i < fam[k].n; i++)
			r |= sbuf_printf(b, "%s\"%s\":%llu", i == fam[k].first ?
			    "" : ",", fam[k].label_value[i],
			    (unsigned long long)fam[k].values[i]);
		r |= sbuf_addstr(b, "}");
	}
	r |= sbuf_addstr(b, "}");
	return r ? -1 : 0;
}

int
stats_render_prometheus(struct sbuf *b, const struct stats_snapshot *s)
{
	static const char *const types[] = { "gauge", "counter" };
	struct stats_render_family	 fam[3];
	uint64_t		 cum = 0;
	size_t			 nfam, i, k;
	int			 r = 0;

#define STATS_PROM(f, type, group, key, name, help)			\
	if (name != NULL && (s->groups & STATS_GROUP(group)))		\
		r |= sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", \
		    (const char *)name, help, (const char *)name,	\
		    types[type], (const char *)name,			\
		    (unsigned long long)s->f);
	STATS_FIELDS(STATS_PROM)
#undef STATS_PROM
	nfam = stats_render_families(s, fam);
	for (k = 0; k < nfam; k++) {
		r |= sbuf_printf(b, "# HELP %s %s\n# TYPE %s counter\n",
		    fam[k].name, fam[k].help, fam[k].name);
		for (i = fam[k].first; i < fam[k].n; i++)
			r |= sbuf_printf(b, "%s{%s=\"%s\"} %llu\n",
			    fam[k].name, fam[k].label,
			    fam[k].label_value[i],
			    (unsigned long long)fam[k].values[i]);
	}
	r |= sbuf_addstr(b, "# HELP sserelay_delivery_seconds Time from "
	    "receiving a message from Redis to handing its event's last byte "
	    "to a socket.\n# TYPE sserelay_delivery_seconds histogram\n");
	for (i = 0; i < STATS_BUCKETS; i++) {
		cum += s->delivery[i];
		r |= sbuf_printf(b, "sserelay_delivery_seconds_bucket"
		    "{le=\"%g\"} %llu\n", (double)stats_bounds[i] / 1e6,
		    (unsigned long long)cum);
	}
	cum += s->delivery[STATS_BUCKETS];
	r |= sbuf_printf(b, "sserelay_delivery_seconds_bucket{le=\"+Inf\"} "
	    "%llu\nsserelay_delivery_seconds_sum %.6f\n"
	    "sserelay_delivery_seconds_count %llu\n", (unsigned long long)cum,
	    (double)s->delivery_sum_us / 1e6, (unsigned long long)cum);
	return r ? -1 : 0;
}
