/* ratelimit: at most N events in any rolling window (notifications.md: a provider's
 * configured limit, default 3,000 in any 60 seconds, as Notify counts, is never
 * exceeded).
 *
 * A sliding log of the last N start times: an event may start at t when fewer than N
 * started in (t - window, t]. Exact, not a token-bucket approximation, so no burst can go
 * over the limit at a window's edge. Pure: the time comes in as an argument (the
 * dispatcher passes its injected clock), so tests can step it by hand.
 *
 * Ownership: the caller owns the struct; ratelimit_free() releases the log.
 */
#ifndef FRONTDOOR_RATELIMIT_H
#define FRONTDOOR_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit {
    int limit;
    int64_t window_ms;
    int64_t *log; /* ring of start times, oldest at head */
    size_t head, count;
};

/* limit >= 1, window_ms >= 1. Returns 0, or -1 when out of memory. */
int ratelimit_init(struct ratelimit *rl, int limit, int64_t window_ms);
void ratelimit_free(struct ratelimit *rl);

/* How many may start at now_ms (0 .. limit). */
int ratelimit_available(struct ratelimit *rl, int64_t now_ms);

/* Record one start at now_ms. Returns 0, or -1 (nothing recorded) when none is available:
 * the caller asks ratelimit_available() first. now_ms must not go backwards. */
int ratelimit_take(struct ratelimit *rl, int64_t now_ms);

/* The earliest instant >= now_ms at which one more may start. */
int64_t ratelimit_next_free_ms(struct ratelimit *rl, int64_t now_ms);

#endif
