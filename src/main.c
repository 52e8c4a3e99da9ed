/*
 * main.c - options, signals, start and stop.
 *
 * Threads: main (this one), the broker (Redis), the writers (writer.c)
 * and libmicrohttpd's workers.  Signals are blocked before any thread
 * starts, so only the sigtimedwait() here ever sees them.  Between
 * signals main ticks the hub (awaiting streams, history TTL); heartbeats are
 * the writers' own, so they go on whatever Redis does.
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
#include "control.h"
#include "http.h"
#include "hub.h"
#include "log.h"
#include "mailbox.h"
#include "util.h"
#include "writer.h"

#define MAIN_DRAIN_MS	1500	/* SIGTERM: time the streams get to end */
#define MAIN_TICK_MS	100	/* the hub's tick */

/*
 * SIGHUP: read the file and the flags again into a fresh config; a bad
 * file changes nothing, a good one changes what can change live.
 */
static void
main_reload(struct config *cfg, struct http *http, struct writers *writers,
    int argc, char **argv)
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
	writers_reload(writers);
	config_free(&next);
}

int
main(int argc, char **argv)
{
	struct config	 cfg;
	struct hub_config hc;
	struct writers_config wc;
	struct writers	*writers;
	struct hub	*hub;
	struct mailbox	*mailbox;
	struct broker	*broker;
	struct control	*control;
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
	log_set_format(cfg.log_format);
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
		/* a log pipeline reads JSON; a terminal, the usual line */
		if (cfg.log_format == LOG_FORMAT_JSON)
			log_errorx("%s", err);
		else
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

	memset(&wc, 0, sizeof(wc));
	wc.threads = cfg.threads;
	wc.heartbeat_ms = &cfg.heartbeat_ms;
	/* a stream closing to a client that does not read: as MHD's idle
	   timeout was for a response it could not send */
	wc.drain_ms = (cfg.client_timeout_s ? cfg.client_timeout_s : 60) *
	    1000;
	if ((writers = writers_start(&wc, err, sizeof(err))) == NULL)
		fatalx("%s", err);

	memset(&hc, 0, sizeof(hc));
	/* with the history in Redis the hub keeps none */
	hc.history_size = cfg.history_redis ? 0 : cfg.history_size;
	hc.history_ttl_s = cfg.history_ttl_s;
	hc.history_bytes = cfg.history_bytes;
	hc.format = cfg.format;
	hc.exact = cfg.subscribe_exact;
	hc.await_ms = cfg.redis_timeout_ms;
	hc.durable = cfg.history_redis;
	hc.presence = cfg.presence_events;
	hc.wake_flush = writers_flush;
	hc.wake_arg = writers;
	if ((mailbox = mailbox_new()) == NULL)
		fatalx("out of memory");
	hc.mailbox = mailbox;
	if ((hub = hub_new(&hc)) == NULL)
		fatalx("out of memory");
	if ((broker = broker_start(&cfg, hub, mailbox, err, sizeof(err))) ==
	    NULL)
		fatalx("redis: %s", err);
	/* revocations (and presence): its own thread and connections */
	if ((control = control_start(&cfg, hub, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if ((http = http_start(&cfg, hub, writers, err, sizeof(err))) ==
	    NULL) {
		log_errorx("%s", err);
		control_stop(control);
		broker_stop(broker);
		writers_stop(writers);
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
			/* awaiting streams, history TTL */
			if (errno == EAGAIN)
				hub_tick(hub, util_now_ms());
			continue;
		}
		if (sig == SIGHUP) {
			main_reload(&cfg, http, writers, argc, argv);
			continue;
		}
		log_kv(LOG_LEVEL_INFO, LOG_FIELDS(LOG_STR("signal",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT")),
		    "%s: draining streams and stopping",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	}
	http_stop(http, MAIN_DRAIN_MS);
	control_stop(control);
	writers_stop(writers);
	broker_stop(broker);
	hub_free(hub);
	mailbox_free(mailbox);
	config_free(&cfg);
	log_info("stopped");
	return 0;
}
