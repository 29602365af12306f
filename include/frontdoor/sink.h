/* sink: where intake hands a usable event to make its effects durable.
 *
 * Intake (intake.h) runs tier-1 checks 1-8 on every consumed message; an unusable one
 * goes to the dead-letter topic, a usable one is submitted to the sink as a struct
 * sink_item. The sink makes the event's effects durable (the case store: a database
 * transaction per batch; until it lands, the direct sink: a decision published to
 * Kafka) and then completes the item. Only then does intake let the Kafka offset be
 * stored, so a crash before completion means the event is consumed again.
 *
 * Contract:
 *   - submit() lends the item to the sink until it calls sink_item_complete() on it,
 *     exactly once, from the loop thread (possibly before submit() returns). The sink
 *     must not touch the item afterwards.
 *   - SINK_DURABLE: the effects are committed (for the case store: after COMMIT; also a
 *     plain duplicate, or an event the store itself dead-lettered through its outbox).
 *   - SINK_REJECTED: tier-1 step 9 found the event unusable and the sink did NOT publish
 *     it anywhere: it sets item->error and item->detail, and intake dead-letters it with
 *     the original bytes, then stores the offset.
 *   - SINK_ABANDONED: not done, and not to be retried in this run (stopping, a fatal
 *     error). Nothing is stored; the event is consumed again after a restart. Never use
 *     it for a transient failure: retry those inside the sink, since an abandoned item
 *     blocks the offsets of its partition until the next run.
 *   - A sink that cannot take more for a while (database down) tells the daemon, which
 *     calls kafka_hold(); intake's own in-flight bound pauses consumption as well.
 *   - destroy() is called after kafka_detach() at shutdown: it frees the sink's own
 *     state and completes nothing; intake then releases every item still in flight.
 *
 * Ownership: the item (and the parsed event in it) belongs to intake. The sink may move
 * the parsed event out (take item->ev and clear it, as casestore_submit() does); intake
 * releases whatever is left in item->ev when the item completes.
 */
#ifndef FRONTDOOR_SINK_H
#define FRONTDOOR_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "frontdoor/event.h"
#include "frontdoor/policy.h"

#define SINK_DETAIL_MAX 256

enum sink_outcome {
    SINK_DURABLE,
    SINK_REJECTED,
    SINK_ABANDONED,
};

struct sink_item;
typedef void (*sink_done_fn)(struct sink_item *item, enum sink_outcome outcome);

struct sink_item {
    /* Set by intake; read-only for the sink (except moving `ev` out). */
    struct event ev;       /* parsed, checks 1-8 passed */
    enum event_topic kind; /* which of the two topics it came from */
    const char *topic;     /* where it came from (valid until completion) */
    int32_t partition;
    int64_t offset;
    const char *bytes; /* the original message bytes, e.g. to compare bodies for */
    size_t len;        /* event_id_reused (valid until completion; not NUL-terminated) */

    /* Set by the sink before completing with SINK_REJECTED. */
    enum event_error error;
    char detail[SINK_DETAIL_MAX]; /* no personal data: field names and codes only */

    /* Intake's. */
    sink_done_fn done;
};

static inline void sink_item_complete(struct sink_item *item, enum sink_outcome outcome)
{
    item->done(item, outcome);
}

struct sink_ops {
    const char *name;
    /* Take an item (see the contract above). */
    void (*submit)(void *impl, struct sink_item *item);
    /* A reloaded policy (SIGHUP), borrowed: items submitted from now on use it; the old
     * one is freed when this returns. */
    void (*set_policy)(void *impl, const struct policy *policy);
    /* Items submitted and not yet completed. */
    size_t (*in_flight)(const void *impl);
    /* Free the sink without completing anything (after kafka_detach()). */
    void (*destroy)(void *impl);
};

struct sink {
    const struct sink_ops *ops;
    void *impl;
};

#endif
