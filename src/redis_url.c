/*
 * redis_url.c - a Redis URL into its parts, and back for display.  See
 * redis_url.h.
 */
#include "autoconf.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "util.h"

void
redis_url_free(struct redis_url *u)
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

/* decode %XX in place; -1 on a bad escape */
static int
redis_url_pct_decode(char *s)
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

int
redis_url_parse(const char *url, struct redis_url *u, char *err,
    size_t errlen)
{
	char	*s = NULL, *p, *at, *slash, *colon, *q;
	long	 n;

	memset(u, 0, sizeof(*u));
	if (url == NULL || *url == '\0')
		return util_err(err, errlen, "empty Redis URL");
	if (strncmp(url, "unix://", 7) == 0) {
		u->is_unix = 1;
		s = util_strdup(url + 7);
		if ((q = strchr(s, '?')) != NULL) {
			*q++ = '\0';
			if (strncmp(q, "db=", 3) != 0 ||
			    util_number(q + 3, 0, INT_MAX, &n) == -1) {
				util_err(err, errlen, "bad query in Redis URL "
				    "(only ?db=N is understood): %s", url);
				goto bad;
			}
			u->db = (int)n;
		}
		if (s[0] != '/') {
			util_err(err, errlen, "Redis unix URL needs an "
			    "absolute path (unix:///path): %s", url);
			goto bad;
		}
		u->path = util_strdup(s);
		free(s);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0) {
		util_err(err, errlen, "Redis URL must start with redis:// or "
		    "unix://: %s", url);
		goto bad;
	}
	s = util_strdup(url + 8);
	p = s;
	if ((at = strrchr(p, '@')) != NULL) {
		*at = '\0';
		if ((colon = strchr(p, ':')) != NULL) {
			*colon = '\0';
			if (*p != '\0')
				u->user = util_strdup(p);
			u->password = util_strdup(colon + 1);
		} else
			u->password = util_strdup(p);
		if ((u->user && redis_url_pct_decode(u->user) == -1) ||
		    redis_url_pct_decode(u->password) == -1) {
			util_err(err, errlen, "bad %%-escape in Redis URL "
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
		    util_number(slash + 1, 0, INT_MAX, &n) == -1) {
			util_err(err, errlen, "bad database number in Redis "
			    "URL: %s", slash + 1);
			goto bad;
		}
		u->db = slash[1] ? (int)n : 0;
	}
	u->port = 6379;
	if (*p == '[') {
		if ((q = strchr(p, ']')) == NULL) {
			util_err(err, errlen, "bad IPv6 host in Redis URL");
			goto bad;
		}
		*q = '\0';
		u->host = util_strdup(p + 1);
		colon = q[1] == ':' ? q + 1 : NULL;
		if (q[1] != '\0' && colon == NULL) {
			util_err(err, errlen, "bad host in Redis URL");
			goto bad;
		}
	} else {
		if ((colon = strrchr(p, ':')) != NULL)
			*colon = '\0';
		u->host = util_strdup(p);
	}
	if (colon != NULL && util_number(colon + 1, 1, 65535, &n) == -1) {
		util_err(err, errlen, "bad port in Redis URL: %s",
		    colon + 1);
		goto bad;
	}
	if (colon != NULL)
		u->port = (int)n;
	if (*u->host == '\0') {
		util_err(err, errlen, "missing host in Redis URL");
		goto bad;
	}
	free(s);
	return 0;
bad:
	free(s);
	redis_url_free(u);
	return -1;
}

void
redis_url_display(const struct redis_url *u, char *buf, size_t len)
{
	if (u->is_unix)
		snprintf(buf, len, "unix://%s%s%.0d", u->path,
		    u->db ? "?db=" : "", u->db);
	else
		snprintf(buf, len, "redis://%s%s%s%s%s:%d/%d",
		    u->user ? u->user : "", u->password ? ":***" : "",
		    u->user || u->password ? "@" : "",
		    strchr(u->host, ':') ? "[" : "", u->host, u->port, u->db);
	if (!u->is_unix && strchr(u->host, ':')) {
		/* close the IPv6 bracket after the host */
		char	*h = strstr(buf, u->host);
		snprintf(h, len - (size_t)(h - buf), "%s]:%d/%d",
		    u->host, u->port, u->db);
	}
}

