/*
 * util.c - what several modules need.  See util.h.
 */
#include "autoconf.h"

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

char *
util_strdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

int
util_parse_addrs(const char *list, struct util_addr *a, size_t max,
    size_t *n, char *err, size_t errlen)
{
	char	*dup, *p, *save = NULL, *colon, *end;
	long	 port;

	*n = 0;
	if ((dup = strdup(list)) == NULL)
		return util_err(err, errlen, "out of memory");
	for (p = strtok_r(dup, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		while (*p == ' ')
			p++;
		if ((colon = strrchr(p, ':')) == NULL || colon == p ||
		    *n == max)
			goto bad;
		*colon = '\0';
		port = strtol(colon + 1, &end, 10);
		if (*end != '\0' || port < 1 || port > 65535)
			goto bad;
		if (*p == '[' && colon[-1] == ']') {
			colon[-1] = '\0';
			p++;
		}
		if (strlen(p) >= UTIL_HOST_MAX)
			goto bad;
		snprintf(a[*n].host, sizeof(a[*n].host), "%s", p);
		a[(*n)++].port = (int)port;
	}
	if (*n > 0) {
		free(dup);
		return 0;
	}
bad:
	free(dup);
	*n = 0;
	return util_err(err, errlen, "expected HOST:PORT[,HOST:PORT...] (at "
	    "most %zu), got '%s'", max, list);
}
