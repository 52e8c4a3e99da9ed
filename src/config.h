/*
 * config.h - every setting in struct config; reading them from the file,
 * the command line and the environment, and SIGHUP.  What each setting
 * is (type, range, default, liveness, help) is its row in options.c.
 *
 * Pure: no I/O besides reading the configuration file and the password
 * file, so the unit tests link it alone (with options.c and secret.c).
 *
 * THREADS: main parses, and on SIGHUP writes the settings that can change
 * live (config_reload).  Those are _Atomic, so the broker and the HTTP
 * workers read them without a lock; every other field is written before
 * any thread starts and only read after.
 */
#ifndef SSERELAY_CONFIG_H
#define SSERELAY_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "channel.h"
#include "frame.h"
#include "log.h"

#define CONFIG_ERRLEN	512

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#define CONFIG_DEFAULT_FILE	SYSCONFDIR "/sserelay.conf"

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
	char		*config_file;		/* read, or the default tried */
	int		 config_loaded;		/* 1 if config_file was read */
	int		 check_only;		/* -t */
	int		 error_in_file;		/* the error is "FILE:LINE: ..." */
	char		*listen_host;		/* "127.0.0.1", "::1", "*" */
	int		 listen_port;
	char		*redis;			/* URL as shown: no password */
	struct redis_url redis_url;
	char		*password_file;
	char		*redis_sentinel;	/* HOST:PORT list; NULL: none */
	char		*redis_sentinel_master;
	char		*sentinel_password_file;
	char		*sentinel_password;	/* read from that file */
	char		*redis_cluster;		/* seed list; NULL: none */
	int		 cluster_classic;	/* --cluster-pubsub classic */
	_Atomic unsigned redis_timeout_ms;	/* connect + PING deadline */
	_Atomic unsigned poll_ms;		/* get_message timeout */
	unsigned	 threads;
	_Atomic unsigned heartbeat_ms;
	_Atomic unsigned retry_ms;
	_Atomic unsigned ring_size;
	enum frame_format format;
	struct channel_table channels;		/* kinds and broadcasts */
	_Atomic unsigned max_last;		/* ?last=N at most; 0: off */
	unsigned	 max_connections;	/* 0: from RLIMIT_NOFILE */
	unsigned	 conn_memory;		/* MHD pool per connection */
	unsigned	 client_timeout_s;	/* idle non-suspended clients */
	int		 demo;			/* serve the demo page at / */
	/* access control, off by default (auth.c) */
	int		 auth_jwt;
	char		*jwt_algorithm;		/* HS256 HS384 HS512 RS256 ES256 */
	char		*jwt_key_file;		/* secret, or public key PEM */
	char		*jwt_cookie;
	char		*jwt_issuer;		/* NULL: not checked */
	char		*jwt_audience;		/* NULL: not checked */
	char		*jwt_claim;		/* claim holding "uploads" etc. */
	unsigned	 jwt_leeway_s;
	char		*cors_origins;		/* comma list; NULL: no CORS */
	char		*trusted_proxies;	/* comma list of addresses */
	_Atomic unsigned max_streams;		/* 0: no limit */
	_Atomic unsigned max_streams_per_ip;
	_Atomic unsigned max_streams_per_user;
	char		*tls_cert;
	char		*tls_key;
	char		*metrics_listen;	/* HOST:PORT; NULL: main listener */
	char		*metrics_host;		/* metrics_listen, parsed */
	int		 metrics_port;
	int		 subscribe_exact;	/* --subscribe exact */
	unsigned	 subscribe_linger_s;	/* UINT_MAX: the history TTL */
	int		 history_redis;		/* --history redis */
	unsigned	 history_size;		/* per channel; 0: none */
	unsigned	 history_ttl_s;
	size_t		 history_bytes;		/* all channels together */
	enum log_level	 log_level;
	/* options.c: where the value being set comes from (channel.h) */
	unsigned	 options_from;
};

enum config_parse_result {
	CONFIG_OK = 0,
	CONFIG_EXIT = 1,	/* --help or --version printed: exit 0 */
	CONFIG_ERROR = -1,	/* err says which option and why */
};

void	config_init(struct config *);
void	config_free(struct config *);
/*
 * The command line, and the configuration file it names with -c (or the
 * default file, when that exists); flags override the file.  Call it on a
 * config fresh from config_init().
 */
enum config_parse_result config_parse_args(struct config *, int, char **,
	    char *err, size_t errlen);
/*
 * The lines of a configuration file, read from fp; path names it in
 * errors ("path:LINE: key: reason").  0, or -1 at the first error.
 */
int	config_load_stream(struct config *, FILE *fp, const char *path,
	    char *err, size_t errlen);
/*
 * SIGHUP: copy into run the settings of next that can change live, and
 * log each change; a changed setting that needs a restart is logged as
 * such and left alone.  Returns how many settings changed.
 */
int	config_reload(struct config *run, const struct config *next);

/*
 * redis://[user:password@]host[:port][/db] or unix:///path[?db=N].
 * The password may be percent-encoded.  0, or -1 with err set.
 */
int	config_redis_url_parse(const char *, struct redis_url *, char *err,
	    size_t errlen);
void	config_redis_url_free(struct redis_url *);

#endif
