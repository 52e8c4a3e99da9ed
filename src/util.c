/*
 * util.c - what several modules need.  See util.h.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "util.h"

uint64_t
util_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
util_now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint32_t
util_random(void)
{
	uint32_t	 r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)random();
	return r;
}

int
util_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int
util_number(const char *s, long min, long max, long *out)
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

char *
util_strdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

/* one "HOST:PORT" (an IPv6 host in brackets) of len bytes into a */
static int
util_parse_addr(const char *s, size_t len, struct util_addr *a)
{
	char	 buf[UTIL_HOST_MAX + 16], *colon, *host, *end;
	long	 port;

	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if ((colon = strrchr(buf, ':')) == NULL || colon == buf)
		return -1;
	*colon = '\0';
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
		return -1;
	host = buf;
	if (*host == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		host++;
	}
	if (*host == '\0' || strlen(host) >= UTIL_HOST_MAX)
		return -1;
	snprintf(a->host, sizeof(a->host), "%s", host);
	a->port = (int)port;
	return 0;
}

int
util_parse_addrs(const char *list, struct util_addr *a, size_t max,
    size_t *n, char *err, size_t errlen)
{
	const char	*p = list, *end;
	size_t		 len, i;

	*n = 0;
	for (i = 1;; i++) {
		end = p + strcspn(p, ",");
		while (p < end && *p == ' ')
			p++;
		len = (size_t)(end - p);
		if (len == 0) {
			*n = 0;
			return util_err(err, errlen, "entry %zu is empty: "
			    "expected HOST:PORT[,HOST:PORT...] (at most %zu), "
			    "got '%s'", i, max, list);
		}
		if (*n == max) {
			*n = 0;
			return util_err(err, errlen, "more than %zu addresses: "
			    "expected HOST:PORT[,HOST:PORT...] (at most %zu), "
			    "got '%s'", max, max, list);
		}
		if (util_parse_addr(p, len, &a[*n]) == -1) {
			*n = 0;
			return util_err(err, errlen, "entry %zu, '%.*s', is not "
			    "HOST:PORT: expected HOST:PORT[,HOST:PORT...] (at "
			    "most %zu), got '%s'", i, (int)len, p, max, list);
		}
		(*n)++;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

int
util_check_addrs(const char *list, size_t max, char *err, size_t errlen)
{
	struct util_addr	*a;
	size_t			 n;
	int			 r;

	if ((a = calloc(max, sizeof(*a))) == NULL)
		return util_err(err, errlen, "out of memory");
	r = util_parse_addrs(list, a, max, &n, err, errlen);
	free(a);
	return r;
}
