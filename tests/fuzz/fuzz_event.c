/* libFuzzer target: one Kafka message, as the daemon handles it.
 *
 * The input is parsed as a message of each topic (event_parse: checks 1-8 of events.md);
 * what passes goes through policy_check_event and then, with the shipped policy,
 * route_decide_referral (without and with a case history) or route_apply_case_event on a
 * case in every state. Invariants: an error always has a detail, a parsed event always
 * has its ids, and a referral always gets a complete decision. */
#include <stdint.h>

#include "fuzz_common.h"

static struct policy *P;
static struct event referrals[FUZZ_N_REFERRALS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    P = fuzz_shipped_policy();
    fuzz_parse_referrals(referrals);
    return 0;
}

/* Cases in each state, placed and not, for the case events. */
static const struct case_view views[] = {
    {"REF-F-1", ROUTE_SCHOOL, "school-900301", CASE_ALLOCATED, "south-lakes", "hub-kendal"},
    {"REF-F-1", ROUTE_FAMILY_HUB, "hub-kendal", CASE_ALLOCATED, NULL, NULL},
    {"REF-F-1", ROUTE_TARGETED_FAMILY_HELP, "tfh-eden", CASE_ALLOCATED, "eden", "hub-penrith"},
    {"REF-F-1", ROUTE_SOCIAL_CARE, "social-care-duty", CASE_ALLOCATED, NULL, "hub-kendal"},
    {"REF-F-1", ROUTE_MANUAL_TRIAGE, "front-door-triage", CASE_TRIAGE, NULL, NULL},
    {"REF-F-1", ROUTE_CONSENT_REQUIRED, "referrer", CASE_AWAITING_CONSENT, NULL, NULL},
    {"REF-F-1", ROUTE_SIGNPOST, "universal-services", CASE_CLOSED, NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum event_topic topics[] = {EVENT_TOPIC_REFERRALS, EVENT_TOPIC_CASE_EVENTS};
    struct history_case hist[12];
    struct route_history h;
    fuzz_history(&h, hist, sizeof hist / sizeof hist[0]);

    for (size_t t = 0; t < 2; t++) {
        struct event ev;
        char detail[256];
        memset(detail, 'x', sizeof detail);
        enum event_error e =
            event_parse((const char *)data, size, topics[t], 65536, &ev, detail, sizeof detail);
        fuzz_assert_terminated(detail, sizeof detail);
        if (e != EVENT_OK) {
            FUZZ_ASSERT(detail[0] != '\0');
            FUZZ_ASSERT(ev.root == NULL);
            FUZZ_ASSERT(strcmp(event_error_code(e), "unknown") != 0);
            continue;
        }
        FUZZ_ASSERT(ev.root != NULL && ev.referral_id != NULL);
        FUZZ_ASSERT(strlen(ev.event_id) == 36);
        FUZZ_ASSERT((ev.type == EVENT_REFERRAL_RECEIVED) == (topics[t] == EVENT_TOPIC_REFERRALS));
        e = policy_check_event(P, &ev, detail, sizeof detail);
        fuzz_assert_terminated(detail, sizeof detail);
        if (e == EVENT_OK) {
            struct decision d;
            if (ev.type == EVENT_REFERRAL_RECEIVED) {
                route_decide_referral(P, &ev, NULL, &d);
                fuzz_check_decision(&d);
                route_decide_referral(P, &ev, &h, &d);
                fuzz_check_decision(&d);
                const char *locality, *hub;
                route_case_placement(P, &ev, &locality, &hub);
            } else {
                for (size_t v = 0; v < sizeof views / sizeof views[0]; v++) {
                    enum case_effect effect;
                    enum event_error ce = route_apply_case_event(
                        P, &ev, &views[v], &referrals[v % FUZZ_N_REFERRALS], v % 2 ? &h : NULL,
                        &effect, &d, detail, sizeof detail);
                    fuzz_assert_terminated(detail, sizeof detail);
                    if (ce == EVENT_OK && effect == CASE_EFFECT_REROUTE)
                        fuzz_check_decision(&d);
                    else if (ce != EVENT_OK)
                        FUZZ_ASSERT(ce == EVENT_INVALID_TRANSITION || ce == EVENT_INVALID_FIELD);
                }
            }
        }
        event_release(&ev);
    }
    return 0;
}
