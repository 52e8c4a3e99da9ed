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

#define DEFAULT_REDIS	"redis://127.0.0.1:6379"

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
	c->conn_memory = 8192;
	c->client_timeout_s = 60;
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
	free(c->listen_host);
	free(c->redis);
	config_redis_url_free(&c->redis_url);
	free(c->user_prefix);
	free(c->upload_prefix);
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
config_listen_parse(struct config *c, const char *s, char *err, size_t errlen)
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
	free(c->listen_host);
	c->listen_host = config_strdup(host);
	c->listen_port = (int)n;
	free(dup);
	return 0;
bad:
	free(dup);
	return config_err(err, errlen, "--listen: expected HOST:PORT, "
	    "[IPV6]:PORT or *:PORT, got '%s'", s);
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
	v = v * 1000.0 + 0.5;
	if (v < min_ms || v > max_ms)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int
config_read_password_file(struct config *c, const char *path, char *err,
    size_t errlen)
{
	FILE	*fp;
	char	 line[1024];
	size_t	 n;

	if ((fp = fopen(path, "r")) == NULL)
		return config_err(err, errlen, "--redis-password-file: %s: %s",
		    path, strerror(errno));
	if (fgets(line, sizeof(line), fp) == NULL) {
		fclose(fp);
		return config_err(err, errlen, "--redis-password-file: %s: "
		    "empty file", path);
	}
	fclose(fp);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0)
		return config_err(err, errlen, "--redis-password-file: %s: "
		    "empty password", path);
	if (c->redis_url.password != NULL) {
		explicit_bzero(c->redis_url.password,
		    strlen(c->redis_url.password));
		free(c->redis_url.password);
	}
	c->redis_url.password = config_strdup(line);
	explicit_bzero(line, sizeof(line));
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
};

static const struct option config_longopts[] = {
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
	{ "log-level",		required_argument, NULL, 'L' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

void
config_usage(FILE *fp)
{
	fprintf(fp,
"usage: sserelay [options]\n"
"Relay Redis pub/sub messages to browsers as Server-Sent Events.\n"
"\n"
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
"      --conn-memory BYTES      memory pool per connection [8192]\n"
"      --client-timeout SECONDS close connections idle that long; streams\n"
"                               waiting for events are not idle; 0: never [60]\n"
"  -L, --log-level LEVEL        error, warn, info or debug [info]\n"
"  -V, --version                print the version and exit\n"
"  -h, --help                   print this help and exit\n"
"\n"
"Environment: SSERELAY_REDIS_PASSWORD is the Redis password when neither\n"
"the URL nor --redis-password-file gives one.\n");
}

#define BAD(...)	do {						\
	config_err(err, errlen, __VA_ARGS__);				\
	goto bad;							\
} while (0)

enum config_parse_result
config_parse_args(struct config *c, int argc, char **argv, char *err,
    size_t errlen)
{
	const char	*pwfile = NULL, *env;
	long		 n;
	int		 ch, idx;
	char		 emsg[CONFIG_ERRLEN];

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":l:r:T:f:L:Vh", config_longopts,
	    &idx)) != -1) {
		switch (ch) {
		case 'l':
			if (config_listen_parse(c, optarg, err, errlen) == -1)
				return CONFIG_ERROR;
			break;
		case 'r':
			config_redis_url_free(&c->redis_url);
			if (config_redis_url_parse(optarg, &c->redis_url, emsg,
			    sizeof(emsg)) == -1) {
				/* keep a valid URL for config_free */
				config_redis_url_parse(DEFAULT_REDIS,
				    &c->redis_url, NULL, 0);
				BAD("--redis: %s", emsg);
			}
			break;
		case OPT_REDIS_PASSWORD_FILE:
			pwfile = optarg;
			break;
		case OPT_REDIS_TIMEOUT:
			if (config_number(optarg, 100, 600000, &n) == -1)
				BAD("--redis-timeout: expected milliseconds "
				    "from 100 to 600000, got '%s'", optarg);
			c->redis_timeout_ms = (unsigned)n;
			break;
		case OPT_POLL_TIMEOUT:
			if (config_number(optarg, 1, 10000, &n) == -1)
				BAD("--poll-timeout: expected milliseconds "
				    "from 1 to 10000, got '%s'", optarg);
			c->poll_ms = (unsigned)n;
			break;
		case 'T':
			if (config_number(optarg, 1, 256, &n) == -1)
				BAD("--threads: expected 1 to 256, got '%s'",
				    optarg);
			c->threads = (unsigned)n;
			break;
		case OPT_HEARTBEAT:
			if (config_seconds_ms(optarg, 100, 3600000,
			    &c->heartbeat_ms) == -1)
				BAD("--heartbeat: expected seconds from 0.1 to "
				    "3600, got '%s'", optarg);
			break;
		case OPT_RETRY:
			if (config_number(optarg, 0, 86400000, &n) == -1)
				BAD("--retry: expected milliseconds from 0 to "
				    "86400000, got '%s'", optarg);
			c->retry_ms = (unsigned)n;
			break;
		case OPT_RING_SIZE:
			if (config_number(optarg, 2, 1048576, &n) == -1)
				BAD("--ring-size: expected 2 to 1048576, got "
				    "'%s'", optarg);
			c->ring_size = (unsigned)n;
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				c->format = FRAME_FORMAT_JSON;
			else if (strcmp(optarg, "raw") == 0)
				c->format = FRAME_FORMAT_RAW;
			else
				BAD("--format: expected json or raw, got '%s'",
				    optarg);
			break;
		case OPT_USER_PREFIX:
		case OPT_UPLOAD_PREFIX:
			if (strpbrk(optarg, "*?[]\\") != NULL ||
			    strlen(optarg) > 64)
				BAD("--%s: at most 64 bytes and none of "
				    "* ? [ ] \\, got '%s'",
				    config_longopts[idx].name, optarg);
			if (ch == OPT_USER_PREFIX) {
				free(c->user_prefix);
				c->user_prefix = config_strdup(optarg);
			} else {
				free(c->upload_prefix);
				c->upload_prefix = config_strdup(optarg);
			}
			break;
		case OPT_MAX_UPLOADS:
			if (config_number(optarg, 1, 16, &n) == -1)
				BAD("--max-uploads: expected 1 to 16, got '%s'",
				    optarg);
			c->max_uploads = (unsigned)n;
			break;
		case OPT_MAX_CONNECTIONS:
			if (config_number(optarg, 0, 10000000, &n) == -1)
				BAD("--max-connections: expected 0 to "
				    "10000000, got '%s'", optarg);
			c->max_connections = (unsigned)n;
			break;
		case OPT_CONN_MEMORY:
			if (config_number(optarg, 2048, 1048576, &n) == -1)
				BAD("--conn-memory: expected bytes from 2048 "
				    "to 1048576, got '%s'", optarg);
			c->conn_memory = (unsigned)n;
			break;
		case OPT_CLIENT_TIMEOUT:
			if (config_number(optarg, 0, 86400, &n) == -1)
				BAD("--client-timeout: expected seconds from 0 "
				    "to 86400, got '%s'", optarg);
			c->client_timeout_s = (unsigned)n;
			break;
		case 'L':
			if (log_level_parse(optarg, &c->log_level) == -1)
				BAD("--log-level: expected error, warn, info or "
				    "debug, got '%s'", optarg);
			break;
		case 'V':
			printf("sserelay %s\n", PACKAGE_VERSION);
			return CONFIG_EXIT;
		case 'h':
			config_usage(stdout);
			return CONFIG_EXIT;
		case ':':
			/* a long option's optopt is its value, not a letter */
			if (optopt > 0 && optopt < 128 &&
			    strncmp(argv[optind - 1], "--", 2) != 0)
				BAD("-%c: missing value", optopt);
			BAD("%s: missing value", argv[optind - 1]);
		default:
			if (optopt > 0 && optopt < 128 &&
			    strncmp(argv[optind - 1], "--", 2) != 0)
				BAD("-%c: unknown option (see --help)", optopt);
			BAD("%s: unknown option (see --help)",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		BAD("%s: unexpected argument (see --help)", argv[optind]);
	if (strcmp(c->user_prefix, c->upload_prefix) == 0)
		BAD("--user-prefix and --upload-prefix must differ");
	if (pwfile != NULL) {
		if (config_read_password_file(c, pwfile, err, errlen) == -1)
			return CONFIG_ERROR;
	} else if (c->redis_url.password == NULL &&
	    (env = getenv("SSERELAY_REDIS_PASSWORD")) != NULL && *env)
		c->redis_url.password = config_strdup(env);
	config_redis_display(c);
	return CONFIG_OK;
bad:
	return CONFIG_ERROR;
}
