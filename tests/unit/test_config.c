/*
 * test_config.c - defaults, command line and Redis URL parsing (config.h),
 * and the option table (options.h): every row's default as --help shows
 * it, the bounds of every number row, and the SIGHUP diff of every row,
 * each taken from the table itself so that a new row is tested too.
 *
 * getopt_long keeps global state, so optind is reset before every call
 * (config_parse_args may do it too; the test does not rely on it).
 * argv strings are owned by the test and freed only after config_free:
 * the config must copy what it keeps.
 */
#include "autoconf.h"

#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/channel.h"
#include "../../src/config.h"
#include "../../src/options.h"
#include "tap.h"

struct run {
	struct config	 c;
	char		 err[CONFIG_ERRLEN];
	int		 rc;
	int		 argc;
	char		*argv[40];
	char		*out;		/* captured stdout */
};

static void
run_v(struct run *r, int capture, va_list ap)
{
	const char *a;
	FILE *tmp = NULL;
	int saved = -1;
	long n;

	memset(r, 0, sizeof(*r));
	r->argv[r->argc++] = strdup("sserelay");
	while ((a = va_arg(ap, const char *)) != NULL && r->argc < 39)
		r->argv[r->argc++] = strdup(a);
	r->argv[r->argc] = NULL;

	if (capture) {
		fflush(stdout);
		tmp = tmpfile();
		saved = dup(STDOUT_FILENO);
		dup2(fileno(tmp), STDOUT_FILENO);
	}
	config_init(&r->c);
	optind = 0;
	opterr = 1;
	r->rc = config_parse_args(&r->c, r->argc, r->argv, r->err,
	    sizeof(r->err));
	if (capture) {
		fflush(stdout);
		dup2(saved, STDOUT_FILENO);
		close(saved);
		n = lseek(fileno(tmp), 0, SEEK_END);
		r->out = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
		if (n > 0 && pread(fileno(tmp), r->out, (size_t)n, 0) != n)
			r->out[0] = '\0';
		fclose(tmp);
	}
}

static void
run(struct run *r, ...)
{
	va_list ap;

	va_start(ap, r);
	run_v(r, 0, ap);
	va_end(ap);
}

static void
run_capture(struct run *r, ...)
{
	va_list ap;

	va_start(ap, r);
	run_v(r, 1, ap);
	va_end(ap);
}

static void
done(struct run *r)
{
	int i;

	config_free(&r->c);
	for (i = 0; i < r->argc; i++)
		free(r->argv[i]);
	free(r->out);
}

static int
has(const char *s, const char *needle)
{
	return s != NULL && strstr(s, needle) != NULL;
}

/* one line of printable text, as it goes to stderr and the journal */
static int
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

/* a file holding len bytes of data; the caller unlinks path */
static void
write_file(char *path, const void *data, size_t len)
{
	int fd = mkstemp(path);

	if (fd == -1 || write(fd, data, len) != (ssize_t)len)
		diag("cannot write %s", path);
	if (fd != -1)
		close(fd);
}

/* a kind's prefix and maximum in c: NULL and 0 for no such kind */
static const char *
prefix_of(const struct config *c, const char *name)
{
	const struct channel_kind *k = channel_kind_find(&c->channels, name);

	return k != NULL ? k->prefix : NULL;
}

static unsigned
max_of(const struct config *c, const char *name)
{
	const struct channel_kind *k = channel_kind_find(&c->channels, name);

	return k != NULL ? atomic_load(&k->max) : 0;
}

/* "--opt value" must fail and the message must name the option */
static void
bad(const char *opt, const char *value, const char *name)
{
	struct run r;

	if (value)
		run(&r, opt, value, (char *)NULL);
	else
		run(&r, opt, (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "%s %s: CONFIG_ERROR", opt,
	    value ? value : "");
	if (!ok(has(r.err, name) && printable(r.err),
	    "%s %s: one printable line naming %s", opt, value ? value : "",
	    name))
		tap_dump("err", r.err, strlen(r.err));
	done(&r);
}

static void
test_defaults(void)
{
	struct config c;
	struct run r;

	config_init(&c);
	is_str(c.listen_host, "127.0.0.1", "default listen host");
	is_int(c.listen_port, 8080, "default listen port");
	is_int(c.redis_timeout_ms, 3000, "default redis timeout 3000 ms");
	is_int(c.poll_ms, 100, "default poll timeout 100 ms");
	is_int(c.heartbeat_ms, 15000, "default heartbeat 15 s");
	is_int(c.retry_ms, 3000, "default retry 3000 ms");
	is_int(c.ring_size, 256, "default ring size 256");
	is_int(c.format, FRAME_FORMAT_JSON, "default format json");
	is_str(prefix_of(&c, "user"), "user:", "default user prefix");
	is_str(prefix_of(&c, "upload"), "upload:", "default upload prefix");
	is_int(max_of(&c, "user"), 1, "default: one user per stream");
	is_int(max_of(&c, "upload"), 16, "default max uploads 16");
	ok(c.channels.nkinds == 2 && strcmp(c.channels.kinds[0].name,
	    "user") == 0, "default: two kinds, user first");
	is_int(c.channels.nbroadcasts, 0, "default: no broadcast channel");
	is_int(c.max_connections, 0, "default max connections 0 (derived)");
	is_int(c.conn_memory, 6144, "default conn memory 6144");
	is_int(c.client_timeout_s, 60, "default client timeout 60 s");
	is_int(c.log_level, LOG_LEVEL_INFO, "default log level info");
	config_free(&c);

	unsetenv("SSERELAY_REDIS_PASSWORD");
	run(&r, (char *)NULL);
	is_int(r.rc, CONFIG_OK, "no options: CONFIG_OK");
	is_int(r.c.threads, 0, "default threads: 0, from the connection limit");
	ok(has(r.c.redis, "127.0.0.1:6379"), "default redis URL: %s",
	    r.c.redis ? r.c.redis : "(null)");
	ok(!r.c.redis_url.is_unix, "default redis: tcp");
	is_str(r.c.redis_url.host, "127.0.0.1", "default redis host");
	is_int(r.c.redis_url.port, 6379, "default redis port");
	is_int(r.c.redis_url.db, 0, "default redis db");
	ok(r.c.redis_url.password == NULL, "default redis: no password");
	is_str(r.c.listen_host, "127.0.0.1", "no options: listen host kept");
	is_int(r.c.ring_size, 256, "no options: ring size kept");
	done(&r);
}

/* --redis-password-file, read by secret_read_file() */
static void
test_password_file(void)
{
	static char big[64 * 1024 + 1];
	struct run r;
	char path[] = "/tmp/sserelay-test-pwXXXXXX";
	char line[2001];

	/* no cut at 1 KiB: the whole first line is the password */
	memset(line, 'p', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	write_file(path, line, sizeof(line));
	run(&r, "--redis-password-file", path, (char *)NULL);
	is_int(r.rc, CONFIG_OK, "a 2000-byte password: CONFIG_OK (%s)", r.err);
	is_int(r.c.redis_url.password ? strlen(r.c.redis_url.password) : 0,
	    2000, "a 2000-byte password: all of it");
	done(&r);
	unlink(path);

	strcpy(path, "/tmp/sserelay-test-pwXXXXXX");
	write_file(path, "", 0);
	run(&r, "--redis-password-file", path, (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "an empty password file: CONFIG_ERROR");
	ok(has(r.err, "--redis-password-file: ") && has(r.err, path) &&
	    has(r.err, "empty file"), "an empty password file: \"%s\"",
	    r.err);
	done(&r);
	unlink(path);

	strcpy(path, "/tmp/sserelay-test-pwXXXXXX");
	write_file(path, "\r\nsecond\n", 9);
	run(&r, "--redis-password-file", path, (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "an empty first line: CONFIG_ERROR");
	ok(has(r.err, path) && has(r.err, "empty password"),
	    "an empty first line: \"%s\"", r.err);
	done(&r);
	unlink(path);

	strcpy(path, "/tmp/sserelay-test-pwXXXXXX");
	memset(big, 'x', sizeof(big));
	write_file(path, big, sizeof(big));
	run(&r, "--redis-password-file", path, (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "a password file over 64 KiB: CONFIG_ERROR");
	ok(has(r.err, path) && has(r.err, "larger than 64 KiB"),
	    "a password file over 64 KiB: \"%s\"", r.err);
	done(&r);
	unlink(path);

	run(&r, "--redis-password-file", "/nonexistent/pw", (char *)NULL);
	ok(r.rc == CONFIG_ERROR && has(r.err, "--redis-password-file: "
	    "/nonexistent/pw: No such file"), "a missing password file: "
	    "\"%s\"", r.err);
	done(&r);
}

static void
test_good(void)
{
	struct run r;
	char path[] = "/tmp/sserelay-test-pwXXXXXX";
	int fd;

	run(&r, "-l", "0.0.0.0:9000", "-r", "redis://h:7000/2", "-T", "4",
	    "--heartbeat", "0.5", "--retry", "1000", "--ring-size", "8",
	    "-f", "raw", "--user-prefix", "u.", "--upload-prefix", "up.",
	    "--max-uploads", "4", "--max-connections", "100",
	    "--conn-memory", "16384", "--client-timeout", "30", "-L", "debug",
	    "--redis-timeout", "500", "--poll-timeout", "50", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "every option: CONFIG_OK (%s)", r.err);
	is_str(r.c.listen_host, "0.0.0.0", "-l host");
	is_int(r.c.listen_port, 9000, "-l port");
	is_str(r.c.redis_url.host, "h", "-r host");
	is_int(r.c.redis_url.port, 7000, "-r port");
	is_int(r.c.redis_url.db, 2, "-r db");
	is_int(r.c.threads, 4, "-T 4");
	is_int(r.c.heartbeat_ms, 500, "--heartbeat 0.5: 500 ms");
	is_int(r.c.retry_ms, 1000, "--retry");
	is_int(r.c.ring_size, 8, "--ring-size");
	is_int(r.c.format, FRAME_FORMAT_RAW, "-f raw");
	is_str(prefix_of(&r.c, "user"), "u.", "--user-prefix");
	is_str(prefix_of(&r.c, "upload"), "up.", "--upload-prefix");
	is_int(max_of(&r.c, "upload"), 4, "--max-uploads");
	is_int(r.c.max_connections, 100, "--max-connections");
	is_int(r.c.conn_memory, 16384, "--conn-memory");
	is_int(r.c.client_timeout_s, 30, "--client-timeout");
	is_int(r.c.log_level, LOG_LEVEL_DEBUG, "-L debug");
	is_int(r.c.redis_timeout_ms, 500, "--redis-timeout");
	is_int(r.c.poll_ms, 50, "--poll-timeout");
	done(&r);

	run(&r, "--listen=[::1]:8081", "--format=json", "--heartbeat=15",
	    "--log-level=warn", "--threads=1", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "--opt=value forms: CONFIG_OK (%s)", r.err);
	is_str(r.c.listen_host, "::1", "[::1]:8081 host");
	is_int(r.c.listen_port, 8081, "[::1]:8081 port");
	is_int(r.c.format, FRAME_FORMAT_JSON, "--format=json");
	is_int(r.c.heartbeat_ms, 15000, "--heartbeat=15");
	is_int(r.c.log_level, LOG_LEVEL_WARN, "--log-level=warn");
	is_int(r.c.threads, 1, "--threads=1");
	done(&r);

	run(&r, "-l", "*:8080", "--heartbeat", "1.25", "-L", "error",
	    "--max-uploads", "16", "--max-uploads", "1", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "*:8080: CONFIG_OK (%s)", r.err);
	is_str(r.c.listen_host, "*", "*:8080 host");
	is_int(r.c.heartbeat_ms, 1250, "--heartbeat 1.25: 1250 ms");
	is_int(r.c.log_level, LOG_LEVEL_ERROR, "-L error");
	is_int(max_of(&r.c, "upload"), 1, "the last of a repeated option wins");
	done(&r);

	/* the ends of the range --help gives: 0.1 to 3600 */
	run(&r, "--heartbeat", "3600", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "--heartbeat 3600: CONFIG_OK (%s)", r.err);
	is_int(r.c.heartbeat_ms, 3600000, "--heartbeat 3600: 3600000 ms");
	done(&r);
	run(&r, "--heartbeat", "0.1", (char *)NULL);
	is_int(r.c.heartbeat_ms, 100, "--heartbeat 0.1: 100 ms");
	done(&r);
	run(&r, "--heartbeat", "3600.001", (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "--heartbeat 3600.001: CONFIG_ERROR");
	done(&r);
	run(&r, "--heartbeat", "0.099", (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "--heartbeat 0.099: CONFIG_ERROR");
	done(&r);

	run(&r, "-r", "redis://:topsecret@h:1", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "URL with password: CONFIG_OK");
	is_str(r.c.redis_url.password, "topsecret", "URL password parsed");
	ok(r.c.redis != NULL && !has(r.c.redis, "topsecret"),
	    "config.redis hides the password: %s",
	    r.c.redis ? r.c.redis : "(null)");
	done(&r);

	fd = mkstemp(path);
	if (write(fd, "fil3pw\nsecond line\n", 19) != 19)
		diag("short write to %s", path);
	close(fd);
	run(&r, "--redis-password-file", path, (char *)NULL);
	is_int(r.rc, CONFIG_OK, "--redis-password-file: CONFIG_OK (%s)",
	    r.err);
	is_str(r.c.redis_url.password, "fil3pw",
	    "--redis-password-file: the first line");
	done(&r);
	unlink(path);

	test_password_file();

	setenv("SSERELAY_REDIS_PASSWORD", "envpw", 1);
	run(&r, (char *)NULL);
	is_int(r.rc, CONFIG_OK, "SSERELAY_REDIS_PASSWORD: CONFIG_OK");
	is_str(r.c.redis_url.password, "envpw",
	    "SSERELAY_REDIS_PASSWORD: used as the password");
	ok(!has(r.c.redis, "envpw"), "env password not shown in config.redis");
	done(&r);
	unsetenv("SSERELAY_REDIS_PASSWORD");

	run_capture(&r, "--version", (char *)NULL);
	is_int(r.rc, CONFIG_EXIT, "--version: CONFIG_EXIT");
	ok(has(r.out, "sserelay " PACKAGE_VERSION "\n"),
	    "--version prints \"sserelay " PACKAGE_VERSION "\"");
	done(&r);
	run_capture(&r, "-V", (char *)NULL);
	is_int(r.rc, CONFIG_EXIT, "-V: CONFIG_EXIT");
	done(&r);
	run_capture(&r, "--help", (char *)NULL);
	is_int(r.rc, CONFIG_EXIT, "--help: CONFIG_EXIT");
	ok(has(r.out, "--listen") && has(r.out, "--redis"),
	    "--help prints the usage on stdout");
	done(&r);
	run_capture(&r, "-h", (char *)NULL);
	is_int(r.rc, CONFIG_EXIT, "-h: CONFIG_EXIT");
	done(&r);
}

static void
test_bad(void)
{
	struct run r;

	bad("--threads", "abc", "--threads");
	bad("--threads", "4x", "--threads");
	bad("--threads", "-1", "--threads");
	bad("--threads", "", "--threads");
	bad("--ring-size", "0", "--ring-size");
	bad("--ring-size", "4294967297", "--ring-size");	/* 2^32 + 1 */
	bad("--ring-size", "99999999999999999999999", "--ring-size");
	bad("--max-uploads", "0", "--max-uploads");
	bad("--max-uploads", "17", "--max-uploads");
	bad("--heartbeat", "abc", "--heartbeat");
	bad("--heartbeat", "-1", "--heartbeat");
	bad("--heartbeat", "1s", "--heartbeat");
	bad("--retry", "abc", "--retry");
	bad("--retry", "-5", "--retry");
	bad("--redis-timeout", "abc", "--redis-timeout");
	bad("--poll-timeout", "abc", "--poll-timeout");
	bad("--max-connections", "abc", "--max-connections");
	bad("--conn-memory", "abc", "--conn-memory");
	bad("--client-timeout", "abc", "--client-timeout");
	bad("--format", "xml", "--format");
	bad("--log-level", "loud", "--log-level");
	bad("--listen", "localhost", "--listen");
	bad("--listen", "127.0.0.1:99999", "--listen");
	bad("--listen", "127.0.0.1:abc", "--listen");
	bad("--listen", "[::1:8080", "--listen");
	bad("--redis", "http://x", "--redis");
	bad("--redis", "redis://host:99999", "--redis");
	bad("--redis-password-file", "/nonexistent/sserelay-pw", "--redis-password-file");
	bad("--bogus", NULL, "bogus");
	/* missing argument, options without a short form too */
	bad("--heartbeat", NULL, "--heartbeat");
	bad("--ring-size", NULL, "--ring-size");
	bad("--redis-password-file", NULL, "--redis-password-file");
	run(&r, "--threads", (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "--threads without a value: CONFIG_ERROR");
	ok((has(r.err, "threads") || has(r.err, "-T")) && printable(r.err),
	    "--threads without a value: names the option: \"%s\"", r.err);
	done(&r);

	/* the short form: the message names the option either way */
	run(&r, "-T", "abc", (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "-T abc: CONFIG_ERROR");
	ok(has(r.err, "threads") || has(r.err, "-T"),
	    "-T abc: error names the option: \"%s\"", r.err);
	done(&r);

	/* a good option before the bad one does not hide the error */
	run(&r, "-T", "2", "-f", "yaml", (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "good then bad: CONFIG_ERROR");
	ok(has(r.err, "--format") || has(r.err, "-f"),
	    "good then bad: names the bad one: \"%s\"", r.err);
	done(&r);
}

static void
url_ok(const char *url, int is_unix, const char *host, int port,
    const char *path, const char *user, const char *password, int db)
{
	struct redis_url u;
	char err[CONFIG_ERRLEN] = "";
	int rc;

	memset(&u, 0, sizeof(u));
	rc = redis_url_parse(url, &u, err, sizeof(err));
	is_int(rc, 0, "%s: parsed (%s)", url, err);
	is_int(u.is_unix, is_unix, "%s: is_unix", url);
	if (!is_unix) {
		is_str(u.host, host, "%s: host", url);
		is_int(u.port, port, "%s: port", url);
	} else
		is_str(u.path, path, "%s: path", url);
	is_str(u.user, user, "%s: user", url);
	is_str(u.password, password, "%s: password", url);
	is_int(u.db, db, "%s: db", url);
	redis_url_free(&u);
}

static void
url_bad(const char *url)
{
	struct redis_url u;
	char err[CONFIG_ERRLEN] = "";
	int rc;

	memset(&u, 0, sizeof(u));
	rc = redis_url_parse(url, &u, err, sizeof(err));
	is_int(rc, -1, "\"%s\": refused", url);
	ok(err[0] != '\0' && strchr(err, '\n') == NULL,
	    "\"%s\": one-line error: \"%s\"", url, err);
	redis_url_free(&u);
}

static void
test_url(void)
{
	url_ok("redis://host", 0, "host", 6379, NULL, NULL, NULL, 0);
	url_ok("redis://host:6380/3", 0, "host", 6380, NULL, NULL, NULL, 3);
	url_ok("redis://127.0.0.1:6379", 0, "127.0.0.1", 6379, NULL, NULL,
	    NULL, 0);
	url_ok("redis://:pass@host", 0, "host", 6379, NULL, NULL, "pass", 0);
	url_ok("redis://user:p%40ss@host:1/2", 0, "host", 1, NULL, "user",
	    "p@ss", 2);
	url_ok("redis://host/0", 0, "host", 6379, NULL, NULL, NULL, 0);
	url_ok("unix:///tmp/r.sock", 1, NULL, 0, "/tmp/r.sock", NULL, NULL, 0);
	url_ok("unix:///tmp/r.sock?db=4", 1, NULL, 0, "/tmp/r.sock", NULL,
	    NULL, 4);

	url_bad("http://x");
	url_bad("redis://host:99999");
	url_bad("redis://host:abc");
	url_bad("redis://host/abc");
	url_bad("redis://host/-1");
	url_bad("redis://");
	url_bad("unix://");
	url_bad("unix:///tmp/r.sock?db=x");
	url_bad("");
}

/* ---- the option table ------------------------------------------------ */

/*
 * Row o's entry in the --help text: from its option line to the next
 * option line, continuation lines joined with one space.  NULL if the
 * option has no line of its own.  Free the result.
 */
static char *
help_entry(const char *help, const struct options_entry *o)
{
	char head[128], *out, *w;
	const char *p, *line, *nl;
	size_t n;

	if (o->shortopt)
		snprintf(head, sizeof(head), "  -%c, --%s", o->shortopt,
		    o->name);
	else
		snprintf(head, sizeof(head), "      --%s", o->name);
	n = strlen(head);
	for (p = help; p != NULL && *p != '\0'; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (strncmp(p, head, n) == 0 && (p[n] == ' ' || p[n] == '[' ||
		    p[n] == '\n'))
			break;
	}
	if (p == NULL || *p == '\0')
		return NULL;
	out = w = calloc(1, strlen(p) + 1);
	for (line = p; line != NULL && *line != '\0'; line = nl ? nl + 1 :
	    NULL) {
		nl = strchr(line, '\n');
		n = nl ? (size_t)(nl - line) : strlen(line);
		/* the next option, or the blank line before the footer */
		if (line != p && (n == 0 || strncmp(line, "  -", 3) == 0 ||
		    strncmp(line, "      --", 8) == 0))
			break;
		while (line != p && n > 0 && *line == ' ')
			line++, n--;
		if (w != out)
			*w++ = ' ';
		memcpy(w, line, n);
		w += n;
	}
	*w = '\0';
	return out;
}

/* the text of the last "[...]" of s, in buf; 0 if there is none */
static int
last_bracket(const char *s, char *buf, size_t len)
{
	const char *open = strrchr(s, '['), *close;

	if (open == NULL || (close = strchr(open, ']')) == NULL ||
	    (size_t)(close - open) > len)
		return 0;
	snprintf(buf, len, "%.*s", (int)(close - open - 1), open + 1);
	return 1;
}

static int
ends_with(const char *s, const char *end)
{
	size_t n = strlen(s), m = strlen(end);

	return n >= m && strcmp(s + n - m, end) == 0;
}

/* the invariants that options.c relies on without checking each time */
static void
test_table(void)
{
	const struct options_entry *t, *o, *q;
	size_t n, i, j;
	int good;

	t = options_table(&n);
	ok(n >= 40, "the table has %zu rows", n);
	for (i = 0; i < n; i++) {
		o = &t[i];
		good = o->name != NULL && o->help != NULL && *o->help != '\0';
		for (j = 0; j < i; j++) {
			q = &t[j];
			if (strcmp(q->name, o->name) == 0 ||
			    (o->shortopt && q->shortopt == o->shortopt))
				good = 0;
		}
		ok(good, "%s: a name, a help text, no other row with its name "
		    "or short option", o->name);
		ok(options_find(o->name) == o, "options_find(\"%s\")",
		    o->name);
		if (options_is_number(o))
			ok(o->min <= o->max, "%s: min %lld <= max %lld", o->name,
			    o->min, o->max);
		if (o->flags & OPTIONS_LIVE)
			ok((options_is_number(o) && o->type != OPTIONS_SIZE &&
			    o->atomic) || o->type == OPTIONS_CHOICE ||
			    o->type == OPTIONS_FLAG ||
			    o->type == OPTIONS_CHANNEL_MAX, "%s: live, so an "
			    "_Atomic number (a kind's maximum is one) or a "
			    "choice", o->name);
		if (o->type == OPTIONS_CHANNEL_MAX)
			ok(o->min >= 1 && o->max <= QUERY_CHANNELS_MAX,
			    "%s: a maximum of 1 to %d", o->name,
			    QUERY_CHANNELS_MAX);
		if (o->kind != NULL)
			ok(!(o->flags & OPTIONS_REPEAT) &&
			    !options_takes_words(o), "%s: an alias of %s takes "
			    "one value, once", o->name, o->kind);
	}
	ok(options_find("no-such-option") == NULL, "options_find: unknown");
}

/*
 * Every row's default round-trips through --help: --help shows it in
 * brackets, and that text read back by the row's parser gives what
 * config_init() set.  A row without a default shows what stands in for
 * it ([number of cores], [off]) or nothing, and its field starts unset.
 */
static void
test_defaults_help(void)
{
	const struct options_entry *t, *o;
	struct config init, back;
	struct run r;
	char shown[256], err[CONFIG_ERRLEN], *entry, *colon;
	size_t n, i;
	int have, roundtrips = 0, defaults = 0;

	run_capture(&r, "--help", (char *)NULL);
	is_int(r.rc, CONFIG_EXIT, "--help: CONFIG_EXIT");
	config_init(&init);
	t = options_table(&n);
	for (i = 0; i < n; i++) {
		o = &t[i];
		if ((entry = help_entry(r.out, o)) == NULL) {
			ok(0, "--%s has its line in --help", o->name);
			continue;
		}
		ok(ends_with(entry, " (reload)") == !!(o->flags & OPTIONS_LIVE),
		    "--%s: --help %s it (reload)", o->name,
		    (o->flags & OPTIONS_LIVE) ? "marks" : "does not mark");
		have = last_bracket(entry, shown, sizeof(shown));
		if (o->def == NULL && o->shown == NULL) {
			/* "[IPV6]" and the like are in the text, not last */
			ok(!have || !ends_with(entry, "]"), "--%s: no default "
			    "shown: %s", o->name, entry);
		} else
			is_str(have ? shown : NULL, o->shown ? o->shown :
			    o->def, "--%s: --help shows its default", o->name);
		if (o->type == OPTIONS_COMMAND) {
			free(entry);
			continue;
		}
		if (o->def == NULL) {
			/* unset, or set by config_init() (threads) */
			if (o->type == OPTIONS_STRING || o->type ==
			    OPTIONS_LIST || o->type == OPTIONS_HOSTPORT)
				ok(*(char **)((char *)&init + o->offset) ==
				    NULL, "--%s: unset by default", o->name);
			free(entry);
			continue;
		}
		/* "[0: from the open-file limit]" is the value 0 */
		if (have && isdigit((unsigned char)shown[0]) &&
		    (colon = strstr(shown, ": ")) != NULL)
			*colon = '\0';
		/* this row alone, on zeros: a parser that did nothing fails */
		memset(&back, 0, sizeof(back));
		if (have)
			is_int(options_set(o, &back, shown, err, sizeof(err)),
			    0, "--%s %s: the shown default parses (%s)",
			    o->name, shown, err);
		ok(!options_differs(o, &init, &back), "--%s: '%s' from "
		    "--help is config_init's default", o->name, shown);
		roundtrips++;
		config_free(&back);
		free(entry);
	}
	for (i = 0; i < n; i++)
		defaults += t[i].def != NULL && t[i].type != OPTIONS_COMMAND;
	ok(roundtrips == defaults && defaults >= 25, "%d of %d defaults "
	    "round-trip through --help", roundtrips, defaults);
	config_free(&init);
	done(&r);
}

/*
 * Every number row takes its min and max and refuses min-1 and max+1,
 * written as its parser reads them ("0.1" seconds, "64G"), with an error
 * "--name: expected ... LO to HI ..., got 'VALUE'" from the command line.
 */
static void
test_bounds(void)
{
	const struct options_entry *t, *o;
	struct run r;
	char v[64], lo[64], hi[64], want[160], got[80];
	size_t n, i;
	long long edge[4];
	int k, numbers = 0;

	t = options_table(&n);
	for (i = 0; i < n; i++) {
		o = &t[i];
		if (!options_is_number(o))
			continue;
		numbers++;
		options_number_text(o, o->min, lo, sizeof(lo));
		options_number_text(o, o->max, hi, sizeof(hi));
		edge[0] = o->min;
		edge[1] = o->max;
		edge[2] = o->min - 1;
		edge[3] = o->max + 1;
		for (k = 0; k < 4; k++) {
			options_number_text(o, edge[k], v, sizeof(v));
			snprintf(want, sizeof(want), "--%s", o->name);
			run(&r, want, v, (char *)NULL);
			if (k < 2) {
				is_int(r.rc, CONFIG_OK, "--%s %s (%s): accepted "
				    "(%s)", o->name, v, k ? "max" : "min",
				    r.err);
				is_int(options_number_get(o, &r.c), edge[k],
				    "--%s %s: kept as %lld", o->name, v,
				    edge[k]);
			} else {
				is_int(r.rc, CONFIG_ERROR, "--%s %s (%s): "
				    "refused", o->name, v, k == 2 ? "min-1" :
				    "max+1");
				snprintf(want, sizeof(want), "--%s: expected ",
				    o->name);
				snprintf(got, sizeof(got), " to %s", hi);
				ok(strncmp(r.err, want, strlen(want)) == 0 &&
				    has(r.err, lo) && has(r.err, got) &&
				    has(r.err, "got '") && has(r.err, v),
				    "--%s %s: \"%s\"", o->name, v, r.err);
			}
			done(&r);
		}
	}
	ok(numbers >= 15, "%d number rows", numbers);

	/* the shapes, as users see them */
	run(&r, "--ring-size", "x", (char *)NULL);
	is_str(r.err, "--ring-size: expected 2 to 1048576, got 'x'",
	    "--ring-size x: the message");
	done(&r);
	run(&r, "--heartbeat", "0.05", (char *)NULL);
	is_str(r.err, "--heartbeat: expected seconds from 0.1 to 3600, got "
	    "'0.05'", "--heartbeat 0.05: the message");
	done(&r);
	run(&r, "--history-memory", "1k", (char *)NULL);
	is_str(r.err, "--history-memory: expected bytes from 1M to 64G "
	    "(suffix k, M or G allowed), got '1k'",
	    "--history-memory 1k: the message");
	done(&r);
	run(&r, "--redis-timeout", "99", (char *)NULL);
	is_str(r.err, "--redis-timeout: expected milliseconds from 100 to "
	    "600000, got '99'", "--redis-timeout 99: the message");
	done(&r);
	run(&r, "--listen", "nowhere", (char *)NULL);
	is_str(r.err, "--listen: expected HOST:PORT, [IPV6]:PORT or *:PORT, "
	    "got 'nowhere'", "--listen nowhere: the message, said once");
	done(&r);
	run(&r, "--log-level", "loud", (char *)NULL);
	is_str(r.err, "--log-level: expected error, warn, info or debug, got "
	    "'loud'", "--log-level loud: the message");
	done(&r);
	run(&r, "--log-level", "warning", (char *)NULL);
	is_int(r.c.log_level, LOG_LEVEL_WARN, "--log-level warning is warn");
	done(&r);
}

/* what fn wrote to stderr (the log), in a malloc'd string */
static char *
capture_stderr(int (*fn)(struct config *, const struct config *),
    struct config *run, const struct config *next, int *rc)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	long n;
	char *out;

	dup2(fileno(tmp), STDERR_FILENO);
	*rc = fn(run, next);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = lseek(fileno(tmp), 0, SEEK_END);
	out = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
	if (n > 0 && pread(fileno(tmp), out, (size_t)n, 0) != n)
		out[0] = '\0';
	fclose(tmp);
	return out;
}

/* a value for o other than its default in c; 0 if the test has none */
static int
other_value(const struct options_entry *o, const struct config *c,
    char *buf, size_t len)
{
	long long v;
	int i;

	switch (o->type) {
	case OPTIONS_COMMAND:
		return 0;
	case OPTIONS_FLAG:
		snprintf(buf, len, "%s", *(const int *)((const char *)c +
		    o->offset) ? "no" : "yes");
		return 1;
	case OPTIONS_CHOICE:
		i = *(const int *)((const char *)c + o->offset);
		snprintf(buf, len, "%s", o->choices[i + 1] != NULL ?
		    o->choices[i + 1] : o->choices[0]);
		return 1;
	case OPTIONS_STRING:
		if (o->choices != NULL)
			snprintf(buf, len, "%s", strcmp(o->choices[0],
			    *(char *const *)((const char *)c + o->offset)) ?
			    o->choices[0] : o->choices[1]);
		else
			snprintf(buf, len, "other-%s", o->name);
		return 1;
	case OPTIONS_LIST:
		snprintf(buf, len, "a,b");
		return 1;
	case OPTIONS_HOSTPORT:
		snprintf(buf, len, "127.0.0.2:1");
		return 1;
	case OPTIONS_REDIS_URL:
		snprintf(buf, len, "redis://192.0.2.1:1/3");
		return 1;
	case OPTIONS_CHANNEL:
		/* a new prefix for an alias's kind, or a new kind */
		if (o->kind != NULL)
			snprintf(buf, len, "other-%s:", o->kind);
		else
			snprintf(buf, len, "room=chat:room:");
		return 1;
	case OPTIONS_CHANNEL_MAX:
		/* a kind both have: an alias's (test_channels does the rest) */
		if (o->kind == NULL)
			return 0;
		snprintf(buf, len, "%lld", o->max - 1);
		return 1;
	case OPTIONS_BROADCAST:
		snprintf(buf, len, "everyone");
		return 1;
	default:
		v = options_number_get(o, c);
		options_number_text(o, v == o->max ? o->min : o->max, buf,
		    len);
		return 1;
	}
}

/*
 * The SIGHUP diff, row by row: a changed live setting is applied,
 * counted and logged "reload: 'NAME' changed"; a changed restart-only one
 * is logged as needing a restart and left alone; nothing else is said.
 */
static void
test_reload(void)
{
	const struct options_entry *t, *o;
	struct config run, next;
	char v[256], err[CONFIG_ERRLEN], want[160], *log;
	size_t n, i;
	int rc, live = 0, restart = 0, fails;

	t = options_table(&n);
	for (i = 0; i < n; i++) {
		o = &t[i];
		config_init(&run);
		config_init(&next);
		fails = tap_fails;
		if (!other_value(o, &run, v, sizeof(v))) {
			config_free(&run);
			config_free(&next);
			continue;
		}
		is_int(options_set(o, &next, v, err, sizeof(err)), 0,
		    "--%s %s (%s)", o->name, v, err);
		log = capture_stderr(config_reload, &run, &next, &rc);
		if (o->flags & OPTIONS_NODIFF) {
			is_int(rc, 0, "%s changed: not compared itself",
			    o->name);
			ok(strstr(log, "reload:") == NULL, "%s: nothing "
			    "logged", o->name);
		} else if (o->flags & OPTIONS_LIVE) {
			live++;
			is_int(rc, 1, "live %s changed: counted", o->name);
			ok(!options_differs(o, &run, &next), "live %s: %s "
			    "applied", o->name, v);
			/* --log-format json: the line says it in JSON */
			if (strcmp(o->name, "log-format") == 0)
				snprintf(want, sizeof(want), "\"level\":\"info\","
				    "\"message\":\"reload: '%s' changed\","
				    "\"option\":\"%s\"}\n", o->name, o->name);
			else
				snprintf(want, sizeof(want), " info reload: "
				    "'%s' changed\n", o->name);
			ok(ends_with(log, want) && strchr(log, '\n') ==
			    log + strlen(log) - 1, "live %s: one line "
			    "\"reload: '%s' changed\"", o->name, o->name);
		} else {
			restart++;
			is_int(rc, 0, "restart-only %s changed: not counted",
			    o->name);
			ok(options_differs(o, &run, &next), "restart-only %s: "
			    "not applied", o->name);
			snprintf(want, sizeof(want), " warn reload: '%s' "
			    "changed; it takes effect only after a restart\n",
			    o->name);
			ok(ends_with(log, want) && strchr(log, '\n') ==
			    log + strlen(log) - 1, "restart-only %s: one line "
			    "\"%.*s\"", o->name, (int)strlen(want) - 2,
			    want + 1);
		}
		if (tap_fails > fails)
			tap_dump("log", log, strlen(log));
		free(log);
		log_set_format(LOG_FORMAT_TEXT);	/* the rows after */
		config_free(&run);
		config_free(&next);
	}
	ok(live >= 10 && restart >= 25, "%d live and %d restart-only rows "
	    "reloaded", live, restart);

	/* several at once: each line, in table order; only live ones count */
	config_init(&run);
	config_init(&next);
	options_set(options_find("ring-size"), &next, "8", err, sizeof(err));
	options_set(options_find("threads"), &next, "3", err, sizeof(err));
	options_set(options_find("retry"), &next, "10", err, sizeof(err));
	log = capture_stderr(config_reload, &run, &next, &rc);
	is_int(rc, 2, "ring-size, threads and retry changed: 2 applied");
	is_int(run.ring_size, 8, "ring-size applied");
	is_int(run.retry_ms, 10, "retry applied");
	ok(run.threads != 3, "threads left alone");
	ok(strstr(log, "'threads' changed; it takes effect only after a "
	    "restart") < strstr(log, "'retry' changed\n") &&
	    strstr(log, "'retry' changed\n") < strstr(log, "'ring-size' "
	    "changed\n") && strstr(log, "'threads' changed;") != NULL,
	    "three lines, in table order");
	free(log);
	config_free(&next);
	config_free(&run);

	/* the password is compared as part of redis */
	config_init(&run);
	config_init(&next);
	next.redis_url.password = strdup("changed");
	log = capture_stderr(config_reload, &run, &next, &rc);
	ok(rc == 0 && has(log, "reload: 'redis' changed; it takes effect "
	    "only after a restart"), "a new password: 'redis' changed, "
	    "restart");
	free(log);
	config_free(&next);

	/* the new log level decides what the reload logs */
	config_init(&next);
	options_set(options_find("log-level"), &next, "warn", err,
	    sizeof(err));
	options_set(options_find("retry"), &next, "20", err, sizeof(err));
	log = capture_stderr(config_reload, &run, &next, &rc);
	ok(rc == 2 && *log == '\0', "at log-level warn nothing is said of "
	    "live changes (%d)", rc);
	free(log);
	config_free(&next);
	config_free(&run);
	log_set_level(LOG_LEVEL_INFO);
}

/* a configuration file of text, and its path (unlink it) */
static void
conf_file(char *path, const char *text)
{
	strcpy(path, "/tmp/sserelay-test-confXXXXXX");
	write_file(path, text, strlen(text));
}

/* -c a file of text, then the flags; CONFIG_* with r's err */
static void
run_file(struct run *r, const char *text, ...)
{
	char path[64];
	const char *a;
	va_list ap;

	conf_file(path, text);
	memset(r, 0, sizeof(*r));
	r->argv[r->argc++] = strdup("sserelay");
	r->argv[r->argc++] = strdup("-c");
	r->argv[r->argc++] = strdup(path);
	va_start(ap, text);
	while ((a = va_arg(ap, const char *)) != NULL && r->argc < 39)
		r->argv[r->argc++] = strdup(a);
	va_end(ap);
	r->argv[r->argc] = NULL;
	config_init(&r->c);
	optind = 0;
	r->rc = config_parse_args(&r->c, r->argc, r->argv, r->err,
	    sizeof(r->err));
	unlink(path);
}

/* the file is refused: its error starts "FILE:line: key: " and has want */
static void
file_bad(const char *text, unsigned line, const char *key, const char *want,
    const char *desc)
{
	struct run r;
	char head[160], *colon;

	run_file(&r, text, (char *)NULL);
	is_int(r.rc, CONFIG_ERROR, "%s: refused", desc);
	/* "/tmp/sserelay-test-confXXXXXX:LINE: key: ..." */
	colon = strchr(r.err, ':');
	snprintf(head, sizeof(head), ":%u: %s: ", line, key);
	if (!ok(colon != NULL && strncmp(colon, head, strlen(head)) == 0 &&
	    has(r.err, want) && printable(r.err), "%s: \"%s\"", desc, r.err))
		diag("want \"FILE%s...%s...\"", head, want);
	done(&r);
}

/* refused once everything is read: the message has want */
static void
channels_bad(const char *want, const char *desc, ...)
{
	struct run r;
	va_list ap;

	va_start(ap, desc);
	run_v(&r, 0, ap);
	va_end(ap);
	is_int(r.rc, CONFIG_ERROR, "%s: CONFIG_ERROR", desc);
	if (!ok(has(r.err, want) && printable(r.err), "%s: \"%s\"", desc,
	    r.err))
		diag("want \"%s\"", want);
	done(&r);
}

/* --channel, --channel-max, --broadcast, and the file's channel lines */
static void
test_channels(void)
{
	struct config run_c, next;
	struct run r;
	char err[CONFIG_ERRLEN], *log;
	int rc;

	run(&r, "--channel", "room=chat:room:", "--channel-max", "room=8",
	    "--broadcast", "notifications:broadcast", "--channel",
	    "team=teams:", "--broadcast", "site:all", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "two kinds, two broadcasts: CONFIG_OK (%s)",
	    r.err);
	is_str(prefix_of(&r.c, "room"), "chat:room:", "--channel room=");
	is_int(max_of(&r.c, "room"), 8, "--channel-max room=8");
	is_int(max_of(&r.c, "team"), 1, "a kind without --channel-max: 1");
	is_str(prefix_of(&r.c, "user"), "user:", "user kept");
	is_int(max_of(&r.c, "upload"), 16, "upload kept");
	ok(r.c.channels.nkinds == 4 && strcmp(r.c.channels.kinds[2].name,
	    "room") == 0 && strcmp(r.c.channels.kinds[3].name, "team") == 0,
	    "four kinds: the defaults, then the new ones in order");
	ok(r.c.channels.nbroadcasts == 2 && strcmp(r.c.channels.broadcasts[0],
	    "notifications:broadcast") == 0 &&
	    strcmp(r.c.channels.broadcasts[1], "site:all") == 0,
	    "two broadcast channels, in order");
	is_int(channel_table_total(&r.c.channels), 1 + 16 + 8 + 1 + 2,
	    "channels per stream at most: 28");
	done(&r);

	/* order does not matter: a maximum before its kind */
	run(&r, "--channel-max", "room=3", "--channel", "room=r:",
	    "--channel=team=a=b:", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "--channel-max before --channel: CONFIG_OK "
	    "(%s)", r.err);
	is_int(max_of(&r.c, "room"), 3, "...its maximum kept");
	is_str(prefix_of(&r.c, "team"), "a=b:", "a prefix may hold '=': "
	    "NAME ends at the first");
	done(&r);

	/* the aliases are the default kinds */
	run(&r, "--channel", "user=u.", "--channel", "upload=files:",
	    "--channel-max", "upload=30", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "--channel user=, upload=; --channel-max "
	    "upload=30: CONFIG_OK (%s)", r.err);
	is_str(prefix_of(&r.c, "user"), "u.", "--channel user=u. is "
	    "--user-prefix");
	is_str(prefix_of(&r.c, "upload"), "files:", "--channel upload= is "
	    "--upload-prefix");
	is_int(max_of(&r.c, "upload"), 30, "--channel-max upload=30: more "
	    "than --max-uploads may say");
	is_int(r.c.channels.nkinds, 2, "still two kinds");
	done(&r);
	run(&r, "--user-prefix", "a:", "--channel", "user=b:", (char *)NULL);
	is_str(prefix_of(&r.c, "user"), "b:", "on the command line the last "
	    "one wins: --user-prefix a: then --channel user=b:");
	done(&r);
	run(&r, "--channel", "room=a:", "--channel", "room=b:", (char *)NULL);
	is_str(prefix_of(&r.c, "room"), "b:", "...and --channel room= twice");
	done(&r);

	/* the bound: maxima and broadcasts, at most QUERY_CHANNELS_MAX */
	run(&r, "--channel", "room=r:", "--channel-max", "room=45",
	    "--broadcast", "b1", "--broadcast", "b2", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "1 + 16 + 45 + 2 = 64 channels: CONFIG_OK "
	    "(%s)", r.err);
	done(&r);
	channels_bad("a stream could have 65 channels (the kinds' maxima add "
	    "up to 63, plus 2 broadcast), more than 64", "65 channels",
	    "--channel", "room=r:", "--channel-max", "room=46", "--broadcast",
	    "b1", "--broadcast", "b2", (char *)NULL);
	channels_bad("--channel-max, --broadcast: ", "the error names the "
	    "options", "--channel", "room=r:", "--channel-max", "room=48",
	    (char *)NULL);

	/* startup errors, each naming the option */
	bad("--channel", "room", "--channel: expected NAME=PREFIX, got 'room'");
	bad("--channel", "=chat:", "--channel: '': not a parameter name");
	bad("--channel", "9room=x:", "--channel: '9room': not a parameter "
	    "name");
	bad("--channel", "ro om=x:", "--channel: 'ro om'");
	bad("--channel", "room=x*", "--channel: a prefix is at most 64 bytes "
	    "and none of * ? [ ] \\, got 'x*'");
	bad("--channel", "room=x[1]", "none of * ? [ ]");
	bad("--channel", "room=x?", "none of * ? [ ]");
	bad("--channel", "room=x\\", "none of * ? [ ]");
	bad("--channel", "room=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaa", "at most 64 bytes");
	bad("--channel", "lastEventId=x:", "--channel: 'lastEventId': "
	    "reserved");
	bad("--channel", "access_token=x:", "reserved");
	bad("--channel", "_=x:", "reserved");
	bad("--channel", "last=x:", "--channel: 'last': reserved");
	bad("--channel", "uploads=x:", "reserved");
	bad("--channel-max", "room", "--channel-max: expected NAME=N, got "
	    "'room'");
	bad("--channel-max", "room=0", "--channel-max: room: expected 1 to 64, "
	    "got '0'");
	bad("--channel-max", "room=65", "expected 1 to 64, got '65'");
	bad("--channel-max", "room=x", "expected 1 to 64, got 'x'");
	bad("--channel-max", "user=2", "--channel-max: user: a stream has one "
	    "user");
	bad("--broadcast", "", "--broadcast: a channel is 1 to 192 bytes");
	bad("--broadcast", "a\tb", "--broadcast: a channel is 1 to 192 bytes, "
	    "no control characters");
	channels_bad("--channel-max room: no such kind of channel (--channel "
	    "room=PREFIX makes one)", "--channel-max for no kind",
	    "--channel-max", "room=2", (char *)NULL);
	channels_bad("--channel: the kinds room and team have the same prefix "
	    "'x:'", "two kinds, one prefix", "--channel", "room=x:",
	    "--channel", "team=x:", (char *)NULL);
	channels_bad("--channel: the kinds user and upload have the same "
	    "prefix 'u:'", "--user-prefix and --upload-prefix the same",
	    "--user-prefix", "u:", "--upload-prefix", "u:", (char *)NULL);
	channels_bad("--channel: the prefix of room ('chat:') begins that of "
	    "team ('chat:team:')", "a prefix that begins another",
	    "--channel", "team=chat:team:", "--channel", "room=chat:",
	    (char *)NULL);
	channels_bad("the prefix of user ('user:') begins that of room "
	    "('user:room:')", "a prefix under a default one", "--channel",
	    "room=user:room:", (char *)NULL);
	channels_bad("--broadcast user:all: a channel of the kind user (prefix "
	    "'user:')", "a broadcast channel under a kind's prefix",
	    "--broadcast", "user:all", (char *)NULL);
	channels_bad("--broadcast: 'x' is given twice", "a broadcast twice",
	    "--broadcast", "x", "--broadcast", "x", (char *)NULL);
	{
		char many[QUERY_KINDS_MAX + 1][32];
		struct run rr;

		memset(&rr, 0, sizeof(rr));
		rr.argv[rr.argc++] = strdup("sserelay");
		for (int i = 0; i < QUERY_KINDS_MAX - 1; i++) {
			snprintf(many[i], sizeof(many[i]), "k%d=p%d:", i, i);
			rr.argv[rr.argc++] = strdup("--channel");
			rr.argv[rr.argc++] = strdup(many[i]);
		}
		rr.argv[rr.argc] = NULL;
		config_init(&rr.c);
		optind = 0;
		rr.rc = config_parse_args(&rr.c, rr.argc, rr.argv, rr.err,
		    sizeof(rr.err));
		ok(rr.rc == CONFIG_ERROR && has(rr.err, "--channel: 'k14': "
		    "more than 16 kinds of channel"), "a 17th kind: \"%s\"",
		    rr.err);
		done(&rr);
	}

	/* glob characters in a broadcast channel are fine: escaped later */
	run(&r, "--broadcast", "news*[1]?\\", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "a broadcast channel with * [ ] ? \\: "
	    "CONFIG_OK (%s)", r.err);
	{
		struct channel_patterns p;

		ok(channel_patterns(&r.c.channels, "PSUBSCRIBE", &p) == 0 &&
		    p.argc == 4, "patterns: the command, two kinds, one "
		    "broadcast");
		ok(p.argc == 4 && strcmp(p.argv[0], "PSUBSCRIBE") == 0 &&
		    strcmp(p.argv[1], "user:*") == 0 && p.lens[1] == 6 &&
		    strcmp(p.argv[2], "upload:*") == 0 &&
		    strcmp(p.argv[3], "news\\*\\[1\\]\\?\\\\") == 0 &&
		    p.lens[3] == strlen(p.argv[3]),
		    "...PREFIX* for each kind, the broadcast channel escaped: "
		    "%s", p.argc == 4 ? p.argv[3] : "");
		channel_patterns_free(&p);
	}
	done(&r);

	/* the file: channel NAME PREFIX [MAX], repeated; broadcast lines */
	run_file(&r, "channel room chat:room: 8\n"
	    "channel team \"teams and more:\"\n"
	    "channel-max team 2\n"
	    "broadcast notifications:broadcast\n"
	    "broadcast \"site all\"\n"
	    "channel\tupload   files:   4\n", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "a file with channel and broadcast lines: "
	    "CONFIG_OK (%s)", r.err);
	is_str(prefix_of(&r.c, "room"), "chat:room:", "channel room chat:room: "
	    "8: the prefix");
	is_int(max_of(&r.c, "room"), 8, "...and MAX");
	is_str(prefix_of(&r.c, "team"), "teams and more:", "a quoted prefix");
	is_int(max_of(&r.c, "team"), 2, "channel-max team 2");
	is_str(prefix_of(&r.c, "upload"), "files:", "channel upload files: "
	    "4: the default kind redefined");
	is_int(max_of(&r.c, "upload"), 4, "...and its maximum");
	ok(r.c.channels.nbroadcasts == 2 && strcmp(r.c.channels.broadcasts[1],
	    "site all") == 0, "two broadcast lines, one quoted");
	done(&r);

	/* flags override the file: a kind by name, the broadcast list whole */
	run_file(&r, "channel room chat:room: 8\nchannel team t:\n"
	    "broadcast a\nbroadcast b\nmax-uploads 3\n", "--channel",
	    "room=rooms:", "--channel-max", "room=2", "--broadcast", "c",
	    "--max-uploads", "5", (char *)NULL);
	is_int(r.rc, CONFIG_OK, "file and flags: CONFIG_OK (%s)", r.err);
	is_str(prefix_of(&r.c, "room"), "rooms:", "--channel room= overrides "
	    "the file's room");
	is_int(max_of(&r.c, "room"), 2, "--channel-max room= its maximum");
	is_str(prefix_of(&r.c, "team"), "t:", "the file's team stays");
	ok(r.c.channels.nbroadcasts == 1 && strcmp(r.c.channels.broadcasts[0],
	    "c") == 0, "the flags' broadcast list replaces the file's");
	is_int(max_of(&r.c, "upload"), 5, "--max-uploads overrides the file");
	done(&r);

	/* each thing once per file, whatever the key that sets it */
	file_bad("channel room a:\nchannel room b:\n", 2, "channel",
	    "the prefix of room is already set on line 1",
	    "channel room twice in a file");
	file_bad("user-prefix u:\nchannel user v:\n", 2, "channel",
	    "the prefix of user is already set on line 1",
	    "user-prefix and channel user in a file");
	file_bad("channel room a: 3\nchannel-max room 4\n", 2, "channel-max",
	    "the maximum of room is already set on line 1",
	    "channel room's MAX and channel-max room in a file");
	file_bad("max-uploads 3\nchannel-max upload 4\n", 2, "channel-max",
	    "the maximum of upload is already set on line 1",
	    "max-uploads and channel-max upload in a file");
	file_bad("broadcast a\nbroadcast a\n", 2, "broadcast",
	    "'a' is given twice", "a broadcast line twice");
	file_bad("channel room\n", 1, "channel", "expected NAME PREFIX [MAX]",
	    "channel with one word");
	file_bad("channel room a: 3 4\n", 1, "channel",
	    "expected NAME PREFIX [MAX]", "channel with four words");
	file_bad("channel room a: 65\n", 1, "channel",
	    "room: expected 1 to 64, got '65'", "channel with MAX 65");
	file_bad("channel-max room\n", 1, "channel-max", "expected NAME N",
	    "channel-max with one word");
	file_bad("channel room \"a:\n", 1, "channel", "unterminated quote",
	    "channel with an unterminated quote");
	file_bad("channel room \"a:\"b 1\n", 1, "channel",
	    "text after the closing quote", "channel with text after a quote");
	file_bad("channel last x:\n", 1, "channel", "'last': reserved",
	    "channel last");
	file_bad("channel a b c d e f g h i\n", 1, "channel",
	    "more than 8 words", "nine words");
	file_bad("broadcast\n", 1, "broadcast", "missing value",
	    "broadcast without a channel");
	run_file(&r, "channel room x:\nchannel team x:\n", (char *)NULL);
	ok(r.rc == CONFIG_ERROR && has(r.err, "--channel: the kinds room and "
	    "team have the same prefix"), "a file with two kinds of one "
	    "prefix: refused once read: \"%s\"", r.err);
	done(&r);

	/* SIGHUP: kinds and broadcasts need a restart, maxima are live */
	config_init(&run_c);
	config_init(&next);
	run_c.options_from = next.options_from = CHANNEL_FROM_FLAGS;
	options_set(options_find("channel"), &run_c, "room=r:", err,
	    sizeof(err));
	options_set(options_find("channel"), &next, "room=r:", err,
	    sizeof(err));
	options_set(options_find("channel-max"), &next, "room=5", err,
	    sizeof(err));
	options_set(options_find("max-uploads"), &next, "7", err,
	    sizeof(err));
	log = capture_stderr(config_reload, &run_c, &next, &rc);
	is_int(rc, 2, "room's maximum and max-uploads changed: 2 applied");
	is_int(max_of(&run_c, "room"), 5, "room's maximum applied");
	is_int(max_of(&run_c, "upload"), 7, "upload's maximum applied");
	ok(has(log, "'max-uploads' changed\n") && has(log, "'channel-max' "
	    "changed\n") && !has(log, "restart"), "logged under their own "
	    "rows, nothing needs a restart");
	free(log);
	config_free(&next);
	config_init(&next);
	next.options_from = CHANNEL_FROM_FLAGS;
	options_set(options_find("channel"), &next, "room=other:", err,
	    sizeof(err));
	options_set(options_find("channel-max"), &next, "room=9", err,
	    sizeof(err));
	options_set(options_find("broadcast"), &next, "all", err, sizeof(err));
	options_set(options_find("max-uploads"), &next, "7", err,
	    sizeof(err));
	log = capture_stderr(config_reload, &run_c, &next, &rc);
	is_int(rc, 1, "a new prefix, a new maximum and a broadcast: one "
	    "applied");
	is_str(prefix_of(&run_c, "room"), "r:", "the prefix stays");
	is_int(max_of(&run_c, "room"), 9, "the maximum is applied");
	is_int(run_c.channels.nbroadcasts, 0, "no broadcast added");
	ok(has(log, "'channel' changed; it takes effect only after a restart")
	    && has(log, "'broadcast' changed; it takes effect only after a "
	    "restart"), "the prefix and the broadcast need a restart");
	free(log);
	config_free(&next);
	config_free(&run_c);
}

int
main(void)
{
	test_defaults();
	test_good();
	test_bad();
	test_url();
	test_table();
	test_defaults_help();
	test_bounds();
	test_reload();
	test_channels();
	return done_testing();
}
