/*
 * test_position.c - ids of channel positions (position.h) and the durable
 * message wrapping: what every instance writes and reads back.
 */
#include <stdio.h>
#include <string.h>

#include "position.h"
#include "tap.h"

#define L(s)	(s), (sizeof(s) - 1)

static void
test_ids(void)
{
	const char *a[3] = { "upload:u1", "upload:u2", "user:a" };
	const char *b[3] = { "user:a", "upload:u1", "upload:u2" };
	size_t lens[3] = { 9, 9, 6 }, lensb[3] = { 6, 9, 9 };
	struct position p[3] = {
		{ 0x86cd9932u, 8, 1 }, { 0, 0, 0 }, { 0xffffffffu, UINT64_MAX, 1 },
	}, q[3];
	char id[POSITION_ID_MAX(3)], small[8];
	uint32_t fp = position_fingerprint(a, lens, 3);
	size_t n;

	is_int(position_fingerprint(b, lensb, 3), fp,
	    "the fingerprint does not depend on the order of the names");
	ok(position_fingerprint(a, lens, 2) != fp,
	    "but on which channels there are");
	n = position_encode(id, sizeof(id), fp, p, 3);
	ok(n > 0 && n == strlen(id) && n < sizeof(id), "encoded: %s", id);
	ok(id[0] == 'r' && strstr(id, "_-_") != NULL,
	    "r, the fingerprint, then '-' for a channel not seen");
	memset(q, 0xa5, sizeof(q));
	is_int(position_parse(id, fp, q, 3), POSITION_OK, "parsed back");
	ok(q[0].known && q[0].epoch == p[0].epoch && q[0].offset == 8 &&
	    !q[1].known && q[2].known && q[2].epoch == 0xffffffffu &&
	    q[2].offset == UINT64_MAX, "to the same positions, extremes too");
	is_int(position_parse(id, fp + 1, q, 3), POSITION_CHANNELS,
	    "another set of channels");
	is_int(position_parse(id, fp, q, 2), POSITION_CHANNELS,
	    "fewer channels");
	is_int(position_encode(small, sizeof(small), fp, p, 3), 0,
	    "too small a buffer: nothing written");
	is_int(position_parse("0badf00d-12", fp, q, 3), POSITION_MALFORMED,
	    "a memory-history id");
	is_int(position_parse("r", fp, q, 3), POSITION_MALFORMED, "'r' alone");
	is_int(position_parse("rabc_1", fp, q, 1), POSITION_MALFORMED,
	    "a position without its offset");
	is_int(position_parse("rabc_1.", fp, q, 1), POSITION_MALFORMED,
	    "an empty offset");
	is_int(position_parse("rabc_1.2!", fp, q, 1), POSITION_MALFORMED,
	    "a stray byte");
	is_int(position_parse("rabc_1.A", fp, q, 1), POSITION_MALFORMED,
	    "upper case is not ours");
	is_int(position_parse("r1z141z4_0.0", 0, q, 1), POSITION_MALFORMED,
	    "a fingerprint over 32 bits");
	is_int(position_parse("r0_1z141z4.0", 0, q, 1), POSITION_MALFORMED,
	    "an epoch over 32 bits");
	is_int(position_parse("r0_0.3w5e11264sgsg", 0, q, 1),
	    POSITION_MALFORMED, "an offset over 64 bits");
	is_int(position_parse("r0_0.3w5e11264sgsf", 0, q, 1), POSITION_OK,
	    "an offset of 2^64-1");
	is_int(position_parse("r0", 0, q, 0), POSITION_OK,
	    "no channel: just the fingerprint");
}

static void
test_unwrap(void)
{
	struct position p;
	const char *d;
	size_t len;

	d = "\0sr1:86cd9932:41:{\"pct\":40}";
	len = 27;
	is_int(position_unwrap(&d, &len, &p), 1, "a durable message");
	ok(p.known && p.epoch == 0x86cd9932u && p.offset == 41,
	    "its position");
	is_mem(d, len, L("{\"pct\":40}"), "and the message itself");
	d = "plain";
	len = 5;
	is_int(position_unwrap(&d, &len, &p), 0, "a plain PUBLISH");
	ok(len == 5 && memcmp(d, "plain", 5) == 0, "left as it is");
	d = "\0sr1:xyz:1:a";
	len = 12;
	is_int(position_unwrap(&d, &len, &p), -1, "a broken epoch");
	d = "\0sr1:ab:12";
	len = 10;
	is_int(position_unwrap(&d, &len, &p), -1, "no ':' after the offset");
	d = "\0sr1:ab::x";
	len = 10;
	is_int(position_unwrap(&d, &len, &p), -1, "an empty offset");
	d = "\0sr1:ab:1:";
	len = 10;
	is_int(position_unwrap(&d, &len, &p), 1, "an empty message is one");
	is_int(len, 0, "of no bytes");
}

int
main(void)
{
	test_ids();
	test_unwrap();
	return done_testing();
}
