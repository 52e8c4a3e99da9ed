/*
 * options.c - every option in one table, and the typed parsers.
 *
 * A row says everything about one setting: its long option (also its key
 * in the file), short option, type and range, its field in struct config,
 * its default, whether SIGHUP applies it live, and its --help text.
 * config.c builds getopt_long's arrays, reads the file and diffs reloads
 * by walking the table; options_usage() prints --help from it.  Only the
 * cross-setting checks (config_parse_args) live elsewhere.
 *
 * A default is a string read by the row's own parser when config_init()
 * runs, so the value --help shows is, by construction, one the parser
 * takes.  A bad default is a broken invariant: fatalx.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "frame_format.h"
#include "log.h"
#include "options.h"
#include "redis_url.h"
#include "settings.h"
#include "util.h"

/* --help: options in the first 31 columns, text up to column 79 */
#define OPTIONS_TEXT_COLUMN	31
#define OPTIONS_WIDTH		79

/*
 * Where a row's value is kept.  sizeof and _Generic do not evaluate
 * their operand, so the null pointer is never dereferenced; _Generic on
 * the field's address tells an _Atomic unsigned from a plain one (on the
 * field itself, lvalue conversion would drop the qualifier).
 */
#define OPTIONS_FIELD(f)						\
	.offset = offsetof(struct config, f),				\
	.size = sizeof(((struct config *)NULL)->f),			\
	.atomic = _Generic(&((struct config *)NULL)->f,		\
	    _Atomic unsigned *: 1, default: 0)

/* CHOICE keeps the index of the word: the enums must follow the lists */
_Static_assert(FRAME_FORMAT_JSON == 0 && FRAME_FORMAT_RAW == 1,
    "options_formats[] follows enum frame_format");
_Static_assert(LOG_LEVEL_ERROR == 0 && LOG_LEVEL_WARN == 1 &&
    LOG_LEVEL_INFO == 2 && LOG_LEVEL_DEBUG == 3,
    "options_log_levels[] follows enum log_level");
_Static_assert(LOG_FORMAT_TEXT == 0 && LOG_FORMAT_JSON == 1,
    "options_log_formats[] follows enum log_format");

static const char *const options_formats[] = { "json", "raw", NULL };
static const char *const options_auths[] = { "none", "jwt", NULL };
static const char *const options_subscribes[] = { "pattern", "exact", NULL };
static const char *const options_histories[] = { "memory", "redis", NULL };
static const char *const options_cluster_pubsubs[] = {
	"sharded", "classic", NULL
};
static const char *const options_log_levels[] = {
	"error", "warn", "info", "debug", NULL
};
static const char *const options_log_formats[] = { "text", "json", NULL };
static const char *const options_jwt_algorithms[] = {
	"HS256", "HS384", "HS512", "RS256", "ES256", NULL
};

static int	options_check_cookie(const char *, char *, size_t);
static int	options_parse_metrics_listen(const struct options_entry *,
		    struct config *, const char *, char *, size_t);
static int	options_parse_log_level(const struct options_entry *,
		    struct config *, const char *, char *, size_t);
static int	options_set_channel(const struct options_entry *,
		    struct config *, const char *, char *, size_t);

/*
 * The rows, in --help order (a reload logs its changes in this order too).
 * Ranges are in the unit kept: milliseconds for MSEC and SEC_FRACTION,
 * bytes for BYTES and SIZE.
 */
static const struct options_entry options_entries[] = {
	{ .name = "config", .shortopt = 'c', .type = OPTIONS_COMMAND,
	  .shown = CONFIG_DEFAULT_FILE ", if it exists", .arg = "FILE",
	  .help = "read settings from FILE; flags override it" },
	{ .name = "check-config", .shortopt = 't', .type = OPTIONS_COMMAND,
	  .help = "check the configuration and exit: prints "
	  "'configuration OK' or the error" },

	{ .name = "listen", .shortopt = 'l', .type = OPTIONS_HOSTPORT,
	  OPTIONS_FIELD(listen_host),
	  .offset2 = offsetof(struct config, listen_port),
	  .def = "127.0.0.1:8080", .arg = "HOST:PORT",
	  .help = "address to serve HTTP on ([IPV6]:PORT, *:PORT for every "
	  "address)" },
	{ .name = "redis", .shortopt = 'r', .type = OPTIONS_REDIS_URL,
	  OPTIONS_FIELD(redis_url), .def = "redis://127.0.0.1:6379",
	  .arg = "URL", .help = "redis://[user:password@]host[:port][/db] or "
	  "unix:///path[?db=N]" },
	/* the password it gives is compared as part of redis_url */
	{ .name = "redis-password-file", .type = OPTIONS_STRING,
	  .flags = OPTIONS_NODIFF, OPTIONS_FIELD(password_file),
	  .arg = "FILE",
	  .help = "read the Redis password from FILE's first line" },
	{ .name = "redis-sentinel", .type = OPTIONS_LIST,
	  OPTIONS_FIELD(redis_sentinel), .def = "none",
	  .arg = "HOST:PORT,...",
	  .help = "ask these Redis Sentinels where the master is, instead of "
	  "connecting to --redis's host (whose password and db apply)" },
	{ .name = "redis-sentinel-master", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(redis_sentinel_master), .arg = "NAME",
	  .help = "the master's name at the sentinels" },
	{ .name = "redis-sentinel-password-file", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(sentinel_password_file), .arg = "FILE",
	  .help = "the sentinels' own password, from FILE's first line" },
	{ .name = "redis-cluster", .type = OPTIONS_LIST,
	  OPTIONS_FIELD(redis_cluster), .def = "none",
	  .arg = "HOST:PORT,...",
	  .help = "seed nodes of a Redis Cluster (implies --subscribe exact; "
	  "--redis's password applies)" },
	{ .name = "cluster-pubsub", .type = OPTIONS_CHOICE,
	  OPTIONS_FIELD(cluster_classic), .choices = options_cluster_pubsubs,
	  .def = "sharded",
	  .help = "sharded: SSUBSCRIBE on each channel's primary (publish "
	  "with SPUBLISH); classic: SUBSCRIBE on one node (PUBLISH)" },
	{ .name = "redis-timeout", .type = OPTIONS_MSEC,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(redis_timeout_ms),
	  .min = 100, .max = 600000, .def = "3000", .arg = "MS",
	  .help = "Redis connect timeout and PING deadline" },
	{ .name = "poll-timeout", .type = OPTIONS_MSEC,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(poll_ms),
	  .min = 1, .max = 10000, .def = "100", .arg = "MS",
	  .help = "Redis get_message poll timeout" },
	{ .name = "threads", .shortopt = 'T', .type = OPTIONS_NUMBER,
	  OPTIONS_FIELD(threads), .min = 0, .max = 256, .def = "0",
	  .shown = "0: one per core",
	  .arg = "N", .help = "writer threads: they write every stream" },
	{ .name = "heartbeat", .type = OPTIONS_SEC_FRACTION,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(heartbeat_ms),
	  .min = 100, .max = 3600000, .def = "15", .arg = "SECONDS",
	  .help = "': ping' comment interval per stream" },
	{ .name = "retry", .type = OPTIONS_MSEC,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(retry_ms),
	  .min = 0, .max = 86400000, .def = "3000", .arg = "MS",
	  .help = "'retry:' sent when a stream opens" },
	{ .name = "ring-size", .type = OPTIONS_NUMBER,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(ring_size),
	  .min = 2, .max = 1048576, .def = "256", .arg = "N",
	  .help = "events queued per stream before it is closed as too slow" },
	{ .name = "format", .shortopt = 'f', .type = OPTIONS_CHOICE,
	  OPTIONS_FIELD(format), .choices = options_formats, .def = "json",
	  .help = "event data format" },
	/*
	 * The kinds of channel (channel.h).  The aliases come first: their
	 * defaults make the kinds user and upload, in that order.
	 */
	{ .name = "user-prefix", .type = OPTIONS_CHANNEL,
	  OPTIONS_FIELD(channels), .kind = QUERY_USER,
	  .def = "user:", .arg = "PREFIX",
	  .help = "channel of ?user=U is PREFIX+U (--channel user=PREFIX)" },
	{ .name = "upload-prefix", .type = OPTIONS_CHANNEL,
	  OPTIONS_FIELD(channels), .kind = "upload",
	  .def = "upload:", .arg = "PREFIX",
	  .help = "channel of ?upload=A is PREFIX+A (--channel "
	  "upload=PREFIX)" },
	{ .name = "max-uploads", .type = OPTIONS_CHANNEL_MAX,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(channels), .kind = "upload",
	  .min = 1, .max = QUERY_UPLOADS_MAX, .def = "16", .arg = "N",
	  .help = "upload parameters per stream, 1-16 (--channel-max "
	  "upload=N)" },
	{ .name = "channel", .type = OPTIONS_CHANNEL,
	  .flags = OPTIONS_REPEAT, OPTIONS_FIELD(channels),
	  .shown = "user=user: upload=upload:", .arg = "NAME=PREFIX",
	  .help = "a kind of channel: ?NAME=ID subscribes to PREFIX+ID; "
	  "repeatable" },
	{ .name = "channel-max", .type = OPTIONS_CHANNEL_MAX,
	  .flags = OPTIONS_REPEAT | OPTIONS_LIVE, OPTIONS_FIELD(channels),
	  .min = 1, .max = QUERY_CHANNELS_MAX,
	  .shown = "user=1 upload=16, others 1", .arg = "NAME=N",
	  .help = "NAME parameters per stream; all kinds' and the broadcast "
	  "channels together at most 64; repeatable" },
	{ .name = "broadcast", .type = OPTIONS_BROADCAST,
	  .flags = OPTIONS_REPEAT, OPTIONS_FIELD(channels), .arg = "CHANNEL",
	  .help = "every stream also gets CHANNEL; repeatable" },
	{ .name = "max-connections", .type = OPTIONS_NUMBER,
	  OPTIONS_FIELD(max_connections), .min = 0, .max = 10000000,
	  .def = "0", .shown = "0: from the open-file limit", .arg = "N",
	  .help = "open connections at most" },
	{ .name = "conn-memory", .type = OPTIONS_BYTES,
	  OPTIONS_FIELD(conn_memory), .min = 2048, .max = 1048576,
	  .def = "6144", .arg = "BYTES",
	  .help = "memory pool per connection; the request must fit in about "
	  "40% of it, or it gets 431" },
	{ .name = "client-timeout", .type = OPTIONS_SEC,
	  OPTIONS_FIELD(client_timeout_s), .min = 0, .max = 86400,
	  .def = "60", .arg = "SECONDS",
	  .help = "close connections idle that long; streams waiting for "
	  "events are not idle; 0: never" },
	{ .name = "demo", .type = OPTIONS_FLAG, OPTIONS_FIELD(demo),
	  .def = "no", .help = "serve the demo page at /" },
	{ .name = "history", .type = OPTIONS_CHOICE,
	  OPTIONS_FIELD(history_redis), .choices = options_histories,
	  .def = "memory",
	  .help = "where history for Last-Event-ID resume is kept: memory "
	  "(this instance's) or redis (shared by every instance, kept "
	  "across restarts; publish with FCALL sserelay_publish)" },
	{ .name = "history-size", .type = OPTIONS_NUMBER,
	  OPTIONS_FIELD(history_size), .min = 0, .max = 100000,
	  .def = "100", .arg = "N",
	  .help = "messages kept per channel for Last-Event-ID resume; "
	  "0: none" },
	{ .name = "history-ttl", .type = OPTIONS_SEC,
	  OPTIONS_FIELD(history_ttl_s), .min = 1, .max = 86400,
	  .def = "300", .arg = "SECONDS",
	  .help = "how long a message is kept for resume" },
	{ .name = "history-memory", .type = OPTIONS_SIZE,
	  OPTIONS_FIELD(history_bytes), .min = 1LL << 20, .max = 64LL << 30,
	  .def = "64M", .arg = "BYTES",
	  .help = "all history together, at most (suffix k, M or G "
	  "allowed); oldest dropped first" },
	{ .name = "max-last", .type = OPTIONS_NUMBER,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(max_last),
	  .min = 0, .max = 1000, .def = "10", .arg = "N",
	  .help = "largest ?last=N a new stream may ask: the newest N "
	  "kept messages of each channel first; 0: off" },
	{ .name = "subscribe", .type = OPTIONS_CHOICE,
	  OPTIONS_FIELD(subscribe_exact), .choices = options_subscribes,
	  .def = "pattern",
	  .help = "pattern: PSUBSCRIBE to every channel of the prefixes; "
	  "exact: SUBSCRIBE only the channels of this instance's streams" },
	{ .name = "subscribe-linger", .type = OPTIONS_SEC,
	  OPTIONS_FIELD(subscribe_linger_s), .min = 0, .max = 86400,
	  .shown = "the history TTL", .arg = "SECONDS",
	  .help = "exact: how long a channel stays subscribed after its "
	  "last stream, so that a client coming back resumes" },
	{ .name = "presence", .type = OPTIONS_FLAG, .flags = OPTIONS_LIVE,
	  OPTIONS_FIELD(presence), .def = "no",
	  .help = "count who has streams open on each channel, in Redis, "
	  "for FCALL sserelay_presence" },
	{ .name = "presence-ttl", .type = OPTIONS_SEC,
	  OPTIONS_FIELD(presence_ttl_s), .min = 3, .max = 3600,
	  .def = "30", .arg = "SECONDS",
	  .help = "a dead instance's streams leave the presence answers "
	  "within this" },
	{ .name = "presence-events", .type = OPTIONS_FLAG,
	  OPTIONS_FIELD(presence_events), .def = "no",
	  .help = "tell each new stream who is there (event: presence), and "
	  "send event: join and event: leave to a channel's streams when "
	  "someone's first stream opens and her last one closes" },
	{ .name = "presence-grace", .type = OPTIONS_SEC,
	  OPTIONS_FIELD(presence_grace_s), .min = 0, .max = 3600,
	  .def = "5", .arg = "SECONDS",
	  .help = "how long after her last stream closes someone leaves (a "
	  "page reload is neither a leave nor a join)" },
	{ .name = "auth", .type = OPTIONS_CHOICE, OPTIONS_FIELD(auth_jwt),
	  .choices = options_auths, .def = "none",
	  .help = "who may open which stream" },
	{ .name = "jwt-algorithm", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(jwt_algorithm), .choices = options_jwt_algorithms,
	  .def = "HS256", .arg = "ALG",
	  .help = "HS256, HS384, HS512, RS256 or ES256" },
	{ .name = "jwt-key-file", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(jwt_key_file), .arg = "FILE",
	  .help = "the HS secret, or the RS/ES public key (PEM)" },
	{ .name = "jwt-cookie", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(jwt_cookie), .check = options_check_cookie,
	  .def = "sserelay_token", .arg = "NAME",
	  .help = "cookie that may carry the token" },
	{ .name = "jwt-issuer", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(jwt_issuer), .shown = "not checked", .arg = "ISS",
	  .help = "required iss claim" },
	{ .name = "jwt-audience", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(jwt_audience), .shown = "not checked", .arg = "AUD",
	  .help = "required aud claim" },
	{ .name = "jwt-claim", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(jwt_claim), .def = "sserelay", .arg = "NAME",
	  .help = "claim listing what a token may join: its 'uploads', and "
	  "NAME for each other kind but user" },
	{ .name = "jwt-leeway", .type = OPTIONS_SEC,
	  OPTIONS_FIELD(jwt_leeway_s), .min = 0, .max = 3600, .def = "30",
	  .arg = "SECONDS", .help = "clock skew allowed on exp and nbf" },
	{ .name = "cors-origin", .type = OPTIONS_LIST,
	  OPTIONS_FIELD(cors_origins), .def = "none", .arg = "LIST",
	  .help = "origins (comma-separated, exact) allowed to open streams "
	  "cross-origin" },
	{ .name = "trusted-proxy", .type = OPTIONS_LIST,
	  OPTIONS_FIELD(trusted_proxies), .def = "none", .arg = "LIST",
	  .help = "proxy addresses whose X-Forwarded-For is believed" },
	{ .name = "max-streams", .type = OPTIONS_NUMBER,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(max_streams),
	  .min = 0, .max = 10000000, .def = "0", .arg = "N",
	  .help = "open streams at most; 0: no limit" },
	{ .name = "max-streams-per-ip", .type = OPTIONS_NUMBER,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(max_streams_per_ip),
	  .min = 0, .max = 10000000, .def = "0", .arg = "N",
	  .help = "per client address; 0: no limit" },
	{ .name = "max-streams-per-user", .type = OPTIONS_NUMBER,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(max_streams_per_user),
	  .min = 0, .max = 10000000, .def = "0", .arg = "N",
	  .help = "per user; 0: no limit" },
	{ .name = "tls-cert", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(tls_cert), .arg = "FILE",
	  .help = "serve HTTPS with this certificate (PEM)" },
	{ .name = "tls-key", .type = OPTIONS_STRING,
	  OPTIONS_FIELD(tls_key), .arg = "FILE",
	  .help = "and this private key (PEM)" },
	/* metrics_listen keeps the text as given, for the logs */
	{ .name = "metrics-listen", .type = OPTIONS_HOSTPORT,
	  OPTIONS_FIELD(metrics_host),
	  .offset2 = offsetof(struct config, metrics_port),
	  .parse = options_parse_metrics_listen, .shown = "off",
	  .arg = "HOST:PORT",
	  .help = "serve /metrics and /healthz there instead of on --listen" },
	{ .name = "log-level", .shortopt = 'L', .type = OPTIONS_CHOICE,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(log_level),
	  .choices = options_log_levels, .parse = options_parse_log_level,
	  .def = "info", .arg = "LEVEL",
	  .help = "error, warn, info or debug" },
	{ .name = "log-format", .type = OPTIONS_CHOICE,
	  .flags = OPTIONS_LIVE, OPTIONS_FIELD(log_format),
	  .choices = options_log_formats, .def = "text",
	  .help = "text (for people) or json (one object per line, for a "
	  "log pipeline)" },

	{ .name = "version", .shortopt = 'V', .type = OPTIONS_COMMAND,
	  .help = "print the version and exit" },
	{ .name = "help", .shortopt = 'h', .type = OPTIONS_COMMAND,
	  .help = "print this help and exit" },
};

#define OPTIONS_COUNT	(sizeof(options_entries) / sizeof(options_entries[0]))

const struct options_entry *
options_table(size_t *count)
{
	*count = OPTIONS_COUNT;
	return options_entries;
}

const struct options_entry *
options_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < OPTIONS_COUNT; i++)
		if (strcmp(options_entries[i].name, name) == 0)
			return &options_entries[i];
	return NULL;
}

int
options_is_number(const struct options_entry *o)
{
	switch (o->type) {
	case OPTIONS_NUMBER:
	case OPTIONS_MSEC:
	case OPTIONS_SEC:
	case OPTIONS_BYTES:
	case OPTIONS_SEC_FRACTION:
	case OPTIONS_SIZE:
		return 1;
	default:
		return 0;
	}
}

/*
 * The address of o's field in c, after checking that the row and struct
 * config agree on its size: a row pointing at the wrong field would
 * otherwise write past it.  const is the caller's business.
 */
static void *
options_field(const struct options_entry *o, const struct config *c,
    size_t size)
{
	if (o->size != size)
		fatalx("options: '%s': its field is %zu bytes, its type "
		    "wants %zu", o->name, o->size, size);
	return (char *)(uintptr_t)c + o->offset;
}

static unsigned
options_uint_get(const struct options_entry *o, const struct config *c)
{
	void	*p = options_field(o, c, sizeof(unsigned));

	return o->atomic ? atomic_load((_Atomic unsigned *)p) :
	    *(unsigned *)p;
}

static void
options_uint_set(const struct options_entry *o, struct config *c,
    unsigned v)
{
	void	*p = options_field(o, c, sizeof(unsigned));

	if (o->atomic)
		atomic_store((_Atomic unsigned *)p, v);
	else
		*(unsigned *)p = v;
}

/* FLAG and CHOICE: an int, or an enum the size of one */
static int *
options_int(const struct options_entry *o, const struct config *c)
{
	return options_field(o, c, sizeof(int));
}

static char **
options_str(const struct options_entry *o, const struct config *c)
{
	return options_field(o, c, sizeof(char *));
}

static void
options_setstr(char **field, const char *v)
{
	free(*field);
	*field = v != NULL ? util_strdup(v) : NULL;
}

long long
options_number_get(const struct options_entry *o, const struct config *c)
{
	if (o->type == OPTIONS_SIZE)
		return (long long)*(size_t *)options_field(o, c,
		    sizeof(size_t));
	if (!options_is_number(o))
		fatalx("options: '%s' is not a number", o->name);
	return options_uint_get(o, c);
}

void
options_number_text(const struct options_entry *o, long long v, char *buf,
    size_t len)
{
	static const char	 suffix[] = "GMk";
	int			 i;

	if (o->type == OPTIONS_SEC_FRACTION && v >= 0 && v % 1000 != 0) {
		/* 100 ms is "0.1": three decimals, trailing zeros cut */
		snprintf(buf, len, "%lld.%03lld", v / 1000, v % 1000);
		while (buf[strlen(buf) - 1] == '0')
			buf[strlen(buf) - 1] = '\0';
		return;
	}
	if (o->type == OPTIONS_SEC_FRACTION) {
		snprintf(buf, len, "%lld", v / 1000);
		return;
	}
	if (o->type == OPTIONS_SIZE && v > 0) {
		/* the largest suffix that says it exactly: 64G, 1M, 1536k */
		for (i = 0; i < 3; i++) {
			long long unit = 1LL << (10 * (3 - i));

			if (v % unit == 0) {
				snprintf(buf, len, "%lld%c", v / unit,
				    suffix[i]);
				return;
			}
		}
	}
	snprintf(buf, len, "%lld", v);
}

/* seconds with up to three decimals, e.g. 15 or 0.5, into ms */
static int
options_seconds_ms(const char *s, long long min_ms, long long max_ms,
    unsigned *out)
{
	char	*end;
	double	 v;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0')
		return -1;
	/* rounded to the millisecond, then compared: 3600 is 3600000.5 */
	v = v * 1000.0 + 0.5;
	if (v < (double)min_ms || v >= (double)max_ms + 1.0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* bytes, with an optional k, M or G suffix (powers of 1024) */
static int
options_bytes(const char *s, unsigned long long min, unsigned long long max,
    size_t *out)
{
	char			*end;
	unsigned long long	 v, mul = 1;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = 1ULL << 10, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1ULL << 20, end++;
	else if (*end == 'g' || *end == 'G')
		mul = 1ULL << 30, end++;
	if (*end != '\0' || v > max / mul || v * mul < min)
		return -1;
	*out = (size_t)(v * mul);
	return 0;
}

static int
options_yesno(const char *s, int *out)
{
	if (strcmp(s, "yes") == 0 || strcmp(s, "on") == 0 ||
	    strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcmp(s, "no") == 0 || strcmp(s, "off") == 0 ||
	    strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* "HOST:PORT", "[V6]:PORT", "*:PORT" or "PORT" (then 127.0.0.1) */
static int
options_hostport(const char *s, char **hostp, int *portp)
{
	char	*host, *port, *dup;
	long	 n;

	dup = util_strdup(s);
	if (dup[0] == '[') {
		if ((port = strstr(dup, "]:")) == NULL)
			goto bad;
		*port = '\0';
		host = dup + 1;
		port += 2;
	} else if ((port = strrchr(dup, ':')) != NULL) {
		*port++ = '\0';
		host = dup;
	} else {
		host = "127.0.0.1";
		port = dup;
	}
	if (*host == '\0' || util_number(port, 1, 65535, &n) == -1)
		goto bad;
	free(*hostp);
	*hostp = util_strdup(host);
	*portp = (int)n;
	free(dup);
	return 0;
bad:
	free(dup);
	return -1;
}

/* "expected a, b or c, got 'v'" */
static int
options_choice_err(const struct options_entry *o, const char *v, char *err,
    size_t errlen)
{
	char	 list[256];
	size_t	 i, n = 0;

	list[0] = '\0';
	for (i = 0; o->choices[i] != NULL && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
		    i == 0 ? "" : o->choices[i + 1] == NULL ? " or " : ", ",
		    o->choices[i]);
	return util_err(err, errlen, "expected %s, got '%s'", list, v);
}

/* the index of v in o->choices, or -1 */
static int
options_choice(const struct options_entry *o, const char *v)
{
	int	 i;

	for (i = 0; o->choices[i] != NULL; i++)
		if (strcmp(o->choices[i], v) == 0)
			return i;
	return -1;
}

static const char *
options_unit(enum options_type type)
{
	switch (type) {
	case OPTIONS_MSEC:
		return "milliseconds from ";
	case OPTIONS_SEC:
	case OPTIONS_SEC_FRACTION:
		return "seconds from ";
	case OPTIONS_BYTES:
	case OPTIONS_SIZE:
		return "bytes from ";
	default:
		return "";
	}
}

static int
options_set_number(const struct options_entry *o, struct config *c,
    const char *v, char *err, size_t errlen)
{
	char		 lo[32], hi[32];
	unsigned	 ms;
	size_t		 bytes;
	long		 n;
	int		 r;

	switch (o->type) {
	case OPTIONS_SEC_FRACTION:
		if ((r = options_seconds_ms(v, o->min, o->max, &ms)) == 0)
			options_uint_set(o, c, ms);
		break;
	case OPTIONS_SIZE:
		r = options_bytes(v, (unsigned long long)o->min,
		    (unsigned long long)o->max, &bytes);
		if (r == 0)
			*(size_t *)options_field(o, c, sizeof(size_t)) = bytes;
		break;
	default:
		if ((r = util_number(v, (long)o->min, (long)o->max,
		    &n)) == 0)
			options_uint_set(o, c, (unsigned)n);
		break;
	}
	if (r == 0)
		return 0;
	options_number_text(o, o->min, lo, sizeof(lo));
	options_number_text(o, o->max, hi, sizeof(hi));
	return util_err(err, errlen, "expected %s%s to %s%s, got '%s'",
	    options_unit(o->type), lo, hi, o->type == OPTIONS_SIZE ?
	    " (suffix k, M or G allowed)" : "", v);
}

static struct channel_table *
options_channels(const struct options_entry *o, const struct config *c)
{
	return options_field(o, c, sizeof(struct channel_table));
}

int
options_takes_words(const struct options_entry *o)
{
	return (o->type == OPTIONS_CHANNEL ||
	    o->type == OPTIONS_CHANNEL_MAX) && o->kind == NULL;
}

/* a kind's maximum: a number from .min to .max */
static int
options_channel_max(const struct options_entry *o, struct config *c,
    const char *name, const char *v, char *err, size_t errlen)
{
	long	 n;

	if (util_number(v, (long)o->min, (long)o->max, &n) == -1)
		return util_err(err, errlen, "%s%sexpected %lld to %lld, "
		    "got '%s'", o->kind == NULL ? name : "",
		    o->kind == NULL ? ": " : "", o->min, o->max, v);
	return channel_kind_max(options_channels(o, c), name, (unsigned)n,
	    c->options_from, err, errlen);
}

/*
 * The words of a kind of channel: NAME PREFIX [MAX] or NAME N, the kind
 * of an alias first.  From the file (options_takes_words), or from
 * options_set, which splits the command line's NAME=VALUE.
 */
int
options_set_words(const struct options_entry *o, struct config *c,
    size_t argc, char **argv, char *err, size_t errlen)
{
	struct channel_table	*t;

	if (!options_takes_words(o) && o->kind == NULL) {
		if (argc != 1)
			return util_err(err, errlen, "expected one value");
		return options_set(o, c, argv[0], err, errlen);
	}
	t = options_channels(o, c);
	switch (o->type) {
	case OPTIONS_CHANNEL:
		if (argc < 2 || argc > 3)
			return util_err(err, errlen, "expected NAME PREFIX "
			    "[MAX]");
		if (channel_kind_prefix(t, argv[0], argv[1], c->options_from,
		    err, errlen) == -1)
			return -1;
		/* the file's MAX: checked as --channel-max checks it */
		return argc == 3 ? options_channel_max(options_find(
		    "channel-max"), c, argv[0], argv[2], err, errlen) : 0;
	case OPTIONS_CHANNEL_MAX:
		if (argc != 2)
			return util_err(err, errlen, "expected NAME N");
		return options_channel_max(o, c, argv[0], argv[1], err,
		    errlen);
	default:
		return util_err(err, errlen, "no such setting");
	}
}

/* the command line's (and a default's) value of a channel row */
static int
options_set_channel(const struct options_entry *o, struct config *c,
    const char *v, char *err, size_t errlen)
{
	char	*argv[2], *dup;
	int	 r;

	if (o->type == OPTIONS_BROADCAST)
		return channel_broadcast(options_channels(o, c), v,
		    c->options_from, err, errlen);
	if (o->kind != NULL) {
		argv[0] = (char *)(uintptr_t)o->kind;
		argv[1] = (char *)(uintptr_t)v;
		return options_set_words(o, c, 2, argv, err, errlen);
	}
	/* NAME=VALUE: a NAME has no '=', a prefix may */
	if (strchr(v, '=') == NULL)
		return util_err(err, errlen, "expected %s, got '%s'",
		    o->arg, v);
	dup = util_strdup(v);
	argv[0] = dup;
	argv[1] = strchr(dup, '=');
	*argv[1]++ = '\0';
	r = options_set_words(o, c, 2, argv, err, errlen);
	free(dup);
	return r;
}

int
options_set(const struct options_entry *o, struct config *c,
    const char *v, char *err, size_t errlen)
{
	struct redis_url u;
	char		 emsg[CONFIG_ERRLEN];
	int		 i;

	if (o->parse != NULL)
		return o->parse(o, c, v, err, errlen);
	switch (o->type) {
	case OPTIONS_COMMAND:
		break;
	case OPTIONS_NUMBER:
	case OPTIONS_MSEC:
	case OPTIONS_SEC:
	case OPTIONS_BYTES:
	case OPTIONS_SEC_FRACTION:
	case OPTIONS_SIZE:
		return options_set_number(o, c, v, err, errlen);
	case OPTIONS_FLAG:
		if (options_yesno(v, &i) == -1)
			return util_err(err, errlen, "expected yes or no, "
			    "got '%s'", v);
		*options_int(o, c) = i;
		return 0;
	case OPTIONS_CHOICE:
		if ((i = options_choice(o, v)) == -1)
			return options_choice_err(o, v, err, errlen);
		*options_int(o, c) = i;
		return 0;
	case OPTIONS_STRING:
		if (o->choices != NULL && options_choice(o, v) == -1)
			return options_choice_err(o, v, err, errlen);
		if (o->check != NULL && o->check(v, err, errlen) == -1)
			return -1;
		options_setstr(options_str(o, c), v);
		return 0;
	case OPTIONS_LIST:
		/* "none", as --help shows the default, unsets the list */
		options_setstr(options_str(o, c), strcmp(v, "none") == 0 ?
		    NULL : v);
		return 0;
	case OPTIONS_HOSTPORT:
		if (options_hostport(v, options_str(o, c),
		    (int *)((char *)c + o->offset2)) == -1)
			return util_err(err, errlen, "expected HOST:PORT, "
			    "[IPV6]:PORT or *:PORT, got '%s'", v);
		return 0;
	case OPTIONS_REDIS_URL:
		if (redis_url_parse(v, &u, emsg, sizeof(emsg)) == -1)
			return util_err(err, errlen, "%s", emsg);
		redis_url_free(options_field(o, c, sizeof(u)));
		*(struct redis_url *)options_field(o, c, sizeof(u)) = u;
		return 0;
	case OPTIONS_CHANNEL:
	case OPTIONS_CHANNEL_MAX:
	case OPTIONS_BROADCAST:
		return options_set_channel(o, c, v, err, errlen);
	}
	return util_err(err, errlen, "no such setting");
}

static int
options_check_cookie(const char *v, char *err, size_t errlen)
{
	if (strpbrk(v, " ;=,\"") != NULL)
		return util_err(err, errlen, "not a cookie name: '%s'", v);
	return 0;
}

static int
options_parse_metrics_listen(const struct options_entry *o, struct config *c,
    const char *v, char *err, size_t errlen)
{
	if (options_hostport(v, &c->metrics_host, &c->metrics_port) == -1)
		return util_err(err, errlen, "expected HOST:PORT, "
		    "[IPV6]:PORT or *:PORT, got '%s'", v);
	options_setstr(&c->metrics_listen, v);
	return 0;
}

/* log.c's parser: it also takes "warning" */
static int
options_parse_log_level(const struct options_entry *o, struct config *c,
    const char *v, char *err, size_t errlen)
{
	if (log_level_parse(v, &c->log_level) == -1)
		return options_choice_err(o, v, err, errlen);
	return 0;
}

void
options_init(struct config *c)
{
	char	 err[CONFIG_ERRLEN];
	size_t	 i;

	for (i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_entry *o = &options_entries[i];

		if (o->type == OPTIONS_COMMAND || o->def == NULL)
			continue;
		if (options_set(o, c, o->def, err, sizeof(err)) == -1)
			fatalx("options: the default of '%s' is refused: %s",
			    o->name, err);
	}
}

void
options_free(struct config *c)
{
	size_t	 i;

	for (i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_entry *o = &options_entries[i];

		switch (o->type) {
		case OPTIONS_STRING:
		case OPTIONS_LIST:
		case OPTIONS_HOSTPORT:
			options_setstr(options_str(o, c), NULL);
			break;
		case OPTIONS_REDIS_URL:
			redis_url_free(options_field(o, c,
			    sizeof(struct redis_url)));
			break;
		case OPTIONS_CHANNEL:
		case OPTIONS_CHANNEL_MAX:
		case OPTIONS_BROADCAST:
			/* several rows share it: a second free finds it empty */
			channel_table_free(options_channels(o, c));
			break;
		default:
			break;
		}
	}
}

static int
options_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
options_url_differs(const struct redis_url *a, const struct redis_url *b)
{
	return a->is_unix != b->is_unix || a->port != b->port ||
	    a->db != b->db || !options_streq(a->host, b->host) ||
	    !options_streq(a->path, b->path) ||
	    !options_streq(a->user, b->user) ||
	    !options_streq(a->password, b->password);
}

/*
 * Whether name is a kind some row of type sets alone (an alias): that
 * row compares and copies it, the row that names its kinds does not.
 */
static int
options_aliased(enum options_type type, const char *name)
{
	size_t	 i;

	for (i = 0; i < OPTIONS_COUNT; i++)
		if (options_entries[i].type == type &&
		    options_entries[i].kind != NULL &&
		    strcmp(options_entries[i].kind, name) == 0)
			return 1;
	return 0;
}

/* 1 if o compares the kind called name */
static int
options_covers(const struct options_entry *o, const char *name)
{
	if (o->kind != NULL)
		return strcmp(o->kind, name) == 0;
	return !options_aliased(o->type, name);
}

/* the kind a has and b has not, or has with another prefix */
static int
options_kind_differs(const struct options_entry *o,
    const struct channel_table *a, const struct channel_table *b)
{
	const struct channel_kind *ka, *kb;
	size_t		 i;

	for (i = 0; i < a->nkinds; i++) {
		ka = &a->kinds[i];
		if (!options_covers(o, ka->name))
			continue;
		kb = channel_kind_find(b, ka->name);
		if (o->type == OPTIONS_CHANNEL && (kb == NULL ||
		    !options_streq(ka->prefix, kb->prefix)))
			return 1;
		if (o->type == OPTIONS_CHANNEL_MAX && kb != NULL &&
		    atomic_load(&ka->max) != atomic_load(&kb->max))
			return 1;
	}
	return 0;
}

/* a's broadcast channels not all in b */
static int
options_broadcasts_differ(const struct channel_table *a,
    const struct channel_table *b)
{
	size_t	 i, j;

	for (i = 0; i < a->nbroadcasts; i++) {
		for (j = 0; j < b->nbroadcasts; j++)
			if (strcmp(a->broadcasts[i], b->broadcasts[j]) == 0)
				break;
		if (j == b->nbroadcasts)
			return 1;
	}
	return 0;
}

int
options_differs(const struct options_entry *o, const struct config *a,
    const struct config *b)
{
	if (o->flags & OPTIONS_NODIFF)
		return 0;
	switch (o->type) {
	case OPTIONS_COMMAND:
		return 0;
	case OPTIONS_NUMBER:
	case OPTIONS_MSEC:
	case OPTIONS_SEC:
	case OPTIONS_BYTES:
	case OPTIONS_SEC_FRACTION:
	case OPTIONS_SIZE:
		return options_number_get(o, a) != options_number_get(o, b);
	case OPTIONS_FLAG:
	case OPTIONS_CHOICE:
		return *options_int(o, a) != *options_int(o, b);
	case OPTIONS_STRING:
	case OPTIONS_LIST:
		return !options_streq(*options_str(o, a), *options_str(o, b));
	case OPTIONS_HOSTPORT:
		return !options_streq(*options_str(o, a), *options_str(o, b)) ||
		    *(const int *)((const char *)a + o->offset2) !=
		    *(const int *)((const char *)b + o->offset2);
	case OPTIONS_REDIS_URL:
		return options_url_differs(options_field(o, a,
		    sizeof(struct redis_url)), options_field(o, b,
		    sizeof(struct redis_url)));
	case OPTIONS_CHANNEL:
	case OPTIONS_CHANNEL_MAX:
		return options_kind_differs(o, options_channels(o, a),
		    options_channels(o, b)) || options_kind_differs(o,
		    options_channels(o, b), options_channels(o, a));
	case OPTIONS_BROADCAST:
		return options_broadcasts_differ(options_channels(o, a),
		    options_channels(o, b)) || options_broadcasts_differ(
		    options_channels(o, b), options_channels(o, a));
	}
	return 0;
}

/*
 * The maxima of the kinds both have (a kind only one has needs a
 * restart, which the channel rows say).  Atomic: the workers read them
 * for every request.  A stream's channels stay bounded whatever they
 * add up to: the query refuses past QUERY_CHANNELS_MAX (query.c).
 */
static void
options_copy_maxima(const struct options_entry *o, struct channel_table *run,
    const struct channel_table *next)
{
	struct channel_kind	*k;
	size_t			 i;

	for (i = 0; i < next->nkinds; i++)
		if (options_covers(o, next->kinds[i].name) &&
		    (k = channel_kind_find(run, next->kinds[i].name)) != NULL)
			atomic_store(&k->max, atomic_load(&next->kinds[i].max));
}

void
options_copy(const struct options_entry *o, struct config *run,
    const struct config *next)
{
	if (!(o->flags & OPTIONS_LIVE))
		fatalx("options: '%s' is not live", o->name);
	switch (o->type) {
	case OPTIONS_NUMBER:
	case OPTIONS_MSEC:
	case OPTIONS_SEC:
	case OPTIONS_BYTES:
	case OPTIONS_SEC_FRACTION:
		/* other threads read it while main writes it */
		if (!o->atomic)
			fatalx("options: '%s' is live but not _Atomic",
			    o->name);
		options_uint_set(o, run, options_uint_get(o, next));
		return;
	case OPTIONS_FLAG:
	case OPTIONS_CHOICE:
		/* --presence: the control thread reads it */
		if (o->atomic)
			options_uint_set(o, run, options_uint_get(o, next));
		else
			*options_int(o, run) = *options_int(o, next);
		return;
	case OPTIONS_CHANNEL_MAX:
		options_copy_maxima(o, options_channels(o, run),
		    options_channels(o, next));
		return;
	default:
		/* a pointer cannot be swapped under readers without a lock */
		fatalx("options: '%s' is live, its type cannot be", o->name);
	}
}

/* "  -l, --listen HOST:PORT", "      --demo[=yes|no]" */
static void
options_usage_head(const struct options_entry *o, char *buf, size_t len)
{
	size_t	 i, n;

	if (o->shortopt != 0)
		n = (size_t)snprintf(buf, len, "  -%c, --%s", o->shortopt,
		    o->name);
	else
		n = (size_t)snprintf(buf, len, "      --%s", o->name);
	if (n >= len)
		return;
	if (o->type == OPTIONS_FLAG)
		snprintf(buf + n, len - n, "[=yes|no]");
	else if (o->arg != NULL)
		snprintf(buf + n, len - n, " %s", o->arg);
	else if (o->type == OPTIONS_CHOICE) {
		/* "json|raw" */
		for (i = 0; o->choices[i] != NULL && n < len; i++)
			n += (size_t)snprintf(buf + n, len - n, "%s%s",
			    i == 0 ? " " : "|", o->choices[i]);
	}
}

/*
 * One row of --help: the option, then its text, its default in brackets
 * and "(reload)" when SIGHUP applies it, wrapped at spaces so that no line
 * passes OPTIONS_WIDTH.  A word that starts with '-' never starts a line:
 * readers of --help (tests/docs.t, tests/config.t) take a line that starts
 * with blanks and "--" for the next option.
 */
static void
options_usage_row(FILE *fp, const struct options_entry *o)
{
	char		 head[128], text[1024], *p, *end;
	const char	*shown = o->shown != NULL ? o->shown : o->def;
	size_t		 col, len;

	options_usage_head(o, head, sizeof(head));
	snprintf(text, sizeof(text), "%s%s%s%s%s", o->help,
	    shown != NULL ? " [" : "", shown != NULL ? shown : "",
	    shown != NULL ? "]" : "",
	    (o->flags & OPTIONS_LIVE) ? " (reload)" : "");
	fputs(head, fp);
	col = strlen(head);
	if (col + 1 > OPTIONS_TEXT_COLUMN) {
		fputc('\n', fp);
		col = 0;
	}
	fprintf(fp, "%*s", (int)(OPTIONS_TEXT_COLUMN - col), "");
	col = OPTIONS_TEXT_COLUMN;
	for (p = text; *p != '\0'; p = *end == ' ' ? end + 1 : end) {
		/* the next unit: a word, and the "-words" that follow it */
		end = p + strcspn(p, " ");
		while (end[0] == ' ' && end[1] == '-')
			end += 1 + strcspn(end + 1, " ");
		len = (size_t)(end - p);
		if (col > OPTIONS_TEXT_COLUMN && col + 1 + len > OPTIONS_WIDTH) {
			fprintf(fp, "\n%*s", OPTIONS_TEXT_COLUMN, "");
			col = OPTIONS_TEXT_COLUMN;
		}
		if (col > OPTIONS_TEXT_COLUMN) {
			fputc(' ', fp);
			col++;
		}
		fwrite(p, 1, len, fp);
		col += len;
	}
	fputc('\n', fp);
}

void
options_usage(FILE *fp)
{
	size_t	 i;

	fputs("usage: sserelay [-t] [-c FILE] [options]\n"
	    "Relay Redis pub/sub messages to browsers as Server-Sent "
	    "Events.\n\n", fp);
	for (i = 0; i < OPTIONS_COUNT; i++)
		options_usage_row(fp, &options_entries[i]);
	fputs("\n"
	    "Every long option but --config, --check-config, --version and "
	    "--help\n"
	    "is also a configuration file key: 'heartbeat 15'.  --channel, "
	    "--channel-max\n"
	    "and --broadcast may be repeated; in the file they are one line "
	    "each:\n"
	    "'channel NAME PREFIX [MAX]', 'channel-max NAME N', 'broadcast "
	    "CHANNEL'.\n"
	    "(reload) marks the settings a SIGHUP changes in the running "
	    "daemon;\n"
	    "a changed value of any other needs a restart.\n"
	    "Environment: SSERELAY_REDIS_PASSWORD is the Redis password when "
	    "neither\n"
	    "the URL nor --redis-password-file gives one.\n", fp);
}
