/*
 * slot.h - Redis Cluster's key slot: CRC16 (XMODEM) of the key, or of its
 * hash tag, mod 16384, exactly as Redis's keyHashSlot() computes it.  A
 * sharded channel lives on the primary that serves its slot, and one
 * SSUBSCRIBE may name channels of one slot only.
 *
 * Pure, no I/O: unit-tested against CLUSTER KEYSLOT of a real node.
 */
#ifndef SSERELAY_SLOT_H
#define SSERELAY_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define SLOT_COUNT	16384

uint16_t	slot_crc16(const char *, size_t);
/*
 * The slot of a key or channel name (binary): the hash tag, the bytes
 * between the first '{' and the first '}' after it, is hashed instead of
 * the whole name when it is not empty.
 */
unsigned	slot_of(const char *, size_t);

#endif
