/*
 * log.h - one line per event on stderr, as text for people or as JSON
 * for a log pipeline (--log-format).
 *
 * One line per state change; never one per message at the default level.
 * Thread-safe: each line is written with a single write(2).
 *
 * text:  2026-01-31T12:00:00.000Z info metrics and health on 127.0.0.1:9100
 * json:  {"time":"2026-01-31T12:00:00.000Z","level":"info",
 *         "message":"metrics and health on 127.0.0.1:9100",
 *         "listen":"127.0.0.1:9100"}
 *
 * A line about something (a client, a channel, a Redis server) says so with
 * log_kv() and its fields: the JSON object carries each as a key of its
 * own, so a pipeline never parses the message; the text line is the
 * message alone, as log_info() and friends write it.  The field names
 * in use are listed in sserelay(8), LOGGING.  Never a token or a password
 * in a message or a field.
 */
#ifndef SSERELAY_LOG_H
#define SSERELAY_LOG_H

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

/* one field of a line: a string (str, len bytes; -1: up to its NUL) or a
   number; a string field whose str is NULL is left out */
struct log_field {
	const char		*key;
	const char		*str;
	int			 len;
	int			 is_num;
	unsigned long long	 num;
};

#define LOG_STR(k, s)		{ (k), (s), -1, 0, 0 }
#define LOG_MEM(k, s, n)	{ (k), (s), (int)(n), 0, 0 }
#define LOG_NUM(k, n)		{ (k), NULL, 0, 1, (unsigned long long)(n) }
/* LOG_FIELDS(LOG_STR("channel", ch), LOG_NUM("count", n)) */
#define LOG_FIELDS(...)							\
	((const struct log_field[]){ __VA_ARGS__, { NULL, NULL, 0, 0, 0 } })

void	log_set_level(enum log_level);
enum log_level log_get_level(void);
int	log_level_parse(const char *, enum log_level *);
const char *log_level_name(enum log_level);
void	log_set_format(enum log_format);
enum log_format log_get_format(void);

void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)" */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_errorx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* a line at level about fields (see above) */
void	log_kv(enum log_level, const struct log_field *, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
