/* mono: the monotonic clock (see mono.h). */
#include <time.h>

#include "frontdoor/mono.h"

int64_t mono_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
