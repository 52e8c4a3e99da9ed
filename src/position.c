/*
 * position.c - composite event ids of channel positions.  See position.h.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "position.h"

static const char position_digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

uint32_t
position_fingerprint(const char **names, const size_t *lens, size_t n)
{
	uint32_t	 sum = 0, h;
	size_t		 i, k;

	/* FNV-1a of each name, summed: the same for any order */
	for (i = 0; i < n; i++) {
		h = 2166136261u;
		for (k = 0; k < lens[i]; k++) {
			h ^= (unsigned char)names[i][k];
			h *= 16777619u;
		}
		sum += h;
	}
	return sum;
}

/* v in base 36 at buf; returns the digits written (at most 13) */
static size_t
position_b36(char *buf, uint64_t v)
{
	char	 tmp[16];
	size_t	 n = 0, i;

	do {
		tmp[n++] = position_digits[v % 36];
		v /= 36;
	} while (v > 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

size_t
position_encode(char *buf, size_t len, uint32_t fp, const struct position *p,
    size_t n)
{
	char	 tmp[32];
	size_t	 k = 0, i, m;

	if (len < POSITION_ID_MAX(n)) {
		if (len > 0)
			buf[0] = '\0';
		return 0;
	}
	buf[k++] = 'r';
	k += position_b36(buf + k, fp);
	for (i = 0; i < n; i++) {
		buf[k++] = '_';
		if (!p[i].known) {
			buf[k++] = '-';
			continue;
		}
		m = position_b36(tmp, p[i].epoch);
		memcpy(buf + k, tmp, m);
		k += m;
		buf[k++] = '.';
		k += position_b36(buf + k, p[i].offset);
	}
	buf[k] = '\0';
	return k;
}

/* base-36 digits at *s up to a stop byte, into *v (no more than max) */
static int
position_num(const char **s, uint64_t max, uint64_t *v)
{
	const char	*d;
	uint64_t	 x = 0;
	size_t		 n = 0;

	while (**s != '\0' && (d = strchr(position_digits, **s)) != NULL) {
		uint64_t dv = (uint64_t)(d - position_digits);

		if (x > (max - dv) / 36)
			return -1;
		x = x * 36 + dv;
		(*s)++;
		n++;
	}
	*v = x;
	return n > 0 ? 0 : -1;
}

enum position_parse
position_parse(const char *id, uint32_t fp, struct position *p, size_t n)
{
	uint64_t	 v, idfp;
	size_t		 i;

	if (*id++ != 'r' || position_num(&id, UINT32_MAX, &idfp) == -1)
		return POSITION_MALFORMED;
	for (i = 0; *id != '\0'; i++) {
		if (*id++ != '_')
			return POSITION_MALFORMED;
		if (i >= n) {
			/* well formed, for more channels than ours? */
			while (*id != '\0' && *id != '_')
				id++;
			continue;
		}
		if (*id == '-') {
			id++;
			p[i].known = 0;
			p[i].epoch = 0;
			p[i].offset = 0;
			continue;
		}
		if (position_num(&id, UINT32_MAX, &v) == -1)
			return POSITION_MALFORMED;
		p[i].epoch = (uint32_t)v;
		if (*id++ != '.' || position_num(&id, UINT64_MAX,
		    &p[i].offset) == -1)
			return POSITION_MALFORMED;
		p[i].known = 1;
	}
	if (i != n || (uint32_t)idfp != fp)
		return POSITION_CHANNELS;
	return POSITION_OK;
}

int
position_epoch(const char *s, size_t len, uint32_t *epoch)
{
	uint64_t	 v = 0;
	size_t		 i;
	int		 d;

	if (len == 0 || len > 8)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else
			return -1;
		v = v * 16 + (uint64_t)d;
	}
	*epoch = (uint32_t)v;
	return 0;
}

int
position_unwrap(const char **data, size_t *len, struct position *pos)
{
	const char	*p = *data, *end = *data + *len, *colon;
	uint64_t	 o = 0;

	if (*len < POSITION_MAGIC_LEN || memcmp(p, POSITION_MAGIC,
	    POSITION_MAGIC_LEN) != 0)
		return 0;
	p += POSITION_MAGIC_LEN;
	if ((colon = memchr(p, ':', (size_t)(end - p))) == NULL ||
	    position_epoch(p, (size_t)(colon - p), &pos->epoch) == -1)
		return -1;
	for (p = colon + 1; p < end && *p >= '0' && *p <= '9'; p++) {
		if (o > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		o = o * 10 + (uint64_t)(*p - '0');
	}
	if (p == colon + 1 || p >= end || *p != ':')
		return -1;
	pos->offset = o;
	pos->known = 1;
	*data = p + 1;
	*len = (size_t)(end - (p + 1));
	return 1;
}
