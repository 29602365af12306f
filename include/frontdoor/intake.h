/* intake: what happens to each consumed message (events.md, "What happens to a bad
 * event").
 *
 * Every message from the referrals or case-events topic goes through event_parse()
 * (tier-1 checks 1-8, in order, each topic accepting only its own types) and, for a
 * case.triaged event, policy_check_event() (the destination must be in the directory).
 *   - Unusable: produced to the dead-letter topic with the original bytes and key and
 *     the headers error, error_detail, source_topic, source_partition, source_offset
 *     (decimal text); a message over the producer's size limit is cut to fit and gets
 *     `truncated: true`. Its offset is stored after the delivery report.
 *   - Usable (including an incomplete referral, which routing sends to a person): the
 *     sink (sink.h) makes it durable; its offset is stored after the sink completes it.
 *     A sink rejection (step 9) is dead-lettered the same way.
 * Logs carry codes, ids and coordinates only, never message contents.
 *
 * Ownership: the caller owns struct intake; kafka and sink are borrowed and must outlive
 * it. Shutdown order: kafka_detach(), sink destroy, intake_free(), kafka_free().
 */
#ifndef FRONTDOOR_INTAKE_H
#define FRONTDOOR_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frontdoor/config.h"
#include "frontdoor/kafka.h"
#include "frontdoor/policy.h"
#include "frontdoor/sink.h"

struct intake;

struct intake_stats {
    size_t in_flight; /* items not yet done */
    uint64_t accepted, dead_lettered, rejected_by_sink, truncated;
};

/* cfg is read now (topic names, size limit) and not kept; policy is borrowed (NULL: no
 * directory check of triage destinations). Returns 0 and *out, or -1 when out of
 * memory. */
int intake_new(struct kafka *k, struct sink *sink, const struct config *cfg,
               const struct policy *policy, struct intake **out);

/* The kafka_handlers.on_message of the daemon: arg is the struct intake. */
void intake_on_message(void *arg, struct kafka_msg *msg);

/* Every unusable event on the referrals topic may be a child at risk, so it also alerts
 * the Front Door (notifications.md, unusable_event). The hook makes that alert durable
 * and calls done(ctx, ok) once, from the loop; the event's offset is stored only when
 * the dead letter is delivered and the hook said ok. The hook returns -1 when it cannot
 * take the event (out of memory): then the offset is not stored. Not called for events on
 * the case-events topic, nor for step-9 rejections (the case store's own transaction
 * alerts for those). */
typedef int (*intake_unusable_fn)(void *arg, const char *topic, int32_t partition, int64_t offset,
                                  const char *error_code, void (*done)(void *ctx, bool ok),
                                  void *ctx);
void intake_set_unusable_hook(struct intake *in, intake_unusable_fn fn, void *arg);

/* After a reload: borrowed, used from now on. */
void intake_set_policy(struct intake *in, const struct policy *policy);

void intake_get_stats(const struct intake *in, struct intake_stats *st);

/* Release every item still in flight without storing its offset (after kafka_detach()
 * and the sink's destroy), then free. NULL is fine. */
void intake_free(struct intake *in);

#endif
