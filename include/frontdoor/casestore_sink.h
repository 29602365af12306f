/* casestore_sink: the case store (casestore.h) behind intake's sink interface (sink.h).
 *
 * submit() moves the parsed event into the case store and completes the item with
 * SINK_DURABLE once its transaction has committed: a new case, a re-route, a plain
 * duplicate, a held case event (stored in held_events) and a step-9 rejection alike,
 * since the store writes the DLQ message to its outbox in that same transaction (so a
 * crash cannot lose it). SINK_REJECTED is therefore never used.
 *
 * Ownership: the sink takes over cs; destroy() frees both, completing nothing (the
 * events in flight are consumed again after a restart).
 */
#ifndef FRONTDOOR_CASESTORE_SINK_H
#define FRONTDOOR_CASESTORE_SINK_H

#include "frontdoor/casestore.h"
#include "frontdoor/sink.h"

/* Returns 0 and *out, or -1 when out of memory (cs is then still the caller's). */
int casestore_sink_new(struct casestore *cs, struct sink **out);

#endif
