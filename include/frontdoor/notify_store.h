/* notify_store: a notification plan (notify_plan.h) as statements of a database round.
 *
 * The case store's plan hook calls notify_store_write() with its batch's write round, so
 * the notifications of a change commit in the transaction of the change itself; the
 * dispatcher uses it for rows that have no such transaction (unusable events found by
 * the tier-1 checks, overdue decisions).
 *
 * Every insert is `ON CONFLICT DO NOTHING`: a row the unique keys already hold (the same
 * cause event, template and channel; the same dedupe_key) is not created twice, and a
 * conflict never fails the batch around it. Cancellations run before the inserts, so a
 * rescheduled appointment's new reminder survives its own cancel.
 */
#ifndef FRONTDOOR_NOTIFY_STORE_H
#define FRONTDOOR_NOTIFY_STORE_H

#include "frontdoor/db.h"
#include "frontdoor/notify_plan.h"

/* Append the plan's statements to r. Returns 0, or -1 when out of memory. */
int notify_store_write(struct db_round *r, const struct notify_plan *p);

/* Family text templates, as an SQL array literal's members (for cancellations). */
#define NOTIFY_FAMILY_TEMPLATES_SQL                                                                \
    "('appointment_booked', 'appointment_reminder', 'appointment_cancelled')"

#endif
