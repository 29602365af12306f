/* Unit tests of notify_plan: the trigger table of notifications.md with the shipped
 * directory and a clock standing still at a chosen instant.
 *
 * Expected recipients are copied by hand from config/directory.json (the spec's sample
 * directory); expected instants are UTC worked out from the UK's clock (GMT in winter;
 * BST, UTC+1, from 29 March to 25 October 2026) and written as RFC 3339 strings, turned
 * into milliseconds with glibc's timegm(), not with caltime.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontdoor/event.h"
#include "frontdoor/notify_plan.h"
#include "frontdoor/policy.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static struct policy *P;
static int64_t NOW;
static struct clock CLOCK = {sendtime_fixed_now_ms, &NOW};
static struct notify_ctx CTX;

static int64_t T(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
    ck_assert_msg(rest != NULL && strcmp(rest, "Z") == 0, "bad test time %s", iso);
    return (int64_t)timegm(&tm) * 1000;
}

static void setup(void)
{
    const char *src = getenv("FRONTDOOR_SOURCE_DIR");
    ck_assert_msg(src != NULL, "FRONTDOOR_SOURCE_DIR not set");
    char rules[1024], dir[1024], errs[8192];
    snprintf(rules, sizeof rules, "%s/config/frontdoor.rules", src);
    snprintf(dir, sizeof dir, "%s/config/directory.json", src);
    ck_assert_msg(policy_load_files(rules, dir, &P, errs, sizeof errs) == 0, "%s", errs);
    CTX = (struct notify_ctx){P, &CLOCK};
}

static void teardown(void)
{
    policy_free(P);
    P = NULL;
}

/* A referral whose contact fields a test may replace (NULL keeps the default; "-" drops
 * the member). */
static void make_referral(struct event *ev, const char *referrer_email, const char *mobile,
                          const char *sms_consent, const char *language)
{
    char buf[4096];
    char remail[256] = "", mob[256] = "", cons[64] = "", lang[128] = "";
    if (referrer_email == NULL)
        referrer_email = "\"referrer@example.org\"";
    if (strcmp(referrer_email, "-") != 0)
        snprintf(remail, sizeof remail, ", \"email\": %s", referrer_email);
    if (mobile == NULL)
        mobile = "\"07700 900123\"";
    if (strcmp(mobile, "-") != 0)
        snprintf(mob, sizeof mob, ", \"mobile\": %s", mobile);
    if (sms_consent == NULL)
        sms_consent = "true";
    if (strcmp(sms_consent, "-") != 0)
        snprintf(cons, sizeof cons, ", \"sms\": %s", sms_consent);
    if (language != NULL)
        snprintf(lang, sizeof lang, ", \"language\": %s", language);
    snprintf(buf, sizeof buf,
             "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-0000000000aa\","
             " \"type\": \"referral.received\", \"occurred_at\": \"2026-11-23T10:15:00Z\","
             " \"referral\": {\"id\": \"REF-N-1\","
             "  \"referrer\": {\"name\": \"Ms R. Referrer\"%s},"
             "  \"child\": {\"id\": \"C-1\", \"first_name\": \"Samwise\", \"date_of_birth\": "
             "\"2017-05-02\", \"school_urn\": \"900301\", \"postcode\": \"LA9 4DQ\"},"
             "  \"family\": {\"id\": \"F-1\", \"contact\": {\"name\": \"Alex Sample\"%s%s},"
             "   \"consent\": {\"early_help\": true%s}},"
             "  \"level_of_need\": 2, \"needs\": [\"school_attendance\"],"
             "  \"summary\": \"FREE TEXT never in a message\"}}",
             remail, mob, lang, cons);
    char detail[256];
    ck_assert_msg(event_parse(buf, strlen(buf), EVENT_TOPIC_REFERRALS, 65536, ev, detail,
                              sizeof detail) == EVENT_OK,
                  "%s", detail);
}

static void make_case_event(struct event *ev, const char *json)
{
    char detail[256];
    ck_assert_msg(event_parse(json, strlen(json), EVENT_TOPIC_CASE_EVENTS, 65536, ev, detail,
                              sizeof detail) == EVENT_OK,
                  "%s: %s", detail, json);
}

static const struct notify_row *find_row(const struct notify_plan *p, const char *tmpl,
                                         enum template_channel ch)
{
    for (size_t i = 0; i < p->n_rows; i++)
        if (strcmp(p->rows[i].template_name, tmpl) == 0 && p->rows[i].channel == ch)
            return &p->rows[i];
    return NULL;
}

static const char *val(const struct notify_row *r, const char *key)
{
    return json_string_value(json_object_get(r->personalisation, key));
}

/* ------------------------------------------------------------------ decisions */

struct want_row {
    const char *tmpl;
    enum template_channel ch;
    const char *recipient; /* "" when skipped */
    const char *skip;      /* NULL: queued */
};

static const struct decision_case {
    const char *what;
    enum casestore_outcome outcome;
    enum route_kind route;
    const char *destination;
    enum priority priority;
    const char *now;            /* the clock */
    const char *referrer_email; /* JSON, NULL default, "-" none */
    struct want_row rows[4];
} decision_cases[] = {
    {"red: duty email and duty phone, and the referrer",
     CASESTORE_ROUTED,
     ROUTE_SOCIAL_CARE,
     "social-care-duty",
     PRIORITY_RED,
     "2026-11-23T10:15:00Z",
     NULL,
     {{"safeguarding_alert", TEMPLATE_EMAIL, "safeguarding-hub@example.org", NULL},
      {"safeguarding_alert", TEMPLATE_SMS, "+447700900001", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"targeted family help team",
     CASESTORE_ROUTED,
     ROUTE_TARGETED_FAMILY_HELP,
     "tfh-eden",
     PRIORITY_AMBER,
     "2026-11-23T10:15:00Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "tfh-eden@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"family hub",
     CASESTORE_ROUTED,
     ROUTE_FAMILY_HUB,
     "hub-kendal",
     PRIORITY_GREEN,
     "2026-11-23T10:15:00Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "hub-kendal@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"youth support",
     CASESTORE_ROUTED,
     ROUTE_YOUTH_SUPPORT,
     "youth-support",
     PRIORITY_GREEN,
     "2026-11-23T10:15:00Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "youth-support@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"family help panel",
     CASESTORE_ROUTED,
     ROUTE_FAMILY_HELP_PANEL,
     "family-help-panel",
     PRIORITY_AMBER,
     "2026-11-23T10:15:00Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "family-help-panel@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"school: the named officer",
     CASESTORE_ROUTED,
     ROUTE_SCHOOL,
     "school-900301",
     PRIORITY_GREEN,
     "2026-11-23T10:15:00Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "eho.900301@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    /* 900102's officer is absent 2026-12-01 .. 2027-01-15 (local dates) */
    {"school: officer present the day before the absence",
     CASESTORE_ROUTED,
     ROUTE_SCHOOL,
     "school-900102",
     PRIORITY_GREEN,
     "2026-11-30T23:59:59Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "eho.900102@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"school: the cover officer on the first day of the absence",
     CASESTORE_ROUTED,
     ROUTE_SCHOOL,
     "school-900102",
     PRIORITY_GREEN,
     "2026-12-01T00:00:00Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "cover.900102@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"school: the cover officer on the last day of the absence",
     CASESTORE_ROUTED,
     ROUTE_SCHOOL,
     "school-900102",
     PRIORITY_GREEN,
     "2027-01-15T23:59:59Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "cover.900102@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"school: the officer is back",
     CASESTORE_ROUTED,
     ROUTE_SCHOOL,
     "school-900102",
     PRIORITY_GREEN,
     "2027-01-16T00:00:00Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "eho.900102@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"manual triage",
     CASESTORE_ROUTED,
     ROUTE_MANUAL_TRIAGE,
     "front-door-triage",
     PRIORITY_AMBER,
     "2026-11-23T10:15:00Z",
     NULL,
     {{"triage_needed", TEMPLATE_EMAIL, "family-help-front-door@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"consent required: the referrer only, no acknowledgement",
     CASESTORE_ROUTED,
     ROUTE_CONSENT_REQUIRED,
     "referrer",
     PRIORITY_GREEN,
     "2026-11-23T10:15:00Z",
     NULL,
     {{"consent_needed", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"signpost: the referrer only, no acknowledgement",
     CASESTORE_ROUTED,
     ROUTE_SIGNPOST,
     "universal-services",
     PRIORITY_BLUE,
     "2026-11-23T10:15:00Z",
     NULL,
     {{"signposted", TEMPLATE_EMAIL, "referrer@example.org", NULL}}},
    {"referrer without an email address",
     CASESTORE_ROUTED,
     ROUTE_FAMILY_HUB,
     "hub-kendal",
     PRIORITY_GREEN,
     "2026-11-23T10:15:00Z",
     "-",
     {{"case_allocated", TEMPLATE_EMAIL, "hub-kendal@example.org", NULL},
      {"referral_acknowledged", TEMPLATE_EMAIL, "", NOTIFY_SKIP_NO_EMAIL}}},
    {"referrer email with a line break (header injection)",
     CASESTORE_ROUTED,
     ROUTE_SIGNPOST,
     "adult-services",
     PRIORITY_BLUE,
     "2026-11-23T10:15:00Z",
     "\"a@example.org\\r\\nBcc: x@evil.example\"",
     {{"signposted", TEMPLATE_EMAIL, "", NOTIFY_SKIP_INVALID_EMAIL}}},
    {"re-route to a school: the officer, no acknowledgement",
     CASESTORE_REROUTED,
     ROUTE_SCHOOL,
     "school-900301",
     PRIORITY_GREEN,
     "2026-11-24T09:00:00Z",
     NULL,
     {{"case_allocated", TEMPLATE_EMAIL, "eho.900301@example.org", NULL}}},
    {"step-up to social care: red, no acknowledgement",
     CASESTORE_REROUTED,
     ROUTE_SOCIAL_CARE,
     "social-care-duty",
     PRIORITY_RED,
     "2026-11-24T09:00:00Z",
     NULL,
     {{"safeguarding_alert", TEMPLATE_EMAIL, "safeguarding-hub@example.org", NULL},
      {"safeguarding_alert", TEMPLATE_SMS, "+447700900001", NULL}}},
};

START_TEST(decision_table)
{
    const struct decision_case *tc = &decision_cases[_i];
    NOW = T(tc->now);
    struct event ref;
    make_referral(&ref, tc->referrer_email, NULL, NULL, NULL);
    struct casestore_case c = {
        .route = tc->route,
        .destination = tc->destination,
        .priority = tc->priority,
        .rule = "testrule",
        .has_due = tc->priority != PRIORITY_BLUE,
        .due_at_s = T("2026-11-26T17:00:00Z") / 1000,
    };
    struct casestore_source src = {EVENT_TOPIC_REFERRALS, "frontdoor.referrals", 1, 42};
    struct casestore_change ch = {
        .outcome = tc->outcome,
        .event = &ref,
        .referral = &ref,
        .referral_id = "REF-N-1",
        .case_after = &c,
        .source = &src,
    };
    struct notify_plan p;
    ck_assert_int_eq(notify_plan_change(&CTX, &ch, &p), 0);
    size_t want = 0;
    while (want < 4 && tc->rows[want].tmpl)
        want++;
    ck_assert_msg(p.n_rows == want, "%s: %zu rows, want %zu", tc->what, p.n_rows, want);
    for (size_t i = 0; i < want; i++) {
        const struct want_row *w = &tc->rows[i];
        const struct notify_row *r = find_row(&p, w->tmpl, w->ch);
        ck_assert_msg(r != NULL, "%s: no %s row", tc->what, w->tmpl);
        ck_assert_str_eq(r->recipient, w->recipient);
        if (w->skip) {
            ck_assert_str_eq(notify_state_name(r->state), "skipped");
            ck_assert_str_eq(r->skip_reason, w->skip);
        } else {
            ck_assert_str_eq(notify_state_name(r->state), "queued");
        }
        /* staff and referrer messages are never held: due when created */
        ck_assert_int_eq(r->created_ms, NOW);
        ck_assert_int_eq(r->not_before_ms, NOW);
        ck_assert_int_eq(r->red, strcmp(w->tmpl, "safeguarding_alert") == 0);
        ck_assert_str_eq(r->language, "en");
        ck_assert_str_eq(r->dedupe_key, "");
        /* exactly the case placeholders, none from the referral's free text */
        ck_assert_int_eq(json_object_size(r->personalisation), 7);
        ck_assert_str_eq(val(r, "referral_id"), "REF-N-1");
        ck_assert_str_eq(val(r, "destination"), tc->destination);
        ck_assert_str_eq(val(r, "rule"), "testrule");
        char *dump = json_dumps(r->personalisation, 0);
        ck_assert_msg(strstr(dump, "FREE TEXT") == NULL && strstr(dump, "Samwise") == NULL &&
                          strstr(dump, "Alex") == NULL,
                      "%s", dump);
        free(dump);
    }
    ck_assert_str_eq(p.cause_event_id, "00000000-0000-4000-8000-0000000000aa");
    ck_assert_str_eq(p.referral_id, "REF-N-1");
    ck_assert_ptr_null(p.cancel_appointment_id);
    ck_assert(!p.cancel_family_texts);
    notify_plan_release(&p);
    event_release(&ref);
}
END_TEST

/* The case placeholders: due in local time, team names from the directory. */
START_TEST(case_values)
{
    struct casestore_case c = {ROUTE_SCHOOL,   "school-900301",
                               PRIORITY_GREEN, "school",
                               true,           T("2026-11-26T17:00:00Z") / 1000};
    json_t *v = notify_case_values(P, "REF-1", &c);
    ck_assert_str_eq(json_string_value(json_object_get(v, "decision_due_at")),
                     "5pm on Thursday 26 November 2026");
    ck_assert_str_eq(json_string_value(json_object_get(v, "team_name")),
                     "Sample Kendal Primary School");
    ck_assert_str_eq(json_string_value(json_object_get(v, "route")), "school");
    ck_assert_str_eq(json_string_value(json_object_get(v, "priority")), "green");
    json_decref(v);
    /* summer: 17:00 BST is 16:00Z */
    c = (struct casestore_case){ROUTE_SOCIAL_CARE,
                                "social-care-duty",
                                PRIORITY_RED,
                                "safeguarding",
                                true,
                                T("2026-07-01T13:30:00Z") / 1000};
    v = notify_case_values(P, "REF-2", &c);
    ck_assert_str_eq(json_string_value(json_object_get(v, "decision_due_at")),
                     "2:30pm on Wednesday 1 July 2026");
    ck_assert_str_eq(json_string_value(json_object_get(v, "team_name")),
                     "Children's Social Care duty team (Safeguarding Hub)");
    json_decref(v);
    c = (struct casestore_case){ROUTE_SIGNPOST, "adult-services", PRIORITY_BLUE, "age", false, 0};
    v = notify_case_values(P, "REF-3", &c);
    ck_assert_str_eq(json_string_value(json_object_get(v, "decision_due_at")), "none");
    json_decref(v);
    v = notify_case_values(P, "REF-4", NULL);
    ck_assert_str_eq(json_string_value(json_object_get(v, "referral_id")), "none");
    ck_assert_str_eq(json_string_value(json_object_get(v, "team_name")), "none");
    json_decref(v);
    ck_assert_str_eq(notify_team_name(P->directory, "referrer"), "the referrer");
    ck_assert_str_eq(notify_team_name(P->directory, "no-such-team"), "no-such-team");
}
END_TEST

/* ------------------------------------------------------------------ family texts */

static const char *BOOKED =
    "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-0000000000bb\","
    " \"type\": \"appointment.booked\", \"occurred_at\": \"%s\","
    " \"case\": {\"referral_id\": \"REF-N-1\"},"
    " \"appointment\": {\"id\": \"A-77\", \"starts_at\": \"%s\","
    " \"location\": \"Kendal Family Hub, Sample Street\", \"with\": \"Family Help Worker\"}}";

static const struct booked_case {
    const char *what;
    const char *now;      /* the clock: when the text is created */
    const char *occurred; /* the booking event */
    const char *starts;
    const char *mobile, *consent, *language; /* referral fields (JSON), NULL default */
    const char *recipient;                   /* "" when skipped */
    const char *skip;
    const char *booked_nb;   /* not_before of appointment_booked */
    const char *reminder_nb; /* of appointment_reminder, NULL: none created */
    const char *lang;
} booked_cases[] = {
    {"in the window: at once; reminder 24 h before", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z",
     "2026-12-01T10:30:00Z", NULL, NULL, NULL, "+447700900123", NULL, "2026-11-24T14:00:00Z",
     "2026-11-30T10:30:00Z", "en"},
    {"booked at 21:00: waits for 08:00", "2026-11-24T21:00:00Z", "2026-11-24T21:00:00Z",
     "2026-12-01T10:30:00Z", NULL, NULL, NULL, "+447700900123", NULL, "2026-11-25T08:00:00Z",
     "2026-11-30T10:30:00Z", "en"},
    {"booked at 07:59:59 summer time: waits for 08:00 BST", "2026-07-14T06:59:59Z",
     "2026-07-14T06:59:59Z", "2026-07-20T09:00:00Z", NULL, NULL, NULL, "+447700900123", NULL,
     "2026-07-14T07:00:00Z", "2026-07-19T09:00:00Z", "en"},
    {"reminder time at 07:00 goes at 19:59:59 the evening before", "2026-11-24T10:00:00Z",
     "2026-11-24T10:00:00Z", "2026-12-02T07:00:00Z", NULL, NULL, NULL, "+447700900123", NULL,
     "2026-11-24T10:00:00Z", "2026-11-30T19:59:59Z", "en"},
    {"starts less than 24 h after the booking: no reminder", "2026-11-24T10:00:00Z",
     "2026-11-24T10:00:00Z", "2026-11-25T09:59:59Z", NULL, NULL, NULL, "+447700900123", NULL,
     "2026-11-24T10:00:00Z", NULL, "en"},
    {"exactly 24 h: a reminder at the booking's moment", "2026-11-24T10:00:00Z",
     "2026-11-24T10:00:00Z", "2026-11-25T10:00:00Z", NULL, NULL, NULL, "+447700900123", NULL,
     "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", "en"},
    {"replayed late: the decision follows the event, the reminder the window",
     "2026-11-30T21:00:00Z", "2026-11-24T10:00:00Z", "2026-12-01T10:30:00Z", NULL, NULL, NULL,
     "+447700900123", NULL, "2026-12-01T08:00:00Z", "2026-12-01T08:00:00Z", "en"},
    {"no SMS consent", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z", "2026-12-01T10:30:00Z", NULL,
     "false", NULL, "", NOTIFY_SKIP_NO_SMS_CONSENT, "2026-11-24T14:00:00Z", "2026-11-30T10:30:00Z",
     "en"},
    {"SMS consent missing", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z", "2026-12-01T10:30:00Z",
     NULL, "-", NULL, "", NOTIFY_SKIP_NO_SMS_CONSENT, "2026-11-24T14:00:00Z",
     "2026-11-30T10:30:00Z", "en"},
    {"SMS consent the string \"true\"", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z",
     "2026-12-01T10:30:00Z", NULL, "\"true\"", NULL, "", NOTIFY_SKIP_NO_SMS_CONSENT,
     "2026-11-24T14:00:00Z", "2026-11-30T10:30:00Z", "en"},
    {"a landline", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z", "2026-12-01T10:30:00Z",
     "\"01539 000000\"", NULL, NULL, "", NOTIFY_SKIP_INVALID_MOBILE, "2026-11-24T14:00:00Z",
     "2026-11-30T10:30:00Z", "en"},
    {"no mobile", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z", "2026-12-01T10:30:00Z", "-", NULL,
     NULL, "", NOTIFY_SKIP_INVALID_MOBILE, "2026-11-24T14:00:00Z", "2026-11-30T10:30:00Z", "en"},
    {"no consent and a landline: consent is the reason", "2026-11-24T14:00:00Z",
     "2026-11-24T14:00:00Z", "2026-12-01T10:30:00Z", "\"01539 000000\"", "false", NULL, "",
     NOTIFY_SKIP_NO_SMS_CONSENT, "2026-11-24T14:00:00Z", "2026-11-30T10:30:00Z", "en"},
    {"+44 with spaces", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z", "2026-12-01T10:30:00Z",
     "\"+44 7700 900123\"", NULL, NULL, "+447700900123", NULL, "2026-11-24T14:00:00Z",
     "2026-11-30T10:30:00Z", "en"},
    {"44 without a plus", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z", "2026-12-01T10:30:00Z",
     "\"447700900123\"", NULL, NULL, "+447700900123", NULL, "2026-11-24T14:00:00Z",
     "2026-11-30T10:30:00Z", "en"},
    {"Polish family", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z", "2026-12-01T10:30:00Z", NULL,
     NULL, "\"pl\"", "+447700900123", NULL, "2026-11-24T14:00:00Z", "2026-11-30T10:30:00Z", "pl"},
    {"language with a region", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z",
     "2026-12-01T10:30:00Z", NULL, NULL, "\"CY-GB\"", "+447700900123", NULL, "2026-11-24T14:00:00Z",
     "2026-11-30T10:30:00Z", "cy"},
    {"not a language code", "2026-11-24T14:00:00Z", "2026-11-24T14:00:00Z", "2026-12-01T10:30:00Z",
     NULL, NULL, "\"english\"", "+447700900123", NULL, "2026-11-24T14:00:00Z",
     "2026-11-30T10:30:00Z", "en"},
};

START_TEST(booked_table)
{
    const struct booked_case *tc = &booked_cases[_i];
    NOW = T(tc->now);
    struct event ref, ev;
    make_referral(&ref, NULL, tc->mobile, tc->consent, tc->language);
    char buf[2048];
    snprintf(buf, sizeof buf, BOOKED, tc->occurred, tc->starts);
    make_case_event(&ev, buf);
    struct casestore_case c = {ROUTE_FAMILY_HUB, "hub-kendal", PRIORITY_GREEN,
                               "family_hub",     true,         0};
    struct casestore_change ch = {
        .outcome = CASESTORE_APPLIED,
        .event = &ev,
        .referral = &ref,
        .referral_id = "REF-N-1",
        .case_after = &c,
    };
    struct notify_plan p;
    ck_assert_int_eq(notify_plan_change(&CTX, &ch, &p), 0);
    ck_assert_msg(p.n_rows == (tc->reminder_nb ? 2u : 1u), "%s: %zu rows", tc->what, p.n_rows);
    /* booking again reschedules: the pending reminder of this appointment goes */
    ck_assert_str_eq(p.cancel_appointment_id, "A-77");
    ck_assert_str_eq(p.cancel_reminder_reason, "rescheduled");
    const char *names[2] = {"appointment_booked", "appointment_reminder"};
    const char *nbs[2] = {tc->booked_nb, tc->reminder_nb};
    for (int k = 0; k < 2 && nbs[k]; k++) {
        const struct notify_row *r = find_row(&p, names[k], TEMPLATE_SMS);
        ck_assert_msg(r != NULL, "%s: no %s", tc->what, names[k]);
        ck_assert_msg(r->not_before_ms == T(nbs[k]), "%s: %s not_before %lld, want %s", tc->what,
                      names[k], (long long)r->not_before_ms, nbs[k]);
        ck_assert_int_ge(r->due_from_ms, r->created_ms);
        ck_assert_int_eq(r->due_from_ms, r->not_before_ms > NOW ? r->not_before_ms : NOW);
        ck_assert_str_eq(r->recipient, tc->recipient);
        ck_assert_str_eq(notify_state_name(r->state), tc->skip ? "skipped" : "queued");
        if (tc->skip)
            ck_assert_str_eq(r->skip_reason, tc->skip);
        ck_assert_str_eq(r->language, tc->lang);
        ck_assert_str_eq(r->appointment_id, "A-77");
        ck_assert(!r->red);
        ck_assert_int_eq(json_object_size(r->personalisation), 5);
        ck_assert_str_eq(val(r, "appointment_location"), "Kendal Family Hub, Sample Street");
        ck_assert_str_eq(val(r, "appointment_with"), "Family Help Worker");
        ck_assert_str_eq(val(r, "team_name"), "Kendal Family Hub");
    }
    notify_plan_release(&p);
    event_release(&ev);
    event_release(&ref);
}
END_TEST

/* The appointment's date and time in the family's local time. */
START_TEST(booked_values)
{
    NOW = T("2026-11-24T14:00:00Z");
    struct event ref, ev;
    make_referral(&ref, NULL, NULL, NULL, NULL);
    char buf[2048];
    snprintf(buf, sizeof buf, BOOKED, "2026-06-24T14:00:00Z", "2026-07-01T11:00:00Z");
    make_case_event(&ev, buf);
    struct casestore_case c = {ROUTE_SCHOOL, "school-900301", PRIORITY_GREEN, "school", true, 0};
    struct casestore_change ch = {.outcome = CASESTORE_APPLIED,
                                  .event = &ev,
                                  .referral = &ref,
                                  .referral_id = "REF-N-1",
                                  .case_after = &c};
    struct notify_plan p;
    ck_assert_int_eq(notify_plan_change(&CTX, &ch, &p), 0);
    const struct notify_row *r = find_row(&p, "appointment_booked", TEMPLATE_SMS);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(val(r, "appointment_date"), "Wednesday 1 July 2026");
    ck_assert_str_eq(val(r, "appointment_time"), "midday"); /* 11:00Z is 12:00 BST */
    ck_assert_str_eq(val(r, "team_name"), "Sample Kendal Primary School");
    notify_plan_release(&p);
    event_release(&ev);
    /* location and with are optional in the event */
    const char *bare =
        "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-0000000000bc\","
        " \"type\": \"appointment.booked\", \"occurred_at\": \"2026-11-24T14:00:00Z\","
        " \"case\": {\"referral_id\": \"REF-N-1\"},"
        " \"appointment\": {\"id\": \"A-78\", \"starts_at\": \"2026-12-01T10:30:00Z\"}}";
    make_case_event(&ev, bare);
    ck_assert_int_eq(notify_plan_change(&CTX, &ch, &p), 0);
    r = find_row(&p, "appointment_booked", TEMPLATE_SMS);
    ck_assert_str_eq(val(r, "appointment_location"), "the place in your invitation");
    ck_assert_str_eq(val(r, "appointment_with"), "your Family Help worker");
    ck_assert_str_eq(val(r, "appointment_time"), "10:30am");
    notify_plan_release(&p);
    event_release(&ev);
    event_release(&ref);
}
END_TEST

START_TEST(cancelled)
{
    NOW = T("2026-11-25T21:30:00Z");
    struct event ref, ev;
    make_referral(&ref, NULL, NULL, NULL, "\"pl\"");
    make_case_event(&ev, "{\"schema_version\": 1, \"event_id\": "
                         "\"00000000-0000-4000-8000-0000000000cc\", \"type\": "
                         "\"appointment.cancelled\", \"occurred_at\": \"2026-11-25T21:30:00Z\","
                         " \"case\": {\"referral_id\": \"REF-N-1\"}, \"appointment\": {\"id\": "
                         "\"A-77\"}}");
    struct casestore_case c = {ROUTE_FAMILY_HUB, "hub-kendal", PRIORITY_GREEN,
                               "family_hub",     true,         0};
    struct casestore_change ch = {.outcome = CASESTORE_APPLIED,
                                  .event = &ev,
                                  .referral = &ref,
                                  .referral_id = "REF-N-1",
                                  .case_after = &c};
    struct notify_plan p;
    ck_assert_int_eq(notify_plan_change(&CTX, &ch, &p), 0);
    ck_assert_int_eq(p.n_rows, 1);
    const struct notify_row *r = &p.rows[0];
    ck_assert_str_eq(r->template_name, "appointment_cancelled");
    ck_assert_int_eq(r->channel, TEMPLATE_SMS);
    ck_assert(r->from_booking); /* date and time from the booking text */
    ck_assert_str_eq(r->recipient, "+447700900123");
    ck_assert_str_eq(r->language, "pl");
    ck_assert_int_eq(r->not_before_ms, T("2026-11-26T08:00:00Z")); /* window */
    ck_assert_str_eq(val(r, "team_name"), "Kendal Family Hub");
    ck_assert_str_eq(p.cancel_appointment_id, "A-77");
    ck_assert_str_eq(p.cancel_reminder_reason, "appointment_cancelled");
    notify_plan_release(&p);
    event_release(&ev);
    event_release(&ref);
}
END_TEST

START_TEST(closed)
{
    NOW = T("2026-11-25T21:30:00Z");
    struct event ref, ev;
    make_referral(&ref, NULL, NULL, NULL, NULL);
    make_case_event(&ev, "{\"schema_version\": 1, \"event_id\": "
                         "\"00000000-0000-4000-8000-0000000000dd\", \"type\": \"case.closed\","
                         " \"occurred_at\": \"2026-11-25T21:30:00Z\", \"case\": {\"referral_id\":"
                         " \"REF-N-1\"}, \"outcome\": \"private words\"}");
    struct casestore_case c = {ROUTE_FAMILY_HUB, "hub-kendal", PRIORITY_GREEN,
                               "family_hub",     true,         T("2026-11-26T17:00:00Z") / 1000};
    struct casestore_change ch = {.outcome = CASESTORE_CLOSED,
                                  .event = &ev,
                                  .referral = &ref,
                                  .referral_id = "REF-N-1",
                                  .case_after = &c};
    struct notify_plan p;
    ck_assert_int_eq(notify_plan_change(&CTX, &ch, &p), 0);
    ck_assert_int_eq(p.n_rows, 1);
    ck_assert_str_eq(p.rows[0].template_name, "case_closed");
    ck_assert_str_eq(p.rows[0].recipient, "referrer@example.org");
    ck_assert_int_eq(p.rows[0].not_before_ms, NOW); /* an email: no window */
    ck_assert(p.cancel_family_texts);
    char *dump = json_dumps(p.rows[0].personalisation, 0);
    ck_assert_msg(strstr(dump, "private") == NULL, "%s", dump);
    free(dump);
    notify_plan_release(&p);
    event_release(&ev);
    event_release(&ref);
}
END_TEST

/* Case events that tell nobody: a consent re-run is a re-route (tested above); an
 * appointment on a case without a family mobile... the rest change nothing. */
START_TEST(no_rows_for_case_event_rejections)
{
    NOW = T("2026-11-25T10:00:00Z");
    struct event ev;
    make_case_event(&ev, "{\"schema_version\": 1, \"event_id\": "
                         "\"00000000-0000-4000-8000-0000000000ee\", \"type\": \"consent.given\","
                         " \"occurred_at\": \"2026-11-25T10:00:00Z\", \"case\": {\"referral_id\":"
                         " \"REF-N-9\"}}");
    struct casestore_source src = {EVENT_TOPIC_CASE_EVENTS, "frontdoor.case-events", 0, 7};
    struct casestore_change ch = {.outcome = CASESTORE_REJECTED,
                                  .error = EVENT_UNKNOWN_CASE,
                                  .event = &ev,
                                  .referral_id = "REF-N-9",
                                  .source = &src};
    struct notify_plan p;
    ck_assert_int_eq(notify_plan_change(&CTX, &ch, &p), 0);
    ck_assert_int_eq(p.n_rows, 0);
    notify_plan_release(&p);
    event_release(&ev);
}
END_TEST

/* ------------------------------------------------------------------ red and timers */

START_TEST(unusable_from_casestore)
{
    NOW = T("2026-11-25T23:10:00Z"); /* at night: red is never held */
    struct event ref;
    make_referral(&ref, NULL, NULL, NULL, NULL);
    struct casestore_source src = {EVENT_TOPIC_REFERRALS, "frontdoor.referrals", 3, 1234};
    struct casestore_change ch = {.outcome = CASESTORE_REJECTED,
                                  .error = EVENT_DUPLICATE_REFERRAL,
                                  .event = &ref,
                                  .referral_id = "REF-N-1",
                                  .source = &src};
    struct notify_plan p;
    ck_assert_int_eq(notify_plan_change(&CTX, &ch, &p), 0);
    ck_assert_int_eq(p.n_rows, 1);
    const struct notify_row *r = &p.rows[0];
    ck_assert_str_eq(r->template_name, "unusable_event");
    ck_assert_str_eq(r->recipient, "family-help-front-door@example.org");
    ck_assert(r->red);
    ck_assert_int_eq(r->not_before_ms, NOW);
    ck_assert_str_eq(r->dedupe_key, "unusable_event:frontdoor.referrals:3:1234");
    ck_assert_int_eq(json_object_size(r->personalisation), 4);
    ck_assert_str_eq(val(r, "topic"), "frontdoor.referrals");
    ck_assert_str_eq(val(r, "partition"), "3");
    ck_assert_str_eq(val(r, "offset"), "1234");
    ck_assert_str_eq(val(r, "error"), "duplicate_referral");
    ck_assert_ptr_null(p.referral_id);
    ck_assert_ptr_null(p.cause_event_id);
    notify_plan_release(&p);
    event_release(&ref);
}
END_TEST

START_TEST(unusable_tier1)
{
    NOW = T("2026-11-25T03:00:00Z");
    struct notify_plan p;
    ck_assert_int_eq(notify_plan_unusable(&CTX, "frontdoor.referrals", 0, 99, "invalid_json", &p),
                     0);
    ck_assert_int_eq(p.n_rows, 1);
    ck_assert_str_eq(p.rows[0].template_name, "unusable_event");
    ck_assert_int_eq(p.rows[0].channel, TEMPLATE_EMAIL);
    ck_assert_int_eq(p.rows[0].not_before_ms, NOW);
    ck_assert_str_eq(p.rows[0].dedupe_key, "unusable_event:frontdoor.referrals:0:99");
    ck_assert_str_eq(val(&p.rows[0], "error"), "invalid_json");
    notify_plan_release(&p);
}
END_TEST

START_TEST(overdue)
{
    NOW = T("2026-11-24T17:00:05Z");
    struct casestore_case c = {ROUTE_MANUAL_TRIAGE,
                               "front-door-triage",
                               PRIORITY_AMBER,
                               "incomplete",
                               true,
                               T("2026-11-24T17:00:00Z") / 1000};
    struct notify_plan p;
    ck_assert_int_eq(notify_plan_overdue(&CTX, "REF-O-1", &c, &p), 0);
    ck_assert_int_eq(p.n_rows, 1);
    const struct notify_row *r = &p.rows[0];
    ck_assert_str_eq(r->template_name, "decision_overdue");
    ck_assert_str_eq(r->recipient, "front-door-manager@example.org");
    ck_assert(!r->red);
    ck_assert_int_eq(r->not_before_ms, NOW);
    char key[NOTIFY_KEY_MAX];
    snprintf(key, sizeof key, "decision_overdue:REF-O-1:%lld",
             (long long)(T("2026-11-24T17:00:00Z") / 1000));
    ck_assert_str_eq(r->dedupe_key, key);
    ck_assert_str_eq(val(r, "decision_due_at"), "5pm on Tuesday 24 November 2026");
    ck_assert_str_eq(val(r, "team_name"), "Family Help Front Door triage");
    ck_assert_str_eq(p.referral_id, "REF-O-1");
    ck_assert_ptr_null(p.cause_event_id);
    notify_plan_release(&p);
}
END_TEST

/* ------------------------------------------------------------------ addresses */

static const struct {
    const char *addr;
    bool ok;
} email_cases[] = {
    {"referrer@example.org", true},
    {"a.b+c@sub.example.co.uk", true},
    {"o'brien@example.org", true},
    {"x@example", false},
    {"@example.org", false},
    {"a@", false},
    {"a@@example.org", false},
    {"a@b@example.org", false},
    {".a@example.org", false},
    {"a.@example.org", false},
    {"a..b@example.org", false},
    {"a b@example.org", false},
    {"a@example.org\r\nBcc: x@example.org", false},
    {"a@example.org\n", false},
    {"<a@example.org>", false},
    {"a@-example.org", false},
    {"a@example-.org", false},
    {"a@example..org", false},
    {"a@example.org.", false},
    {"\"quoted\"@example.org", false},
    {"zoë@example.org", false},
    {"", false},
};

START_TEST(email_table)
{
    ck_assert_msg(notify_valid_email(email_cases[_i].addr) == email_cases[_i].ok, "%s",
                  email_cases[_i].addr);
}
END_TEST

START_TEST(email_lengths)
{
    char buf[300];
    memset(buf, 'a', 64);
    snprintf(buf + 64, sizeof buf - 64, "@example.org");
    ck_assert(notify_valid_email(buf));
    memset(buf, 'a', 65);
    snprintf(buf + 65, sizeof buf - 65, "@example.org");
    ck_assert(!notify_valid_email(buf));
    ck_assert(!notify_valid_email(NULL));
}
END_TEST

static Suite *notify_plan_suite(void)
{
    Suite *s = suite_create("notify_plan");
    TCase *tc = tcase_create("triggers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, decision_table, 0, N_ELEMS(decision_cases));
    tcase_add_test(tc, case_values);
    tcase_add_loop_test(tc, booked_table, 0, N_ELEMS(booked_cases));
    tcase_add_test(tc, booked_values);
    tcase_add_test(tc, cancelled);
    tcase_add_test(tc, closed);
    tcase_add_test(tc, no_rows_for_case_event_rejections);
    tcase_add_test(tc, unusable_from_casestore);
    tcase_add_test(tc, unusable_tier1);
    tcase_add_test(tc, overdue);
    suite_add_tcase(s, tc);
    tc = tcase_create("addresses");
    tcase_add_loop_test(tc, email_table, 0, N_ELEMS(email_cases));
    tcase_add_test(tc, email_lengths);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(notify_plan_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
