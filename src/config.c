/*
 * config.c - defaults, command-line parsing and validation.
 *
 * Every setting lives in struct config; main.c applies it.  Errors name the
 * option and the problem in one line, and parsing never falls back to a
 * default for a value it could not read.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "secret.h"

#define DEFAULT_REDIS	"redis://127.0.0.1:6379"
/* a password file: its first line is the password */
#define CONFIG_PASSWORD_FILE_MAX	(64 * 1024)

static char *
config_strdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

void
config_init(struct config *c)
{
	long	 n;

	memset(c, 0, sizeof(*c));
	c->listen_host = config_strdup("127.0.0.1");
	c->listen_port = 8080;
	c->redis = config_strdup(DEFAULT_REDIS);
	if (config_redis_url_parse(DEFAULT_REDIS, &c->redis_url, NULL, 0) == -1)
		fatalx("default redis url");
	c->redis_timeout_ms = 3000;
	c->poll_ms = 100;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	c->threads = n > 0 ? (unsigned)n : 1;
	c->heartbeat_ms = 15000;
	c->retry_ms = 3000;
	c->ring_size = 256;
	c->format = FRAME_FORMAT_JSON;
	c->user_prefix = config_strdup("user:");
	c->upload_prefix = config_strdup("upload:");
	c->max_uploads = 16;
	c->max_connections = 0;
	c->conn_memory = 6144;
	c->client_timeout_s = 60;
	c->jwt_algorithm = config_strdup("HS256");
	c->jwt_cookie = config_strdup("sserelay_token");
	c->jwt_claim = config_strdup("sserelay");
	c->jwt_leeway_s = 30;
	c->history_size = 100;
	c->history_ttl_s = 300;
	c->history_bytes = 64 << 20;
	c->log_level = LOG_LEVEL_INFO;
}

void
config_redis_url_free(struct redis_url *u)
{
	free(u->host);
	free(u->path);
	free(u->user);
	if (u->password != NULL) {
		explicit_bzero(u->password, strlen(u->password));
		free(u->password);
	}
	memset(u, 0, sizeof(*u));
}

void
config_free(struct config *c)
{
	free(c->config_file);
	free(c->password_file);
	free(c->listen_host);
	free(c->redis);
	config_redis_url_free(&c->redis_url);
	free(c->user_prefix);
	free(c->upload_prefix);
	free(c->jwt_algorithm);
	free(c->jwt_key_file);
	free(c->jwt_cookie);
	free(c->jwt_issuer);
	free(c->jwt_audience);
	free(c->jwt_claim);
	free(c->cors_origins);
	free(c->trusted_proxies);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->metrics_listen);
	free(c->metrics_host);
	memset(c, 0, sizeof(*c));
}

static int
config_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* decode %XX in place; -1 on a bad escape */
static int
config_pct_decode(char *s)
{
	char	*r = s, *w = s;

	while (*r) {
		if (*r == '%') {
			if (!isxdigit((unsigned char)r[1]) ||
			    !isxdigit((unsigned char)r[2]))
				return -1;
			char hex[3] = { r[1], r[2], '\0' };
			*w++ = (char)strtol(hex, NULL, 16);
			if (w[-1] == '\0')
				return -1;
			r += 3;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return 0;
}

static int
config_number(const char *s, long min, long max, long *out)
{
	char	*end;
	long	 v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
config_redis_url_parse(const char *url, struct redis_url *u, char *err,
    size_t errlen)
{
	char	*s = NULL, *p, *at, *slash, *colon, *q;
	long	 n;

	memset(u, 0, sizeof(*u));
	if (url == NULL || *url == '\0')
		return config_err(err, errlen, "empty Redis URL");
	if (strncmp(url, "unix://", 7) == 0) {
		u->is_unix = 1;
		s = config_strdup(url + 7);
		if ((q = strchr(s, '?')) != NULL) {
			*q++ = '\0';
			if (strncmp(q, "db=", 3) != 0 ||
			    config_number(q + 3, 0, INT_MAX, &n) == -1) {
				config_err(err, errlen, "bad query in Redis URL "
				    "(only ?db=N is understood): %s", url);
				goto bad;
			}
			u->db = (int)n;
		}
		if (s[0] != '/') {
			config_err(err, errlen, "Redis unix URL needs an "
			    "absolute path (unix:///path): %s", url);
			goto bad;
		}
		u->path = config_strdup(s);
		free(s);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0) {
		config_err(err, errlen, "Redis URL must start with redis:// or "
		    "unix://: %s", url);
		goto bad;
	}
	s = config_strdup(url + 8);
	p = s;
	if ((at = strrchr(p, '@')) != NULL) {
		*at = '\0';
		if ((colon = strchr(p, ':')) != NULL) {
			*colon = '\0';
			if (*p != '\0')
				u->user = config_strdup(p);
			u->password = config_strdup(colon + 1);
		} else
			u->password = config_strdup(p);
		if ((u->user && config_pct_decode(u->user) == -1) ||
		    config_pct_decode(u->password) == -1) {
			config_err(err, errlen, "bad %%-escape in Redis URL "
			    "credentials");
			goto bad;
		}
		if (*u->password == '\0') {
			free(u->password);
			u->password = NULL;
		}
		p = at + 1;
	}
	if ((slash = strchr(p, '/')) != NULL) {
		*slash = '\0';
		if (slash[1] != '\0' &&
		    config_number(slash + 1, 0, INT_MAX, &n) == -1) {
			config_err(err, errlen, "bad database number in Redis "
			    "URL: %s", slash + 1);
			goto bad;
		}
		u->db = slash[1] ? (int)n : 0;
	}
	u->port = 6379;
	if (*p == '[') {
		if ((q = strchr(p, ']')) == NULL) {
			config_err(err, errlen, "bad IPv6 host in Redis URL");
			goto bad;
		}
		*q = '\0';
		u->host = config_strdup(p + 1);
		colon = q[1] == ':' ? q + 1 : NULL;
		if (q[1] != '\0' && colon == NULL) {
			config_err(err, errlen, "bad host in Redis URL");
			goto bad;
		}
	} else {
		if ((colon = strrchr(p, ':')) != NULL)
			*colon = '\0';
		u->host = config_strdup(p);
	}
	if (colon != NULL && config_number(colon + 1, 1, 65535, &n) == -1) {
		config_err(err, errlen, "bad port in Redis URL: %s",
		    colon + 1);
		goto bad;
	}
	if (colon != NULL)
		u->port = (int)n;
	if (*u->host == '\0') {
		config_err(err, errlen, "missing host in Redis URL");
		goto bad;
	}
	free(s);
	return 0;
bad:
	free(s);
	config_redis_url_free(u);
	return -1;
}

/* "HOST:PORT", "[V6]:PORT", "*:PORT" or "PORT" (then 127.0.0.1) */
static int
config_hostport(const char *s, char **hostp, int *portp)
{
	char	*host, *port, *dup;
	long	 n;

	dup = config_strdup(s);
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
	if (*host == '\0' || config_number(port, 1, 65535, &n) == -1)
		goto bad;
	free(*hostp);
	*hostp = config_strdup(host);
	*portp = (int)n;
	free(dup);
	return 0;
bad:
	free(dup);
	return -1;
}

static int
config_listen_parse(struct config *c, const char *s, char *err, size_t errlen)
{
	if (config_hostport(s, &c->listen_host, &c->listen_port) == -1)
		return config_err(err, errlen, "--listen: expected HOST:PORT, "
		    "[IPV6]:PORT or *:PORT, got '%s'", s);
	return 0;
}

/* seconds with up to three decimals, e.g. 15 or 0.5, into ms */
static int
config_seconds_ms(const char *s, unsigned min_ms, unsigned max_ms,
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
	/*
	 * Rounded to the millisecond, then compared: compared before the
	 * cut, the 0.5 added to round made the maximum itself too large.
	 */
	v = v * 1000.0 + 0.5;
	if (v < min_ms || v >= (double)max_ms + 1.0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/*
 * The first line of the password file, into the URL's password.  The
 * file's bytes are wiped whatever happens.
 */
static int
config_read_password_file(struct config *c, const char *path, char *err,
    size_t errlen)
{
	char	 emsg[CONFIG_ERRLEN], *buf;
	size_t	 len, n;

	if ((buf = secret_read_file(path, CONFIG_PASSWORD_FILE_MAX, &len, emsg,
	    sizeof(emsg))) == NULL)
		return config_err(err, errlen, "--redis-password-file: %s",
		    emsg);
	if ((n = strcspn(buf, "\r\n")) == 0) {
		secret_free(buf, len);
		return config_err(err, errlen, "--redis-password-file: %s: "
		    "empty password", path);
	}
	buf[n] = '\0';
	if (c->redis_url.password != NULL) {
		explicit_bzero(c->redis_url.password,
		    strlen(c->redis_url.password));
		free(c->redis_url.password);
	}
	c->redis_url.password = config_strdup(buf);
	secret_free(buf, len);
	return 0;
}

/* the URL as shown in logs and /healthz: never the password */
static void
config_redis_display(struct config *c)
{
	struct redis_url *u = &c->redis_url;
	char		 buf[1024];

	if (u->is_unix)
		snprintf(buf, sizeof(buf), "unix://%s%s%.0d", u->path,
		    u->db ? "?db=" : "", u->db);
	else
		snprintf(buf, sizeof(buf), "redis://%s%s%s%s%s:%d/%d",
		    u->user ? u->user : "", u->password ? ":***" : "",
		    u->user || u->password ? "@" : "",
		    strchr(u->host, ':') ? "[" : "", u->host, u->port, u->db);
	if (!u->is_unix && strchr(u->host, ':')) {
		/* close the IPv6 bracket after the host */
		char	*h = strstr(buf, u->host);
		snprintf(h, sizeof(buf) - (size_t)(h - buf), "%s]:%d/%d",
		    u->host, u->port, u->db);
	}
	free(c->redis);
	c->redis = config_strdup(buf);
}

enum {
	OPT_REDIS_PASSWORD_FILE = 256,
	OPT_REDIS_TIMEOUT,
	OPT_POLL_TIMEOUT,
	OPT_HEARTBEAT,
	OPT_RETRY,
	OPT_RING_SIZE,
	OPT_USER_PREFIX,
	OPT_UPLOAD_PREFIX,
	OPT_MAX_UPLOADS,
	OPT_MAX_CONNECTIONS,
	OPT_CONN_MEMORY,
	OPT_CLIENT_TIMEOUT,
	OPT_DEMO,
	OPT_HISTORY_SIZE,
	OPT_HISTORY_TTL,
	OPT_HISTORY_MEMORY,
	OPT_AUTH,
	OPT_JWT_ALGORITHM,
	OPT_JWT_KEY_FILE,
	OPT_JWT_COOKIE,
	OPT_JWT_ISSUER,
	OPT_JWT_AUDIENCE,
	OPT_JWT_CLAIM,
	OPT_JWT_LEEWAY,
	OPT_CORS_ORIGIN,
	OPT_TRUSTED_PROXY,
	OPT_MAX_STREAMS,
	OPT_MAX_STREAMS_PER_IP,
	OPT_MAX_STREAMS_PER_USER,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_METRICS_LISTEN,
};

/*
 * Every setting: its long option, which is also its key in the file, and
 * whether a SIGHUP can change it in a running daemon.
 */
static const struct config_key {
	const char	*name;
	int		 id;
	int		 has_arg;
	int		 live;
} config_keys[] = {
	{ "listen",		 'l', 1, 0 },
	{ "redis",		 'r', 1, 0 },
	{ "redis-password-file", OPT_REDIS_PASSWORD_FILE, 1, 0 },
	{ "redis-timeout",	 OPT_REDIS_TIMEOUT, 1, 1 },
	{ "poll-timeout",	 OPT_POLL_TIMEOUT, 1, 1 },
	{ "threads",		 'T', 1, 0 },
	{ "heartbeat",		 OPT_HEARTBEAT, 1, 1 },
	{ "retry",		 OPT_RETRY, 1, 1 },
	{ "ring-size",		 OPT_RING_SIZE, 1, 1 },
	{ "format",		 'f', 1, 0 },
	{ "user-prefix",	 OPT_USER_PREFIX, 1, 0 },
	{ "upload-prefix",	 OPT_UPLOAD_PREFIX, 1, 0 },
	{ "max-uploads",	 OPT_MAX_UPLOADS, 1, 1 },
	{ "max-connections",	 OPT_MAX_CONNECTIONS, 1, 0 },
	{ "conn-memory",	 OPT_CONN_MEMORY, 1, 0 },
	{ "client-timeout",	 OPT_CLIENT_TIMEOUT, 1, 0 },
	{ "demo",		 OPT_DEMO, 0, 0 },
	{ "history-size",	 OPT_HISTORY_SIZE, 1, 0 },
	{ "history-ttl",	 OPT_HISTORY_TTL, 1, 0 },
	{ "history-memory",	 OPT_HISTORY_MEMORY, 1, 0 },
	{ "auth",		 OPT_AUTH, 1, 0 },
	{ "jwt-algorithm",	 OPT_JWT_ALGORITHM, 1, 0 },
	{ "jwt-key-file",	 OPT_JWT_KEY_FILE, 1, 0 },
	{ "jwt-cookie",		 OPT_JWT_COOKIE, 1, 0 },
	{ "jwt-issuer",		 OPT_JWT_ISSUER, 1, 0 },
	{ "jwt-audience",	 OPT_JWT_AUDIENCE, 1, 0 },
	{ "jwt-claim",		 OPT_JWT_CLAIM, 1, 0 },
	{ "jwt-leeway",		 OPT_JWT_LEEWAY, 1, 0 },
	{ "cors-origin",	 OPT_CORS_ORIGIN, 1, 0 },
	{ "trusted-proxy",	 OPT_TRUSTED_PROXY, 1, 0 },
	{ "max-streams",	 OPT_MAX_STREAMS, 1, 1 },
	{ "max-streams-per-ip",	 OPT_MAX_STREAMS_PER_IP, 1, 1 },
	{ "max-streams-per-user", OPT_MAX_STREAMS_PER_USER, 1, 1 },
	{ "tls-cert",		 OPT_TLS_CERT, 1, 0 },
	{ "tls-key",		 OPT_TLS_KEY, 1, 0 },
	{ "metrics-listen",	 OPT_METRICS_LISTEN, 1, 0 },
	{ "log-level",		 'L', 1, 1 },
	{ NULL, 0, 0, 0 },
};

static const struct option config_longopts[] = {
	{ "config",		required_argument, NULL, 'c' },
	{ "check-config",	no_argument,	   NULL, 't' },
	{ "listen",		required_argument, NULL, 'l' },
	{ "redis",		required_argument, NULL, 'r' },
	{ "redis-password-file", required_argument, NULL,
	    OPT_REDIS_PASSWORD_FILE },
	{ "redis-timeout",	required_argument, NULL, OPT_REDIS_TIMEOUT },
	{ "poll-timeout",	required_argument, NULL, OPT_POLL_TIMEOUT },
	{ "threads",		required_argument, NULL, 'T' },
	{ "heartbeat",		required_argument, NULL, OPT_HEARTBEAT },
	{ "retry",		required_argument, NULL, OPT_RETRY },
	{ "ring-size",		required_argument, NULL, OPT_RING_SIZE },
	{ "format",		required_argument, NULL, 'f' },
	{ "user-prefix",	required_argument, NULL, OPT_USER_PREFIX },
	{ "upload-prefix",	required_argument, NULL, OPT_UPLOAD_PREFIX },
	{ "max-uploads",	required_argument, NULL, OPT_MAX_UPLOADS },
	{ "max-connections",	required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "conn-memory",	required_argument, NULL, OPT_CONN_MEMORY },
	{ "client-timeout",	required_argument, NULL, OPT_CLIENT_TIMEOUT },
	{ "demo",		optional_argument, NULL, OPT_DEMO },
	{ "history-size",	required_argument, NULL, OPT_HISTORY_SIZE },
	{ "history-ttl",	required_argument, NULL, OPT_HISTORY_TTL },
	{ "history-memory",	required_argument, NULL, OPT_HISTORY_MEMORY },
	{ "auth",		required_argument, NULL, OPT_AUTH },
	{ "jwt-algorithm",	required_argument, NULL, OPT_JWT_ALGORITHM },
	{ "jwt-key-file",	required_argument, NULL, OPT_JWT_KEY_FILE },
	{ "jwt-cookie",		required_argument, NULL, OPT_JWT_COOKIE },
	{ "jwt-issuer",		required_argument, NULL, OPT_JWT_ISSUER },
	{ "jwt-audience",	required_argument, NULL, OPT_JWT_AUDIENCE },
	{ "jwt-claim",		required_argument, NULL, OPT_JWT_CLAIM },
	{ "jwt-leeway",		required_argument, NULL, OPT_JWT_LEEWAY },
	{ "cors-origin",	required_argument, NULL, OPT_CORS_ORIGIN },
	{ "trusted-proxy",	required_argument, NULL, OPT_TRUSTED_PROXY },
	{ "max-streams",	required_argument, NULL, OPT_MAX_STREAMS },
	{ "max-streams-per-ip",	required_argument, NULL,
	    OPT_MAX_STREAMS_PER_IP },
	{ "max-streams-per-user", required_argument, NULL,
	    OPT_MAX_STREAMS_PER_USER },
	{ "tls-cert",		required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key",		required_argument, NULL, OPT_TLS_KEY },
	{ "metrics-listen",	required_argument, NULL, OPT_METRICS_LISTEN },
	{ "log-level",		required_argument, NULL, 'L' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

#define CONFIG_SHORTOPTS	":c:tl:r:T:f:L:Vh"

void
config_usage(FILE *fp)
{
	fprintf(fp,
"usage: sserelay [-t] [-c FILE] [options]\n"
"Relay Redis pub/sub messages to browsers as Server-Sent Events.\n"
"\n"
"  -c, --config FILE            read settings from FILE; flags override it\n"
"                               [" CONFIG_DEFAULT_FILE ", if it exists]\n"
"  -t, --check-config           check the configuration, print\n"
"                               'configuration OK' or the error, and exit\n"
"  -l, --listen HOST:PORT       address to serve HTTP on [127.0.0.1:8080]\n"
"                               ([IPV6]:PORT, *:PORT for every address)\n"
"  -r, --redis URL              redis://[user:password@]host[:port][/db] or\n"
"                               unix:///path[?db=N] [" DEFAULT_REDIS "]\n"
"      --redis-password-file FILE\n"
"                               read the Redis password from FILE's first line\n"
"      --redis-timeout MS       Redis connect timeout and PING deadline [3000]\n"
"      --poll-timeout MS        Redis get_message poll timeout [100]\n"
"  -T, --threads N              HTTP worker threads [number of cores]\n"
"      --heartbeat SECONDS      ': ping' comment interval per stream [15]\n"
"      --retry MS               'retry:' sent when a stream opens [3000]\n"
"      --ring-size N            events queued per stream before it is\n"
"                               closed as too slow [256]\n"
"  -f, --format json|raw        event data format [json]\n"
"      --user-prefix PREFIX     channel of ?user=U is PREFIX+U [user:]\n"
"      --upload-prefix PREFIX   channel of ?upload=A is PREFIX+A [upload:]\n"
"      --max-uploads N          upload parameters per stream, 1-16 [16]\n"
"      --max-connections N      open connections at most [0: from the\n"
"                               open-file limit]\n"
"      --conn-memory BYTES      memory pool per connection; the request must\n"
"                               fit in about 40%% of it, or it gets 431 [6144]\n"
"      --client-timeout SECONDS close connections idle that long; streams\n"
"                               waiting for events are not idle; 0: never [60]\n"
"      --demo[=yes|no]          serve the demo page at / [no]\n"
"      --history-size N         messages kept per channel for Last-Event-ID\n"
"                               resume; 0: none [100]\n"
"      --history-ttl SECONDS    how long a message is kept for resume [300]\n"
"      --history-memory BYTES   all history together, at most (suffix k, M\n"
"                               or G allowed); oldest dropped first [64M]\n"
"      --auth none|jwt          who may open which stream [none]\n"
"      --jwt-algorithm ALG      HS256, HS384, HS512, RS256 or ES256 [HS256]\n"
"      --jwt-key-file FILE      the HS secret, or the RS/ES public key (PEM)\n"
"      --jwt-cookie NAME        cookie that may carry the token\n"
"                               [sserelay_token]\n"
"      --jwt-issuer ISS         required iss claim [not checked]\n"
"      --jwt-audience AUD       required aud claim [not checked]\n"
"      --jwt-claim NAME         claim whose 'uploads' list the uploads a\n"
"                               token may join [sserelay]\n"
"      --jwt-leeway SECONDS     clock skew allowed on exp and nbf [30]\n"
"      --cors-origin LIST       origins (comma-separated, exact) allowed to\n"
"                               open streams cross-origin [none]\n"
"      --trusted-proxy LIST     proxy addresses whose X-Forwarded-For is\n"
"                               believed [none]\n"
"      --max-streams N          open streams at most; 0: no limit [0]\n"
"      --max-streams-per-ip N   per client address; 0: no limit [0]\n"
"      --max-streams-per-user N per user; 0: no limit [0]\n"
"      --tls-cert FILE          serve HTTPS with this certificate (PEM)\n"
"      --tls-key FILE           and this private key (PEM)\n"
"      --metrics-listen HOST:PORT\n"
"                               serve /metrics and /healthz there instead\n"
"                               of on --listen [off]\n"
"  -L, --log-level LEVEL        error, warn, info or debug [info]\n"
"  -V, --version                print the version and exit\n"
"  -h, --help                   print this help and exit\n"
"\n"
"Every long option is also a configuration file key: 'heartbeat 15'.\n"
"Environment: SSERELAY_REDIS_PASSWORD is the Redis password when neither\n"
"the URL nor --redis-password-file gives one.\n");
}

static const struct config_key *
config_key_by_id(int id)
{
	const struct config_key *k;

	for (k = config_keys; k->name != NULL; k++)
		if (k->id == id)
			return k;
	return NULL;
}

static const struct config_key *
config_key_by_name(const char *name)
{
	const struct config_key *k;

	for (k = config_keys; k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static int
config_setstr(char **field, const char *v)
{
	free(*field);
	*field = config_strdup(v);
	return 0;
}

/* bytes, with an optional k, M or G suffix (powers of 1024) */
static int
config_bytes(const char *s, size_t min, size_t max, size_t *out)
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
config_yesno(const char *s, int *out)
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

/*
 * Apply one setting.  err gets the problem without the option's name
 * (the caller says "--name" or "FILE:LINE: name").
 */
static int
config_set(struct config *c, int id, const char *v, char *err, size_t errlen)
{
	char		 emsg[CONFIG_ERRLEN];
	long		 n;
	unsigned	 ms;
	int		 b;

	switch (id) {
	case 'l':
		return config_listen_parse(c, v, err, errlen);
	case 'r': {
		struct redis_url u;

		if (config_redis_url_parse(v, &u, emsg, sizeof(emsg)) == -1)
			return config_err(err, errlen, "%s", emsg);
		config_redis_url_free(&c->redis_url);
		c->redis_url = u;
		return 0;
	}
	case OPT_REDIS_PASSWORD_FILE:
		free(c->password_file);
		c->password_file = config_strdup(v);
		return 0;
	case OPT_REDIS_TIMEOUT:
		if (config_number(v, 100, 600000, &n) == -1)
			return config_err(err, errlen, "expected milliseconds "
			    "from 100 to 600000, got '%s'", v);
		c->redis_timeout_ms = (unsigned)n;
		return 0;
	case OPT_POLL_TIMEOUT:
		if (config_number(v, 1, 10000, &n) == -1)
			return config_err(err, errlen, "expected milliseconds "
			    "from 1 to 10000, got '%s'", v);
		c->poll_ms = (unsigned)n;
		return 0;
	case 'T':
		if (config_number(v, 1, 256, &n) == -1)
			return config_err(err, errlen, "expected 1 to 256, got "
			    "'%s'", v);
		c->threads = (unsigned)n;
		return 0;
	case OPT_HEARTBEAT:
		if (config_seconds_ms(v, 100, 3600000, &ms) == -1)
			return config_err(err, errlen, "expected seconds from "
			    "0.1 to 3600, got '%s'", v);
		c->heartbeat_ms = ms;
		return 0;
	case OPT_RETRY:
		if (config_number(v, 0, 86400000, &n) == -1)
			return config_err(err, errlen, "expected milliseconds "
			    "from 0 to 86400000, got '%s'", v);
		c->retry_ms = (unsigned)n;
		return 0;
	case OPT_RING_SIZE:
		if (config_number(v, 2, 1048576, &n) == -1)
			return config_err(err, errlen, "expected 2 to 1048576, "
			    "got '%s'", v);
		c->ring_size = (unsigned)n;
		return 0;
	case 'f':
		if (strcmp(v, "json") == 0)
			c->format = FRAME_FORMAT_JSON;
		else if (strcmp(v, "raw") == 0)
			c->format = FRAME_FORMAT_RAW;
		else
			return config_err(err, errlen, "expected json or raw, "
			    "got '%s'", v);
		return 0;
	case OPT_USER_PREFIX:
	case OPT_UPLOAD_PREFIX:
		if (strpbrk(v, "*?[]\\") != NULL || strlen(v) > 64)
			return config_err(err, errlen, "at most 64 bytes and "
			    "none of * ? [ ] \\, got '%s'", v);
		if (id == OPT_USER_PREFIX) {
			free(c->user_prefix);
			c->user_prefix = config_strdup(v);
		} else {
			free(c->upload_prefix);
			c->upload_prefix = config_strdup(v);
		}
		return 0;
	case OPT_MAX_UPLOADS:
		if (config_number(v, 1, 16, &n) == -1)
			return config_err(err, errlen, "expected 1 to 16, got "
			    "'%s'", v);
		c->max_uploads = (unsigned)n;
		return 0;
	case OPT_MAX_CONNECTIONS:
		if (config_number(v, 0, 10000000, &n) == -1)
			return config_err(err, errlen, "expected 0 to 10000000, "
			    "got '%s'", v);
		c->max_connections = (unsigned)n;
		return 0;
	case OPT_CONN_MEMORY:
		if (config_number(v, 2048, 1048576, &n) == -1)
			return config_err(err, errlen, "expected bytes from "
			    "2048 to 1048576, got '%s'", v);
		c->conn_memory = (unsigned)n;
		return 0;
	case OPT_CLIENT_TIMEOUT:
		if (config_number(v, 0, 86400, &n) == -1)
			return config_err(err, errlen, "expected seconds from 0 "
			    "to 86400, got '%s'", v);
		c->client_timeout_s = (unsigned)n;
		return 0;
	case OPT_HISTORY_SIZE:
		if (config_number(v, 0, 100000, &n) == -1)
			return config_err(err, errlen, "expected 0 to 100000, "
			    "got '%s'", v);
		c->history_size = (unsigned)n;
		return 0;
	case OPT_HISTORY_TTL:
		if (config_number(v, 1, 86400, &n) == -1)
			return config_err(err, errlen, "expected seconds from 1 "
			    "to 86400, got '%s'", v);
		c->history_ttl_s = (unsigned)n;
		return 0;
	case OPT_HISTORY_MEMORY:
		if (config_bytes(v, 1 << 20, (size_t)64 << 30,
		    &c->history_bytes) == -1)
			return config_err(err, errlen, "expected bytes from 1M "
			    "to 64G (suffix k, M or G allowed), got '%s'", v);
		return 0;
	case OPT_AUTH:
		if (strcmp(v, "none") == 0)
			c->auth_jwt = 0;
		else if (strcmp(v, "jwt") == 0)
			c->auth_jwt = 1;
		else
			return config_err(err, errlen, "expected none or jwt, "
			    "got '%s'", v);
		return 0;
	case OPT_JWT_ALGORITHM:
		if (strcmp(v, "HS256") != 0 && strcmp(v, "HS384") != 0 &&
		    strcmp(v, "HS512") != 0 && strcmp(v, "RS256") != 0 &&
		    strcmp(v, "ES256") != 0)
			return config_err(err, errlen, "expected HS256, HS384, "
			    "HS512, RS256 or ES256, got '%s'", v);
		return config_setstr(&c->jwt_algorithm, v);
	case OPT_JWT_KEY_FILE:
		return config_setstr(&c->jwt_key_file, v);
	case OPT_JWT_COOKIE:
		if (strpbrk(v, " ;=,\"") != NULL)
			return config_err(err, errlen, "not a cookie name: "
			    "'%s'", v);
		return config_setstr(&c->jwt_cookie, v);
	case OPT_JWT_ISSUER:
		return config_setstr(&c->jwt_issuer, v);
	case OPT_JWT_AUDIENCE:
		return config_setstr(&c->jwt_audience, v);
	case OPT_JWT_CLAIM:
		return config_setstr(&c->jwt_claim, v);
	case OPT_JWT_LEEWAY:
		if (config_number(v, 0, 3600, &n) == -1)
			return config_err(err, errlen, "expected seconds from 0 "
			    "to 3600, got '%s'", v);
		c->jwt_leeway_s = (unsigned)n;
		return 0;
	case OPT_CORS_ORIGIN:
	case OPT_TRUSTED_PROXY: {
		char	**field = id == OPT_CORS_ORIGIN ? &c->cors_origins :
			    &c->trusted_proxies;

		/* "none", as --help shows the default, unsets the list */
		if (strcmp(v, "none") == 0) {
			free(*field);
			*field = NULL;
			return 0;
		}
		return config_setstr(field, v);
	}
	case OPT_MAX_STREAMS:
	case OPT_MAX_STREAMS_PER_IP:
	case OPT_MAX_STREAMS_PER_USER:
		if (config_number(v, 0, 10000000, &n) == -1)
			return config_err(err, errlen, "expected 0 to 10000000, "
			    "got '%s'", v);
		if (id == OPT_MAX_STREAMS)
			c->max_streams = (unsigned)n;
		else if (id == OPT_MAX_STREAMS_PER_IP)
			c->max_streams_per_ip = (unsigned)n;
		else
			c->max_streams_per_user = (unsigned)n;
		return 0;
	case OPT_TLS_CERT:
		return config_setstr(&c->tls_cert, v);
	case OPT_TLS_KEY:
		return config_setstr(&c->tls_key, v);
	case OPT_METRICS_LISTEN:
		if (config_hostport(v, &c->metrics_host, &c->metrics_port) ==
		    -1)
			return config_err(err, errlen, "expected HOST:PORT, "
			    "[IPV6]:PORT or *:PORT, got '%s'", v);
		return config_setstr(&c->metrics_listen, v);
	case OPT_DEMO:
		if (config_yesno(v, &b) == -1)
			return config_err(err, errlen, "expected yes or no, got "
			    "'%s'", v);
		c->demo = b;
		return 0;
	case 'L':
		if (log_level_parse(v, &c->log_level) == -1)
			return config_err(err, errlen, "expected error, warn, "
			    "info or debug, got '%s'", v);
		return 0;
	}
	return config_err(err, errlen, "no such setting");
}

/* a quoted value: "..." with \" and \\ escapes, nothing after it */
static int
config_unquote(char *v)
{
	char	*r = v + 1, *w = v;

	while (*r != '\0' && *r != '"') {
		if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
			r++;
		*w++ = *r++;
	}
	if (*r != '"' || r[1] != '\0')
		return -1;
	*w = '\0';
	return 0;
}

/*
 * Read a redis.conf-style file: "key value" per line, '#' starts a comment
 * line, a value may be "quoted".  Every key once.  The first error is
 * "FILE:LINE: message" and nothing after it is applied by the caller,
 * who starts from a fresh config each time.
 */
int
config_load_stream(struct config *c, FILE *fp, const char *path, char *err,
    size_t errlen)
{
	char		 line[4096], emsg[CONFIG_ERRLEN], *p, *key, *v, *e;
	unsigned	 lineno = 0, seen[sizeof(config_keys) /
			    sizeof(config_keys[0])];
	const struct config_key *k;
	int		 r = -1;

	memset(seen, 0, sizeof(seen));
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			config_err(err, errlen, "%s:%u: line longer than %zu "
			    "bytes", path, lineno, sizeof(line) - 2);
			goto done;
		}
		line[strcspn(line, "\r\n")] = '\0';
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '\0' || *p == '#')
			continue;
		key = p;
		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		if (*p != '\0')
			*p++ = '\0';
		while (isspace((unsigned char)*p))
			p++;
		v = p;
		for (e = v + strlen(v); e > v && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		if ((k = config_key_by_name(key)) == NULL) {
			config_err(err, errlen, "%s:%u: unknown key '%s'", path,
			    lineno, key);
			goto done;
		}
		if (seen[k - config_keys]) {
			config_err(err, errlen, "%s:%u: duplicate key '%s' "
			    "(first set on line %u)", path, lineno, key,
			    seen[k - config_keys]);
			goto done;
		}
		seen[k - config_keys] = lineno;
		if (*v == '\0') {
			config_err(err, errlen, "%s:%u: %s: missing value",
			    path, lineno, key);
			goto done;
		}
		if (*v == '"' && config_unquote(v) == -1) {
			config_err(err, errlen, "%s:%u: %s: unterminated quote "
			    "or text after the closing quote", path, lineno,
			    key);
			goto done;
		}
		if (config_set(c, k->id, v, emsg, sizeof(emsg)) == -1) {
			config_err(err, errlen, "%s:%u: %s: %s", path, lineno,
			    key, emsg);
			goto done;
		}
	}
	if (ferror(fp)) {
		config_err(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	r = 0;
done:
	explicit_bzero(line, sizeof(line));
	return r;
}

static int
config_file_load(struct config *c, const char *path, char *err,
    size_t errlen)
{
	FILE	*fp;
	int	 r;

	if ((fp = fopen(path, "r")) == NULL)
		return config_err(err, errlen, "%s: %s", path,
		    strerror(errno));
	r = config_load_stream(c, fp, path, err, errlen);
	fclose(fp);
	return r;
}

#define BAD(...)	do {						\
	config_err(err, errlen, __VA_ARGS__);				\
	return CONFIG_ERROR;						\
} while (0)

/* getopt's idea of which option went wrong, by name */
static const char *
config_badopt(char **argv, char *buf, size_t len)
{
	const char	*arg = argv[optind - 1];

	if (optopt > 0 && optopt < 128 && strncmp(arg, "--", 2) != 0) {
		snprintf(buf, len, "-%c", optopt);
		return buf;
	}
	return arg;
}

enum config_parse_result
config_parse_args(struct config *c, int argc, char **argv, char *err,
    size_t errlen)
{
	const struct config_key *k;
	const char	*env;
	char		 emsg[CONFIG_ERRLEN], optbuf[8];
	int		 ch, idx, explicit_file = 0;

	/* pass 1: the file, -t, --help, --version, and the option syntax */
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, CONFIG_SHORTOPTS,
	    config_longopts, &idx)) != -1) {
		switch (ch) {
		case 'c':
			free(c->config_file);
			c->config_file = config_strdup(optarg);
			explicit_file = 1;
			break;
		case 't':
			c->check_only = 1;
			break;
		case 'V':
			printf("sserelay %s\n", PACKAGE_VERSION);
			return CONFIG_EXIT;
		case 'h':
			config_usage(stdout);
			return CONFIG_EXIT;
		case ':':
			BAD("%s: missing value", config_badopt(argv, optbuf,
			    sizeof(optbuf)));
		case '?':
			BAD("%s: unknown option (see --help)",
			    config_badopt(argv, optbuf, sizeof(optbuf)));
		default:
			break;
		}
	}
	if (optind < argc)
		BAD("%s: unexpected argument (see --help)", argv[optind]);

	if (c->config_file == NULL)
		c->config_file = config_strdup(CONFIG_DEFAULT_FILE);
	if (explicit_file || access(c->config_file, F_OK) == 0) {
		if (config_file_load(c, c->config_file, err, errlen) == -1) {
			c->error_in_file = 1;
			return CONFIG_ERROR;
		}
		c->config_loaded = 1;
	}

	/* pass 2: flags override the file */
	optind = 0;
	while ((ch = getopt_long(argc, argv, CONFIG_SHORTOPTS,
	    config_longopts, &idx)) != -1) {
		if ((k = config_key_by_id(ch)) == NULL)
			continue;
		/* --demo alone is yes; --demo=no undoes the file's yes */
		if (config_set(c, ch, k->has_arg || optarg != NULL ? optarg :
		    "yes", emsg, sizeof(emsg)) == -1)
			BAD("--%s: %s", k->name, emsg);
	}

	if (strcmp(c->user_prefix, c->upload_prefix) == 0)
		BAD("--user-prefix and --upload-prefix must differ");
	if (c->auth_jwt && c->jwt_key_file == NULL)
		BAD("--auth jwt needs --jwt-key-file");
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		BAD("--tls-cert and --tls-key go together");
	if (c->password_file != NULL) {
		if (config_read_password_file(c, c->password_file, err,
		    errlen) == -1)
			return CONFIG_ERROR;
	} else if (c->redis_url.password == NULL &&
	    (env = getenv("SSERELAY_REDIS_PASSWORD")) != NULL && *env)
		c->redis_url.password = config_strdup(env);
	config_redis_display(c);
	return CONFIG_OK;
}

static int
config_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* 1 if setting id differs between a and b */
static int
config_differs(const struct config *a, const struct config *b, int id)
{
	switch (id) {
	case 'l':
		return !config_streq(a->listen_host, b->listen_host) ||
		    a->listen_port != b->listen_port;
	case 'r':
	case OPT_REDIS_PASSWORD_FILE:
		return !config_streq(a->redis, b->redis) ||
		    !config_streq(a->redis_url.password, b->redis_url.password);
	case OPT_REDIS_TIMEOUT:
		return a->redis_timeout_ms != b->redis_timeout_ms;
	case OPT_POLL_TIMEOUT:
		return a->poll_ms != b->poll_ms;
	case 'T':
		return a->threads != b->threads;
	case OPT_HEARTBEAT:
		return a->heartbeat_ms != b->heartbeat_ms;
	case OPT_RETRY:
		return a->retry_ms != b->retry_ms;
	case OPT_RING_SIZE:
		return a->ring_size != b->ring_size;
	case 'f':
		return a->format != b->format;
	case OPT_USER_PREFIX:
		return !config_streq(a->user_prefix, b->user_prefix);
	case OPT_UPLOAD_PREFIX:
		return !config_streq(a->upload_prefix, b->upload_prefix);
	case OPT_MAX_UPLOADS:
		return a->max_uploads != b->max_uploads;
	case OPT_MAX_CONNECTIONS:
		return a->max_connections != b->max_connections;
	case OPT_CONN_MEMORY:
		return a->conn_memory != b->conn_memory;
	case OPT_CLIENT_TIMEOUT:
		return a->client_timeout_s != b->client_timeout_s;
	case OPT_DEMO:
		return a->demo != b->demo;
	case OPT_HISTORY_SIZE:
		return a->history_size != b->history_size;
	case OPT_HISTORY_TTL:
		return a->history_ttl_s != b->history_ttl_s;
	case OPT_HISTORY_MEMORY:
		return a->history_bytes != b->history_bytes;
	case OPT_AUTH:
		return a->auth_jwt != b->auth_jwt;
	case OPT_JWT_ALGORITHM:
		return !config_streq(a->jwt_algorithm, b->jwt_algorithm);
	case OPT_JWT_KEY_FILE:
		return !config_streq(a->jwt_key_file, b->jwt_key_file);
	case OPT_JWT_COOKIE:
		return !config_streq(a->jwt_cookie, b->jwt_cookie);
	case OPT_JWT_ISSUER:
		return !config_streq(a->jwt_issuer, b->jwt_issuer);
	case OPT_JWT_AUDIENCE:
		return !config_streq(a->jwt_audience, b->jwt_audience);
	case OPT_JWT_CLAIM:
		return !config_streq(a->jwt_claim, b->jwt_claim);
	case OPT_JWT_LEEWAY:
		return a->jwt_leeway_s != b->jwt_leeway_s;
	case OPT_CORS_ORIGIN:
		return !config_streq(a->cors_origins, b->cors_origins);
	case OPT_TRUSTED_PROXY:
		return !config_streq(a->trusted_proxies, b->trusted_proxies);
	case OPT_MAX_STREAMS:
		return a->max_streams != b->max_streams;
	case OPT_MAX_STREAMS_PER_IP:
		return a->max_streams_per_ip != b->max_streams_per_ip;
	case OPT_MAX_STREAMS_PER_USER:
		return a->max_streams_per_user != b->max_streams_per_user;
	case OPT_TLS_CERT:
		return !config_streq(a->tls_cert, b->tls_cert);
	case OPT_TLS_KEY:
		return !config_streq(a->tls_key, b->tls_key);
	case OPT_METRICS_LISTEN:
		return !config_streq(a->metrics_listen, b->metrics_listen);
	case 'L':
		return a->log_level != b->log_level;
	}
	return 0;
}

int
config_reload(struct config *run, const struct config *next)
{
	const struct config_key *k;
	int		 changed = 0;

	/* the new level first, so it decides which of the lines below show */
	log_set_level(next->log_level);
	for (k = config_keys; k->name != NULL; k++) {
		/* the file and the URL name one setting; say it once */
		if (k->id == OPT_REDIS_PASSWORD_FILE ||
		    !config_differs(run, next, k->id))
			continue;
		if (!k->live) {
			log_warnx("reload: '%s' changed; it takes effect only "
			    "after a restart", k->name);
			continue;
		}
		changed++;
		switch (k->id) {
		case OPT_REDIS_TIMEOUT:
			run->redis_timeout_ms = next->redis_timeout_ms;
			break;
		case OPT_POLL_TIMEOUT:
			run->poll_ms = next->poll_ms;
			break;
		case OPT_HEARTBEAT:
			run->heartbeat_ms = next->heartbeat_ms;
			break;
		case OPT_RETRY:
			run->retry_ms = next->retry_ms;
			break;
		case OPT_RING_SIZE:
			run->ring_size = next->ring_size;
			break;
		case OPT_MAX_UPLOADS:
			run->max_uploads = next->max_uploads;
			break;
		case OPT_MAX_STREAMS:
			run->max_streams = next->max_streams;
			break;
		case OPT_MAX_STREAMS_PER_IP:
			run->max_streams_per_ip = next->max_streams_per_ip;
			break;
		case OPT_MAX_STREAMS_PER_USER:
			run->max_streams_per_user = next->max_streams_per_user;
			break;
		case 'L':
			run->log_level = next->log_level;
			break;
		}
		log_info("reload: '%s' changed", k->name);
	}
	return changed;
}
