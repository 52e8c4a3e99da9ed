/*
 * durable_library.c - the Redis Function library (durable.lua, compiled
 * in) with this daemon's settings filled in.  See durable.h.  Apart from
 * durable.c so that the unit tests link the reads without the library.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"

extern const char	 durable_lua[];		/* durable_lua.c, from durable.lua */
extern const size_t	 durable_lua_len;

/* the meta hash outlives the entries, so a quiet channel keeps its epoch */
#define DURABLE_META_TTL_MIN	86400

/* every "@NAME@" in text replaced by value, into a new string */
static char *
durable_library_subst(const char *text, const char *name, const char *value)
{
	const char	*at, *p;
	char		*out, *w;
	size_t		 n = 0, v = strlen(value), k = strlen(name);

	for (p = text; (at = strstr(p, name)) != NULL; p = at + k)
		n++;
	if ((out = malloc(strlen(text) + n * v + 1)) == NULL)
		return NULL;
	for (p = text, w = out; (at = strstr(p, name)) != NULL; p = at + k) {
		memcpy(w, p, (size_t)(at - p));
		w += at - p;
		memcpy(w, value, v);
		w += v;
	}
	strcpy(w, p);
	return out;
}

char *
durable_library(unsigned size, unsigned ttl_s, int sharded, char **version)
{
	char		 num[4][32], *text, *next;
	const char	*names[5] = { "@SIZE@", "@TTL@", "@META_TTL@",
			    "@PUBLISH@", "@VERSION@" };
	const char	*values[5];
	size_t		 i;

	snprintf(num[0], sizeof(num[0]), "%u", size);
	snprintf(num[1], sizeof(num[1]), "%u", ttl_s);
	snprintf(num[2], sizeof(num[2]), "%u", ttl_s > DURABLE_META_TTL_MIN ?
	    ttl_s : DURABLE_META_TTL_MIN);
	/* the version names what a publish does: a change is a new one */
	snprintf(num[3], sizeof(num[3]), "%s-%s-%u-%u", PACKAGE_VERSION,
	    sharded ? "s" : "p", size, ttl_s);
	values[0] = num[0];
	values[1] = num[1];
	values[2] = num[2];
	values[3] = sharded ? "SPUBLISH" : "PUBLISH";
	values[4] = num[3];
	if ((text = malloc(durable_lua_len + 1)) == NULL)
		return NULL;
	memcpy(text, durable_lua, durable_lua_len);
	text[durable_lua_len] = '\0';
	for (i = 0; i < 5; i++) {
		next = durable_library_subst(text, names[i], values[i]);
		free(text);
		if ((text = next) == NULL)
			return NULL;
	}
	if ((*version = strdup(num[3])) == NULL) {
		free(text);
		return NULL;
	}
	return text;
}
