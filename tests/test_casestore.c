/* Unit tests: the pure parts of the database layer and the case store (reconnection
 * backoff, round parameters, schema version check, decision messages, UUIDs). The
 * database paths themselves are tested against PostgreSQL in tests/integration/casestore. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontdoor/casestore.h"
#include "frontdoor/casestore_sink.h"
#include "frontdoor/db.h"
#include "frontdoor/migrations.h"

START_TEST(test_backoff_grows_and_caps)
{
    /* rnd 0 gives the fixed half, rnd ~1 nearly the whole delay */
    ck_assert_int_eq(db_backoff_ms(0, 250, 30000, 0.0), 125);
    ck_assert_int_eq(db_backoff_ms(1, 250, 30000, 0.0), 250);
    ck_assert_int_eq(db_backoff_ms(3, 250, 30000, 0.0), 1000);
    ck_assert_int_eq(db_backoff_ms(30, 250, 30000, 0.0), 15000);
    ck_assert_int_le(db_backoff_ms(30, 250, 30000, 1.0), 30000);
    ck_assert_int_ge(db_backoff_ms(30, 250, 30000, 0.99), 29000);
    for (int a = 0; a < 40; a++) {
        int d = db_backoff_ms(a, 250, 30000, 0.5);
        ck_assert_int_gt(d, 0);
        ck_assert_int_le(d, 30000);
    }
}
END_TEST

START_TEST(test_round_copies_parameters)
{
    struct db_round *r = db_round_new();
    char text[] = "REF-1";
    char bin[] = {'a', '\0', 'b'};
    const char *v[3] = {text, bin, NULL};
    int len[3] = {0, 3, 0};
    int fmt[3] = {0, 1, 0};
    ck_assert_int_eq(db_round_add(r, "SELECT $1, $2, $3", 3, v, len, fmt), 0);
    text[0] = 'X'; /* the round kept its own copy */
    ck_assert_int_eq(db_round_addv(r, "COMMIT", 0, NULL), 1);
    ck_assert_uint_eq(db_round_count(r), 2);
    ck_assert_ptr_null(db_round_result(r, 0));
    ck_assert_int_eq(db_round_failed_index(r), -1);
    db_round_reset(r);
    ck_assert_uint_eq(db_round_count(r), 0);
    db_round_free(r);
}
END_TEST

START_TEST(test_schema_version_check)
{
    char msg[256];
    ck_assert_int_ge(migrations_latest(), 1);
    ck_assert_int_eq(migrations_check_version(migrations_latest(), msg, sizeof msg), 0);
    ck_assert_int_eq(migrations_check_version(migrations_latest() + 1, msg, sizeof msg), 0);
    ck_assert_int_eq(migrations_check_version(0, msg, sizeof msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "frontdoord --migrate"));
}
END_TEST

/* Version 7: the variant and version bits, the wall clock's milliseconds in the first
 * 48 bits (between readings taken either side), and ids made one after another in
 * order when their milliseconds differ (the point of the version: they sort by time). */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

START_TEST(test_uuid_v7)
{
    char a[37], b[37];
    uint64_t before = now_ms();
    casestore_new_uuid(a);
    uint64_t after = now_ms();
    casestore_new_uuid(b);
    ck_assert_uint_eq(strlen(a), 36);
    ck_assert_int_eq(a[8], '-');
    ck_assert_int_eq(a[13], '-');
    ck_assert_int_eq(a[14], '7');
    ck_assert_ptr_nonnull(strchr("89ab", a[19]));
    ck_assert_str_ne(a, b);
    char hex[13];
    memcpy(hex, a, 8);
    memcpy(hex + 8, a + 9, 4);
    hex[12] = '\0';
    uint64_t ms = strtoull(hex, NULL, 16);
    ck_assert_uint_ge(ms, before);
    ck_assert_uint_le(ms, after);
    /* ten ids, each in a later millisecond than the one before, sort in order */
    char prev[37], cur[37];
    casestore_new_uuid(prev);
    for (int i = 0; i < 10; i++) {
        uint64_t t = now_ms();
        while (now_ms() == t)
            ;
        casestore_new_uuid(cur);
        ck_assert_msg(strcmp(prev, cur) < 0, "%s then %s", prev, cur);
        memcpy(prev, cur, sizeof cur);
    }
}
END_TEST

START_TEST(test_decision_message)
{
    struct decision d;
    memset(&d, 0, sizeof d);
    d.route = ROUTE_SCHOOL;
    strcpy(d.destination, "school-900301");
    d.priority = PRIORITY_GREEN;
    strcpy(d.rule, "school");
    d.state = CASE_ALLOCATED;
    d.has_due = true;
    d.due_at_s = 1795712400; /* 2026-11-26T17:00:00Z */
    d.n_reasons = 1;
    strcpy(d.reasons[0], "every need is in SCHOOL");
    char *s = casestore_decision_message("11111111-1111-4111-8111-111111111111",
                                         "5b0f7c1e-2f4b-4c8e-9a51-0c8f3f6d2a10", "REF-1", &d,
                                         1795428900123LL);
    ck_assert_ptr_nonnull(s);
    json_t *o = json_loads(s, 0, NULL);
    ck_assert_ptr_nonnull(o);
    static const char *const keys[] = {"schema_version", "type",        "event_id",
                                       "cause_event_id", "referral_id", "route",
                                       "destination",    "priority",    "rule",
                                       "reasons",        "decided_at",  "decision_due_at",
                                       "state"};
    /* events.md's field order */
    const char *p = s;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char k[40];
        snprintf(k, sizeof k, "\"%s\":", keys[i]);
        const char *q = strstr(p, k);
        ck_assert_msg(q != NULL, "field %s missing or out of order", keys[i]);
        p = q;
    }
    ck_assert_str_eq(json_string_value(json_object_get(o, "type")), "case.routed");
    ck_assert_str_eq(json_string_value(json_object_get(o, "decision_due_at")),
                     "2026-11-26T17:00:00Z");
    ck_assert_str_eq(json_string_value(json_object_get(o, "decided_at")),
                     "2026-11-23T10:15:00.123Z");
    ck_assert_str_eq(json_string_value(json_object_get(o, "state")), "allocated");
    /* blue: no deadline */
    d.has_due = false;
    char *s2 =
        casestore_decision_message("11111111-1111-4111-8111-111111111111", "x", "REF-1", &d, 0);
    json_t *o2 = json_loads(s2, 0, NULL);
    ck_assert(json_is_null(json_object_get(o2, "decision_due_at")));
    /* reasons are escaped: quotes, backslashes, control characters, UTF-8 */
    static const char *const odd[] = {"unknown need code \"foo\"", "back\\slash", "tab\there\x01",
                                      "caf\xc3\xa9 \xe2\x9c\x93"};
    d.n_reasons = 4;
    for (size_t i = 0; i < 4; i++)
        strcpy(d.reasons[i], odd[i]);
    char *s3 =
        casestore_decision_message("11111111-1111-4111-8111-111111111111", "x\"y", "REF-1", &d, 0);
    json_error_t jerr;
    json_t *o3 = json_loads(s3, 0, &jerr);
    ck_assert_msg(o3 != NULL, "not JSON: %s (%s)", s3, jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(o3, "cause_event_id")), "x\"y");
    json_t *rs = json_object_get(o3, "reasons");
    ck_assert_uint_eq(json_array_size(rs), 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert_str_eq(json_string_value(json_array_get(rs, i)), odd[i]);
    json_decref(o3);
    free(s3);
    json_decref(o);
    json_decref(o2);
    free(s);
    free(s2);
}
END_TEST

/* Events of one referral always go to the same store; every store gets work. */
START_TEST(test_sink_pick)
{
    ck_assert_uint_eq(casestore_sink_pick("REF-1", 1), 0);
    ck_assert_uint_eq(casestore_sink_pick(NULL, 3), casestore_sink_pick("", 3));
    size_t seen[4] = {0};
    char id[32];
    for (int i = 0; i < 400; i++) {
        snprintf(id, sizeof id, "REF-2026-%06d", i);
        size_t k = casestore_sink_pick(id, 4);
        ck_assert_uint_lt(k, 4);
        ck_assert_uint_eq(k, casestore_sink_pick(id, 4));
        seen[k]++;
    }
    for (int k = 0; k < 4; k++)
        ck_assert_msg(seen[k] > 50, "store %d got %zu of 400", k, seen[k]);
}
END_TEST

START_TEST(test_outcome_names)
{
    ck_assert_str_eq(casestore_outcome_name(CASESTORE_ROUTED), "routed");
    ck_assert_str_eq(casestore_outcome_name(CASESTORE_HELD), "held");
    ck_assert_str_eq(casestore_outcome_name(CASESTORE_REJECTED), "rejected");
}
END_TEST

static Suite *casestore_suite(void)
{
    Suite *s = suite_create("casestore");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, test_backoff_grows_and_caps);
    tcase_add_test(tc, test_round_copies_parameters);
    tcase_add_test(tc, test_schema_version_check);
    tcase_add_test(tc, test_uuid_v7);
    tcase_add_test(tc, test_decision_message);
    tcase_add_test(tc, test_outcome_names);
    tcase_add_test(tc, test_sink_pick);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(casestore_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
