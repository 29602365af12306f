/* direct_sink: the stand-in sink until the case store (PostgreSQL) lands.
 *
 * A referral is routed with the current policy and no history (rules 5 and 6 never
 * match, as in --explain) and its `case.routed` decision (events.md, "Produced:
 * frontdoor.decisions": key = referral id, ids and codes only) is produced to the
 * decisions topic; the item is durable once the cluster has acknowledged it. A case
 * event cannot be applied without a case store: it is logged by id and acknowledged.
 *
 * Ownership: the returned sink is the caller's (sink->ops->destroy); kafka and policy
 * are borrowed.
 */
#ifndef FRONTDOOR_DIRECT_SINK_H
#define FRONTDOOR_DIRECT_SINK_H

#include "frontdoor/config.h"
#include "frontdoor/kafka.h"
#include "frontdoor/policy.h"
#include "frontdoor/sink.h"

/* Returns 0 and *out, or -1 when out of memory. */
int direct_sink_new(struct kafka *k, const struct config *cfg, const struct policy *policy,
                    struct sink **out);

#endif
