/* mono: the monotonic clock, for intervals and deadlines (never for dates: CLOCK_REALTIME
 * jumps with the wall clock, this does not). */
#ifndef FRONTDOOR_MONO_H
#define FRONTDOOR_MONO_H

#include <stdint.h>

/* Microseconds since an arbitrary moment (CLOCK_MONOTONIC, as systemd's MONOTONIC_USEC). */
int64_t mono_now_us(void);

#endif
