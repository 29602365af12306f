/* fuzz_common: what the libFuzzer targets share (built with -DFRONTDOOR_FUZZ=ON).
 *
 * The shipped configuration is read from FUZZ_SOURCE_DIR/config once per process; a
 * target aborts (a finding) when an invariant the daemon relies on breaks, so libFuzzer
 * keeps the input. Nothing here writes outside the process's own temporary folder.
 */
#ifndef FRONTDOOR_FUZZ_COMMON_H
#define FRONTDOOR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/directory.h"
#include "frontdoor/event.h"
#include "frontdoor/policy.h"
#include "frontdoor/route.h"
#include "frontdoor/rules.h"

#ifndef FUZZ_SOURCE_DIR
#error "FUZZ_SOURCE_DIR must name the source tree"
#endif

/* An invariant broke: print it and abort, so libFuzzer saves the input as a crash. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A path in the source tree (static buffer: start-up only). */
static inline const char *fuzz_source_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", FUZZ_SOURCE_DIR, rel);
    return buf;
}

/* The shipped rules and directory, or exit: without them the target tests nothing. */
static inline struct policy *fuzz_shipped_policy(void)
{
    static char errs[16384];
    struct policy *p = NULL;
    char rules[4096];
    snprintf(rules, sizeof rules, "%s", fuzz_source_path("config/frontdoor.rules"));
    if (policy_load_files(rules, fuzz_source_path("config/directory.json"), &p, errs,
                          sizeof errs) != 0) {
        fprintf(stderr, "cannot load the shipped policy:\n%s", errs);
        exit(1);
    }
    return p;
}

/* A whole file, NUL-terminated (start-up only); exits when unreadable. */
static inline char *fuzz_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            if (buf == NULL)
                exit(1);
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* A string that must end inside its buffer (messages are always NUL-terminated). */
static inline void fuzz_assert_terminated(const char *s, size_t cap)
{
    FUZZ_ASSERT(memchr(s, '\0', cap) != NULL);
}

/* What every decision must hold, whatever the input: a rule and a destination (a
 * referral is never dropped), reasons that fit, and a deadline only when it may have one. */
static inline void fuzz_check_decision(const struct decision *d)
{
    fuzz_assert_terminated(d->rule, sizeof d->rule);
    fuzz_assert_terminated(d->destination, sizeof d->destination);
    FUZZ_ASSERT(d->rule[0] != '\0');
    FUZZ_ASSERT(d->destination[0] != '\0');
    FUZZ_ASSERT(d->n_reasons <= ROUTE_MAX_REASONS);
    for (size_t i = 0; i < d->n_reasons; i++)
        fuzz_assert_terminated(d->reasons[i], sizeof d->reasons[i]);
    FUZZ_ASSERT((unsigned)d->route < ROUTE_COUNT);
    FUZZ_ASSERT((unsigned)d->priority < PRIORITY_COUNT);
    char due[32];
    route_format_due(d, due);
}

/* Referrals that reach every part of the shipped policy: a school case, a complex one,
 * a pre-birth one, a youth one, safeguarding, and one with nothing usable. */
static const char *const fuzz_referrals[] = {
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-000000000001\","
    "\"type\":\"referral.received\",\"occurred_at\":\"2026-11-23T10:15:00Z\",\"referral\":{"
    "\"id\":\"REF-F-1\",\"child\":{\"id\":\"C-1\",\"date_of_birth\":\"2017-05-02\","
    "\"school_urn\":\"900301\",\"postcode\":\"LA9 4DQ\"},\"family\":{\"id\":\"F-1\","
    "\"consent\":{\"early_help\":true}},\"level_of_need\":2,\"needs\":[\"school_attendance\"]}}",
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-000000000002\","
    "\"type\":\"referral.received\",\"occurred_at\":\"2027-06-04T18:30:00+01:00\",\"referral\":{"
    "\"id\":\"REF-F-2\",\"child\":{\"id\":\"C-2\",\"date_of_birth\":\"2012-02-29\","
    "\"postcode\":\"CA11 7QF\"},\"family\":{\"id\":\"F-2\",\"consent\":{\"early_help\":true}},"
    "\"level_of_need\":3,\"needs\":[\"domestic_abuse\",\"housing\"]}}",
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-000000000003\","
    "\"type\":\"referral.received\",\"occurred_at\":\"2026-12-24T23:59:59Z\",\"referral\":{"
    "\"id\":\"REF-F-3\",\"child\":{\"id\":\"C-3\",\"expected_due_date\":\"2027-02-01\","
    "\"postcode\":\"la14 1aa\"},\"family\":{\"id\":\"F-3\",\"consent\":{\"early_help\":true}},"
    "\"level_of_need\":2,\"needs\":[\"early_years\"]}}",
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-000000000004\","
    "\"type\":\"referral.received\",\"occurred_at\":\"2026-03-29T01:30:00Z\",\"referral\":{"
    "\"id\":\"REF-F-4\",\"child\":{\"id\":\"C-4\",\"date_of_birth\":\"2010-01-01\","
    "\"send\":true},\"level_of_need\":2,\"needs\":[\"neet\"],"
    "\"family\":{\"consent\":{\"early_help\":true}}}}",
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-000000000005\","
    "\"type\":\"referral.received\",\"occurred_at\":\"2026-11-23T10:15:00Z\",\"referral\":{"
    "\"id\":\"REF-F-5\",\"safeguarding\":{\"immediate_risk\":true}}}",
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-000000000006\","
    "\"type\":\"referral.received\",\"occurred_at\":\"2026-11-23T10:15:00Z\",\"referral\":{"
    "\"id\":\"REF-F-6\",\"level_of_need\":1}}",
};
#define FUZZ_N_REFERRALS (sizeof fuzz_referrals / sizeof fuzz_referrals[0])

/* Parse the fixed referrals (start-up only); exits when one does not parse. */
static inline void fuzz_parse_referrals(struct event *out)
{
    for (size_t i = 0; i < FUZZ_N_REFERRALS; i++) {
        char detail[256];
        const char *s = fuzz_referrals[i];
        if (event_parse(s, strlen(s), EVENT_TOPIC_REFERRALS, 65536, &out[i], detail,
                        sizeof detail) != EVENT_OK) {
            fprintf(stderr, "fixed referral %zu does not parse: %s\n", i, detail);
            exit(1);
        }
    }
}

/* Case events that move a case by the rule file's `on` lines, and consent. */
static const char *const fuzz_case_events[] = {
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-0000000000c1\","
    "\"type\":\"case.stepped_up\",\"occurred_at\":\"2026-11-27T16:00:00Z\","
    "\"case\":{\"referral_id\":\"REF-F-1\"}}",
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-0000000000c2\","
    "\"type\":\"case.stepped_down\",\"occurred_at\":\"2026-11-28T16:00:00Z\","
    "\"case\":{\"referral_id\":\"REF-F-1\"}}",
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-0000000000c3\","
    "\"type\":\"case.no_coordinator\",\"occurred_at\":\"2026-11-29T16:00:00Z\","
    "\"case\":{\"referral_id\":\"REF-F-1\"}}",
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-0000000000c4\","
    "\"type\":\"consent.given\",\"occurred_at\":\"2026-11-30T16:00:00Z\","
    "\"case\":{\"referral_id\":\"REF-F-1\"}}",
    "{\"schema_version\":1,\"event_id\":\"00000000-0000-4000-8000-0000000000c5\","
    "\"type\":\"case.triaged\",\"occurred_at\":\"2026-11-30T16:00:00Z\","
    "\"case\":{\"referral_id\":\"REF-F-1\"},"
    "\"triage\":{\"route\":\"school\",\"destination\":\"school-900301\"}}",
};
#define FUZZ_N_CASE_EVENTS (sizeof fuzz_case_events / sizeof fuzz_case_events[0])

static inline void fuzz_parse_case_events(struct event *out)
{
    for (size_t i = 0; i < FUZZ_N_CASE_EVENTS; i++) {
        char detail[256];
        const char *s = fuzz_case_events[i];
        if (event_parse(s, strlen(s), EVENT_TOPIC_CASE_EVENTS, 65536, &out[i], detail,
                        sizeof detail) != EVENT_OK) {
            fprintf(stderr, "fixed case event %zu does not parse: %s\n", i, detail);
            exit(1);
        }
    }
}

/* A history for rules 5 and 6: open and closed cases of the same child and family on
 * every route, so the history conditions of any rule file have something to match. */
static inline void fuzz_history(struct route_history *h, struct history_case *cases, size_t n)
{
    memset(cases, 0, n * sizeof *cases);
    for (size_t i = 0; i < n; i++) {
        cases[i].referral_id = i % 2 ? "REF-OLD-1" : "REF-OLD-2";
        cases[i].child_id = i % 3 ? "C-1" : "C-9";
        cases[i].route = (enum route_kind)(i % ROUTE_COUNT);
        cases[i].destination = i % 2 ? "tfh-eden" : "social-care-duty";
        cases[i].open = i % 4 != 0;
        cases[i].closed_at_ms = INT64_C(1790000000000) + (int64_t)i * 86400000;
        cases[i].decided_at_ms = INT64_C(1780000000000) + (int64_t)i * 3600000;
    }
    h->child_cases = cases;
    h->n_child_cases = n;
    h->family_cases = cases;
    h->n_family_cases = n;
}

#endif
