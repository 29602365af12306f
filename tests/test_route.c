/* Unit tests: the Front Door decision (routing-policy.md) with the shipped rule file and
 * directory. Every expected value is worked out by hand from the policy text and the
 * calendar (bank holidays of directory.json; UK summer time from the last Sunday of
 * March to the last Sunday of October), never by calling the code under test. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/caltime.h"
#include "frontdoor/event.h"
#include "frontdoor/policy.h"
#include "frontdoor/route.h"

#include "rules_text.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct policy *P;

static void load_policy(void)
{
    const char *src = getenv("FRONTDOOR_SOURCE_DIR");
    ck_assert_msg(src != NULL, "FRONTDOOR_SOURCE_DIR not set");
    char rules[1024], dir[1024], errs[8192];
    snprintf(rules, sizeof rules, "%s/config/frontdoor.rules", src);
    snprintf(dir, sizeof dir, "%s/config/directory.json", src);
    ck_assert_msg(policy_load_files(rules, dir, &P, errs, sizeof errs) == 0, "%s", errs);
}

static void free_policy(void)
{
    policy_free(P);
    P = NULL;
}

/* A complete referral: Monday 23 November 2026 10:15 UTC (= GMT), a 9-year-old at
 * Sample Kendal Primary (900301, south-lakes), postcode LA9 (hub-kendal), level 2, one
 * SCHOOL need, consent given: by the policy, rule 12 `school`, green, due Thursday
 * 26 November 17:00 GMT. */
static const char *BASE =
    "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-0000000000aa\","
    " \"type\": \"referral.received\", \"occurred_at\": \"2026-11-23T10:15:00Z\","
    " \"referral\": {\"id\": \"REF-T-1\", \"source\": \"school\","
    "  \"referrer\": {\"name\": \"Ms R. Referrer\", \"email\": \"referrer@example.org\"},"
    "  \"child\": {\"id\": \"C-1\", \"first_name\": \"Sam\", \"last_name\": \"Sample\","
    "   \"date_of_birth\": \"2017-05-02\", \"send\": false, \"school_urn\": \"900301\","
    "   \"postcode\": \"LA9 4DQ\"},"
    "  \"family\": {\"id\": \"F-1\", \"contact\": {\"name\": \"Alex Sample\","
    "   \"mobile\": \"07700 900123\", \"email\": \"alex@example.org\"},"
    "   \"consent\": {\"early_help\": true, \"sms\": true, \"email\": true}},"
    "  \"level_of_need\": 2, \"needs\": [\"school_attendance\"],"
    "  \"safeguarding\": {\"immediate_risk\": false},"
    "  \"summary\": \"free text never shown\"}}";

/* Merge `patch` into `dst`; the string "$delete" removes a member. */
static void merge(json_t *dst, json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), "$delete") == 0)
            json_object_del(dst, k);
        else if (json_is_object(v) && json_is_object(json_object_get(dst, k)))
            merge(json_object_get(dst, k), v);
        else
            json_object_set(dst, k, v);
    }
}

/* The BASE referral with a patch, parsed as the daemon would. */
static void make_event(const char *patch, struct event *ev)
{
    json_error_t err;
    json_t *root = json_loads(BASE, 0, &err);
    ck_assert_msg(root != NULL, "BASE: %s", err.text);
    if (patch) {
        json_t *p = json_loads(patch, JSON_ALLOW_NUL, &err); /* ids with \u0000 */
        ck_assert_msg(p != NULL, "patch %s: %s", patch, err.text);
        merge(root, p);
        json_decref(p);
    }
    char *s = json_dumps(root, 0);
    json_decref(root);
    char detail[256];
    enum event_error e =
        event_parse(s, strlen(s), EVENT_TOPIC_REFERRALS, 65536, ev, detail, sizeof detail);
    ck_assert_msg(e == EVENT_OK, "event_parse: %s: %s", event_error_code(e), detail);
    free(s);
}

static int64_t utc_ms(const char *s)
{
    int64_t ms;
    ck_assert_msg(caltime_parse_datetime(s, &ms), "bad time %s", s);
    return ms;
}

static bool has_reason(const struct decision *d, const char *r)
{
    for (size_t i = 0; i < d->n_reasons; i++)
        if (strcmp(d->reasons[i], r) == 0)
            return true;
    return false;
}

static void reasons_msg(const struct decision *d, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < d->n_reasons && used + 1 < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "[%s] ", d->reasons[i]);
}

/* Personal data of BASE that must never reach a reason. */
static void assert_no_personal_data(const struct decision *d)
{
    static const char *const pd[] = {"Sam",        "Sample", "Referrer",    "LA9 4DQ",   "LA94DQ",
                                     "2017-05-02", "07700",  "example.org", "free text", "@"};
    for (size_t i = 0; i < d->n_reasons; i++) {
        ck_assert_msg(d->reasons[i][0] != '\0', "empty reason");
        for (size_t k = 0; k < N(pd); k++)
            ck_assert_msg(strstr(d->reasons[i], pd[k]) == NULL, "reason \"%s\" carries \"%s\"",
                          d->reasons[i], pd[k]);
    }
}

static void check_decision(const struct decision *d, const char *route, const char *dest,
                           const char *prio, const char *rule, const char *due, const char *name)
{
    char buf[32], rs[2048];
    reasons_msg(d, rs, sizeof rs);
    ck_assert_msg(strcmp(rules_route_name(d->route), route) == 0, "%s: route %s, want %s; %s", name,
                  rules_route_name(d->route), route, rs);
    ck_assert_msg(strcmp(d->destination, dest) == 0, "%s: destination %s, want %s; %s", name,
                  d->destination, dest, rs);
    ck_assert_msg(strcmp(rules_priority_name(d->priority), prio) == 0, "%s: priority %s, want %s",
                  name, rules_priority_name(d->priority), prio);
    ck_assert_msg(strcmp(d->rule, rule) == 0, "%s: rule %s, want %s; %s", name, d->rule, rule, rs);
    const char *got = route_format_due(d, buf);
    if (due == NULL)
        ck_assert_msg(got == NULL, "%s: due %s, want null", name, got);
    else
        ck_assert_msg(got && strcmp(got, due) == 0, "%s: due %s, want %s", name, got ? got : "null",
                      due);
    ck_assert_msg(d->n_reasons >= 1, "%s: no reasons", name);
    assert_no_personal_data(d);
}

/* ================================================================ referral rules */

struct route_case {
    const char *name;
    const char *patch;
    const char *route, *dest, *prio, *rule, *due;
    const char *reason; /* a reason that must be among them, or NULL */
    int n_reasons;      /* exact count, or 0 */
};

#define SCHOOL_GREEN "school", "school-900301", "green", "school", "2026-11-26T17:00:00Z"
#define INCOMPLETE                                                                                 \
    "manual_triage", "front-door-triage", "amber", "incomplete", "2026-11-24T17:00:00Z"
#define HUB_KENDAL   "family_hub", "hub-kendal", "green", "family_hub", "2026-11-26T17:00:00Z"
#define EARLY_KENDAL "family_hub", "hub-kendal", "green", "early_years", "2026-11-26T17:00:00Z"
#define TFH_SL                                                                                     \
    "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs", "2026-11-24T17:00:00Z"
#define SAFEGUARDING                                                                               \
    "social_care", "social-care-duty", "red", "safeguarding", "2026-11-23T14:15:00Z"
#define AGE_OUT    "signpost", "adult-services", "blue", "age_out_of_range", NULL
#define NO_CONSENT "consent_required", "referrer", "green", "no_consent", "2026-11-26T17:00:00Z"
#define UNIVERSAL  "signpost", "universal-services", "blue", "universal", NULL
#define DEFAULT_TRIAGE                                                                             \
    "manual_triage", "front-door-triage", "amber", "default", "2026-11-24T17:00:00Z"
#define UNPLACED                                                                                   \
    "manual_triage", "front-door-triage", "amber", "complex_unplaced", "2026-11-24T17:00:00Z"
#define YOUTH "youth_support", "youth-support", "green", "youth", "2026-11-26T17:00:00Z"

static const struct route_case route_cases[] = {
    {"base", NULL, SCHOOL_GREEN, "every need is in SCHOOL", 0},

    /* 1 safeguarding: immediate_risk true or level 4, whatever else */
    {"risk", "{\"referral\": {\"safeguarding\": {\"immediate_risk\": true}}}", SAFEGUARDING,
     "safeguarding.immediate_risk is true", 1},
    {"level 4", "{\"referral\": {\"level_of_need\": 4}}", SAFEGUARDING, "level_of_need is 4", 1},
    {"level 4.0", "{\"referral\": {\"level_of_need\": 4.0}}", SAFEGUARDING, NULL, 0},
    {"risk and level 4",
     "{\"referral\": {\"level_of_need\": 4, \"safeguarding\": {\"immediate_risk\": true}}}",
     SAFEGUARDING, "level_of_need is 4", 2},
    {"risk, everything else missing",
     "{\"referral\": {\"child\": \"$delete\", \"family\": \"$delete\", \"needs\": \"$delete\","
     " \"level_of_need\": \"$delete\", \"safeguarding\": {\"immediate_risk\": true}}}",
     SAFEGUARDING, NULL, 0},
    {"level 4, needs invalid", "{\"referral\": {\"level_of_need\": 4, \"needs\": [\"x y\"]}}",
     SAFEGUARDING, NULL, 0},
    {"level 4 beats age",
     "{\"referral\": {\"level_of_need\": 4, \"child\": {\"date_of_birth\": \"1990-01-01\"}}}",
     SAFEGUARDING, NULL, 0},
    {"risk \"true\" is not true",
     "{\"referral\": {\"safeguarding\": {\"immediate_risk\": \"true\"}}}", SCHOOL_GREEN, NULL, 0},
    {"risk 1 is not true", "{\"referral\": {\"safeguarding\": {\"immediate_risk\": 1}}}",
     SCHOOL_GREEN, NULL, 0},
    {"risk null", "{\"referral\": {\"safeguarding\": {\"immediate_risk\": null}}}", SCHOOL_GREEN,
     NULL, 0},
    {"safeguarding not an object", "{\"referral\": {\"safeguarding\": true}}", SCHOOL_GREEN, NULL,
     0},
    {"red crosses midnight",
     "{\"occurred_at\": \"2026-11-22T23:30:00Z\", \"referral\": {\"level_of_need\": 4}}",
     "social_care", "social-care-duty", "red", "safeguarding", "2026-11-23T03:30:00Z", NULL, 0},
    {"red whole seconds, offset",
     "{\"occurred_at\": \"2026-11-23T10:15:30.999+01:00\", \"referral\": {\"level_of_need\": 4}}",
     "social_care", "social-care-duty", "red", "safeguarding", "2026-11-23T13:15:30Z", NULL, 0},
    {"red over the spring change is clock hours",
     "{\"occurred_at\": \"2027-03-28T00:30:00Z\", \"referral\": {\"level_of_need\": 4}}",
     "social_care", "social-care-duty", "red", "safeguarding", "2027-03-28T04:30:00Z", NULL, 0},

    /* 2 incomplete: one reason per problem, naming the field */
    {"level missing", "{\"referral\": {\"level_of_need\": \"$delete\"}}", INCOMPLETE,
     "level_of_need missing", 1},
    {"level null", "{\"referral\": {\"level_of_need\": null}}", INCOMPLETE, "level_of_need missing",
     1},
    {"level \"2\"", "{\"referral\": {\"level_of_need\": \"2\"}}", INCOMPLETE,
     "level_of_need not a whole number from 1 to 4", 1},
    {"level true", "{\"referral\": {\"level_of_need\": true}}", INCOMPLETE,
     "level_of_need not a whole number from 1 to 4", 1},
    {"level 2.5", "{\"referral\": {\"level_of_need\": 2.5}}", INCOMPLETE,
     "level_of_need not a whole number from 1 to 4", 1},
    {"level 0", "{\"referral\": {\"level_of_need\": 0}}", INCOMPLETE, NULL, 1},
    {"level 5", "{\"referral\": {\"level_of_need\": 5}}", INCOMPLETE, NULL, 1},
    {"level -1", "{\"referral\": {\"level_of_need\": -1}}", INCOMPLETE, NULL, 1},
    {"level 2.0 is 2", "{\"referral\": {\"level_of_need\": 2.0}}", SCHOOL_GREEN, NULL, 0},
    {"child.id with a NUL byte is no usable id",
     "{\"referral\": {\"child\": {\"id\": \"C-1\\u0000x\"}}}", INCOMPLETE,
     "child.id not a non-empty string", 1},
    {"needs missing", "{\"referral\": {\"needs\": \"$delete\"}}", INCOMPLETE, "needs missing", 1},
    {"needs null", "{\"referral\": {\"needs\": null}}", INCOMPLETE, "needs missing", 1},
    {"needs a string", "{\"referral\": {\"needs\": \"school_attendance\"}}", INCOMPLETE,
     "needs not a list", 1},
    {"needs empty", "{\"referral\": {\"needs\": []}}", INCOMPLETE, "needs empty", 1},
    {"needs holds a number", "{\"referral\": {\"needs\": [\"bullying\", 7]}}", INCOMPLETE,
     "needs[1] not a string", 1},
    {"needs holds null", "{\"referral\": {\"needs\": [null]}}", INCOMPLETE, "needs[0] not a string",
     1},
    {"unknown code quoted", "{\"referral\": {\"needs\": [\"bullying\", \"foo\"]}}", INCOMPLETE,
     "unknown need code \"foo\"", 1},
    {"unknown code twice, one reason", "{\"referral\": {\"needs\": [\"foo\", \"foo\"]}}",
     INCOMPLETE, "unknown need code \"foo\"", 1},
    {"two unknown codes", "{\"referral\": {\"needs\": [\"foo\", \"bar_2\"]}}", INCOMPLETE,
     "unknown need code \"bar_2\"", 2},
    {"unknown code with a space not shown", "{\"referral\": {\"needs\": [\"Sam Sample\"]}}",
     INCOMPLETE, "unknown need code (not shown)", 1},
    {"unknown code upper case not shown", "{\"referral\": {\"needs\": [\"Bullying\"]}}", INCOMPLETE,
     "unknown need code (not shown)", 1},
    {"unknown code 40 chars quoted",
     "{\"referral\": {\"needs\": [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}}", INCOMPLETE,
     "unknown need code \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", 1},
    {"unknown code 41 chars not shown",
     "{\"referral\": {\"needs\": [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}}", INCOMPLETE,
     "unknown need code (not shown)", 1},
    {"unknown code empty not shown", "{\"referral\": {\"needs\": [\"\"]}}", INCOMPLETE,
     "unknown need code (not shown)", 1},
    {"need code compare is exact", "{\"referral\": {\"needs\": [\"bullying \"]}}", INCOMPLETE,
     "unknown need code (not shown)", 1},
    {"child.id missing", "{\"referral\": {\"child\": {\"id\": \"$delete\"}}}", INCOMPLETE,
     "child.id missing", 1},
    {"child.id null", "{\"referral\": {\"child\": {\"id\": null}}}", INCOMPLETE, "child.id missing",
     1},
    {"child.id empty", "{\"referral\": {\"child\": {\"id\": \"\"}}}", INCOMPLETE,
     "child.id not a non-empty string", 1},
    {"child.id a number", "{\"referral\": {\"child\": {\"id\": 12}}}", INCOMPLETE,
     "child.id not a non-empty string", 1},
    {"no dates", "{\"referral\": {\"child\": {\"date_of_birth\": \"$delete\"}}}", INCOMPLETE,
     "child.date_of_birth and child.expected_due_date both missing", 1},
    {"dob null, no edd", "{\"referral\": {\"child\": {\"date_of_birth\": null}}}", INCOMPLETE,
     "child.date_of_birth and child.expected_due_date both missing", 1},
    {"dob not YYYY-MM-DD", "{\"referral\": {\"child\": {\"date_of_birth\": \"2017-5-2\"}}}",
     INCOMPLETE, "child.date_of_birth not a YYYY-MM-DD date", 1},
    {"dob 29 Feb of a common year",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2017-02-29\"}}}", INCOMPLETE,
     "child.date_of_birth not a YYYY-MM-DD date", 1},
    {"dob with a time",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2017-05-02T00:00:00Z\"}}}", INCOMPLETE,
     "child.date_of_birth not a YYYY-MM-DD date", 1},
    {"dob a number", "{\"referral\": {\"child\": {\"date_of_birth\": 20170502}}}", INCOMPLETE,
     "child.date_of_birth not a YYYY-MM-DD date", 1},
    {"edd bad beside a good dob", "{\"referral\": {\"child\": {\"expected_due_date\": \"soon\"}}}",
     INCOMPLETE, "child.expected_due_date not a YYYY-MM-DD date", 1},
    {"pre-birth, edd bad",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"$delete\", \"expected_due_date\": "
     "\"2027-13-01\"}}}",
     INCOMPLETE, "child.expected_due_date not a YYYY-MM-DD date", 1},
    {"dob after received date", "{\"referral\": {\"child\": {\"date_of_birth\": \"2026-11-24\"}}}",
     INCOMPLETE, "child.date_of_birth after the received date", 1},
    {"dob on received date is age 0",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2026-11-23\"}}}", EARLY_KENDAL, NULL, 0},
    /* the year decides before the month, the month before the day */
    {"dob a later month, an earlier day",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2026-12-01\"}}}", INCOMPLETE,
     "child.date_of_birth after the received date", 1},
    {"dob a later year, an earlier month",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2027-01-30\"}}}", INCOMPLETE,
     "child.date_of_birth after the received date", 1},
    {"dob an earlier year, a later month and day",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2025-12-24\"}}}", EARLY_KENDAL, NULL, 0},
    {"dob = local date when UTC is a day behind",
     "{\"occurred_at\": \"2026-06-30T23:30:00Z\", \"referral\": {\"child\": {\"date_of_birth\": "
     "\"2026-07-01\"}}}",
     "family_hub", "hub-kendal", "green", "early_years", "2026-07-06T16:00:00Z", NULL, 0},
    {"child null", "{\"referral\": {\"child\": null}}", INCOMPLETE, "child.id missing", 2},
    {"three problems",
     "{\"referral\": {\"level_of_need\": \"$delete\", \"needs\": \"$delete\", \"child\": {\"id\": "
     "\"$delete\"}}}",
     INCOMPLETE, "needs missing", 3},
    {"too many problems are summed up",
     "{\"referral\": {\"level_of_need\": \"$delete\", \"needs\": [\"u01\", \"u02\", \"u03\", "
     "\"u04\", \"u05\", \"u06\", \"u07\", \"u08\", \"u09\", \"u10\", \"u11\", \"u12\", \"u13\", "
     "\"u14\", \"u15\", \"u16\", \"u17\", \"u18\", \"u19\", \"u20\"]}}",
     INCOMPLETE, "and 6 more reasons", 16},
    {"incomplete before age",
     "{\"referral\": {\"level_of_need\": \"$delete\", \"child\": {\"date_of_birth\": "
     "\"1990-01-01\"}}}",
     INCOMPLETE, NULL, 1},

    /* 3 age_out_of_range: age >= 25, or >= 19 without SEND; birthdays on the day */
    {"19 today", "{\"referral\": {\"child\": {\"date_of_birth\": \"2007-11-23\"}}}", AGE_OUT,
     "age is 19 or over", 3},
    {"18, 19 tomorrow", "{\"referral\": {\"child\": {\"date_of_birth\": \"2007-11-24\"}}}",
     SCHOOL_GREEN, NULL, 0},
    {"19 with SEND",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2007-11-23\", \"send\": true}}}",
     SCHOOL_GREEN, NULL, 0},
    {"19 with SEND \"true\"",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2007-11-23\", \"send\": \"true\"}}}",
     AGE_OUT, "child.send is not true", 0},
    {"25 today with SEND",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2001-11-23\", \"send\": true}}}", AGE_OUT,
     "age is 25 or over", 2},
    {"24 with SEND",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2001-11-24\", \"send\": true}}}",
     SCHOOL_GREEN, NULL, 0},
    {"29 Feb birthday: 18 on 28 Feb of a common year",
     "{\"occurred_at\": \"2027-02-28T12:00:00Z\", \"referral\": {\"child\": {\"date_of_birth\": "
     "\"2008-02-29\"}}}",
     "school", "school-900301", "green", "school", "2027-03-03T17:00:00Z", NULL, 0},
    {"29 Feb birthday: 19 on 1 March",
     "{\"occurred_at\": \"2027-03-01T10:00:00Z\", \"referral\": {\"child\": {\"date_of_birth\": "
     "\"2008-02-29\"}}}",
     AGE_OUT, NULL, 0},
    {"29 Feb birthday: 19 on 29 Feb of a leap year",
     "{\"occurred_at\": \"2028-02-29T10:00:00Z\", \"referral\": {\"child\": {\"date_of_birth\": "
     "\"2009-02-28\"}}}",
     AGE_OUT, NULL, 0},
    {"birthday by local date (BST): 19",
     "{\"occurred_at\": \"2026-06-30T23:30:00Z\", \"referral\": {\"child\": {\"date_of_birth\": "
     "\"2007-07-01\"}}}",
     AGE_OUT, NULL, 0},
    {"birthday by local date (BST): still 18",
     "{\"occurred_at\": \"2026-06-30T22:59:59Z\", \"referral\": {\"child\": {\"date_of_birth\": "
     "\"2007-07-01\"}}}",
     "school", "school-900301", "green", "school", "2026-07-03T16:00:00Z", NULL, 0},
    {"birthday by the offset given",
     "{\"occurred_at\": \"2026-11-22T23:30:00-01:00\", \"referral\": {\"child\": "
     "{\"date_of_birth\": \"2007-11-23\"}}}",
     AGE_OUT, NULL, 0},
    {"pre-birth is never out of range",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"$delete\", \"expected_due_date\": "
     "\"2027-02-01\"}}}",
     EARLY_KENDAL, "pre-birth referral (expected due date, no date of birth)", 2},
    {"dob beats edd: not pre-birth",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2000-01-01\", \"expected_due_date\": "
     "\"2027-02-01\"}}}",
     AGE_OUT, NULL, 0},

    /* 4 no_consent: level 2 or 3 without consent true */
    {"no consent", "{\"referral\": {\"family\": {\"consent\": {\"early_help\": false}}}}",
     NO_CONSENT, "family.consent.early_help is not true", 2},
    {"consent \"true\"", "{\"referral\": {\"family\": {\"consent\": {\"early_help\": \"true\"}}}}",
     NO_CONSENT, NULL, 0},
    {"consent missing", "{\"referral\": {\"family\": {\"consent\": \"$delete\"}}}", NO_CONSENT,
     NULL, 0},
    {"family null", "{\"referral\": {\"family\": null}}", NO_CONSENT, NULL, 0},
    {"level 3 no consent",
     "{\"referral\": {\"level_of_need\": 3, \"family\": {\"consent\": {\"early_help\": null}}}}",
     NO_CONSENT, "level_of_need is 3", 0},
    {"level 1 needs no consent",
     "{\"referral\": {\"level_of_need\": 1, \"family\": {\"consent\": {\"early_help\": false}}}}",
     UNIVERSAL, NULL, 0},
    {"level 4 needs no consent",
     "{\"referral\": {\"level_of_need\": 4, \"family\": {\"consent\": {\"early_help\": false}}}}",
     SAFEGUARDING, NULL, 0},
    {"age before consent",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2000-01-01\"}, \"family\": {\"consent\": "
     "{\"early_help\": false}}}}",
     AGE_OUT, NULL, 0},

    /* 7 universal */
    {"level 1", "{\"referral\": {\"level_of_need\": 1}}", UNIVERSAL, "level_of_need is 1", 1},
    {"level 1.0 complex needs still universal",
     "{\"referral\": {\"level_of_need\": 1.0, \"needs\": [\"domestic_abuse\"]}}", UNIVERSAL, NULL,
     0},

    /* 8 complex_needs and 9 complex_unplaced */
    {"level 3", "{\"referral\": {\"level_of_need\": 3}}", TFH_SL, "level_of_need is 3", 2},
    {"a COMPLEX need", "{\"referral\": {\"needs\": [\"bullying\", \"missing_episodes\"]}}", TFH_SL,
     "need missing_episodes is in COMPLEX", 2},
    {"4 distinct needs",
     "{\"referral\": {\"needs\": [\"bullying\", \"learning\", \"behaviour\", \"parenting\"]}}",
     TFH_SL, "4 distinct needs", 2},
    {"4 needs, 3 distinct: school",
     "{\"referral\": {\"needs\": [\"bullying\", \"bullying\", \"learning\", \"behaviour\"]}}",
     SCHOOL_GREEN, NULL, 0},
    {"eden by district",
     "{\"referral\": {\"level_of_need\": 3, \"child\": {\"postcode\": \"CA11 7QF\"}}}",
     "targeted_family_help", "tfh-eden", "amber", "complex_needs", "2026-11-24T17:00:00Z",
     "locality eden (from the postcode district)", 0},
    {"barrow by district",
     "{\"referral\": {\"level_of_need\": 3, \"child\": {\"postcode\": \"LA14 2AB\"}}}",
     "targeted_family_help", "tfh-barrow", "amber", "complex_needs", "2026-11-24T17:00:00Z", NULL,
     0},
    {"district beats the school's locality",
     "{\"referral\": {\"level_of_need\": 3, \"child\": {\"postcode\": \"CA11 7QF\", "
     "\"school_urn\": \"900101\"}}}",
     "targeted_family_help", "tfh-eden", "amber", "complex_needs", "2026-11-24T17:00:00Z", NULL, 0},
    {"school's locality when the postcode is bad",
     "{\"referral\": {\"level_of_need\": 3, \"child\": {\"postcode\": \"NOT A POSTCODE\", "
     "\"school_urn\": \"900501\"}}}",
     "targeted_family_help", "tfh-eden", "amber", "complex_needs", "2026-11-24T17:00:00Z",
     "locality eden (from the school)", 0},
    {"school's locality when the district is not ours",
     "{\"referral\": {\"level_of_need\": 3, \"child\": {\"postcode\": \"CA1 1AA\", \"school_urn\": "
     "\"900101\"}}}",
     "targeted_family_help", "tfh-barrow", "amber", "complex_needs", "2026-11-24T17:00:00Z", NULL,
     0},
    {"postcode lower case, no space",
     "{\"referral\": {\"level_of_need\": 3, \"child\": {\"postcode\": \"ca117qf\", \"school_urn\": "
     "\"$delete\"}}}",
     "targeted_family_help", "tfh-eden", "amber", "complex_needs", "2026-11-24T17:00:00Z", NULL, 0},
    {"postcode with odd spaces",
     "{\"referral\": {\"level_of_need\": 3, \"child\": {\"postcode\": \" C A1 1\\t7QF \", "
     "\"school_urn\": \"$delete\"}}}",
     "targeted_family_help", "tfh-eden", "amber", "complex_needs", "2026-11-24T17:00:00Z", NULL, 0},
    {"complex, no locality",
     "{\"referral\": {\"level_of_need\": 3, \"child\": {\"postcode\": \"$delete\", \"school_urn\": "
     "\"$delete\"}}}",
     UNPLACED, "no locality from the postcode district or the school", 2},
    {"complex, unknown district and school",
     "{\"referral\": {\"needs\": [\"youth_offending\"], \"child\": {\"postcode\": \"CA1 1AA\", "
     "\"school_urn\": \"123456\"}}}",
     UNPLACED, NULL, 0},
    {"complex, postcode of the wrong shape",
     "{\"referral\": {\"level_of_need\": 3, \"child\": {\"postcode\": \"LA9 4D\", \"school_urn\": "
     "\"$delete\"}}}",
     UNPLACED, NULL, 0},
    {"complex before youth",
     "{\"referral\": {\"needs\": [\"neet\", \"exploitation_risk\"], \"child\": {\"date_of_birth\": "
     "\"2010-01-01\"}}}",
     TFH_SL, NULL, 0},

    /* 10 youth */
    {"11 today with a YOUTH need",
     "{\"referral\": {\"needs\": [\"neet\"], \"child\": {\"date_of_birth\": \"2015-11-23\"}}}",
     YOUTH, "age is 11 or over", 3},
    {"10 with a YOUTH need: hub",
     "{\"referral\": {\"needs\": [\"neet\"], \"child\": {\"date_of_birth\": \"2015-11-24\"}}}",
     HUB_KENDAL, NULL, 0},
    {"YOUTH need beside SCHOOL need",
     "{\"referral\": {\"needs\": [\"bullying\", \"substance_use\"], \"child\": {\"date_of_birth\": "
     "\"2011-01-01\"}}}",
     YOUTH, NULL, 0},
    {"youth needs no hub",
     "{\"referral\": {\"needs\": [\"anti_social_behaviour\"], \"child\": {\"date_of_birth\": "
     "\"2011-01-01\", \"postcode\": \"$delete\", \"school_urn\": \"$delete\"}}}",
     YOUTH, NULL, 0},
    {"20 with SEND, YOUTH need",
     "{\"referral\": {\"needs\": [\"youth_activities\"], \"child\": {\"date_of_birth\": "
     "\"2006-01-01\", \"send\": true}}}",
     YOUTH, NULL, 0},

    /* 11 early_years */
    {"4 years old", "{\"referral\": {\"child\": {\"date_of_birth\": \"2021-11-24\"}}}",
     EARLY_KENDAL, "age is under 5", 2},
    {"5 today: school", "{\"referral\": {\"child\": {\"date_of_birth\": \"2021-11-23\"}}}",
     SCHOOL_GREEN, NULL, 0},
    {"pre-birth, windermere hub",
     "{\"referral\": {\"needs\": [\"early_years\"], \"child\": {\"date_of_birth\": \"$delete\", "
     "\"expected_due_date\": \"2027-02-01\", \"postcode\": \"LA23 1LJ\", \"school_urn\": "
     "\"$delete\"}}}",
     "family_hub", "hub-windermere", "green", "early_years", "2026-11-26T17:00:00Z", NULL, 0},
    {"pre-birth with a YOUTH need is not youth",
     "{\"referral\": {\"needs\": [\"neet\"], \"child\": {\"date_of_birth\": \"$delete\", "
     "\"expected_due_date\": \"2027-02-01\"}}}",
     EARLY_KENDAL, NULL, 0},
    {"pre-birth, no hub, no school",
     "{\"referral\": {\"needs\": [\"parenting\"], \"child\": {\"date_of_birth\": \"$delete\", "
     "\"expected_due_date\": \"2027-02-01\", \"postcode\": \"$delete\", \"school_urn\": "
     "\"$delete\"}}}",
     DEFAULT_TRIAGE, "no earlier rule matched", 1},
    {"under 5, no hub, school needs: school",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2023-01-01\", \"postcode\": \"CA1 1AA\"}}}",
     SCHOOL_GREEN, NULL, 0},

    /* 12 school */
    {"SCHOOL needs at another school",
     "{\"referral\": {\"needs\": [\"online_safety\", \"young_carer\"], \"child\": {\"school_urn\": "
     "\"900601\", \"postcode\": \"CA16 6XX\"}}}",
     "school", "school-900601", "green", "school", "2026-11-26T17:00:00Z", NULL, 0},
    {"a FAMILY need: hub", "{\"referral\": {\"needs\": [\"bullying\", \"housing\"]}}", HUB_KENDAL,
     NULL, 0},
    {"urn a number is no school", "{\"referral\": {\"child\": {\"school_urn\": 900301}}}",
     HUB_KENDAL, NULL, 0},
    {"urn with a space is no school", "{\"referral\": {\"child\": {\"school_urn\": \"900301 \"}}}",
     HUB_KENDAL, NULL, 0},
    {"urn unknown", "{\"referral\": {\"child\": {\"school_urn\": \"999999\"}}}", HUB_KENDAL, NULL,
     0},
    {"school without a postcode",
     "{\"referral\": {\"child\": {\"postcode\": \"$delete\", \"school_urn\": \"900102\"}}}",
     "school", "school-900102", "green", "school", "2026-11-26T17:00:00Z", NULL, 0},

    /* 13 family_hub, 14 default */
    {"FAMILY needs", "{\"referral\": {\"needs\": [\"parenting\", \"housing\"]}}", HUB_KENDAL,
     "family hub hub-kendal covers the postcode district", 1},
    {"appleby hub",
     "{\"referral\": {\"needs\": [\"financial\"], \"child\": {\"postcode\": \"CA16 6XX\"}}}",
     "family_hub", "hub-appleby", "green", "family_hub", "2026-11-26T17:00:00Z", NULL, 0},
    {"mixed needs, no hub",
     "{\"referral\": {\"needs\": [\"bullying\", \"housing\"], \"child\": {\"postcode\": \"NOT A "
     "POSTCODE\"}}}",
     DEFAULT_TRIAGE, NULL, 1},
    {"unknown school, unknown district",
     "{\"referral\": {\"child\": {\"postcode\": \"CA1 1AA\", \"school_urn\": \"123456\"}}}",
     DEFAULT_TRIAGE, NULL, 1},

    /* deadlines: working days strictly after the local received date */
    {"amber on Friday evening: Monday",
     "{\"occurred_at\": \"2026-11-27T18:30:00Z\", \"referral\": {\"level_of_need\": 3}}",
     "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs", "2026-11-30T17:00:00Z",
     NULL, 0},
    {"amber on Saturday: Monday",
     "{\"occurred_at\": \"2026-11-28T10:00:00Z\", \"referral\": {\"level_of_need\": 3}}",
     "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs", "2026-11-30T17:00:00Z",
     NULL, 0},
    {"amber, Monday a bank holiday: Tuesday (BST)",
     "{\"occurred_at\": \"2026-08-28T15:00:00Z\", \"referral\": {\"level_of_need\": 3}}",
     "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs", "2026-09-01T16:00:00Z",
     NULL, 0},
    {"amber by local date: 00:30 BST is the next day",
     "{\"occurred_at\": \"2026-07-01T23:30:00Z\", \"referral\": {\"level_of_need\": 3}}",
     "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs", "2026-07-03T16:00:00Z",
     NULL, 0},
    {"amber 23:59:59 GMT is still Monday",
     "{\"occurred_at\": \"2026-11-23T23:59:59Z\", \"referral\": {\"level_of_need\": 3}}", TFH_SL,
     NULL, 0},
    {"amber midnight GMT is Tuesday",
     "{\"occurred_at\": \"2026-11-24T00:00:00Z\", \"referral\": {\"level_of_need\": 3}}",
     "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs", "2026-11-25T17:00:00Z",
     NULL, 0},
    {"amber over the autumn change: 17:00 GMT",
     "{\"occurred_at\": \"2026-10-23T10:00:00Z\", \"referral\": {\"level_of_need\": 3}}",
     "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs", "2026-10-26T17:00:00Z",
     NULL, 0},
    {"amber before the autumn change: 17:00 BST",
     "{\"occurred_at\": \"2026-10-22T10:00:00Z\", \"referral\": {\"level_of_need\": 3}}",
     "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs", "2026-10-23T16:00:00Z",
     NULL, 0},
    {"green over Christmas", "{\"occurred_at\": \"2026-12-24T16:00:00Z\"}", "school",
     "school-900301", "green", "school", "2026-12-31T17:00:00Z", NULL, 0},
    {"green over Easter and the spring change", "{\"occurred_at\": \"2027-03-25T12:00:00Z\"}",
     "school", "school-900301", "green", "school", "2027-04-01T16:00:00Z", NULL, 0},
    {"green received late Saturday before the spring change",
     "{\"occurred_at\": \"2027-03-27T23:30:00Z\"}", "school", "school-900301", "green", "school",
     "2027-04-01T16:00:00Z", NULL, 0},
    {"green received on Sunday", "{\"occurred_at\": \"2026-11-22T12:00:00Z\"}", "school",
     "school-900301", "green", "school", "2026-11-25T17:00:00Z", NULL, 0},
    {"green, the offset puts it on Sunday", "{\"occurred_at\": \"2026-11-23T01:30:00+02:00\"}",
     "school", "school-900301", "green", "school", "2026-11-25T17:00:00Z", NULL, 0},
    {"green over New Year", "{\"occurred_at\": \"2026-12-30T09:00:00Z\"}", "school",
     "school-900301", "green", "school", "2027-01-05T17:00:00Z", NULL, 0},
    {"amber over the New Year bank holiday",
     "{\"occurred_at\": \"2026-12-31T09:00:00Z\", \"referral\": {\"level_of_need\": 3}}",
     "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs", "2027-01-04T17:00:00Z",
     NULL, 0},
};

START_TEST(test_route_table)
{
    const struct route_case *c = &route_cases[_i];
    struct event ev;
    struct decision d;
    make_event(c->patch, &ev);
    route_decide_referral(P, &ev, NULL, &d);
    check_decision(&d, c->route, c->dest, c->prio, c->rule, c->due, c->name);
    char rs[2048];
    reasons_msg(&d, rs, sizeof rs);
    if (c->reason)
        ck_assert_msg(has_reason(&d, c->reason), "%s: no reason \"%s\" in %s", c->name, c->reason,
                      rs);
    if (c->n_reasons)
        ck_assert_msg((int)d.n_reasons == c->n_reasons, "%s: %zu reasons, want %d: %s", c->name,
                      d.n_reasons, c->n_reasons, rs);
    event_release(&ev);
}
END_TEST

/* ================================================================ school officer */

static const struct {
    const char *occurred_at;
    const char *urn;
    bool cover;
    const char *email;
} officer_cases[] = {
    {"2026-11-30T12:00:00Z", "900102", false, "eho.900102@example.org"},
    {"2026-12-01T00:30:00Z", "900102", true, "cover.900102@example.org"}, /* from: inclusive */
    {"2026-12-24T16:00:00Z", "900102", true, "cover.900102@example.org"},
    {"2027-01-15T23:00:00Z", "900102", true, "cover.900102@example.org"}, /* until: inclusive */
    {"2027-01-16T00:00:00Z", "900102", false, "eho.900102@example.org"},
    {"2026-12-24T16:00:00Z", "900301", false, "eho.900301@example.org"},
};

START_TEST(test_school_officer)
{
    char patch[256];
    snprintf(patch, sizeof patch,
             "{\"occurred_at\": \"%s\", \"referral\": {\"child\": {\"school_urn\": \"%s\"}}}",
             officer_cases[_i].occurred_at, officer_cases[_i].urn);
    struct event ev;
    struct decision d;
    make_event(patch, &ev);
    route_decide_referral(P, &ev, NULL, &d);
    char dest[32];
    snprintf(dest, sizeof dest, "school-%s", officer_cases[_i].urn);
    ck_assert_str_eq(d.destination, dest); /* the destination never changes */
    ck_assert_ptr_nonnull(d.school);
    ck_assert_ptr_nonnull(d.notify_officer);
    ck_assert_int_eq(d.officer_is_cover, officer_cases[_i].cover);
    ck_assert_str_eq(d.notify_officer->email, officer_cases[_i].email);
    event_release(&ev);
}
END_TEST

/* ================================================================ history: rules 5, 6 */

struct hrow {
    const char *referral_id, *child_id, *route, *destination;
    bool open;
    const char *closed_at, *decided_at;
};

struct history_test {
    const char *name;
    const char *patch;
    struct hrow child[3];
    struct hrow family[3];
    const char *route, *dest, *prio, *rule, *due;
};

#define OPEN(id, child, route, dest, decided)                                                      \
    {                                                                                              \
        id, child, route, dest, true, NULL, decided                                                \
    }
#define CLOSED(id, child, route, dest, closed, decided)                                            \
    {                                                                                              \
        id, child, route, dest, false, closed, decided                                             \
    }
#define D1 "2026-10-01T09:00:00Z"
#define D2 "2026-10-02T09:00:00Z"

static const struct history_test history_cases[] = {
    {"no history", NULL, {{0}}, {{0}}, SCHOOL_GREEN},
    {"open child case",
     NULL,
     {OPEN("REF-OLD-1", "C-1", "family_hub", "hub-windermere", D1)},
     {{0}},
     "family_hub",
     "hub-windermere",
     "green",
     "known_child",
     "2026-11-26T17:00:00Z"},
    {"open child case, amber route",
     NULL,
     {OPEN("REF-OLD-1", "C-1", "targeted_family_help", "tfh-barrow", D1)},
     {{0}},
     "targeted_family_help",
     "tfh-barrow",
     "amber",
     "known_child",
     "2026-11-24T17:00:00Z"},
    {"open child case, social care is red",
     NULL,
     {OPEN("REF-OLD-1", "C-1", "social_care", "social-care-duty", D1)},
     {{0}},
     "social_care",
     "social-care-duty",
     "red",
     "known_child",
     "2026-11-23T14:15:00Z"},
    {"open child case, panel is amber",
     NULL,
     {OPEN("REF-OLD-1", "C-1", "family_help_panel", "family-help-panel", D1)},
     {{0}},
     "family_help_panel",
     "family-help-panel",
     "amber",
     "known_child",
     "2026-11-24T17:00:00Z"},
    {"open child case, youth support",
     NULL,
     {OPEN("REF-OLD-1", "C-1", "youth_support", "youth-support", D1)},
     {{0}},
     "youth_support",
     "youth-support",
     "green",
     "known_child",
     "2026-11-26T17:00:00Z"},
    {"closed exactly 90 days before",
     NULL,
     {CLOSED("REF-OLD-1", "C-1", "family_hub", "hub-windermere", "2026-08-25T10:15:00Z", D1)},
     {{0}},
     "family_hub",
     "hub-windermere",
     "green",
     "known_child",
     "2026-11-26T17:00:00Z"},
    {"closed 90 days and a second before",
     NULL,
     {CLOSED("REF-OLD-1", "C-1", "family_hub", "hub-windermere", "2026-08-25T10:14:59Z", D1)},
     {{0}},
     SCHOOL_GREEN},
    {"closed yesterday",
     NULL,
     {CLOSED("REF-OLD-1", "C-1", "school", "school-900302", "2026-11-22T10:00:00Z", D1)},
     {{0}},
     "school",
     "school-900302",
     "green",
     "known_child",
     "2026-11-26T17:00:00Z"},
    {"open manual_triage case does not count",
     NULL,
     {OPEN("REF-OLD-1", "C-1", "manual_triage", "front-door-triage", D1)},
     {{0}},
     SCHOOL_GREEN},
    {"signposted case does not count",
     NULL,
     {CLOSED("REF-OLD-1", "C-1", "signpost", "universal-services", "2026-11-20T10:00:00Z", D1)},
     {{0}},
     SCHOOL_GREEN},
    {"consent_required case does not count",
     NULL,
     {OPEN("REF-OLD-1", "C-1", "consent_required", "referrer", D1)},
     {{0}},
     SCHOOL_GREEN},
    {"the most recently decided wins",
     NULL,
     {OPEN("REF-OLD-1", "C-1", "targeted_family_help", "tfh-barrow", D2),
      OPEN("REF-OLD-2", "C-1", "family_hub", "hub-barrow", D1),
      CLOSED("REF-OLD-3", "C-1", "school", "school-900101", "2026-11-01T00:00:00Z",
             "2026-09-01T00:00:00Z")},
     {{0}},
     "targeted_family_help",
     "tfh-barrow",
     "amber",
     "known_child",
     "2026-11-24T17:00:00Z"},
    {"the case being decided is not history",
     NULL,
     {OPEN("REF-T-1", "C-1", "family_hub", "hub-windermere", D1)},
     {{0}},
     SCHOOL_GREEN},
    {"open family case of another child",
     NULL,
     {{0}},
     {OPEN("REF-SIB-1", "C-2", "targeted_family_help", "tfh-eden", D1)},
     "targeted_family_help",
     "tfh-eden",
     "amber",
     "known_family",
     "2026-11-24T17:00:00Z"},
    {"open family social care case",
     NULL,
     {{0}},
     {OPEN("REF-SIB-1", "C-2", "social_care", "social-care-duty", D1)},
     "social_care",
     "social-care-duty",
     "red",
     "known_family",
     "2026-11-23T14:15:00Z"},
    {"closed family case does not count",
     NULL,
     {{0}},
     {CLOSED("REF-SIB-1", "C-2", "targeted_family_help", "tfh-eden", "2026-11-20T00:00:00Z", D1)},
     SCHOOL_GREEN},
    {"open family school case does not count",
     NULL,
     {{0}},
     {OPEN("REF-SIB-1", "C-2", "school", "school-900101", D1)},
     SCHOOL_GREEN},
    {"family: the most recently decided wins",
     NULL,
     {{0}},
     {OPEN("REF-SIB-1", "C-2", "targeted_family_help", "tfh-eden", D1),
      OPEN("REF-SIB-2", "C-3", "social_care", "social-care-duty", D2)},
     "social_care",
     "social-care-duty",
     "red",
     "known_family",
     "2026-11-23T14:15:00Z"},
    {"child before family",
     NULL,
     {OPEN("REF-OLD-1", "C-1", "school", "school-900302", D1)},
     {OPEN("REF-SIB-1", "C-2", "social_care", "social-care-duty", D2)},
     "school",
     "school-900302",
     "green",
     "known_child",
     "2026-11-26T17:00:00Z"},
    {"no consent before history",
     "{\"referral\": {\"family\": {\"consent\": {\"early_help\": false}}}}",
     {OPEN("REF-OLD-1", "C-1", "family_hub", "hub-windermere", D1)},
     {{0}},
     NO_CONSENT},
    {"age before history",
     "{\"referral\": {\"child\": {\"date_of_birth\": \"2000-01-01\"}}}",
     {OPEN("REF-OLD-1", "C-1", "family_hub", "hub-windermere", D1)},
     {{0}},
     AGE_OUT},
    {"safeguarding before history",
     "{\"referral\": {\"level_of_need\": 4}}",
     {OPEN("REF-OLD-1", "C-1", "family_hub", "hub-windermere", D1)},
     {{0}},
     SAFEGUARDING},
    {"history before universal",
     "{\"referral\": {\"level_of_need\": 1}}",
     {OPEN("REF-OLD-1", "C-1", "family_hub", "hub-windermere", D1)},
     {{0}},
     "family_hub",
     "hub-windermere",
     "green",
     "known_child",
     "2026-11-26T17:00:00Z"},
    {"history before complex",
     "{\"referral\": {\"level_of_need\": 3}}",
     {OPEN("REF-OLD-1", "C-1", "school", "school-900301", D1)},
     {{0}},
     "school",
     "school-900301",
     "green",
     "known_child",
     "2026-11-26T17:00:00Z"},
    {"no family.id: no family match",
     "{\"referral\": {\"family\": {\"id\": \"$delete\"}}}",
     {{0}},
     {OPEN("REF-SIB-1", "C-2", "social_care", "social-care-duty", D1)},
     SCHOOL_GREEN},
    /* PostgreSQL cannot hold it and C would compare "F-1" only: not a family id at all */
    {"family.id with a NUL byte: no family match",
     "{\"referral\": {\"family\": {\"id\": \"F-1\\u0000x\"}}}",
     {{0}},
     {OPEN("REF-SIB-1", "C-2", "social_care", "social-care-duty", D1)},
     SCHOOL_GREEN},
};

static size_t fill_history(const struct hrow *rows, struct history_case *out)
{
    size_t n = 0;
    for (; n < 3 && rows[n].referral_id; n++) {
        out[n].referral_id = rows[n].referral_id;
        out[n].child_id = rows[n].child_id;
        ck_assert(rules_parse_route(rows[n].route, strlen(rows[n].route), &out[n].route));
        out[n].destination = rows[n].destination;
        out[n].open = rows[n].open;
        out[n].closed_at_ms = rows[n].closed_at ? utc_ms(rows[n].closed_at) : 0;
        out[n].decided_at_ms = utc_ms(rows[n].decided_at);
    }
    return n;
}

START_TEST(test_history_table)
{
    const struct history_test *c = &history_cases[_i];
    struct history_case child[3], family[3];
    struct route_history h = {child, fill_history(c->child, child), family,
                              fill_history(c->family, family)};
    struct event ev;
    struct decision d;
    make_event(c->patch, &ev);
    route_decide_referral(P, &ev, &h, &d);
    check_decision(&d, c->route, c->dest, c->prio, c->rule, c->due, c->name);
    /* without history the same referral never matches rules 5 and 6 */
    route_decide_referral(P, &ev, NULL, &d);
    ck_assert_str_ne(d.rule, "known_child");
    ck_assert_str_ne(d.rule, "known_family");
    event_release(&ev);
}
END_TEST

/* ================================================================ postcodes */

static const struct {
    const char *in;
    const char *district; /* NULL: absent */
} postcode_cases[] = {
    {"la9 4dq", "LA9"},
    {"LA94DQ", "LA9"},
    {"CA11 7QF", "CA11"},
    {"  LA 23 1LJ ", "LA23"},
    {"M1 1AE", "M1"},
    {"W1A 0AX", "W1A"},
    {"EC1A 1BB", "EC1A"},
    {"la9\t4dq\n", "LA9"},
    {"LA9\xc2\xa0"
     "4DQ",
     "LA9"}, /* no-break space is white space */
    {"LA9 4D", NULL},
    {"LA9 44Q", NULL},
    {"LAA9 4DQ", NULL},
    {"9LA 4DQ", NULL},
    {"LA9A1 4DQ", NULL},
    {"", NULL},
    {"   ", NULL},
    {"NOT A POSTCODE", NULL},
    {"LA9-4DQ", NULL},
    {"L 4DQ", NULL},
    {"LA99X 4DQ", NULL},
    {"LA9 4DQQ", NULL},
};

START_TEST(test_postcode_district)
{
    char out[DIRECTORY_DISTRICT_MAX + 1];
    const char *in = postcode_cases[_i].in;
    bool ok = route_postcode_district(in, strlen(in), out);
    if (postcode_cases[_i].district) {
        ck_assert_msg(ok, "\"%s\" should give %s", in, postcode_cases[_i].district);
        ck_assert_str_eq(out, postcode_cases[_i].district);
    } else {
        ck_assert_msg(!ok, "\"%s\" gave %s", in, out);
    }
}
END_TEST

/* ================================================================ case events */

struct case_event_test {
    const char *name;
    const char *event; /* the case event (case-events topic) */
    const char *referral_patch;
    bool with_referral;
    const char *state, *route, *dest;
    const char *locality_id, *hub_id; /* kept by the case store, used without referral */
    enum event_error err;
    enum case_effect effect;
    const char *new_route, *new_dest, *prio, *rule, *due, *new_state;
};

#define CEV(type, extra)                                                                           \
    "{\"schema_version\": 1, \"event_id\": \"10000000-0000-4000-8000-000000000001\", \"type\": "   \
    "\"" type "\", \"occurred_at\": \"2026-11-27T10:00:00Z\", \"case\": {\"referral_id\": "        \
    "\"REF-T-1\"}" extra "}"
/* Case events happen on Friday 27 November 2026, 10:00 GMT: amber is due Monday 30
 * November 17:00Z, green Wednesday 2 December 17:00Z, red 14:00Z the same day. */
#define NO_DECISION NULL, NULL, NULL, NULL, NULL, NULL
#define AMBER_27    "2026-11-30T17:00:00Z"
#define GREEN_27    "2026-12-02T17:00:00Z"
#define RED_27      "2026-11-27T14:00:00Z"

static const struct case_event_test case_event_cases[] = {
    {"consent given: rules again, with consent", CEV("consent.given", ""),
     "{\"referral\": {\"family\": {\"consent\": {\"early_help\": false}}}}", true,
     "awaiting_consent", "consent_required", "referrer", NULL, NULL, EVENT_OK, CASE_EFFECT_REROUTE,
     "school", "school-900301", "green", "school", GREEN_27, "allocated"},
    {"consent given, complex referral", CEV("consent.given", ""),
     "{\"referral\": {\"level_of_need\": 3, \"family\": {\"consent\": {\"early_help\": false}}}}",
     true, "awaiting_consent", "consent_required", "referrer", NULL, NULL, EVENT_OK,
     CASE_EFFECT_REROUTE, "targeted_family_help", "tfh-south-lakes", "amber", "complex_needs",
     AMBER_27, "allocated"},
    {"consent given in allocated", CEV("consent.given", ""), NULL, true, "allocated", "school",
     "school-900301", NULL, NULL, EVENT_INVALID_TRANSITION, CASE_EFFECT_NONE, NO_DECISION},
    {"triaged to a hub",
     CEV("case.triaged",
         ", \"triage\": {\"route\": \"family_hub\", \"destination\": \"hub-penrith\"}"),
     NULL, false, "triage", "manual_triage", "front-door-triage", NULL, NULL, EVENT_OK,
     CASE_EFFECT_REROUTE, "family_hub", "hub-penrith", "green", "triaged", GREEN_27, "allocated"},
    {"triaged to a school",
     CEV("case.triaged",
         ", \"triage\": {\"route\": \"school\", \"destination\": \"school-900502\"}"),
     NULL, false, "triage", "manual_triage", "front-door-triage", NULL, NULL, EVENT_OK,
     CASE_EFFECT_REROUTE, "school", "school-900502", "green", "triaged", GREEN_27, "allocated"},
    {"triaged to consent",
     CEV("case.triaged",
         ", \"triage\": {\"route\": \"consent_required\", \"destination\": \"referrer\"}"),
     NULL, false, "triage", "manual_triage", "front-door-triage", NULL, NULL, EVENT_OK,
     CASE_EFFECT_REROUTE, "consent_required", "referrer", "green", "triaged", GREEN_27,
     "awaiting_consent"},
    {"triaged to signpost closes",
     CEV("case.triaged",
         ", \"triage\": {\"route\": \"signpost\", \"destination\": \"universal-services\"}"),
     NULL, false, "triage", "manual_triage", "front-door-triage", NULL, NULL, EVENT_OK,
     CASE_EFFECT_REROUTE, "signpost", "universal-services", "blue", "triaged", NULL, "closed"},
    {"triaged to social care is red",
     CEV("case.triaged",
         ", \"triage\": {\"route\": \"social_care\", \"destination\": \"social-care-duty\"}"),
     NULL, false, "triage", "manual_triage", "front-door-triage", NULL, NULL, EVENT_OK,
     CASE_EFFECT_REROUTE, "social_care", "social-care-duty", "red", "triaged", RED_27, "allocated"},
    {"triaged to an unknown team",
     CEV("case.triaged",
         ", \"triage\": {\"route\": \"family_hub\", \"destination\": \"hub-nowhere\"}"),
     NULL, false, "triage", "manual_triage", "front-door-triage", NULL, NULL, EVENT_INVALID_FIELD,
     CASE_EFFECT_NONE, NO_DECISION},
    {"triaged to an unknown school",
     CEV("case.triaged", ", \"triage\": {\"route\": \"school\", \"destination\": \"school-1\"}"),
     NULL, false, "triage", "manual_triage", "front-door-triage", NULL, NULL, EVENT_INVALID_FIELD,
     CASE_EFFECT_NONE, NO_DECISION},
    {"triaged in allocated",
     CEV("case.triaged",
         ", \"triage\": {\"route\": \"family_hub\", \"destination\": \"hub-penrith\"}"),
     NULL, false, "allocated", "school", "school-900301", NULL, NULL, EVENT_INVALID_TRANSITION,
     CASE_EFFECT_NONE, NO_DECISION},
    {"step up from school: the locality's team", CEV("case.stepped_up", ""), NULL, true,
     "allocated", "school", "school-900301", NULL, NULL, EVENT_OK, CASE_EFFECT_REROUTE,
     "targeted_family_help", "tfh-south-lakes", "amber", "stepped_up", AMBER_27, "allocated"},
    {"step up from a hub, locality by the school", CEV("case.stepped_up", ""),
     "{\"referral\": {\"child\": {\"postcode\": \"$delete\", \"school_urn\": \"900201\"}}}", true,
     "allocated", "family_hub", "hub-kendal", NULL, NULL, EVENT_OK, CASE_EFFECT_REROUTE,
     "targeted_family_help", "tfh-barrow", "amber", "stepped_up", AMBER_27, "allocated"},
    {"step up, no locality: triage", CEV("case.stepped_up", ""),
     "{\"referral\": {\"child\": {\"postcode\": \"$delete\", \"school_urn\": \"$delete\"}}}", true,
     "allocated", "youth_support", "youth-support", NULL, NULL, EVENT_OK, CASE_EFFECT_REROUTE,
     "manual_triage", "front-door-triage", "amber", "stepped_up", AMBER_27, "triage"},
    {"step up from targeted help: social care", CEV("case.stepped_up", ""), NULL, true, "allocated",
     "targeted_family_help", "tfh-south-lakes", NULL, NULL, EVENT_OK, CASE_EFFECT_REROUTE,
     "social_care", "social-care-duty", "red", "stepped_up", RED_27, "allocated"},
    {"step up from the panel: social care", CEV("case.stepped_up", ""), NULL, false, "allocated",
     "family_help_panel", "family-help-panel", NULL, NULL, EVENT_OK, CASE_EFFECT_REROUTE,
     "social_care", "social-care-duty", "red", "stepped_up", RED_27, "allocated"},
    {"step up from social care: nowhere to go", CEV("case.stepped_up", ""), NULL, true, "allocated",
     "social_care", "social-care-duty", NULL, NULL, EVENT_INVALID_TRANSITION, CASE_EFFECT_NONE,
     NO_DECISION},
    {"step up in triage", CEV("case.stepped_up", ""), NULL, true, "triage", "manual_triage",
     "front-door-triage", NULL, NULL, EVENT_INVALID_TRANSITION, CASE_EFFECT_NONE, NO_DECISION},
    {"step up by the stored locality", CEV("case.stepped_up", ""), NULL, false, "allocated",
     "school", "school-900501", "eden", "hub-penrith", EVENT_OK, CASE_EFFECT_REROUTE,
     "targeted_family_help", "tfh-eden", "amber", "stepped_up", AMBER_27, "allocated"},
    {"step down from social care", CEV("case.stepped_down", ""),
     "{\"referral\": {\"child\": {\"postcode\": \"CA16 6XX\"}}}", true, "allocated", "social_care",
     "social-care-duty", NULL, NULL, EVENT_OK, CASE_EFFECT_REROUTE, "targeted_family_help",
     "tfh-eden", "amber", "stepped_down", AMBER_27, "allocated"},
    {"step down from targeted help: the postcode's hub", CEV("case.stepped_down", ""), NULL, true,
     "allocated", "targeted_family_help", "tfh-south-lakes", NULL, NULL, EVENT_OK,
     CASE_EFFECT_REROUTE, "family_hub", "hub-kendal", "green", "stepped_down", GREEN_27,
     "allocated"},
    {"step down, no hub (locality by school only): triage", CEV("case.stepped_down", ""),
     "{\"referral\": {\"child\": {\"postcode\": \"$delete\"}}}", true, "allocated",
     "targeted_family_help", "tfh-south-lakes", NULL, NULL, EVENT_OK, CASE_EFFECT_REROUTE,
     "manual_triage", "front-door-triage", "amber", "stepped_down", AMBER_27, "triage"},
    {"step down by the stored hub", CEV("case.stepped_down", ""), NULL, false, "allocated",
     "targeted_family_help", "tfh-barrow", "barrow", "hub-ulverston", EVENT_OK, CASE_EFFECT_REROUTE,
     "family_hub", "hub-ulverston", "green", "stepped_down", GREEN_27, "allocated"},
    {"step down from school: nowhere to go", CEV("case.stepped_down", ""), NULL, true, "allocated",
     "school", "school-900301", NULL, NULL, EVENT_INVALID_TRANSITION, CASE_EFFECT_NONE,
     NO_DECISION},
    {"no coordinator", CEV("case.no_coordinator", ", \"reason\": \"free text\""), NULL, true,
     "allocated", "family_hub", "hub-kendal", NULL, NULL, EVENT_OK, CASE_EFFECT_REROUTE,
     "family_help_panel", "family-help-panel", "amber", "no_coordinator", AMBER_27, "allocated"},
    {"no coordinator in awaiting_consent", CEV("case.no_coordinator", ""), NULL, true,
     "awaiting_consent", "consent_required", "referrer", NULL, NULL, EVENT_INVALID_TRANSITION,
     CASE_EFFECT_NONE, NO_DECISION},
    {"appointment booked",
     CEV("appointment.booked",
         ", \"appointment\": {\"id\": \"A-1\", \"starts_at\": \"2026-12-01T10:30:00Z\"}"),
     NULL, false, "allocated", "family_hub", "hub-kendal", NULL, NULL, EVENT_OK, CASE_EFFECT_NONE,
     NO_DECISION},
    {"appointment booked in triage",
     CEV("appointment.booked",
         ", \"appointment\": {\"id\": \"A-1\", \"starts_at\": \"2026-12-01T10:30:00Z\"}"),
     NULL, false, "triage", "manual_triage", "front-door-triage", NULL, NULL,
     EVENT_INVALID_TRANSITION, CASE_EFFECT_NONE, NO_DECISION},
    {"appointment cancelled", CEV("appointment.cancelled", ", \"appointment\": {\"id\": \"A-1\"}"),
     NULL, false, "allocated", "school", "school-900301", NULL, NULL, EVENT_OK, CASE_EFFECT_NONE,
     NO_DECISION},
    {"closed from triage", CEV("case.closed", ""), NULL, false, "triage", "manual_triage",
     "front-door-triage", NULL, NULL, EVENT_OK, CASE_EFFECT_CLOSE, NO_DECISION},
    {"closed from awaiting_consent", CEV("case.closed", ""), NULL, false, "awaiting_consent",
     "consent_required", "referrer", NULL, NULL, EVENT_OK, CASE_EFFECT_CLOSE, NO_DECISION},
    {"closed twice", CEV("case.closed", ""), NULL, false, "closed", "signpost", "adult-services",
     NULL, NULL, EVENT_INVALID_TRANSITION, CASE_EFFECT_NONE, NO_DECISION},
};

START_TEST(test_case_event_table)
{
    const struct case_event_test *c = &case_event_cases[_i];
    struct event ev, ref;
    char detail[256];
    enum event_error e = event_parse(c->event, strlen(c->event), EVENT_TOPIC_CASE_EVENTS, 65536,
                                     &ev, detail, sizeof detail);
    ck_assert_msg(e == EVENT_OK, "%s: %s %s", c->name, event_error_code(e), detail);
    if (c->with_referral)
        make_event(c->referral_patch, &ref);
    struct case_view cv = {"REF-T-1",      ROUTE_SCHOOL,   c->dest,
                           CASE_ALLOCATED, c->locality_id, c->hub_id};
    ck_assert(rules_parse_route(c->route, strlen(c->route), &cv.route));
    ck_assert(rules_parse_state(c->state, strlen(c->state), &cv.state));
    enum case_effect effect = (enum case_effect)99;
    struct decision d;
    e = route_apply_case_event(P, &ev, &cv, c->with_referral ? &ref : NULL, NULL, &effect, &d,
                               detail, sizeof detail);
    ck_assert_msg(e == c->err, "%s: %s (%s), want %s", c->name, event_error_code(e), detail,
                  event_error_code(c->err));
    if (e != EVENT_OK) {
        ck_assert_msg(detail[0] != '\0', "%s: no detail", c->name);
    } else {
        ck_assert_int_eq(effect, c->effect);
    }
    if (e == EVENT_OK && effect == CASE_EFFECT_REROUTE) {
        check_decision(&d, c->new_route, c->new_dest, c->prio, c->rule, c->due, c->name);
        ck_assert_str_eq(rules_state_name(d.state), c->new_state);
    }
    event_release(&ev);
    if (c->with_referral)
        event_release(&ref);
}
END_TEST

START_TEST(test_policy_check_event)
{
    static const struct {
        const char *dest;
        enum event_error want;
    } cases[] = {{"hub-kendal", EVENT_OK},
                 {"school-900101", EVENT_OK},
                 {"referrer", EVENT_OK},
                 {"front-door-triage", EVENT_OK},
                 {"hub-nowhere", EVENT_INVALID_FIELD},
                 {"school-", EVENT_INVALID_FIELD},
                 {"school-123", EVENT_INVALID_FIELD},
                 {"HUB-KENDAL", EVENT_INVALID_FIELD}};
    for (size_t i = 0; i < N(cases); i++) {
        char buf[512], detail[256];
        snprintf(
            buf, sizeof buf,
            CEV("case.triaged", ", \"triage\": {\"route\": \"school\", \"destination\": \"%s\"}"),
            cases[i].dest);
        struct event ev;
        ck_assert_int_eq(event_parse(buf, strlen(buf), EVENT_TOPIC_CASE_EVENTS, 65536, &ev, detail,
                                     sizeof detail),
                         EVENT_OK);
        ck_assert_msg(policy_check_event(P, &ev, detail, sizeof detail) == cases[i].want, "%s",
                      cases[i].dest);
        event_release(&ev);
    }
}
END_TEST

START_TEST(test_case_placement)
{
    struct event ev;
    const char *loc, *hub;
    make_event(NULL, &ev);
    route_case_placement(P, &ev, &loc, &hub);
    ck_assert_str_eq(loc, "south-lakes");
    ck_assert_str_eq(hub, "hub-kendal");
    event_release(&ev);
    make_event(
        "{\"referral\": {\"child\": {\"postcode\": \"$delete\", \"school_urn\": \"900601\"}}}",
        &ev);
    route_case_placement(P, &ev, &loc, &hub);
    ck_assert_str_eq(loc, "eden");
    ck_assert_ptr_null(hub);
    event_release(&ev);
}
END_TEST

/* The deadline table gives what the calendar walk gives: every priority, for every day
 * from two years before the directory's first bank holiday to two years after its last
 * (past both ends of the table), at local midnight, noon and the last second. */
START_TEST(test_due_table)
{
    const struct work_calendar *cal = &P->directory->calendar;
    ck_assert_ptr_nonnull(P->due_table);
    ck_assert_uint_gt(cal->n_holidays, 0);
    struct policy walk = {P->directory, P->rules, NULL, NULL};
    int64_t from = cal->holidays[0] - 731, to = cal->holidays[cal->n_holidays - 1] + 731;
    int checked = 0;
    for (int64_t day = from; day <= to; day++) {
        static const int secs[] = {0, 43200, 86399};
        for (size_t k = 0; k < N(secs); k++) {
            int64_t t = caltime_local_to_utc(cal->zone, caltime_civil_from_days(day), secs[k]);
            for (int prio = 0; prio < PRIORITY_COUNT; prio++) {
                int64_t a = -1, b = -1;
                bool ha = route_due_at(P, (enum priority)prio, t, &a);
                bool hb = route_due_at(&walk, (enum priority)prio, t, &b);
                ck_assert_msg(ha == hb && (!ha || a == b),
                              "day %lld, second %d, priority %d: table %d %lld, walk %d %lld",
                              (long long)day, secs[k], prio, ha, (long long)a, hb, (long long)b);
                checked += ha;
            }
        }
    }
    ck_assert_int_gt(checked, 0);
}
END_TEST

/* Compiled conditions (`or` of `and` terms over fact bits, rules.h) decide as walking the
 * condition trees does: the shipped rules and rule files written to reach every corner
 * (not over and/or, contradictions, number tests of every kind, need sets, more terms
 * than compile, more atoms than fit, a history rule), for every combination of flags,
 * `known` facts, level, age and need sets; route, destination, rule and every reason. */
#define RHEAD                                                                                      \
    "group A a_code b_code c_code\n"                                                               \
    "group B d_code e_code\n" RULES_TEXT_TABLES "unplaced manual_triage to front-door-triage\n"
#define RTAIL "rule default\n  when always\n  send manual_triage to front-door-triage\n"

static const char *const compiled_files[] = {
    NULL, /* the shipped rules */
    RHEAD "define D1 level = 3 or any_need in A or distinct_needs >= 3\n"
          "rule r0\n  when not always\n  send signpost to t-zero\n"
          "rule r1\n  when not (immediate_risk or level in [1 4]) and not (known hub and not send)"
          " and not (consent or pre_birth)\n  send signpost to t-one\n"
          "rule r2\n  when D1 and not (pre_birth or age < 5) and (consent or known school)\n"
          "  send targeted_family_help to locality_team\n"
          "rule r3\n  when every_need in B or (not known district and age >= 18)\n"
          "  send family_hub to hub\n"
          "rule r4\n  when not not (incomplete and level != 2) or (age <= 10 and age > 3 and not "
          "known level)\n  send school to school\n"
          "rule r5\n  when (send or consent) and (pre_birth or known hub) and (immediate_risk or "
          "known school) and (level = 1 or age = 7) and (known locality or any_need in B) and "
          "(distinct_needs < 2 or known district)\n  send youth_support to t-two\n"
          "rule r6\n  when child_case in [school family_hub] and level = 2\n"
          "  send case.route to case.destination\n"
          "rule r7\n  when send and not send\n  send signpost to t-never\n"
          "rule r8\n  when not known age and not D1\n  send social_care to t-three\n"
          "rule r9\n  when age in [0 1 2 3 4] and not every_need in A\n  send signpost to t-four\n"
          "rule r10\n  when known school\n  when known hub\n  send school to school\n"
          "rule r11\n  when age = 18 or (age != 18 and level >= 3 and not level > 3) or level in "
          "[1 3] and not level in [1 4]\n  send signpost to t-five\n" RTAIL,
    NULL, /* built below: more number atoms than RULES_MAX_ATOMS */
};

static int count_compiled(const struct rules *r)
{
    int n = 0;
    for (size_t i = 0; i < r->n_rules; i++)
        n += r->rules[i].n_terms >= 0;
    return n;
}

static void decide_walked(struct policy *p, const struct route_facts *f, struct decision *d)
{
    struct rules *r = p->rules;
    int saved[64];
    ck_assert_uint_le(r->n_rules, N(saved));
    for (size_t i = 0; i < r->n_rules; i++) {
        saved[i] = r->rules[i].n_terms;
        r->rules[i].n_terms = -1;
    }
    route_decide_facts(p, f, "REF-C-1", NULL, d);
    for (size_t i = 0; i < r->n_rules; i++)
        r->rules[i].n_terms = saved[i];
}

START_TEST(test_compiled_as_walked)
{
    char errs[4096], *text = NULL;
    struct policy own = {P->directory, NULL, NULL, NULL};
    if (_i == 0) {
        own.rules = P->rules;
    } else {
        const char *t = compiled_files[_i];
        if (t == NULL) { /* 60 age atoms in one term, then one more in the next rule */
            size_t cap = 8192, len = 0;
            text = malloc(cap);
            len +=
                (size_t)snprintf(text + len, cap - len, "%s", RHEAD "rule many\n  when age != 0");
            for (int a = 1; a < 60; a++)
                len += (size_t)snprintf(text + len, cap - len, " and age != %d", a);
            snprintf(text + len, cap - len, "%s",
                     "\n  send signpost to t-many\nrule after\n  when level = 2 and send\n"
                     "  send signpost to t-after\nrule flags\n  when consent and not send\n"
                     "  send signpost to t-flags\n" RTAIL);
            t = text;
        }
        ck_assert_msg(rules_parse(t, strlen(t), "c.rules", NULL, &own.rules, errs, sizeof errs) ==
                          0,
                      "%s", errs);
    }
    const struct rules *r = own.rules;
    /* what compiles: all but history rules and the two made not to */
    if (_i == 0) {
        for (size_t i = 0; i < r->n_rules; i++)
            ck_assert_msg((r->rules[i].n_terms >= 0) == (r->rules[i].history_node < 0),
                          "rule %s: %d terms", r->rules[i].name, r->rules[i].n_terms);
    } else if (_i == 1) {
        ck_assert_int_eq(count_compiled(r), (int)r->n_rules - 2); /* r5 and r6 walked */
    } else {
        ck_assert_int_eq(r->n_atoms, RULES_MAX_ATOMS);
        ck_assert_int_eq(count_compiled(r), 2); /* `flags` and default */
    }

    /* need sets: none; each group whole, its first code, its first code with the next
     * group's; and an unknown code with the first group's */
    struct need_set sets[32];
    bool unknown[32];
    int n_sets = 0;
    memset(sets, 0, sizeof sets);
    memset(unknown, 0, sizeof unknown);
    n_sets++;
    for (size_t g = 0; g < r->n_groups && n_sets + 3 <= (int)N(sets); g++) {
        const struct need_set *gs = &r->groups[g].set,
                              *next = &r->groups[(g + 1) % r->n_groups].set;
        int first = -1, next_first = -1;
        for (int b = RULES_MAX_NEEDS - 1; b >= 0; b--) {
            if (gs->bits[b / 64] >> (b % 64) & 1u)
                first = b;
            if (next->bits[b / 64] >> (b % 64) & 1u)
                next_first = b;
        }
        ck_assert_int_ge(first, 0);
        sets[n_sets++] = *gs;
        sets[n_sets].bits[first / 64] |= 1ull << (first % 64);
        n_sets++;
        sets[n_sets].bits[first / 64] |= 1ull << (first % 64);
        sets[n_sets].bits[next_first / 64] |= 1ull << (next_first % 64);
        n_sets++;
    }
    sets[n_sets] = r->groups[0].set;
    unknown[n_sets++] = true;

    const struct directory *dir = P->directory;
    const struct dir_team *hub = NULL;
    for (size_t i = 0; i < dir->n_teams && !hub; i++)
        if (strcmp(dir->teams[i].kind, "family_hub") == 0)
            hub = &dir->teams[i];
    ck_assert_ptr_nonnull(hub);
    ck_assert_uint_gt(dir->n_localities, 0);
    ck_assert_uint_gt(dir->n_schools, 0);

    static const int ages[] = {-1, 3, 4, 7, 11, 18, 19, 25, 130}; /* 130: past the tables */
    long compared = 0;
    int matched[64] = {0};
    /* the district varies only where a rule asks `known district`; the third file's
     * rules read flags, level and age only */
    bool asks_district = false;
    for (size_t k = 0; k < r->n_nodes; k++)
        asks_district |= r->nodes[k].op == OP_KNOWN && r->nodes[k].fact == FACT_DISTRICT;
    unsigned n_known = _i == 2 ? 1 : asks_district ? 16 : 8;
    if (_i == 2)
        n_sets = 1;
    for (unsigned flags = 0; flags < 32; flags++)
        for (unsigned known = 0; known < n_known; known++)
            for (int level = 0; level <= 4; level++)
                for (size_t a = 0; a < N(ages); a++)
                    for (int ns = 0; ns < n_sets; ns++) {
                        struct route_facts f;
                        memset(&f, 0, sizeof f);
                        f.occurred_at_s = 1795428900; /* 2026-11-23 10:15 UTC */
                        f.received_day = 20415;
                        f.immediate_risk = flags & 1u;
                        f.consent = flags >> 1 & 1u;
                        f.send = flags >> 2 & 1u;
                        f.pre_birth = flags >> 3 & 1u;
                        f.problems = flags >> 4 & 1u ? PROBLEM_LEVEL_MISSING : 0;
                        f.level = level;
                        f.has_age = ages[a] >= 0;
                        f.age = f.has_age ? ages[a] : 0;
                        f.needs = sets[ns];
                        f.unknown_needs = unknown[ns];
                        int c = unknown[ns];
                        for (int w = 0; w < RULES_NEED_WORDS; w++)
                            c += __builtin_popcountll(f.needs.bits[w]);
                        f.has_needs = c > 0;
                        f.distinct_needs = c;
                        if (known & 1u)
                            f.locality = &dir->localities[0];
                        if (known & 2u)
                            f.hub = hub;
                        if (known & 4u)
                            f.school = &dir->schools[0];
                        if (known & 8u)
                            memcpy(f.district, "LA9", 4);
                        struct decision c1, c2;
                        route_decide_facts(&own, &f, "REF-C-1", NULL, &c1);
                        decide_walked(&own, &f, &c2);
                        bool same = strcmp(c1.rule, c2.rule) == 0 &&
                                    strcmp(c1.destination, c2.destination) == 0 &&
                                    c1.route == c2.route && c1.priority == c2.priority &&
                                    c1.n_reasons == c2.n_reasons;
                        for (size_t k = 0; same && k < c1.n_reasons; k++)
                            same = strcmp(c1.reasons[k], c2.reasons[k]) == 0;
                        if (!same)
                            ck_abort_msg("file %d, flags %#x known %#x level %d age %d needs %d: "
                                         "%s/%s (%s) vs %s/%s (%s)",
                                         _i, flags, known, level, ages[a], ns, c1.rule,
                                         c1.destination, c1.reasons[0], c2.rule, c2.destination,
                                         c2.reasons[0]);
                        for (size_t k = 0; k < r->n_rules && k < N(matched); k++)
                            matched[k] += strcmp(r->rules[k].name, c1.rule) == 0;
                        compared++;
                    }
    ck_assert_int_gt(compared, 0);
    /* the enumeration reaches rules of every kind, not only the default */
    int rules_hit = 0;
    for (size_t k = 0; k < r->n_rules && k < N(matched); k++)
        rules_hit += matched[k] > 0;
    ck_assert_msg(rules_hit >= (_i == 2 ? 3 : 8), "file %d: %d rules ever matched", _i, rules_hit);
    if (_i > 0)
        rules_free(own.rules);
    free(text);
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");
    tcase_add_checked_fixture(tc, load_policy, free_policy);
    tcase_add_loop_test(tc, test_route_table, 0, N(route_cases));
    tcase_add_loop_test(tc, test_school_officer, 0, N(officer_cases));
    tcase_add_loop_test(tc, test_history_table, 0, N(history_cases));
    tcase_add_loop_test(tc, test_postcode_district, 0, N(postcode_cases));
    tcase_add_loop_test(tc, test_case_event_table, 0, N(case_event_cases));
    tcase_add_test(tc, test_policy_check_event);
    tcase_add_test(tc, test_case_placement);
    tcase_add_test(tc, test_due_table);
    suite_add_tcase(s, tc);
    /* a quarter of a million decisions twice a file: seconds under the sanitizers */
    TCase *tc_compiled = tcase_create("compiled");
    tcase_add_checked_fixture(tc_compiled, load_policy, free_policy);
    tcase_set_timeout(tc_compiled, 120);
    tcase_add_loop_test(tc_compiled, test_compiled_as_walked, 0, N(compiled_files));
    suite_add_tcase(s, tc_compiled);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(route_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
