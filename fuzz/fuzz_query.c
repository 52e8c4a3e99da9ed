/*
 * fuzz_query.c - libFuzzer target for the /events query validator
 * (src/query.c).  The input is a query string: split on '&' into pairs and
 * each pair on its first '=' (no '=' gives a NULL value, as libmicrohttpd
 * does); the first byte picks --max-uploads.  Pairs whose name holds a NUL
 * are skipped (src/http.c rejects those before query_add()).
 * Invariants: an error is one non-empty line and later pairs are refused;
 * an accepted query has a user or an upload, every id passes
 * query_id_safe(), uploads are distinct and within max_uploads, and a kept
 * lastEventId holds no NUL and fits QUERY_ID_MAX.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

static void
check_line(const char *s)
{
	if (s == NULL || *s == '\0' || strchr(s, '\n') != NULL ||
	    strchr(s, '\r') != NULL || strlen(s) > 200)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct query	 q;
	char		*buf, *key;
	const char	*val, *p, *end, *amp, *eq;
	size_t		 i, j, vlen, maxu;
	int		 r, failed = 0;

	if (size == 0)
		return 0;
	maxu = data[0] % (QUERY_UPLOADS_MAX + 2);	/* 0 and 17: clamped */
	data++, size--;
	query_init(&q, maxu, 10);
	if (q.max_uploads < 1 || q.max_uploads > QUERY_UPLOADS_MAX)
		abort();
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	p = (const char *)data;
	end = p + size;
	while (p <= end) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		key = buf;
		memcpy(key, p, (size_t)((eq ? eq : amp) - p));
		key[(eq ? eq : amp) - p] = '\0';
		if (strlen(key) == (size_t)((eq ? eq : amp) - p)) {
			val = eq ? eq + 1 : NULL;
			vlen = eq ? (size_t)(amp - eq - 1) : 0;
			r = query_add(&q, key, val, vlen);
			if (r == -1) {
				failed = 1;
				check_line(q.error);
			} else if (r != 0 || failed)
				abort();	/* accepted after an error */
		}
		p = amp + 1;
	}
	free(buf);
	r = query_finish(&q);
	if (r == -1) {
		check_line(q.error);
	} else {
		if (r != 0 || failed || q.error != NULL)
			abort();
		if (!q.has_user && q.nuploads == 0)
			abort();
		if (q.has_user && !query_id_safe(q.user, strlen(q.user)))
			abort();
		if (q.nuploads > q.max_uploads)
			abort();
		for (i = 0; i < q.nuploads; i++) {
			if (!query_id_safe(q.uploads[i], strlen(q.uploads[i])))
				abort();
			for (j = 0; j < i; j++)
				if (strcmp(q.uploads[i], q.uploads[j]) == 0)
					abort();
		}
		if (q.last > q.max_last || (!q.has_last && q.last != 0))
			abort();
		if (q.has_last_event_id &&
		    strlen(q.last_event_id) > QUERY_ID_MAX)
			abort();
	}
	return 0;
}
