/*
 * fuzz_event_id.c - libFuzzer target for the Last-Event-ID parser,
 * hub_parse_id() in src/hub_history.c, with a fixed epoch and last seq.  The
 * input (up to its first NUL) is the id a client sent.
 * Invariants: -1 (usable) only for exactly EPOCH "-" DIGITS of this
 * epoch whose value is <= last_seq, with *seq that value; every EPOCH-DIGITS
 * id of this epoch up to last_seq (19 digits or fewer) is usable; anything
 * else gets one of the known reasons, and a well-formed id of another epoch
 * gets "unknown-epoch".
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"

#define EPOCH		"0badf00d"
#define LAST_SEQ	1000000ULL

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*id;
	const char	*p;
	uint64_t	 seq = UINT64_MAX, v = 0;
	size_t		 ndig = 0;
	enum hub_reset	 why;
	int		 shape, ours, over = 0;

	if ((id = malloc(size + 1)) == NULL)
		return 0;
	memcpy(id, data, size);
	id[size] = '\0';

	/* the reference: 8 lowercase hex, '-', 1+ digits, nothing else */
	shape = strlen(id) >= 10 && id[8] == '-';
	for (p = id; shape && p < id + 8; p++)
		if (strchr("0123456789abcdef", *p) == NULL)
			shape = 0;
	for (p = id + 9; shape && *p != '\0'; p++, ndig++) {
		if (*p < '0' || *p > '9')
			shape = 0;
		else if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			over = 1;
		else
			v = v * 10 + (uint64_t)(*p - '0');
	}
	ours = shape && memcmp(id, EPOCH, 8) == 0;

	if (hub_parse_id(EPOCH, LAST_SEQ, id, &seq, &why) == 0) {
		if (!ours || over || seq > LAST_SEQ || seq != v)
			abort();
	} else {
		if (why != HUB_RESET_MALFORMED_ID &&
		    why != HUB_RESET_UNKNOWN_EPOCH &&
		    why != HUB_RESET_UNKNOWN_ID)
			abort();
		if (ours && !over && v <= LAST_SEQ && ndig <= 19)
			abort();	/* a good id refused */
		if (shape && !ours && !over && ndig <= 19 &&
		    why != HUB_RESET_UNKNOWN_EPOCH)
			abort();
		if (ours && !over && ndig <= 19 && v > LAST_SEQ &&
		    why != HUB_RESET_UNKNOWN_ID)
			abort();
	}
	free(id);
	return 0;
}
