/* casestore_sink: the case stores (casestore.h) behind intake's sink interface (sink.h).
 *
 * Several case stores (database.connections, each its own connection and transaction)
 * share the work: an event goes to the store chosen by a hash of its referral id, so
 * the events of one case keep their order on one store. Stores coordinate through the
 * database exactly as several daemons do (advisory locks on referral, child, family
 * and event ids), so rules 5 and 6 see the history another store just committed.
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

/* Takes over the n stores cs[0..n-1]. Returns 0 and *out, or -1 when out of memory (the
 * stores are then still the caller's). */
int casestore_sink_new(struct casestore *const *cs, size_t n, struct sink **out);

/* Which of n stores takes the events of this referral id (FNV-1a). */
size_t casestore_sink_pick(const char *referral_id, size_t n);

#endif
