/* Unit tests of notify_store: which statements a plan becomes. A plain plan's rows join
 * the batch's multi-row insert; a plan that cancels rows or copies a booking becomes
 * statements in the batch's order, cancellations first. No database: the round and the
 * bulk are only looked at. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/notify_store.h"

static void row(struct notify_plan *p, const char *tmpl, const char *appt, bool from_booking)
{
    struct notify_row *r = &p->rows[p->n_rows++];
    memset(r, 0, sizeof *r);
    r->template_name = tmpl;
    r->channel = appt ? TEMPLATE_SMS : TEMPLATE_EMAIL;
    strcpy(r->recipient, appt ? "+447700900123" : "a@example.org");
    strcpy(r->language, "en");
    r->state = NOTIFY_QUEUED;
    r->appointment_id = appt;
    r->from_booking = from_booking;
    r->personalisation = json_pack("{s:s}", "referral_id", "REF-1");
}

START_TEST(plain_plans_go_to_the_bulk)
{
    struct db_round *r = db_round_new();
    struct dbbulk *b = dbbulk_new(notify_store_bulk_sql, NOTIFY_STORE_BULK_COLS);
    struct notify_plan p = {.referral_id = "REF-1",
                            .cause_event_id = "00000000-0000-4000-8000-000000000001"};
    row(&p, "case_allocated", NULL, false);
    row(&p, "referral_acknowledged", NULL, false);
    ck_assert_int_eq(notify_store_write_batch(r, b, &p), 0);
    ck_assert_uint_eq(dbbulk_rows(b), 2);
    ck_assert_uint_eq(db_round_count(r), 0);
    /* without a bulk: one insert a row */
    ck_assert_int_eq(notify_store_write_batch(r, NULL, &p), 0);
    ck_assert_uint_eq(db_round_count(r), 2);
    ck_assert_int_ge(dbbulk_flush(b, r), 0);
    ck_assert_uint_eq(db_round_count(r), 3);
    notify_plan_release(&p);
    dbbulk_free(b);
    db_round_free(r);
}
END_TEST

START_TEST(ordered_plans_go_to_the_round)
{
    struct db_round *r = db_round_new();
    struct dbbulk *b = dbbulk_new(notify_store_bulk_sql, NOTIFY_STORE_BULK_COLS);
    /* a booking: reschedules (cancel), then its texts */
    struct notify_plan p = {.referral_id = "REF-1",
                            .cause_event_id = "00000000-0000-4000-8000-000000000002",
                            .cancel_appointment_id = "A-1",
                            .cancel_reminder_reason = "rescheduled"};
    row(&p, "appointment_booked", "A-1", false);
    row(&p, "appointment_reminder", "A-1", false);
    ck_assert_int_eq(notify_store_write_batch(r, b, &p), 0);
    ck_assert_uint_eq(dbbulk_rows(b), 0);
    ck_assert_uint_eq(db_round_count(r), 3); /* cancel, booked, reminder */
    notify_plan_release(&p);
    /* a closed case: cancel the family's texts, then the email */
    struct notify_plan q = {.referral_id = "REF-1",
                            .cause_event_id = "00000000-0000-4000-8000-000000000003",
                            .cancel_family_texts = true};
    row(&q, "case_closed", NULL, false);
    ck_assert_int_eq(notify_store_write_batch(r, b, &q), 0);
    ck_assert_uint_eq(dbbulk_rows(b), 0);
    ck_assert_uint_eq(db_round_count(r), 5);
    notify_plan_release(&q);
    /* a cancelled appointment's text copies its booking: after it, in order */
    struct notify_plan c = {.referral_id = "REF-1",
                            .cause_event_id = "00000000-0000-4000-8000-000000000004",
                            .cancel_appointment_id = "A-1",
                            .cancel_reminder_reason = "appointment_cancelled"};
    row(&c, "appointment_cancelled", "A-1", true);
    ck_assert_int_eq(notify_store_write_batch(r, b, &c), 0);
    ck_assert_uint_eq(dbbulk_rows(b), 0);
    ck_assert_uint_eq(db_round_count(r), 7);
    notify_plan_release(&c);
    dbbulk_free(b);
    db_round_free(r);
}
END_TEST

static Suite *notify_store_suite(void)
{
    Suite *s = suite_create("notify_store");
    TCase *tc = tcase_create("statements");
    tcase_add_test(tc, plain_plans_go_to_the_bulk);
    tcase_add_test(tc, ordered_plans_go_to_the_round);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(notify_store_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
