/*
 * config.h - reading the settings (struct config, settings.h) from the
 * file, the command line and the environment, and SIGHUP.  What each
 * setting is (type, range, default, liveness, help) is its row in
 * options.c.
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

#include "settings.h"

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

#endif
