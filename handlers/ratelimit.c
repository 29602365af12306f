/* ratelimit: a sliding log of start times (see ratelimit.h). */
#include <stdlib.h>

#include "frontdoor/ratelimit.h"

int ratelimit_init(struct ratelimit *rl, int limit, int64_t window_ms)
{
    rl->limit = limit > 0 ? limit : 1;
    rl->window_ms = window_ms > 0 ? window_ms : 1;
    rl->head = rl->count = 0;
    rl->log = calloc((size_t)rl->limit, sizeof *rl->log);
    return rl->log ? 0 : -1;
}

void ratelimit_free(struct ratelimit *rl)
{
    free(rl->log);
    rl->log = NULL;
    rl->count = 0;
}

/* Forget starts that left the window (t <= now - window). */
static void expire(struct ratelimit *rl, int64_t now_ms)
{
    while (rl->count > 0 && rl->log[rl->head] <= now_ms - rl->window_ms) {
        rl->head = (rl->head + 1) % (size_t)rl->limit;
        rl->count--;
    }
}

int ratelimit_available(struct ratelimit *rl, int64_t now_ms)
{
    expire(rl, now_ms);
    return rl->limit - (int)rl->count;
}

int ratelimit_take(struct ratelimit *rl, int64_t now_ms)
{
    if (ratelimit_available(rl, now_ms) <= 0)
        return -1;
    rl->log[(rl->head + rl->count) % (size_t)rl->limit] = now_ms;
    rl->count++;
    return 0;
}

int64_t ratelimit_next_free_ms(struct ratelimit *rl, int64_t now_ms)
{
    if (ratelimit_available(rl, now_ms) > 0)
        return now_ms;
    /* full: the oldest start leaves the window one window after it */
    return rl->log[rl->head] + rl->window_ms;
}
