/*
 * test_log.c - log.c's one formatter: the text lines as they always were,
 * and --log-format json: one object per line that parses (json-c here,
 * Python's json module in tests/logs.t), with its fields, whatever bytes
 * the message and the fields hold, however long.
 */
#include <errno.h>
#include <json-c/json.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

static FILE	*capture;
static int	 saved_stderr;

/* stderr into a temporary file from now on */
static void
capture_start(void)
{
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	capture = tmpfile();
	dup2(fileno(capture), STDERR_FILENO);
}

/* what was written since capture_start(), NUL-terminated; free it */
static char *
capture_end(size_t *len)
{
	char	*buf;
	long	 n;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	n = ftell(capture);
	buf = calloc(1, (size_t)n + 1);
	rewind(capture);
	*len = fread(buf, 1, (size_t)n, capture);
	fclose(capture);
	return buf;
}

static int
matches(const char *s, const char *re)
{
	regex_t	 rx;
	int	 r;

	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	r = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return r;
}

/* the line as a JSON object, NULL if it is not one */
static struct json_object *
parse(const char *line, size_t len)
{
	struct json_tokener	*tok = json_tokener_new();
	struct json_object	*o;

	o = json_tokener_parse_ex(tok, line, (int)len);
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success
	    || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static const char *
jstr(struct json_object *o, const char *k, size_t *len)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	if (len != NULL)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

#define STAMP	"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

static void
test_text(void)
{
	char	*out;
	size_t	 len;

	log_set_format(LOG_FORMAT_TEXT);
	log_set_level(LOG_LEVEL_INFO);
	capture_start();
	log_info("hello %d", 5);
	log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("client", "10.0.0.1"),
	    LOG_NUM("count", 3)), "hello %d", 5);
	log_debug("not at info");
	errno = ENOENT;
	log_warn("open %s", "x");
	log_errorx("bad");
	out = capture_end(&len);
	ok(matches(out, STAMP " info hello 5\n[0-9T:.Z-]{24} info hello 5\n"
	    "[0-9T:.Z-]{24} warn open x: No such file or directory\n"
	    "[0-9T:.Z-]{24} error bad\n$"), "text: the lines as always; "
	    "log_kv's fields are not in them; debug not at info");
	if (!matches(out, "^.* info hello 5\n"))
		diag("%s", out);
	free(out);
}

static void
test_json(void)
{
	struct json_object	*o, *v;
	char			*out, *nl;
	const char		*s;
	size_t			 len, slen;

	log_set_format(LOG_FORMAT_JSON);
	log_set_level(LOG_LEVEL_DEBUG);
	capture_start();
	log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("client", "10.0.0.1"),
	    LOG_NUM("count", 12345678901ULL), LOG_STR("none", NULL),
	    LOG_MEM("channel", "user:a\0b", 8)), "auth: %u %s", 401,
	    "missing token");
	out = capture_end(&len);
	ok(len > 0 && out[len - 1] == '\n' && strchr(out, '\n') ==
	    out + len - 1, "json: one line");
	o = parse(out, len);
	ok(o != NULL, "json: it parses as an object");
	ok(matches(jstr(o, "time", NULL) ? jstr(o, "time", NULL) : "",
	    STAMP "$"), "json: time as in the text lines");
	is_str(jstr(o, "level", NULL), "info", "json: level");
	is_str(jstr(o, "message", NULL), "auth: 401 missing token",
	    "json: message, as the text line has it");
	is_str(jstr(o, "client", NULL), "10.0.0.1", "json: a string field");
	ok(o != NULL && json_object_object_get_ex(o, "count", &v) &&
	    json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) == 12345678901LL,
	    "json: a number field is a number");
	ok(o != NULL && !json_object_object_get_ex(o, "none", NULL),
	    "json: a NULL string field is left out");
	s = jstr(o, "channel", &slen);
	ok(s != NULL && slen == 8 && memcmp(s, "user:a\0b", 8) == 0,
	    "json: a field of bytes with a NUL, as \\u0000");
	json_object_put(o);
	free(out);

	/* every byte a message can hold */
	capture_start();
	log_warnx("q\" b\\ n\n r\r t\t c\x01 d\x7f ff\xff e\xc3\xa9 cut\xe2\x82");
	out = capture_end(&len);
	o = parse(out, len);
	ok(o != NULL && strchr(out, '\n') == out + len - 1,
	    "json: quotes, backslashes, controls, invalid UTF-8: one line "
	    "that parses");
	is_str(jstr(o, "message", NULL), "q\" b\\ n\n r\r t\t c\x01 d\x7f "
	    "ff\xef\xbf\xbd e\xc3\xa9 cut\xef\xbf\xbd",
	    "json: ...each kept, invalid UTF-8 as U+FFFD");
	is_str(jstr(o, "level", NULL), "warn", "json: level warn");
	json_object_put(o);
	free(out);

	errno = EACCES;
	capture_start();
	log_warn("open %s", "f");
	out = capture_end(&len);
	o = parse(out, len);
	is_str(jstr(o, "message", NULL), "open f: Permission denied",
	    "json: log_warn's strerror in the message");
	json_object_put(o);
	free(out);
}

static void
test_json_long(void)
{
	struct json_object	*o;
	char			*big, *out;
	size_t			 len, n = 20000;

	big = malloc(n + 1);
	memset(big, '"', n);		/* the worst to escape but \u */
	big[n] = '\0';
	capture_start();
	log_kv(LOG_LEVEL_ERROR, LOG_FIELDS(LOG_STR("reason", big),
	    LOG_STR("client", "1.2.3.4")), "%s", big);
	out = capture_end(&len);
	o = parse(out, len);
	ok(o != NULL && out[len - 1] == '\n' && strchr(out, '\n') ==
	    out + len - 1, "json: a message and a field of 20,000 quotes: "
	    "one line that parses (%zu bytes)", len);
	ok(jstr(o, "message", NULL) != NULL &&
	    strlen(jstr(o, "message", NULL)) >= 2000,
	    "json: the message cut as the text line's would be");
	json_object_put(o);
	free(out);

	memset(big, '\x01', n);		/* \u0001 each: six bytes */
	capture_start();
	log_kv(LOG_LEVEL_ERROR, LOG_FIELDS(LOG_STR("a", big),
	    LOG_STR("b", big), LOG_STR("c", big)), "%.2000s", big);
	out = capture_end(&len);
	o = parse(out, len);
	ok(o != NULL && jstr(o, "message", NULL) != NULL,
	    "json: fields that do not fit are cut or left out, and the line "
	    "still parses (%zu bytes)", len);
	json_object_put(o);
	free(out);
	free(big);
}

int
main(void)
{
	test_text();
	test_json();
	test_json_long();
	return done_testing();
}
