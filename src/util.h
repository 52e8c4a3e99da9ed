/*
 * util.h - the clock and the randomness several modules need.
 */
#ifndef SSERELAY_UTIL_H
#define SSERELAY_UTIL_H

#include <stdint.h>

/* milliseconds of CLOCK_MONOTONIC: for intervals, never for dates */
uint64_t	util_now_ms(void);
/* microseconds of CLOCK_MONOTONIC */
uint64_t	util_now_us(void);
/* 32 random bits for jitter (getrandom, or random() if that fails) */
uint32_t	util_random(void);

#endif
