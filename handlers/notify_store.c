/* notify_store: notification rows and cancellations as SQL (see notify_store.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/caltime.h"
#include "frontdoor/casestore.h"
#include "frontdoor/notify_store.h"

static const char *const SQL_CANCEL_REMINDER =
    "UPDATE notifications SET state = 'cancelled', last_error = $3,"
    " updated_at = $4::timestamptz WHERE referral_id = $1 AND appointment_id = $2"
    " AND template = 'appointment_reminder' AND state = 'queued'";

static const char *const SQL_CANCEL_FAMILY =
    "UPDATE notifications SET state = 'cancelled', last_error = 'case_closed',"
    " updated_at = $2::timestamptz WHERE referral_id = $1 AND channel = 'sms'"
    " AND template IN " NOTIFY_FAMILY_TEMPLATES_SQL " AND state = 'queued'";

static const char *const SQL_INSERT =
    "INSERT INTO notifications (id, referral_id, cause_event_id, template, channel, recipient,"
    " language, personalisation, state, last_error, not_before, created_at, updated_at,"
    " due_from, dedupe_key, appointment_id, red) VALUES ($1::uuid, $2, $3::uuid, $4, $5,"
    " $6, $7, $8::jsonb, $9, $10, $11::timestamptz, $12::timestamptz, $12::timestamptz,"
    " $13::timestamptz, $14, $15, $16::boolean) ON CONFLICT DO NOTHING";

/* appointment_cancelled: the appointment's date, time and place from its latest booking
 * text; without one there is nothing to say which appointment it was, so the text is
 * skipped (unknown_appointment) and staff can see it. */
static const char *const SQL_INSERT_FROM_BOOKING =
    "WITH b AS (SELECT personalisation FROM notifications WHERE referral_id = $2"
    " AND appointment_id = $15 AND template = 'appointment_booked'"
    " ORDER BY seq DESC LIMIT 1)\n"
    "INSERT INTO notifications (id, referral_id, cause_event_id, template, channel, recipient,"
    " language, personalisation, state, last_error, not_before, created_at, updated_at,"
    " due_from, dedupe_key, appointment_id, red)\n"
    "SELECT $1::uuid, $2, $3::uuid, $4, $5, $6, $7,"
    " coalesce((SELECT personalisation FROM b), '{}'::jsonb) || $8::jsonb,"
    " CASE WHEN $9 = 'queued' AND NOT EXISTS (SELECT 1 FROM b) THEN 'skipped' ELSE $9 END,"
    " CASE WHEN $9 = 'queued' AND NOT EXISTS (SELECT 1 FROM b) THEN 'unknown_appointment'"
    " ELSE $10 END, $11::timestamptz, $12::timestamptz, $12::timestamptz, $13::timestamptz,"
    " $14, $15, $16::boolean ON CONFLICT DO NOTHING";

const char *const notify_store_bulk_sql =
    "INSERT INTO notifications (id, referral_id, cause_event_id, template, channel, recipient,"
    " language, personalisation, state, last_error, not_before, created_at, updated_at,"
    " due_from, dedupe_key, appointment_id, red)\n"
    "SELECT id, rid, cause, tmpl, ch, rcpt, lang, pers, st, err, nb, cr, cr, due, dk, appt, red"
    " FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::jsonb[], $9::text[], $10::text[], $11::timestamptz[],"
    " $12::timestamptz[], $13::timestamptz[], $14::text[], $15::text[], $16::boolean[])"
    " WITH ORDINALITY AS x(id, rid, cause, tmpl, ch, rcpt, lang, pers, st, err, nb, cr, due,"
    " dk, appt, red, i) ORDER BY x.i ON CONFLICT DO NOTHING";

/* One row's 16 values, as both statements take them; pers and the buffers are the
 * caller's. */
static void row_values(const struct notify_plan *p, const struct notify_row *row, const char *id,
                       const char *pers, char nb[32], char created[32], char due[32],
                       const char *v[NOTIFY_STORE_BULK_COLS])
{
    const char *vals[NOTIFY_STORE_BULK_COLS] = {
        id,
        p->referral_id,
        p->cause_event_id,
        row->template_name,
        row->channel == TEMPLATE_EMAIL ? "email" : "sms",
        row->recipient[0] ? row->recipient : NULL,
        row->language,
        pers,
        notify_state_name(row->state),
        row->state == NOTIFY_SKIPPED ? row->skip_reason : NULL,
        caltime_format_utc_ms(row->not_before_ms, nb),
        caltime_format_utc_ms(row->created_ms, created),
        caltime_format_utc_ms(row->due_from_ms, due),
        row->dedupe_key[0] ? row->dedupe_key : NULL,
        row->appointment_id,
        row->red ? "true" : "false",
    };
    memcpy(v, vals, sizeof vals);
}

int notify_store_write_batch(struct db_round *r, struct dbbulk *bulk, const struct notify_plan *p)
{
    bool ordered = p->cancel_appointment_id || p->cancel_family_texts;
    for (size_t i = 0; i < p->n_rows && !ordered; i++)
        ordered = p->rows[i].from_booking || p->rows[i].appointment_id != NULL;
    if (bulk == NULL || ordered)
        return notify_store_write(r, p);
    for (size_t i = 0; i < p->n_rows; i++) {
        const struct notify_row *row = &p->rows[i];
        char id[37], nb[32], created[32], due[32];
        casestore_new_uuid(id);
        char *pers = json_dumps(row->personalisation, JSON_COMPACT | JSON_SORT_KEYS);
        if (pers == NULL)
            return -1;
        const char *v[NOTIFY_STORE_BULK_COLS];
        row_values(p, row, id, pers, nb, created, due, v);
        int rc = dbbulk_add(bulk, v, NULL);
        free(pers);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int notify_store_write(struct db_round *r, const struct notify_plan *p)
{
    char now[32];
    caltime_format_utc_ms(p->now_ms, now);
    if (p->referral_id && p->cancel_appointment_id) {
        const char *v[4] = {p->referral_id, p->cancel_appointment_id, p->cancel_reminder_reason,
                            now};
        if (db_round_addv(r, SQL_CANCEL_REMINDER, 4, v) < 0)
            return -1;
    }
    if (p->referral_id && p->cancel_family_texts) {
        const char *v[2] = {p->referral_id, now};
        if (db_round_addv(r, SQL_CANCEL_FAMILY, 2, v) < 0)
            return -1;
    }
    for (size_t i = 0; i < p->n_rows; i++) {
        const struct notify_row *row = &p->rows[i];
        char id[37], nb[32], created[32], due[32];
        casestore_new_uuid(id);
        char *pers = json_dumps(row->personalisation, JSON_COMPACT | JSON_SORT_KEYS);
        if (pers == NULL)
            return -1;
        const char *v[NOTIFY_STORE_BULK_COLS];
        row_values(p, row, id, pers, nb, created, due, v);
        int rc = db_round_addv(r, row->from_booking ? SQL_INSERT_FROM_BOOKING : SQL_INSERT,
                               NOTIFY_STORE_BULK_COLS, v);
        free(pers);
        if (rc < 0)
            return -1;
    }
    return 0;
}
