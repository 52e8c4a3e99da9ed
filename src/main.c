/*
 * main.c - options, signals, heartbeats, start and stop.
 *
 * Threads: main (this one), the broker (Redis), and libmicrohttpd's
 * workers.  Signals are blocked before any thread starts, so only the
 * sigtimedwait() here ever sees them.  Between signals main queues the
 * heartbeats every tick: they must go on while the broker is busy
 * reconnecting to a Redis that does not answer.
 */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "config.h"
#include "http.h"
#include "hub.h"
#include "log.h"
#include "mailbox.h"
#include "util.h"

#define MAIN_DRAIN_MS	1500	/* SIGTERM: time the streams get to end */
#define MAIN_TICK_MS	100	/* heartbeat granularity */

/*
 * SIGHUP: read the file and the flags again into a fresh config; a bad
 * file changes nothing, a good one changes what can change live.
 */
static void
main_reload(struct config *cfg, struct http *http, int argc, char **argv)
{
	struct config	 next;
	char		 err[CONFIG_ERRLEN];

	config_init(&next);
	if (config_parse_args(&next, argc, argv, err, sizeof(err)) !=
	    CONFIG_OK) {
		log_errorx("reload: %s; keeping the running configuration",
		    err);
		config_free(&next);
		return;
	}
	if (!next.config_loaded)
		log_info("reload: no configuration file at %s",
		    next.config_file);
	if (config_reload(cfg, &next) == 0)
		log_info("reload: nothing changed that can change live");
	http_reload(http);
	config_free(&next);
}

int
main(int argc, char **argv)
{
	struct config	 cfg;
	struct hub_config hc;
	struct hub	*hub;
	struct mailbox	*mailbox;
	struct broker	*broker;
	struct http	*http;
	struct timespec	 tick = { 0, MAIN_TICK_MS * 1000000L };
	sigset_t	 set;
	char		 err[CONFIG_ERRLEN];
	int		 sig;

	config_init(&cfg);
	switch (config_parse_args(&cfg, argc, argv, err, sizeof(err))) {
	case CONFIG_OK:
		break;
	case CONFIG_EXIT:
		config_free(&cfg);
		return 0;
	case CONFIG_ERROR:
		/* file errors as FILE:LINE: message, like a compiler's */
		fprintf(stderr, "%s%s\n", cfg.error_in_file ? "" : "sserelay: ",
		    err);
		config_free(&cfg);
		return 1;
	}
	log_set_level(cfg.log_level);
	if (cfg.check_only) {
		/* the same checks startup makes, short of binding and Redis */
		if (http_check(&cfg, err, sizeof(err)) == -1) {
			fprintf(stderr, "sserelay: %s\n", err);
			config_free(&cfg);
			return 1;
		}
		printf("configuration OK\n");
		config_free(&cfg);
		return 0;
	}
	if (cfg.config_loaded)
		log_info("configuration read from %s", cfg.config_file);
	/* a master name no sentinel knows is a mistake to say now */
	if (broker_check(&cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "sserelay: %s\n", err);
		config_free(&cfg);
		return 1;
	}

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	memset(&hc, 0, sizeof(hc));
	/* with the history in Redis the hub keeps none */
	hc.history_size = cfg.history_redis ? 0 : cfg.history_size;
	hc.history_ttl_s = cfg.history_ttl_s;
	hc.history_bytes = cfg.history_bytes;
	hc.format = cfg.format;
	hc.exact = cfg.subscribe_exact;
	hc.hold_ms = cfg.redis_timeout_ms;
	hc.durable = cfg.history_redis;
	if ((mailbox = mailbox_new()) == NULL)
		fatalx("out of memory");
	hc.mailbox = mailbox;
	if ((hub = hub_new(&hc)) == NULL)
		fatalx("out of memory");
	if ((broker = broker_start(&cfg, hub, mailbox, err, sizeof(err))) ==
	    NULL)
		fatalx("redis: %s", err);
	if ((http = http_start(&cfg, hub, err, sizeof(err))) == NULL) {
		log_errorx("%s", err);
		broker_stop(broker);
		hub_free(hub);
		mailbox_free(mailbox);
		config_free(&cfg);
		return 1;
	}
	log_info("sserelay %s: redis %s%s%s, %s subscriptions, format %s, "
	    "heartbeat %u ms, ring %u", PACKAGE_VERSION,
	    cfg.redis_cluster != NULL ? "cluster " : cfg.redis_sentinel !=
	    NULL ? "sentinels " : "", cfg.redis_cluster != NULL ?
	    cfg.redis_cluster : cfg.redis_sentinel != NULL ?
	    cfg.redis_sentinel : cfg.redis, cfg.redis_cluster != NULL ?
	    (cfg.cluster_classic ? " (classic pub/sub)" : " (sharded pub/sub)") :
	    "", cfg.subscribe_exact ? "exact" : "pattern",
	    cfg.format == FRAME_FORMAT_RAW ? "raw" : "json", cfg.heartbeat_ms,
	    cfg.ring_size);

	for (;;) {
		if ((sig = sigtimedwait(&set, NULL, &tick)) == -1) {
			/* heartbeats, history TTL, token expiry */
			if (errno == EAGAIN)
				hub_tick(hub, util_now_ms(), time(NULL),
				    cfg.heartbeat_ms);
			continue;
		}
		if (sig == SIGHUP) {
			main_reload(&cfg, http, argc, argv);
			continue;
		}
		log_info("%s: draining streams and stopping",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	}
	http_stop(http, MAIN_DRAIN_MS);
	broker_stop(broker);
	hub_free(hub);
	mailbox_free(mailbox);
	config_free(&cfg);
	log_info("stopped");
	return 0;
}
