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
#include "frontdoor/dbbulk.h"
#include "frontdoor/notify_plan.h"

/* Append the plan's statements to r. Returns 0, or -1 when out of memory. */
int notify_store_write(struct db_round *r, const struct notify_plan *p);

/* The multi-row insert of notification rows (dbbulk.h), for the case store's batches:
 * give these to casestore_options.plan_bulk_sql / plan_bulk_cols. */
extern const char *const notify_store_bulk_sql;
#define NOTIFY_STORE_BULK_COLS 16

/* Like notify_store_write(), with the rows of a plain plan (a decision's messages, an
 * unusable event's alert) added to `bulk`, written with the batch's other inserts ahead of
 * its ordered statements. A plan that cancels rows or copies a booking's details (an
 * appointment, a closed case) must see the rows before it and go after them, so it goes
 * to r as statements, in the batch's order; no plain plan's rows are ever what such a
 * statement touches (those are family texts, made only by appointment events). bulk NULL:
 * every plan goes to r. */
int notify_store_write_batch(struct db_round *r, struct dbbulk *bulk, const struct notify_plan *p);

/* Family text templates, as an SQL array literal's members (for cancellations). */
#define NOTIFY_FAMILY_TEMPLATES_SQL                                                                \
    "('appointment_booked', 'appointment_reminder', 'appointment_cancelled')"

#endif
