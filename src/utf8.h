/*
 * utf8.h - one UTF-8 sequence, judged the way the WHATWG decoder in
 * browsers does.  Header only, so that log.c and frame.c share it without
 * a module to link.
 */
#ifndef SSERELAY_UTF8_H
#define SSERELAY_UTF8_H

#include <stddef.h>

/*
 * The sequence at p (len > 0 bytes): its length when it is valid UTF-8.
 * Else 0, and *bad is how many bytes make one error (one U+FFFD): the
 * longest prefix of a valid sequence, or one byte.  Overlong forms,
 * surrogates and code points past U+10FFFF are invalid.
 */
static inline size_t
utf8_seq(const unsigned char *p, size_t len, size_t *bad)
{
	unsigned char	 c = p[0], lo = 0x80, hi = 0xbf;
	size_t		 n, k;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (c == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;	/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;	/* past U+10FFFF */
	} else {
		*bad = 1;
		return 0;
	}
	for (k = 1; k < n; k++) {
		if (k >= len || p[k] < lo || p[k] > hi)
			break;
		lo = 0x80;
		hi = 0xbf;
	}
	if (k == n)
		return n;
	*bad = k;	/* the lead and the continuation bytes that fit */
	return 0;
}

#endif
