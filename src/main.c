/*
 * main.c - options, signals, start and stop.
 *
 * Threads: main (this one: waits for signals with sigwait), the broker
 * (Redis), and libmicrohttpd's workers.  Signals are blocked before any
 * thread starts, so only sigwait() here ever sees them.
 */
#include "autoconf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "config.h"
#include "http.h"
#include "hub.h"
#include "log.h"

#define MAIN_DRAIN_MS	1500	/* SIGTERM: time the streams get to end */

int
main(int argc, char **argv)
{
	struct config	 cfg;
	struct hub	*hub;
	struct broker	*broker;
	struct http	*http;
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
		fprintf(stderr, "sserelay: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	log_set_level(cfg.log_level);

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if ((hub = hub_new()) == NULL)
		fatalx("out of memory");
	if ((broker = broker_start(&cfg, hub, err, sizeof(err))) == NULL)
		fatalx("redis: %s", err);
	if ((http = http_start(&cfg, hub, broker, err, sizeof(err))) == NULL) {
		log_errorx("%s", err);
		broker_stop(broker);
		hub_free(hub);
		config_free(&cfg);
		return 1;
	}
	log_info("sserelay %s: redis %s, format %s, heartbeat %u ms, "
	    "ring %u", PACKAGE_VERSION, cfg.redis,
	    cfg.format == FRAME_FORMAT_RAW ? "raw" : "json", cfg.heartbeat_ms,
	    cfg.ring_size);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: no configuration file to reload");
			continue;
		}
		log_info("%s: draining streams and stopping",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	}
	http_stop(http, MAIN_DRAIN_MS);
	broker_stop(broker);
	hub_free(hub);
	config_free(&cfg);
	log_info("stopped");
	return 0;
}
