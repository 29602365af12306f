/* libFuzzer target: the rule file compiler (rules_parse), checked against the shipped
 * directory. A file it accepts becomes a policy that must route every fixed referral to
 * a complete decision (the compiler promises a last rule that always matches) and move
 * cases by its `on` lines without breaking. */
#include <stdint.h>

#include "fuzz_common.h"

static struct policy *shipped;
static struct event referrals[FUZZ_N_REFERRALS];
static struct event case_events[FUZZ_N_CASE_EVENTS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    shipped = fuzz_shipped_policy();
    fuzz_parse_referrals(referrals);
    fuzz_parse_case_events(case_events);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char errs[8192];
    struct rules *r = NULL;
    memset(errs, 'x', sizeof errs);
    int rc = rules_parse((const char *)data, size, "fuzz.rules", shipped->directory, &r, errs,
                         sizeof errs);
    fuzz_assert_terminated(errs, sizeof errs);
    if (rc != 0) {
        FUZZ_ASSERT(r == NULL);
        FUZZ_ASSERT(errs[0] != '\0');
        return 0;
    }
    FUZZ_ASSERT(r != NULL && r->n_rules > 0);
    struct policy p = {.directory = shipped->directory, .rules = r, .templates = NULL};
    struct history_case hist[12];
    struct route_history h;
    fuzz_history(&h, hist, sizeof hist / sizeof hist[0]);
    struct decision d;
    for (size_t i = 0; i < FUZZ_N_REFERRALS; i++) {
        route_decide_referral(&p, &referrals[i], NULL, &d);
        fuzz_check_decision(&d);
        route_decide_referral(&p, &referrals[i], &h, &d);
        fuzz_check_decision(&d);
    }
    for (size_t i = 0; i < FUZZ_N_CASE_EVENTS; i++) {
        for (int route = 0; route < ROUTE_COUNT; route++) {
            struct case_view v = {"REF-F-1",
                                  (enum route_kind)route,
                                  "tfh-eden",
                                  r->route_state[route],
                                  i % 2 ? "eden" : NULL,
                                  i % 2 ? NULL : "hub-kendal"};
            enum case_effect effect;
            char detail[256];
            enum event_error e = route_apply_case_event(&p, &case_events[i], &v, &referrals[0], &h,
                                                        &effect, &d, detail, sizeof detail);
            if (e == EVENT_OK && effect == CASE_EFFECT_REROUTE)
                fuzz_check_decision(&d);
        }
    }
    rules_free(r);
    return 0;
}
