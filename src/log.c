/*
 * log.c - the one formatter of log lines: text or JSON (see log.h), on
 * stderr, one write(2) per line so that lines from several threads never
 * interleave.
 *
 * A JSON line is valid UTF-8 whatever the bytes it was given (a channel
 * name from Redis is any bytes): invalid sequences become U+FFFD, control
 * characters are escaped, and a line that would not fit is cut inside a
 * string, never across an escape, so it always parses.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

#define LOG_LINE_MAX	2048		/* a text line, and a message */
#define LOG_JSON_MAX	(6 * LOG_LINE_MAX + 1024)	/* all escaped */

static atomic_int log_level = LOG_LEVEL_INFO;
static atomic_int log_format = LOG_FORMAT_TEXT;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level level)
{
	atomic_store(&log_level, level);
}

enum log_level
log_get_level(void)
{
	return atomic_load(&log_level);
}

const char *
log_level_name(enum log_level level)
{
	return log_names[level];
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t	 i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_LEVEL_WARN;
		return 0;
	}
	return -1;
}

void
log_set_format(enum log_format format)
{
	atomic_store(&log_format, format);
}

enum log_format
log_get_format(void)
{
	return atomic_load(&log_format);
}

/* a JSON line being built: cap leaves room for the closing "}\n" */
struct log_json {
	char	*p;
	size_t	 n, cap;
};

static int
log_json_add(struct log_json *j, const char *s, size_t len)
{
	if (j->n + len > j->cap)
		return -1;
	memcpy(j->p + j->n, s, len);
	j->n += len;
	return 0;
}

/*
 * A JSON string of len bytes (-1: up to the NUL), quotes included.  The
 * opening quote needs room for the closing one, which always fits: what
 * does not fit before it is cut, a whole character or escape at a time.
 */
static int
log_json_str(struct log_json *j, const char *s0, int len0)
{
	const unsigned char	*s = (const unsigned char *)s0;
	size_t			 len, i = 0, n, k, bad;
	char			 esc[8];
	const char		*add;

	len = len0 < 0 ? strlen(s0) : (size_t)len0;
	if (j->n + 2 > j->cap)
		return -1;
	j->p[j->n++] = '"';
	j->cap--;		/* the closing quote's */
	while (i < len) {
		n = 1;		/* bytes of s it stands for */
		if ((k = utf8_seq(s + i, len - i, &bad)) == 0) {
			add = "\\ufffd";
			k = 6;
			n = bad;
		} else if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)s[i];
			add = esc;
			k = 2;
		} else if (s[i] < 0x20) {
			add = s[i] == '\n' ? "\\n" : s[i] == '\r' ? "\\r" :
			    s[i] == '\t' ? "\\t" : NULL;
			if (add != NULL)
				k = 2;
			else {
				k = (size_t)snprintf(esc, sizeof(esc),
				    "\\u%04x", s[i]);
				add = esc;
			}
		} else {
			add = (const char *)s + i;
			n = k;
		}
		if (log_json_add(j, add, k) == -1)
			break;
		i += n;
	}
	j->cap++;
	j->p[j->n++] = '"';
	return 0;
}

/* {"time":..,"level":..,"message":..[,fields]} and a newline into out */
static size_t
log_json_line(char *out, size_t size, const char *stamp,
    enum log_level level, const char *msg, size_t msglen,
    const struct log_field *kv)
{
	struct log_json	 j = { out, 0, size - 2 };
	char		 num[32];
	int		 r;

	log_json_add(&j, "{\"time\":", 8);
	log_json_str(&j, stamp, -1);
	log_json_add(&j, ",\"level\":", 9);
	log_json_str(&j, log_names[level], -1);
	log_json_add(&j, ",\"message\":", 11);
	log_json_str(&j, msg, (int)msglen);
	for (; kv != NULL && kv->key != NULL; kv++) {
		if (!kv->is_num && kv->str == NULL)
			continue;
		/* the whole field or none of it: a key needs its value */
		if (j.n + strlen(kv->key) + 24 > j.cap)
			break;
		log_json_add(&j, ",", 1);
		log_json_str(&j, kv->key, -1);
		log_json_add(&j, ":", 1);
		if (kv->is_num) {
			r = snprintf(num, sizeof(num), "%llu", kv->num);
			log_json_add(&j, num, (size_t)r);
		} else
			log_json_str(&j, kv->str, kv->len);
	}
	out[j.n++] = '}';
	out[j.n++] = '\n';
	return j.n;
}

static void
log_vline(enum log_level level, int errnum, const struct log_field *kv,
    const char *fmt, va_list ap)
{
	char		 line[LOG_LINE_MAX], json[LOG_JSON_MAX];
	struct timeval	 tv;
	struct tm	 tm;
	size_t		 n, start;
	int		 r;

	if ((int)level > atomic_load(&log_level))
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03dZ %s ",
	    (int)(tv.tv_usec / 1000), log_names[level]);
	n += r;
	start = n;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (errnum) {
		r = snprintf(line + n, sizeof(line) - n, ": %s",
		    strerror(errnum));
		if (r > 0)
			n += (size_t)r;
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	if (atomic_load(&log_format) == LOG_FORMAT_JSON) {
		/* the stamp is the text line's first 24 bytes */
		line[24] = '\0';
		n = log_json_line(json, sizeof(json), line, level,
		    line + start, n - start, kv);
		(void)!write(STDERR_FILENO, json, n);
		return;
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

#define LOG_FN(name, level, witherr)				\
void								\
name(const char *fmt, ...)					\
{								\
	va_list	 ap;						\
	int	 saved = errno;					\
								\
	va_start(ap, fmt);					\
	log_vline(level, witherr ? saved : 0, NULL, fmt, ap);	\
	va_end(ap);						\
	errno = saved;						\
}

LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_errorx, LOG_LEVEL_ERROR, 0)

void
log_kv(enum log_level level, const struct log_field *kv, const char *fmt,
    ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vline(level, 0, kv, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vline(LOG_LEVEL_ERROR, saved, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vline(LOG_LEVEL_ERROR, 0, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
