/*
 * slot.c - Redis Cluster key slots.  See slot.h.
 *
 * The CRC16 is the XMODEM one Redis uses (polynomial 0x1021, initial 0,
 * no reflection), by a table built once.
 */
#include "autoconf.h"

#include <pthread.h>
#include <string.h>

#include "slot.h"

static uint16_t		 slot_table[256];
static pthread_once_t	 slot_once = PTHREAD_ONCE_INIT;

static void
slot_init(void)
{
	unsigned	 i, j;
	uint16_t	 c;

	for (i = 0; i < 256; i++) {
		c = (uint16_t)(i << 8);
		for (j = 0; j < 8; j++)
			c = c & 0x8000 ? (uint16_t)((c << 1) ^ 0x1021) :
			    (uint16_t)(c << 1);
		slot_table[i] = c;
	}
}

uint16_t
slot_crc16(const char *p, size_t len)
{
	uint16_t	 crc = 0;
	size_t		 i;

	pthread_once(&slot_once, slot_init);
	for (i = 0; i < len; i++)
		crc = (uint16_t)((crc << 8) ^
		    slot_table[((crc >> 8) ^ (unsigned char)p[i]) & 0xff]);
	return crc;
}

unsigned
slot_of(const char *key, size_t len)
{
	const char	*open, *close;

	/* keyHashSlot(): the first '{', then the first '}' after it */
	if ((open = memchr(key, '{', len)) != NULL &&
	    (close = memchr(open + 1, '}', len - (size_t)(open + 1 - key))) !=
	    NULL && close > open + 1)
		return slot_crc16(open + 1, (size_t)(close - open - 1)) &
		    (SLOT_COUNT - 1);
	return slot_crc16(key, len) & (SLOT_COUNT - 1);
}
