/*
 * fuzz_query.c - libFuzzer target for the /events query validator
 * (src/query.c).  The input is a query string: split on '&' into pairs and
 * each pair on its first '=' (no '=' gives a NULL value, as libmicrohttpd
 * does); the first byte picks the upload kind's maximum and the second the
 * room left for the stream's channels, with kinds user, upload, room (at
 * most 3) and team (at most QUERY_CHANNELS_MAX).  Pairs whose name holds a
 * NUL are skipped (src/http.c rejects those before query_add()).
 * Invariants: an error is one non-empty line and later pairs are refused;
 * an accepted query has a user or an id, every id passes query_id_safe(),
 * the ids of a kind are distinct and within its maximum, all of them
 * within the room, a kept lastEventId holds no NUL and fits
 * QUERY_LAST_ID_MAX, and a kept last is within --max-last (10 here).
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
	    strchr(s, '\r') != NULL || strlen(s) > 255)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct query	 q;
	char		*buf, *key;
	const char	*val, *p, *end, *amp, *eq;
	size_t		 i, j, k, n, vlen, maxu, room;
	int		 r, failed = 0;

	if (size < 2)
		return 0;
	maxu = data[0] % (QUERY_UPLOADS_MAX + 2);	/* 0: taken as 1 */
	room = data[1] % (QUERY_CHANNELS_MAX + 2);	/* 0 and 65: clamped */
	data += 2, size -= 2;
	query_init(&q, room);
	query_max_last(&q, 10);
	if (q.room < 1 || q.room > QUERY_CHANNELS_MAX)
		abort();
	if (query_kind(&q, "user", 1) != 0 ||
	    query_kind(&q, "upload", maxu) != 0 ||
	    query_kind(&q, "room", 3) != 0 ||
	    query_kind(&q, "team", QUERY_CHANNELS_MAX) != 0)
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
		if (!q.has_user && q.nids == 0)
			abort();
		if (q.has_user && !query_id_safe(q.user, strlen(q.user)))
			abort();
		if (q.nids + (size_t)q.has_user > q.room)
			abort();
		for (k = 0; k < q.nkinds; k++) {
			for (i = 0, n = 0; i < q.nids; i++)
				n += q.ids[i].kind == k;
			if (n != q.kinds[k].n || n > q.kinds[k].max)
				abort();
		}
		for (i = 0; i < q.nids; i++) {
			if (q.ids[i].kind == 0 || q.ids[i].kind >= q.nkinds ||
			    !query_id_safe(q.ids[i].id, strlen(q.ids[i].id)))
				abort();
			for (j = 0; j < i; j++)
				if (q.ids[i].kind == q.ids[j].kind &&
				    strcmp(q.ids[i].id, q.ids[j].id) == 0)
					abort();
		}
		if (q.has_last_event_id &&
		    strlen(q.last_event_id) > QUERY_LAST_ID_MAX)
			abort();
		if (q.last > q.max_last || (!q.has_last && q.last != 0))
			abort();
	}
	return 0;
}
