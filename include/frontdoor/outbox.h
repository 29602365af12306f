/* outbox: publishes the Kafka messages the case store wrote to its outbox table.
 *
 * The case store writes each frontdoor.decisions message (and each DLQ message of a
 * step-9 rejection) in the transaction of the change that caused it; this publisher
 * produces them, oldest first, and once the cluster acknowledged them (acks=all) deletes
 * the decision messages and marks the DLQ messages published (their dedupe keys stay). A crash in
 * between publishes a message again: consumers deduplicate by event_id (events.md), so nothing is
 * lost.
 *
 * One publisher at a time per database (a transaction-level advisory lock taken with
 * the rows), so several daemons neither publish a row twice at once nor reorder the
 * messages of a referral. It has its own connection (db.h) and runs on the loop.
 *
 * Ownership: the caller owns struct outbox; kafka and cfg are borrowed. At shutdown call
 * kafka_detach() before outbox_free() (delivery callbacks point into the publisher).
 */
#ifndef FRONTDOOR_OUTBOX_H
#define FRONTDOOR_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "frontdoor/config.h"
#include "frontdoor/kafka.h"

struct outbox;

struct outbox_options {
    struct event_base *base;
    const struct config *cfg; /* database.*, kafka.decisions_topic and dlq_topic */
    struct kafka *kafka;
    int batch;   /* messages per round (default 500) */
    int poll_ms; /* look for rows written by others this often (default 1000) */
    void (*on_fatal)(void *arg, const char *msg); /* schema too old */
    void *arg;
    bool skip_schema_check; /* tests only */
};

int outbox_open(const struct outbox_options *opt, struct outbox **out, char *err, size_t errlen);
void outbox_free(struct outbox *ob);

/* New rows were committed (casestore on_outbox): publish soon. */
void outbox_poke(struct outbox *ob);

struct outbox_stats {
    uint64_t published; /* acknowledged and marked */
    long depth;         /* unpublished rows at the last count (at every look when few
                           wait, else at most a second apart) less those since published,
                           -1 before the first look */
    uint64_t looks;     /* looks at the table so far: one begun after a moment has seen
                           every row committed before it */
    bool connected;
};

void outbox_get_stats(const struct outbox *ob, struct outbox_stats *st);

/* The advisory lock key the publishers share (for tests). */
#define OUTBOX_LOCK_KEY 7310452211986120002LL

#endif
