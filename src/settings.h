/*
 * settings.h - struct config: the value of every setting, with the sizes
 * and names the settings' code shares.  What each setting is (type,
 * range, default, liveness, help) is its row in options.c; where the
 * values come from is config.c; main.c applies them.
 *
 * THREADS: the _Atomic fields can change live (SIGHUP, config_reload)
 * and are read without a lock; every other field is written before any
 * thread starts and only read after.
 */
#ifndef SSERELAY_SETTINGS_H
#define SSERELAY_SETTINGS_H

#include <stddef.h>

#include "channel.h"
#include "frame_format.h"
#include "log.h"
#include "redis_url.h"

#define CONFIG_ERRLEN	512

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#define CONFIG_DEFAULT_FILE	SYSCONFDIR "/sserelay.conf"

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
	_Atomic unsigned presence;		/* --presence: live */
	unsigned	 presence_ttl_s;
	int		 presence_events;
	unsigned	 presence_grace_s;
	enum log_level	 log_level;
	enum log_format	 log_format;
	/* options.c: where the value being set comes from (channel.h) */
	unsigned	 options_from;
};

#endif
