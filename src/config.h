/*
 * config.h - every setting, its default, parsing and validation.
 *
 * Pure: no I/O besides reading the password file named by an option, so
 * the unit tests link it alone.
 */
#ifndef SSERELAY_CONFIG_H
#define SSERELAY_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "frame.h"
#include "log.h"

#define CONFIG_ERRLEN	256

struct redis_url {
	int	 is_unix;
	char	*host;		/* tcp */
	int	 port;
	char	*path;		/* unix socket */
	char	*user;		/* NULL: AUTH <password> (Redis < 6) */
	char	*password;	/* NULL: no AUTH */
	int	 db;
};

struct config {
	char		*listen_host;		/* "127.0.0.1", "::1", "*" */
	int		 listen_port;
	char		*redis;			/* URL as given, password hidden */
	struct redis_url redis_url;
	unsigned	 redis_timeout_ms;	/* connect + PING deadline */
	unsigned	 poll_ms;		/* get_message timeout */
	unsigned	 threads;
	unsigned	 heartbeat_ms;
	unsigned	 retry_ms;
	unsigned	 ring_size;
	enum frame_format format;
	char		*user_prefix;
	char		*upload_prefix;
	unsigned	 max_uploads;
	unsigned	 max_connections;	/* 0: from RLIMIT_NOFILE */
	unsigned	 conn_memory;		/* MHD pool per connection */
	unsigned	 client_timeout_s;	/* idle non-suspended clients */
	enum log_level	 log_level;
};

enum config_parse_result {
	CONFIG_OK = 0,
	CONFIG_EXIT = 1,	/* --help or --version printed: exit 0 */
	CONFIG_ERROR = -1,	/* err says which option and why */
};

void	config_init(struct config *);
void	config_free(struct config *);
enum config_parse_result config_parse_args(struct config *, int, char **,
	    char *err, size_t errlen);
void	config_usage(FILE *);

/*
 * redis://[user:password@]host[:port][/db] or unix:///path[?db=N].
 * The password may be percent-encoded.  0, or -1 with err set.
 */
int	config_redis_url_parse(const char *, struct redis_url *, char *err,
	    size_t errlen);
void	config_redis_url_free(struct redis_url *);

#endif
