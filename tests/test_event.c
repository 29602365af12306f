/* Unit tests: tier-1 checks of events.md, in their order, for both topics. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/event.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define UUID "\"00000000-0000-4000-8000-000000000001\""
#define GOOD_REFERRAL                                                                              \
    "{\"schema_version\": 1, \"event_id\": " UUID ", \"type\": \"referral.received\", "            \
    "\"occurred_at\": \"2026-11-23T10:15:00Z\", \"referral\": {\"id\": \"REF-1\"}}"
/* A case event with its own extra members. */
#define CASE(type, extra)                                                                          \
    "{\"schema_version\": 1, \"event_id\": " UUID ", \"type\": \"" type "\", "                     \
    "\"occurred_at\": \"2026-11-24T14:00:00Z\", \"case\": {\"referral_id\": \"REF-1\"}" extra "}"
#define REF(members) "{" members "}"
#define ENV          "\"schema_version\": 1, \"event_id\": " UUID ", \"type\": \"referral.received\", "
#define AT           "\"occurred_at\": \"2026-11-23T10:15:00Z\", "

static const struct event_case {
    const char *name;
    enum event_topic topic;
    const char *json;
    enum event_error want;
} cases[] = {
    {"good referral", EVENT_TOPIC_REFERRALS, GOOD_REFERRAL, EVENT_OK},
    /* 2 */
    {"not JSON", EVENT_TOPIC_REFERRALS, "not json at all", EVENT_INVALID_JSON},
    {"empty", EVENT_TOPIC_REFERRALS, "", EVENT_INVALID_JSON},
    {"an array", EVENT_TOPIC_REFERRALS, "[" GOOD_REFERRAL "]", EVENT_INVALID_JSON},
    {"a number", EVENT_TOPIC_REFERRALS, "1", EVENT_INVALID_JSON},
    {"a string", EVENT_TOPIC_REFERRALS, "\"x\"", EVENT_INVALID_JSON},
    {"null", EVENT_TOPIC_REFERRALS, "null", EVENT_INVALID_JSON},
    {"trailing garbage", EVENT_TOPIC_REFERRALS, GOOD_REFERRAL " x", EVENT_INVALID_JSON},
    {"two objects", EVENT_TOPIC_REFERRALS, GOOD_REFERRAL GOOD_REFERRAL, EVENT_INVALID_JSON},
    {"cut short", EVENT_TOPIC_REFERRALS, "{\"schema_version\": 1, ", EVENT_INVALID_JSON},
    {"bad UTF-8 in a string", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"summary\": \"\xff\xfe\", \"referral\": {\"id\": \"REF-1\"}"),
     EVENT_INVALID_JSON},
    {"overlong UTF-8", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"summary\": \"\xc0\xaf\", \"referral\": {\"id\": \"REF-1\"}"),
     EVENT_INVALID_JSON},
    {"lone surrogate escape", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"summary\": \"\\ud800\", \"referral\": {\"id\": \"REF-1\"}"), EVENT_INVALID_JSON},
    {"JSON before schema: bad JSON wins", EVENT_TOPIC_REFERRALS, "{\"schema_version\": 2,",
     EVENT_INVALID_JSON},
    {"good UTF-8 is fine", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"summary\": \"caf\xc3\xa9 \\u00e9\", \"referral\": {\"id\": \"REF-1\"}"),
     EVENT_OK},
    {"escaped NUL in a key (the JSON library cannot hold one)", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"x\": {\"a\\u0000b\": 1}, \"referral\": {\"id\": \"REF-1\"}"),
     EVENT_INVALID_JSON},
    {"escaped NUL in an ignored field is fine", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"summary\": \"a\\u0000b\", \"referral\": {\"id\": \"REF-1\"}"), EVENT_OK},
    /* 3 */
    {"schema missing", EVENT_TOPIC_REFERRALS,
     "{\"event_id\": " UUID ", \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_UNSUPPORTED_SCHEMA_VERSION},
    {"schema null", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": null, \"event_id\": " UUID ", \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_UNSUPPORTED_SCHEMA_VERSION},
    {"schema 2", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 2, \"event_id\": " UUID ", \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_UNSUPPORTED_SCHEMA_VERSION},
    {"schema \"1\"", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": \"1\", \"event_id\": " UUID ", \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_UNSUPPORTED_SCHEMA_VERSION},
    {"schema true", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": true, \"event_id\": " UUID ", \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_UNSUPPORTED_SCHEMA_VERSION},
    {"schema 1.5", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1.5, \"event_id\": " UUID ", \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_UNSUPPORTED_SCHEMA_VERSION},
    {"schema 1.0 is the whole number 1", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1.0, \"event_id\": " UUID ", \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_OK},
    {"schema before event_id", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 0, \"event_id\": \"x\", \"type\": \"nope\"}",
     EVENT_UNSUPPORTED_SCHEMA_VERSION},
    /* 4 */
    {"event_id missing", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_INVALID_EVENT_ID},
    {"event_id 42", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": \"42\", \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_INVALID_EVENT_ID},
    {"event_id a number", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": 42, \"type\": \"referral.received\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_INVALID_EVENT_ID},
    {"event_id not hex", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": \"g0000000-0000-4000-8000-000000000001\", \"type\": "
     "\"referral.received\", " AT "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_INVALID_EVENT_ID},
    {"event_id without dashes", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": \"000000000000400080000000000000010000\", \"type\": "
     "\"referral.received\", " AT "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_INVALID_EVENT_ID},
    {"event_id one short", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-00000000001\", \"type\": "
     "\"referral.received\", " AT "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_INVALID_EVENT_ID},
    {"event_id in braces", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": \"{00000000-0000-4000-8000-000000000001}\", "
     "\"type\": \"referral.received\", " AT "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_INVALID_EVENT_ID},
    {"event_id upper case is fine", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": \"ABCDEF00-0000-4000-8000-00000000000A\", \"type\": "
     "\"referral.received\", " AT "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_OK},
    {"event_id before type", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": \"x\", \"type\": \"nope\"}", EVENT_INVALID_EVENT_ID},
    /* 5 */
    {"type missing", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": " UUID ", " AT "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_UNKNOWN_TYPE},
    {"type misspelt", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": " UUID ", \"type\": \"referral.recieved\", " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_UNKNOWN_TYPE},
    {"type a number", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": " UUID ", \"type\": 1, " AT
     "\"referral\": {\"id\": \"REF-1\"}}",
     EVENT_UNKNOWN_TYPE},
    {"case type on the referrals topic", EVENT_TOPIC_REFERRALS, CASE("consent.given", ""),
     EVENT_UNKNOWN_TYPE},
    {"referral on the case-events topic", EVENT_TOPIC_CASE_EVENTS, GOOD_REFERRAL,
     EVENT_UNKNOWN_TYPE},
    {"type before occurred_at", EVENT_TOPIC_REFERRALS,
     "{\"schema_version\": 1, \"event_id\": " UUID ", \"type\": \"x\"}", EVENT_UNKNOWN_TYPE},
    /* 6 */
    {"occurred_at missing", EVENT_TOPIC_REFERRALS, REF(ENV "\"referral\": {\"id\": \"REF-1\"}"),
     EVENT_MISSING_FIELD},
    {"occurred_at null", EVENT_TOPIC_REFERRALS,
     REF(ENV "\"occurred_at\": null, \"referral\": {\"id\": \"REF-1\"}"), EVENT_MISSING_FIELD},
    {"occurred_at a date", EVENT_TOPIC_REFERRALS,
     REF(ENV "\"occurred_at\": \"2026-11-23\", \"referral\": {\"id\": \"REF-1\"}"),
     EVENT_INVALID_FIELD},
    {"occurred_at without offset", EVENT_TOPIC_REFERRALS,
     REF(ENV "\"occurred_at\": \"2026-11-23T10:15:00\", \"referral\": {\"id\": \"REF-1\"}"),
     EVENT_INVALID_FIELD},
    {"occurred_at a number", EVENT_TOPIC_REFERRALS,
     REF(ENV "\"occurred_at\": 1790000000, \"referral\": {\"id\": \"REF-1\"}"),
     EVENT_INVALID_FIELD},
    {"occurred_at 30 February", EVENT_TOPIC_REFERRALS,
     REF(ENV "\"occurred_at\": \"2026-02-30T10:15:00Z\", \"referral\": {\"id\": \"REF-1\"}"),
     EVENT_INVALID_FIELD},
    {"occurred_at with offset", EVENT_TOPIC_REFERRALS,
     REF(ENV "\"occurred_at\": \"2026-11-23T10:15:00.5+01:00\", \"referral\": {\"id\": \"REF-1\"}"),
     EVENT_OK},
    {"occurred_at before referral.id", EVENT_TOPIC_REFERRALS,
     REF(ENV "\"occurred_at\": \"yesterday\""), EVENT_INVALID_FIELD},
    /* 7 */
    {"referral missing", EVENT_TOPIC_REFERRALS, REF(ENV AT "\"x\": 1"), EVENT_MISSING_FIELD},
    {"referral.id missing", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"referral\": {\"level_of_need\": 2}"), EVENT_MISSING_FIELD},
    {"referral.id null", EVENT_TOPIC_REFERRALS, REF(ENV AT "\"referral\": {\"id\": null}"),
     EVENT_MISSING_FIELD},
    {"referral a string", EVENT_TOPIC_REFERRALS, REF(ENV AT "\"referral\": \"REF-1\""),
     EVENT_MISSING_FIELD},
    {"referral.id empty", EVENT_TOPIC_REFERRALS, REF(ENV AT "\"referral\": {\"id\": \"\"}"),
     EVENT_INVALID_FIELD},
    {"referral.id with a space", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"referral\": {\"id\": \"REF 1\"}"), EVENT_INVALID_FIELD},
    {"referral.id a number", EVENT_TOPIC_REFERRALS, REF(ENV AT "\"referral\": {\"id\": 123}"),
     EVENT_INVALID_FIELD},
    {"referral.id 64 characters", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"referral\": {\"id\": "
                "\"a123456789b123456789c123456789d123456789e123456789f123456789ABCD\"}"),
     EVENT_OK},
    {"referral.id 65 characters", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"referral\": {\"id\": "
                "\"a123456789b123456789c123456789d123456789e123456789f123456789ABCDE\"}"),
     EVENT_INVALID_FIELD},
    {"referral.id every allowed character", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"referral\": {\"id\": \"Az09._/-\"}"), EVENT_OK},
    {"referral.id non-ASCII", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"referral\": {\"id\": \"REF-\xc3\xa9\"}"), EVENT_INVALID_FIELD},
    {"referral.id with NUL", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"referral\": {\"id\": \"REF\\u0000\"}"), EVENT_INVALID_FIELD},
    {"an incomplete referral is usable", EVENT_TOPIC_REFERRALS,
     REF(ENV AT "\"referral\": {\"id\": \"REF-1\", \"needs\": 7, \"child\": null}"), EVENT_OK},
    {"case.referral_id missing", EVENT_TOPIC_CASE_EVENTS,
     "{\"schema_version\": 1, \"event_id\": " UUID ", \"type\": \"consent.given\", "
     "\"occurred_at\": \"2026-11-24T14:00:00Z\", \"case\": {}}",
     EVENT_MISSING_FIELD},
    {"case missing", EVENT_TOPIC_CASE_EVENTS,
     "{\"schema_version\": 1, \"event_id\": " UUID ", \"type\": \"consent.given\", "
     "\"occurred_at\": \"2026-11-24T14:00:00Z\", \"referral\": {\"id\": \"REF-1\"}}",
     EVENT_MISSING_FIELD},
    {"case.referral_id bad", EVENT_TOPIC_CASE_EVENTS,
     "{\"schema_version\": 1, \"event_id\": " UUID ", \"type\": \"consent.given\", "
     "\"occurred_at\": \"2026-11-24T14:00:00Z\", \"case\": {\"referral_id\": \"a b\"}}",
     EVENT_INVALID_FIELD},
    {"case.referral_id before own fields", EVENT_TOPIC_CASE_EVENTS,
     "{\"schema_version\": 1, \"event_id\": " UUID ", \"type\": \"case.triaged\", "
     "\"occurred_at\": \"2026-11-24T14:00:00Z\"}",
     EVENT_MISSING_FIELD},
    /* 8 */
    {"consent.given", EVENT_TOPIC_CASE_EVENTS, CASE("consent.given", ""), EVENT_OK},
    {"triaged", EVENT_TOPIC_CASE_EVENTS,
     CASE("case.triaged",
          ", \"triage\": {\"route\": \"school\", \"destination\": \"school-900301\"}"),
     EVENT_OK},
    {"triaged without triage", EVENT_TOPIC_CASE_EVENTS, CASE("case.triaged", ""),
     EVENT_INVALID_FIELD},
    {"triaged to manual_triage", EVENT_TOPIC_CASE_EVENTS,
     CASE("case.triaged",
          ", \"triage\": {\"route\": \"manual_triage\", \"destination\": \"front-door-triage\"}"),
     EVENT_INVALID_FIELD},
    {"triaged to an unknown route", EVENT_TOPIC_CASE_EVENTS,
     CASE("case.triaged",
          ", \"triage\": {\"route\": \"schools\", \"destination\": \"hub-kendal\"}"),
     EVENT_INVALID_FIELD},
    {"triaged without destination", EVENT_TOPIC_CASE_EVENTS,
     CASE("case.triaged", ", \"triage\": {\"route\": \"school\"}"), EVENT_INVALID_FIELD},
    {"triaged, destination a number", EVENT_TOPIC_CASE_EVENTS,
     CASE("case.triaged", ", \"triage\": {\"route\": \"school\", \"destination\": 900301}"),
     EVENT_INVALID_FIELD},
    {"booked", EVENT_TOPIC_CASE_EVENTS,
     CASE("appointment.booked",
          ", \"appointment\": {\"id\": \"A-77\", \"starts_at\": \"2026-12-01T10:30:00Z\", "
          "\"location\": \"Kendal Family Hub\", \"with\": \"Family Help Worker\"}"),
     EVENT_OK},
    {"booked, starts_at not a time", EVENT_TOPIC_CASE_EVENTS,
     CASE("appointment.booked", ", \"appointment\": {\"id\": \"A-77\", \"starts_at\": \"soon\"}"),
     EVENT_INVALID_FIELD},
    {"booked without starts_at", EVENT_TOPIC_CASE_EVENTS,
     CASE("appointment.booked", ", \"appointment\": {\"id\": \"A-77\"}"), EVENT_INVALID_FIELD},
    {"booked without id", EVENT_TOPIC_CASE_EVENTS,
     CASE("appointment.booked", ", \"appointment\": {\"starts_at\": \"2026-12-01T10:30:00Z\"}"),
     EVENT_INVALID_FIELD},
    {"booked, location a number", EVENT_TOPIC_CASE_EVENTS,
     CASE("appointment.booked", ", \"appointment\": {\"id\": \"A-1\", \"starts_at\": "
                                "\"2026-12-01T10:30:00Z\", \"location\": 5}"),
     EVENT_INVALID_FIELD},
    {"booked without appointment", EVENT_TOPIC_CASE_EVENTS, CASE("appointment.booked", ""),
     EVENT_INVALID_FIELD},
    {"cancelled", EVENT_TOPIC_CASE_EVENTS,
     CASE("appointment.cancelled", ", \"appointment\": {\"id\": \"A-1\"}"), EVENT_OK},
    {"cancelled without id", EVENT_TOPIC_CASE_EVENTS,
     CASE("appointment.cancelled", ", \"appointment\": {}"), EVENT_INVALID_FIELD},
    {"stepped up with a reason", EVENT_TOPIC_CASE_EVENTS,
     CASE("case.stepped_up", ", \"reason\": \"free text\""), EVENT_OK},
    {"stepped down, reason a number", EVENT_TOPIC_CASE_EVENTS,
     CASE("case.stepped_down", ", \"reason\": 5"), EVENT_INVALID_FIELD},
    {"no coordinator", EVENT_TOPIC_CASE_EVENTS, CASE("case.no_coordinator", ""), EVENT_OK},
    {"closed with outcome", EVENT_TOPIC_CASE_EVENTS,
     CASE("case.closed", ", \"outcome\": \"family moved\""), EVENT_OK},
    {"closed, outcome an object", EVENT_TOPIC_CASE_EVENTS, CASE("case.closed", ", \"outcome\": {}"),
     EVENT_INVALID_FIELD},
};

START_TEST(test_table)
{
    const struct event_case *c = &cases[_i];
    struct event ev;
    char detail[256];
    enum event_error e =
        event_parse(c->json, strlen(c->json), c->topic, 65536, &ev, detail, sizeof detail);
    ck_assert_msg(e == c->want, "%s: got %s (%s), want %s", c->name, event_error_code(e), detail,
                  event_error_code(c->want));
    if (e == EVENT_OK) {
        ck_assert_ptr_nonnull(ev.root);
        ck_assert_ptr_nonnull(ev.referral_id);
    } else {
        ck_assert_msg(detail[0] != '\0', "%s: empty detail", c->name);
        ck_assert_ptr_null(ev.root);
    }
    event_release(&ev);
}
END_TEST

/* Check 1 comes before everything, and the limit is inclusive. */
START_TEST(test_too_large)
{
    struct event ev;
    char detail[256];
    size_t len = strlen(GOOD_REFERRAL);
    ck_assert_int_eq(
        event_parse(GOOD_REFERRAL, len, EVENT_TOPIC_REFERRALS, len, &ev, detail, sizeof detail),
        EVENT_OK);
    event_release(&ev);
    ck_assert_int_eq(
        event_parse(GOOD_REFERRAL, len, EVENT_TOPIC_REFERRALS, len - 1, &ev, detail, sizeof detail),
        EVENT_TOO_LARGE);
    ck_assert_int_eq(
        event_parse("not json at all", 15, EVENT_TOPIC_REFERRALS, 3, &ev, detail, sizeof detail),
        EVENT_TOO_LARGE);
    ck_assert(strstr(detail, "15") != NULL);
}
END_TEST

/* Fields a caller relies on, and no value of the message in a detail. */
START_TEST(test_fields)
{
    struct event ev;
    char detail[256];
    const char *j =
        "{\"schema_version\": 1, \"event_id\": \"ABCDEF00-0000-4000-8000-00000000000A\","
        " \"type\": \"referral.received\", \"occurred_at\": "
        "\"2026-11-23T10:15:00.250+01:00\", \"referral\": {\"id\": \"REF-9\"}}";
    ck_assert_int_eq(
        event_parse(j, strlen(j), EVENT_TOPIC_REFERRALS, 65536, &ev, detail, sizeof detail),
        EVENT_OK);
    ck_assert_str_eq(ev.event_id, "abcdef00-0000-4000-8000-00000000000a");
    ck_assert_str_eq(ev.referral_id, "REF-9");
    ck_assert_int_eq(ev.type, EVENT_REFERRAL_RECEIVED);
    ck_assert(ev.occurred_at_ms == INT64_C(1795425300250)); /* 2026-11-23T09:15:00.250Z */
    event_release(&ev);

    const char *b = CASE("appointment.booked", ", \"appointment\": {\"id\": \"A-77\", "
                                               "\"starts_at\": \"2026-12-01T10:30:00Z\"}");
    ck_assert_int_eq(
        event_parse(b, strlen(b), EVENT_TOPIC_CASE_EVENTS, 65536, &ev, detail, sizeof detail),
        EVENT_OK);
    ck_assert_str_eq(ev.appointment_id, "A-77");
    ck_assert(ev.appointment_starts_at_ms == INT64_C(1796121000000));
    ck_assert_str_eq(ev.referral_id, "REF-1");
    event_release(&ev);

    const char *t =
        CASE("case.triaged",
             ", \"triage\": {\"route\": \"family_hub\", \"destination\": \"hub-kendal\"}");
    ck_assert_int_eq(
        event_parse(t, strlen(t), EVENT_TOPIC_CASE_EVENTS, 65536, &ev, detail, sizeof detail),
        EVENT_OK);
    ck_assert_str_eq(ev.triage_route, "family_hub");
    ck_assert_str_eq(ev.triage_destination, "hub-kendal");
    event_release(&ev);

    const char *secret = REF(ENV AT "\"referral\": {\"id\": \"Sam Sample 07700900123\"}");
    ck_assert_int_eq(event_parse(secret, strlen(secret), EVENT_TOPIC_REFERRALS, 65536, &ev, detail,
                                 sizeof detail),
                     EVENT_INVALID_FIELD);
    ck_assert(strstr(detail, "Sam") == NULL && strstr(detail, "07700") == NULL);
    const char *bad = "{\"schema_version\": 1, \"summary\": Sam Sample}";
    ck_assert_int_eq(
        event_parse(bad, strlen(bad), EVENT_TOPIC_REFERRALS, 65536, &ev, detail, sizeof detail),
        EVENT_INVALID_JSON);
    ck_assert_msg(strstr(detail, "Sam") == NULL, "%s", detail);
}
END_TEST

/* Child and family ids with an embedded NUL are no ids: PostgreSQL text cannot hold
 * them, and compared as C strings "C-1\u0000x" would be child C-1 (found by the hostile
 * corpus, tests/hostile/). */
START_TEST(test_nul_ids)
{
    struct event ev;
    char detail[256];
    const char *j = REF(ENV AT "\"referral\": {\"id\": \"REF-1\", \"child\": {\"id\": "
                               "\"C-1\\u0000x\"}, \"family\": {\"id\": \"F-1\\u0000\"}}");
    ck_assert_int_eq(
        event_parse(j, strlen(j), EVENT_TOPIC_REFERRALS, 65536, &ev, detail, sizeof detail),
        EVENT_OK);
    ck_assert(ev.ref.has_child_id);
    ck_assert_ptr_null(ev.ref.child_id);
    ck_assert_ptr_null(ev.ref.family_id);
    event_release(&ev);

    const char *k = REF(ENV AT "\"referral\": {\"id\": \"REF-1\", \"child\": {\"id\": "
                               "\"C-1\"}, \"family\": {\"id\": \"F-1\"}}");
    ck_assert_int_eq(
        event_parse(k, strlen(k), EVENT_TOPIC_REFERRALS, 65536, &ev, detail, sizeof detail),
        EVENT_OK);
    ck_assert_str_eq(ev.ref.child_id, "C-1");
    ck_assert_uint_eq(ev.ref.child_id_len, 3);
    ck_assert_str_eq(ev.ref.family_id, "F-1");
    event_release(&ev);

    const char *key = REF(ENV AT "\"x\": {\"a\\u0000\": 1}, \"referral\": {\"id\": \"REF-1\"}");
    ck_assert_int_eq(
        event_parse(key, strlen(key), EVENT_TOPIC_REFERRALS, 65536, &ev, detail, sizeof detail),
        EVENT_INVALID_JSON);
    ck_assert_msg(strstr(detail, "key") != NULL, "%s", detail);
}
END_TEST

START_TEST(test_names)
{
    static const char *const codes[] = {"ok",
                                        "too_large",
                                        "invalid_json",
                                        "unsupported_schema_version",
                                        "invalid_event_id",
                                        "unknown_type",
                                        "missing_field",
                                        "invalid_field",
                                        "event_id_reused",
                                        "duplicate_referral",
                                        "unknown_case",
                                        "invalid_transition"};
    for (size_t i = 0; i < N(codes); i++)
        ck_assert_str_eq(event_error_code((enum event_error)i), codes[i]);
    ck_assert_str_eq(event_type_name(EVENT_CASE_NO_COORDINATOR), "case.no_coordinator");
    ck_assert_str_eq(event_type_name(EVENT_APPOINTMENT_CANCELLED), "appointment.cancelled");
}
END_TEST

static Suite *event_suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("event");
    tcase_add_loop_test(tc, test_table, 0, N(cases));
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_nul_ids);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(event_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
