/*
 * config.c - where the settings come from: defaults, the configuration
 * file, the command line, the environment, and SIGHUP.
 *
 * What each setting is (type, range, default, field, liveness, help) is a
 * row of the table in options.c; this file walks that table.  Every
 * setting lives in struct config; main.c applies it.  Errors name the
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
#include "options.h"
#include "redis_url.h"
#include "secret.h"
#include "util.h"

/* a password file: its first line is the password */
#define CONFIG_PASSWORD_FILE_MAX	(64 * 1024)

static void	config_redis_display(struct config *);

void
config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	options_init(c);
	c->subscribe_linger_s = UINT_MAX;	/* the history TTL */
	config_redis_display(c);
}

void
config_free(struct config *c)
{
	options_free(c);
	/* what no row owns: set by config.c, or a row's text as given */
	free(c->config_file);
	free(c->redis);
	free(c->metrics_listen);
	if (c->sentinel_password != NULL) {
		explicit_bzero(c->sentinel_password,
		    strlen(c->sentinel_password));
		free(c->sentinel_password);
	}
	memset(c, 0, sizeof(*c));
}

/*
 * The first line of a password file (--opt) into *dst, replacing what was
 * there.  The file's bytes are wiped whatever happens.
 */
static int
config_read_password_file(const char *opt, const char *path, char **dst,
    char *err, size_t errlen)
{
	char	 emsg[CONFIG_ERRLEN], *buf;
	size_t	 len, n;

	if ((buf = secret_read_file(path, CONFIG_PASSWORD_FILE_MAX, &len, emsg,
	    sizeof(emsg))) == NULL)
		return util_err(err, errlen, "--%s: %s", opt, emsg);
	if ((n = strcspn(buf, "\r\n")) == 0) {
		secret_free(buf, len);
		return util_err(err, errlen, "--%s: %s: empty password",
		    opt, path);
	}
	buf[n] = '\0';
	if (*dst != NULL) {
		explicit_bzero(*dst, strlen(*dst));
		free(*dst);
	}
	*dst = util_strdup(buf);
	secret_free(buf, len);
	return 0;
}

/* the URL as shown in logs and /healthz: never the password */
static void
config_redis_display(struct config *c)
{
	char	 buf[1024];

	redis_url_display(&c->redis_url, buf, sizeof(buf));
	free(c->redis);
	c->redis = util_strdup(buf);
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

#define CONFIG_WORDS_MAX	8

/*
 * Split v in place into words apart by blanks, each one "quoted" or not
 * (a quoted word may hold blanks).  The number of words; -1 for a bad
 * quote, -2 for more than max.
 */
static int
config_words(char *v, char **argv, int max)
{
	char	*p = v, *w;
	int	 n = 0;

	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			return n;
		if (n == max)
			return -2;
		argv[n++] = p;
		if (*p != '"') {
			while (*p != '\0' && !isspace((unsigned char)*p))
				p++;
			if (*p != '\0')
				*p++ = '\0';
			continue;
		}
		/* as config_unquote, up to the closing quote */
		for (w = p++; *p != '\0' && *p != '"'; *w++ = *p++)
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
		if (*p != '"' || (p[1] != '\0' && !isspace((unsigned char)p[1])))
			return -1;
		*w = '\0';
		p++;
	}
}

/*
 * One line's value for o: split into words for a row that takes them
 * (channel room chat:room: 8), a whole value otherwise.  The message in
 * emsg, without the key.
 */
static int
config_line_set(struct config *c, const struct options_entry *o, char *v,
    char *emsg, size_t emsglen)
{
	char	*argv[CONFIG_WORDS_MAX];
	int	 n;

	if (!options_takes_words(o)) {
		if (*v == '"' && config_unquote(v) == -1)
			return util_err(emsg, emsglen, "unterminated quote "
			    "or text after the closing quote");
		return options_set(o, c, v, emsg, emsglen);
	}
	if ((n = config_words(v, argv, CONFIG_WORDS_MAX)) == -1)
		return util_err(emsg, emsglen, "unterminated quote or "
		    "text after the closing quote");
	if (n == -2)
		return util_err(emsg, emsglen, "more than %d words",
		    CONFIG_WORDS_MAX);
	return options_set_words(o, c, (size_t)n, argv, emsg, emsglen);
}

/*
 * Read a redis.conf-style file: "key value" per line, '#' starts a comment
 * line, a value may be "quoted"; a key that takes words (channel NAME
 * PREFIX [MAX]) has them apart by blanks, each may be quoted.  Every key
 * once, but those marked OPTIONS_REPEAT.  The first error is
 * "FILE:LINE: message" and nothing after it is applied by the caller,
 * who starts from a fresh config each time.
 */
int
config_load_stream(struct config *c, FILE *fp, const char *path, char *err,
    size_t errlen)
{
	const struct options_entry *table, *o;
	char		 line[4096], emsg[CONFIG_ERRLEN], *p, *key, *v, *e;
	unsigned	 lineno = 0, *seen;	/* per row: the line, or 0 */
	size_t		 count;
	int		 r = -1;

	table = options_table(&count);
	if ((seen = calloc(count, sizeof(*seen))) == NULL)
		fatal("calloc");
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			util_err(err, errlen, "%s:%u: line longer than %zu "
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
		/* -c, -t, -V and -h are no keys */
		if ((o = options_find(key)) == NULL ||
		    o->type == OPTIONS_COMMAND) {
			util_err(err, errlen, "%s:%u: unknown key '%s'", path,
			    lineno, key);
			goto done;
		}
		if (seen[o - table] && !(o->flags & OPTIONS_REPEAT)) {
			util_err(err, errlen, "%s:%u: duplicate key '%s' "
			    "(first set on line %u)", path, lineno, key,
			    seen[o - table]);
			goto done;
		}
		if (!seen[o - table])
			seen[o - table] = lineno;
		if (*v == '\0') {
			util_err(err, errlen, "%s:%u: %s: missing value",
			    path, lineno, key);
			goto done;
		}
		c->options_from = lineno;
		if (config_line_set(c, o, v, emsg, sizeof(emsg)) == -1) {
			util_err(err, errlen, "%s:%u: %s: %s", path, lineno,
			    key, emsg);
			goto done;
		}
	}
	if (ferror(fp)) {
		util_err(err, errlen, "%s: %s", path, strerror(errno));
		goto done;
	}
	r = 0;
done:
	explicit_bzero(line, sizeof(line));
	free(seen);
	return r;
}

static int
config_file_load(struct config *c, const char *path, char *err,
    size_t errlen)
{
	FILE	*fp;
	int	 r;

	if ((fp = fopen(path, "r")) == NULL)
		return util_err(err, errlen, "%s: %s", path,
		    strerror(errno));
	r = config_load_stream(c, fp, path, err, errlen);
	fclose(fp);
	return r;
}

/*
 * getopt_long's arrays, made from the table.  A row's getopt value is its
 * short option, or CONFIG_GETOPT_LONG plus its index for the rows that
 * have none.
 */
#define CONFIG_GETOPT_LONG	256

struct config_getopt {
	struct option	*longopts;
	char		*shortopts;
};

static void
config_getopt_init(struct config_getopt *g)
{
	const struct options_entry *table, *o;
	size_t		 count, i, n = 0;

	table = options_table(&count);
	if ((g->longopts = calloc(count + 1, sizeof(*g->longopts))) == NULL ||
	    (g->shortopts = malloc(2 + 3 * count)) == NULL)
		fatal("calloc");
	/* ':' first: a missing value is told apart from an unknown option */
	g->shortopts[n++] = ':';
	for (i = 0; i < count; i++) {
		o = &table[i];
		g->longopts[i].name = o->name;
		/* --demo alone is yes; --demo=no undoes the file's yes */
		g->longopts[i].has_arg = o->type == OPTIONS_FLAG ?
		    optional_argument : o->type == OPTIONS_COMMAND &&
		    o->arg == NULL ? no_argument : required_argument;
		g->longopts[i].val = o->shortopt != 0 ? o->shortopt :
		    CONFIG_GETOPT_LONG + (int)i;
		if (o->shortopt == 0)
			continue;
		g->shortopts[n++] = (char)o->shortopt;
		if (g->longopts[i].has_arg == required_argument)
			g->shortopts[n++] = ':';
		else if (g->longopts[i].has_arg == optional_argument) {
			g->shortopts[n++] = ':';
			g->shortopts[n++] = ':';
		}
	}
	g->shortopts[n] = '\0';
}

static void
config_getopt_free(struct config_getopt *g)
{
	free(g->longopts);
	free(g->shortopts);
}

/* the row of a getopt value; NULL for ':' and '?' */
static const struct options_entry *
config_getopt_entry(int ch)
{
	const struct options_entry *table;
	size_t		 count, i;

	table = options_table(&count);
	if (ch >= CONFIG_GETOPT_LONG && (size_t)(ch - CONFIG_GETOPT_LONG) <
	    count)
		return &table[ch - CONFIG_GETOPT_LONG];
	for (i = 0; i < count; i++)
		if (table[i].shortopt != 0 && table[i].shortopt == ch)
			return &table[i];
	return NULL;
}

#define BAD(...)	do {						\
	util_err(err, errlen, __VA_ARGS__);				\
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

static enum config_parse_result
config_parse_getopt(struct config *c, int argc, char **argv,
    const struct config_getopt *g, char *err, size_t errlen)
{
	const struct options_entry *o;
	const char	*env;
	char		 emsg[CONFIG_ERRLEN], optbuf[8];
	int		 ch, idx, explicit_file = 0;

	/* pass 1: the file, -t, --help, --version, and the option syntax */
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, g->shortopts, g->longopts,
	    &idx)) != -1) {
		switch (ch) {
		case 'c':
			free(c->config_file);
			c->config_file = util_strdup(optarg);
			explicit_file = 1;
			break;
		case 't':
			c->check_only = 1;
			break;
		case 'V':
			printf("sserelay %s\n", PACKAGE_VERSION);
			return CONFIG_EXIT;
		case 'h':
			options_usage(stdout);
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
		c->config_file = util_strdup(CONFIG_DEFAULT_FILE);
	if (explicit_file || access(c->config_file, F_OK) == 0) {
		if (config_file_load(c, c->config_file, err, errlen) == -1) {
			c->error_in_file = 1;
			return CONFIG_ERROR;
		}
		c->config_loaded = 1;
	}

	/* pass 2: flags override the file */
	c->options_from = CHANNEL_FROM_FLAGS;
	optind = 0;
	while ((ch = getopt_long(argc, argv, g->shortopts, g->longopts,
	    &idx)) != -1) {
		if ((o = config_getopt_entry(ch)) == NULL ||
		    o->type == OPTIONS_COMMAND)
			continue;
		if (options_set(o, c, optarg != NULL ? optarg : "yes", emsg,
		    sizeof(emsg)) == -1)
			BAD("--%s: %s", o->name, emsg);
	}

	/* what no single row can check */
	if (channel_table_check(&c->channels, emsg, sizeof(emsg)) == -1)
		BAD("%s", emsg);
	if (c->auth_jwt && c->jwt_key_file == NULL)
		BAD("--auth jwt needs --jwt-key-file");
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		BAD("--tls-cert and --tls-key go together");
	if (c->subscribe_linger_s == UINT_MAX)
		c->subscribe_linger_s = c->history_ttl_s;
	if (c->redis_sentinel != NULL && c->redis_cluster != NULL)
		BAD("--redis-sentinel and --redis-cluster exclude each other");
	/* read now, by the parser the daemon starts with */
	if (c->redis_cluster != NULL && util_check_addrs(c->redis_cluster,
	    UTIL_SEEDS_MAX, emsg, sizeof(emsg)) == -1)
		BAD("--redis-cluster: %s", emsg);
	if (c->redis_sentinel != NULL && util_check_addrs(c->redis_sentinel,
	    UTIL_SENTINELS_MAX, emsg, sizeof(emsg)) == -1)
		BAD("--redis-sentinel: %s", emsg);
	/* the master's name and the sentinels' password wait for sentinels */
	if (c->redis_sentinel != NULL && c->redis_sentinel_master == NULL)
		BAD("--redis-sentinel needs --redis-sentinel-master");
	if ((c->redis_sentinel != NULL || c->redis_cluster != NULL) &&
	    c->redis_url.is_unix)
		BAD("--redis: a unix socket URL cannot name a Sentinel master "
		    "or a Cluster (its password and db still apply)");
	if (c->redis_cluster != NULL && c->redis_url.db != 0)
		BAD("--redis: a Redis Cluster has database 0 only");
	/* sharded pub/sub has no patterns: a cluster is exact */
	if (c->redis_cluster != NULL)
		c->subscribe_exact = 1;
	if (c->sentinel_password_file != NULL && config_read_password_file(
	    "redis-sentinel-password-file", c->sentinel_password_file,
	    &c->sentinel_password, err, errlen) == -1)
		return CONFIG_ERROR;
	if (c->password_file != NULL) {
		if (config_read_password_file("redis-password-file",
		    c->password_file, &c->redis_url.password, err,
		    errlen) == -1)
			return CONFIG_ERROR;
	} else if (c->redis_url.password == NULL &&
	    (env = getenv("SSERELAY_REDIS_PASSWORD")) != NULL && *env)
		c->redis_url.password = util_strdup(env);
	config_redis_display(c);
	return CONFIG_OK;
}

enum config_parse_result
config_parse_args(struct config *c, int argc, char **argv, char *err,
    size_t errlen)
{
	struct config_getopt	 g;
	enum config_parse_result r;

	config_getopt_init(&g);
	r = config_parse_getopt(c, argc, argv, &g, err, errlen);
	config_getopt_free(&g);
	return r;
}

int
config_reload(struct config *run, const struct config *next)
{
	const struct options_entry *table, *o;
	size_t		 count, i;
	int		 changed = 0;

	/* the new level and format first: they apply to the lines below */
	log_set_level(next->log_level);
	log_set_format(next->log_format);
	table = options_table(&count);
	for (i = 0; i < count; i++) {
		o = &table[i];
		if (!options_differs(o, run, next))
			continue;
		if (!(o->flags & OPTIONS_LIVE)) {
			log_kv(LOG_LEVEL_WARN, LOG_FIELDS(LOG_STR("option",
			    o->name)), "reload: '%s' changed; it takes effect "
			    "only after a restart", o->name);
			continue;
		}
		options_copy(o, run, next);
		changed++;
		log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("option", o->name)),
		    "reload: '%s' changed", o->name);
	}
	return changed;
}
