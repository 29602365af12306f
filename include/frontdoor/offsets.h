/* offsets: which Kafka offset of one partition may be stored.
 *
 * Messages of a partition are consumed in offset order but their effects become durable
 * in any order (a DLQ delivery report can come back before the database commit of an
 * earlier event). An offset may be stored only when it and every earlier consumed offset
 * of its partition are done, so the tracker keeps the in-flight offsets of a partition in
 * consumption order and reports the next offset to store whenever the oldest ones finish.
 *
 * Pure data structure, no I/O. Ownership: the caller owns the struct; offsets_free()
 * releases what it allocated.
 */
#ifndef FRONTDOOR_OFFSETS_H
#define FRONTDOOR_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct partition_offsets {
    int64_t *offset;     /* ring of in-flight offsets, ascending from head */
    unsigned char *done; /* done[i] for offset[i] */
    size_t head, count, cap;
    int64_t last_begun; /* highest offset begun, -1 none */
};

enum offsets_begin_result {
    OFFSETS_BEGUN,     /* tracked */
    OFFSETS_BACKWARDS, /* not above the last begun offset: the caller must reset */
    OFFSETS_NOMEM,
};

void offsets_init(struct partition_offsets *p);

/* Forget every in-flight offset (partition revoked, lost or rewound); keeps the memory. */
void offsets_reset(struct partition_offsets *p);

void offsets_free(struct partition_offsets *p);

/* Track a consumed offset. Offsets must rise: anything not above the last begun offset is
 * refused with OFFSETS_BACKWARDS and not tracked. */
enum offsets_begin_result offsets_begin(struct partition_offsets *p, int64_t offset);

/* Mark an in-flight offset done. Returns the offset to store (the oldest still pending
 * offset's predecessor + 1, i.e. the last finished offset of the leading run + 1) when
 * the leading run moved, or -1 when nothing new may be stored (an earlier offset is
 * still pending, or `offset` is not tracked, or already done). */
int64_t offsets_complete(struct partition_offsets *p, int64_t offset);

/* In-flight offsets (begun, not yet released by a completed leading run). */
size_t offsets_in_flight(const struct partition_offsets *p);

/* True when `offset` is tracked and not yet done. */
bool offsets_pending(const struct partition_offsets *p, int64_t offset);

#endif
