/*
 * test_config.c - defaults, command line and Redis URL parsing (config.h).
 *
 * src/config.h is included by path: a plain "config.h" would find
 * autoconf's config.h in the build directory first.
 *
 * getopt_long keeps global state, so optind is reset before every call
 * (config_parse_args may do it too; the test does not rely on it).
 * argv strings are owned by the test and freed only after config_free:
 * the config must copy what it keeps.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/config.h"
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
	is_str(c.user_prefix, "user:", "default user prefix");
	is_str(c.upload_prefix, "upload:", "default upload prefix");
	is_int(c.max_uploads, 16, "default max uploads 16");
	is_int(c.max_connections, 0, "default max connections 0 (derived)");
	is_int(c.conn_memory, 6144, "default conn memory 6144");
	is_int(c.client_timeout_s, 60, "default client timeout 60 s");
	is_int(c.log_level, LOG_LEVEL_INFO, "default log level info");
	config_free(&c);

	unsetenv("SSERELAY_REDIS_PASSWORD");
	run(&r, (char *)NULL);
	is_int(r.rc, CONFIG_OK, "no options: CONFIG_OK");
	ok(r.c.threads >= 1, "default threads: the cores (%u)", r.c.threads);
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
	is_str(r.c.user_prefix, "u.", "--user-prefix");
	is_str(r.c.upload_prefix, "up.", "--upload-prefix");
	is_int(r.c.max_uploads, 4, "--max-uploads");
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
	is_int(r.c.max_uploads, 1, "the last of a repeated option wins");
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
	ok(has(r.out, "sserelay 0.1.0"), "--version prints \"sserelay 0.1.0\"");
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

	{
		FILE *f = tmpfile();
		char buf[4096];
		size_t n;

		config_usage(f);
		rewind(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		ok(has(buf, "--heartbeat") && has(buf, "--format") &&
		    has(buf, "--ring-size"), "config_usage lists the options");
	}
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
	rc = config_redis_url_parse(url, &u, err, sizeof(err));
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
	config_redis_url_free(&u);
}

static void
url_bad(const char *url)
{
	struct redis_url u;
	char err[CONFIG_ERRLEN] = "";
	int rc;

	memset(&u, 0, sizeof(u));
	rc = config_redis_url_parse(url, &u, err, sizeof(err));
	is_int(rc, -1, "\"%s\": refused", url);
	ok(err[0] != '\0' && strchr(err, '\n') == NULL,
	    "\"%s\": one-line error: \"%s\"", url, err);
	config_redis_url_free(&u);
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

int
main(void)
{
	test_defaults();
	test_good();
	test_bad();
	test_url();
	return done_testing();
}
