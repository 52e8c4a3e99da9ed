/*
 * redis_url.h - a Redis server's address and credentials, as a URL:
 * redis://[user:password@]host[:port][/db] or unix:///path[?db=N].
 *
 * Pure: no I/O, so the configuration's unit tests link it alone.
 */
#ifndef SSERELAY_REDIS_URL_H
#define SSERELAY_REDIS_URL_H

#include <stddef.h>

struct redis_url {
	int	 is_unix;
	char	*host;		/* tcp */
	int	 port;
	char	*path;		/* unix socket */
	char	*user;		/* NULL: AUTH <password> (Redis < 6) */
	char	*password;	/* NULL: no AUTH */
	int	 db;
};

/*
 * Parse url into u (its strings allocated; out of memory ends the
 * process, as for the rest of the configuration).  The password may be
 * percent-encoded.  0, or -1 with err set and u empty.
 */
int	redis_url_parse(const char *url, struct redis_url *u, char *err,
	    size_t errlen);
/* free what u holds (the password wiped first) and empty it */
void	redis_url_free(struct redis_url *u);
/* the URL as logs and /healthz show it, into buf: never the password */
void	redis_url_display(const struct redis_url *u, char *buf, size_t len);

#endif
