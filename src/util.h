/*
 * util.h - what several modules need: the clock, randomness, an error line
 * into a caller's buffer, numbers and lists of HOST:PORT.
 */
#ifndef SSERELAY_UTIL_H
#define SSERELAY_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UTIL_HOST_MAX	256	/* bytes of a host name, its NUL included */

struct util_addr {
	char		 host[UTIL_HOST_MAX];
	int		 port;
};

/* milliseconds of CLOCK_MONOTONIC: for intervals, never for dates */
uint64_t	util_now_ms(void);
/* microseconds of CLOCK_MONOTONIC */
uint64_t	util_now_us(void);
/* 32 random bits for jitter (getrandom, or random() if that fails) */
uint32_t	util_random(void);
/* printf into err (when err is not NULL); -1, to return at once */
int		util_err(char *err, size_t errlen, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
/* a whole decimal number (strtol's syntax, no leading blank), min to max:
   0, or -1 */
int		util_number(const char *s, long min, long max, long *out);
/* strdup, or the end of the process (for the configuration only) */
char		*util_strdup(const char *);
/*
 * "HOST:PORT[,HOST:PORT...]" (an IPv6 host in brackets, blanks after a
 * comma) into a[0..*n), at most max of them.  0, or -1 with the reason in
 * err, naming the entry at fault (an empty one too).
 */
int		util_parse_addrs(const char *list, struct util_addr *a,
		    size_t max, size_t *n, char *err, size_t errlen);
/* the same, for -t: is the list one the daemon will start with? */
int		util_check_addrs(const char *list, size_t max, char *err,
		    size_t errlen);
/* the most addresses a list may name */
#define UTIL_SEEDS_MAX		64	/* --redis-cluster */
#define UTIL_SENTINELS_MAX	16	/* --redis-sentinel */

#endif
