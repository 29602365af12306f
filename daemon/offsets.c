/* offsets: per-partition in-flight offsets as a ring, ascending from head. */
#include <stdlib.h>
#include <string.h>

#include "frontdoor/offsets.h"

void offsets_init(struct partition_offsets *p)
{
    memset(p, 0, sizeof *p);
    p->last_begun = -1;
}

void offsets_reset(struct partition_offsets *p)
{
    p->head = 0;
    p->count = 0;
    p->last_begun = -1;
}

void offsets_free(struct partition_offsets *p)
{
    free(p->offset);
    free(p->done);
    offsets_init(p);
}

static size_t slot(const struct partition_offsets *p, size_t i)
{
    return (p->head + i) % p->cap;
}

static int grow(struct partition_offsets *p)
{
    size_t cap = p->cap ? p->cap * 2 : 64;
    int64_t *off = malloc(cap * sizeof *off);
    unsigned char *done = malloc(cap);
    if (off == NULL || done == NULL) {
        free(off);
        free(done);
        return -1;
    }
    /* Unroll the ring into the new arrays, head first. */
    for (size_t i = 0; i < p->count; i++) {
        off[i] = p->offset[slot(p, i)];
        done[i] = p->done[slot(p, i)];
    }
    free(p->offset);
    free(p->done);
    p->offset = off;
    p->done = done;
    p->head = 0;
    p->cap = cap;
    return 0;
}

enum offsets_begin_result offsets_begin(struct partition_offsets *p, int64_t offset)
{
    if (offset <= p->last_begun || offset < 0)
        return OFFSETS_BACKWARDS;
    if (p->count == p->cap && grow(p) != 0)
        return OFFSETS_NOMEM;
    size_t s = slot(p, p->count);
    p->offset[s] = offset;
    p->done[s] = 0;
    p->count++;
    p->last_begun = offset;
    return OFFSETS_BEGUN;
}

/* Index (from head) of `offset`, or -1: binary search, the ring is ascending. */
static long find(const struct partition_offsets *p, int64_t offset)
{
    size_t lo = 0, hi = p->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = p->offset[slot(p, mid)];
        if (v == offset)
            return (long)mid;
        if (v < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int64_t offsets_complete(struct partition_offsets *p, int64_t offset)
{
    long i = find(p, offset);
    if (i < 0 || p->done[slot(p, (size_t)i)])
        return -1;
    p->done[slot(p, (size_t)i)] = 1;
    if (i != 0)
        return -1;
    /* The head finished: release the leading run of done offsets. */
    int64_t last = -1;
    while (p->count > 0 && p->done[p->head]) {
        last = p->offset[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
    }
    if (p->count == 0)
        p->head = 0;
    return last + 1;
}

size_t offsets_in_flight(const struct partition_offsets *p)
{
    return p->count;
}

bool offsets_pending(const struct partition_offsets *p, int64_t offset)
{
    long i = find(p, offset);
    return i >= 0 && !p->done[slot(p, (size_t)i)];
}
