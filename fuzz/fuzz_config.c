/*
 * fuzz_config.c - libFuzzer target for the configuration file parser,
 * config_load_stream() in src/config.c: the input is the file's bytes, read
 * through fmemopen() after config_init(), then config_free().
 * Invariants: 0 or -1 only; on -1 the message is one line that starts with
 * the path and a line number ("fuzz.conf:LINE: ...") and that line number
 * is within the file; no leak or overflow (ASan, LeakSanitizer).
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define PATH	"fuzz.conf"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	 c;
	FILE		*fp;
	char		 err[CONFIG_ERRLEN], *buf, *e;
	unsigned long	 line, lines = 1;
	size_t		 i;
	int		 r;

	/* fmemopen() wants a non-empty, writable-if-asked buffer */
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (i = 0; i < size; i++)
		if (buf[i] == '\n')
			lines++;
	if ((fp = fmemopen(buf, size ? size : 1, "r")) == NULL) {
		free(buf);
		return 0;
	}
	if (size == 0)
		(void)fgetc(fp);	/* an empty file */
	config_init(&c);
	err[0] = '\0';
	r = config_load_stream(&c, fp, PATH, err, sizeof(err));
	fclose(fp);
	if (r == -1) {
		if (strncmp(err, PATH ":", strlen(PATH ":")) != 0)
			abort();
		line = strtoul(err + strlen(PATH ":"), &e, 10);
		if (e == err + strlen(PATH ":") || *e != ':' || line == 0 ||
		    line > lines)
			abort();
		if (strchr(err, '\n') != NULL || strchr(err, '\r') != NULL)
			abort();
	} else if (r != 0)
		abort();
	config_free(&c);
	free(buf);
	return 0;
}
