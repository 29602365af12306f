/* route: the Front Door decision (routing-policy.md) as pure functions.
 *
 * Inputs are a parsed event, the policy (rules and directory) and the case history the
 * caller supplies; there is no clock, no I/O and no allocation, so the daemon, the
 * --explain dry run and the tests all get the same answer for the same inputs, and any
 * number of threads may route at once. (The deadline table is built when the policy is
 * loaded, not while routing.)
 */
#ifndef FRONTDOOR_ROUTE_H
#define FRONTDOOR_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "frontdoor/directory.h"
#include "frontdoor/event.h"
#include "frontdoor/policy.h"
#include "frontdoor/rules.h"

/* ---------------------------------------------------------------- history (rules 5, 6) */

/* One earlier case, as the case store holds it. */
struct history_case {
    const char *referral_id;
    const char *child_id;
    enum route_kind route;
    const char *destination;
    bool open;
    int64_t closed_at_ms;  /* UTC, when !open */
    int64_t decided_at_ms; /* UTC, the case's latest decision */
};

/* The cases the case store found for a referral. Ownership: the caller's; route only
 * reads them during the call (a decision copies what it keeps). NULL history, or empty
 * arrays, mean "no history": rules 5 and 6 never match (the --explain dry run). */
struct route_history {
    const struct history_case *child_cases; /* same child.id */
    size_t n_child_cases;
    const struct history_case *family_cases; /* same family.id */
    size_t n_family_cases;
};

/* ---------------------------------------------------------------- derived facts */

/* Rule-2 problems, one bit each. */
enum route_problem {
    PROBLEM_LEVEL_MISSING = 1u << 0,
    PROBLEM_LEVEL_INVALID = 1u << 1,
    PROBLEM_NEEDS_MISSING = 1u << 2,
    PROBLEM_NEEDS_NOT_ARRAY = 1u << 3,
    PROBLEM_NEEDS_EMPTY = 1u << 4,
    PROBLEM_NEEDS_NOT_STRING = 1u << 5,
    PROBLEM_NEEDS_UNKNOWN = 1u << 6,
    PROBLEM_CHILD_ID_MISSING = 1u << 7,
    PROBLEM_CHILD_ID_INVALID = 1u << 8,
    PROBLEM_NO_BIRTH_DATE = 1u << 9,
    PROBLEM_DOB_INVALID = 1u << 10,
    PROBLEM_EDD_INVALID = 1u << 11,
    PROBLEM_DOB_AFTER_RECEIVED = 1u << 12,
};

/* The facts of routing-policy.md, computed once per referral. Pointers point into the
 * event's JSON or the directory. */
struct route_facts {
    int64_t occurred_at_s; /* UTC seconds (floor) */
    int64_t received_day;  /* local day number of occurred_at (received_date) */
    bool immediate_risk, consent, send, pre_birth;
    int level; /* 1-4, or 0 when missing or not a level */
    bool has_age;
    int age;
    struct need_set needs; /* known codes */
    int distinct_needs;    /* distinct strings, counted up to RULES_MAX_COUNT + 1 */
    bool has_needs;        /* a non-empty array */
    bool unknown_needs;    /* a code outside the vocabulary, or not a string */
    unsigned problems;     /* enum route_problem bits */
    const json_t *needs_json;
    char district[DIRECTORY_DISTRICT_MAX + 1]; /* "" when absent */
    const struct dir_locality *locality;
    bool locality_from_school;
    const struct dir_team *hub;
    const struct dir_school *school;
    const char *child_id; /* NULL unless a non-empty string */
    size_t child_id_len;
    const char *family_id; /* NULL unless a non-empty string */
    size_t family_id_len;
};

/* Compute the facts of a referral.received event. consent_override forces
 * family.consent.early_help to true (a consent.given re-run). */
void route_derive_facts(const struct policy *p, const struct event *ev, bool consent_override,
                        struct route_facts *f);

/* The district (outward code) of a postcode: white space removed, upper-cased, and the
 * whole a UK postcode shape. Writes it to out (5 bytes) and returns true, or false. */
bool route_postcode_district(const char *postcode, size_t len,
                             char out[DIRECTORY_DISTRICT_MAX + 1]);

/* ---------------------------------------------------------------- decisions */

#define ROUTE_DEST_MAX    80 /* destination, NUL included */
#define ROUTE_RULE_MAX    (RULES_NAME_MAX + 1)
#define ROUTE_MAX_REASONS 16
#define ROUTE_REASON_MAX  112

struct decision {
    enum route_kind route;
    char destination[ROUTE_DEST_MAX];
    enum priority priority;
    char rule[ROUTE_RULE_MAX];
    enum case_state state;
    bool has_due;
    int64_t due_at_s; /* UTC seconds, when has_due (blue has none) */
    /* Short, human-readable, no personal data. */
    size_t n_reasons;
    char reasons[ROUTE_MAX_REASONS][ROUTE_REASON_MAX];
    /* For the notification code: on a school route, the directory school and whom to
     * tell on the decision's local day (the cover officer while the named one is
     * absent). Point into the policy's directory: valid while that policy lives. */
    const struct dir_school *school;
    const struct dir_officer *notify_officer;
    bool officer_is_cover;
    int64_t local_day; /* the decision's local day (received_date for a referral) */
};

/* Route a referral.received event. history may be NULL. Always gives a decision: a
 * referral is never dropped (at worst it goes to the policy's last rule). */
void route_decide_referral(const struct policy *p, const struct event *ev,
                           const struct route_history *history, struct decision *out);

/* The same from facts already derived (the benchmark and tests use it). */
void route_decide_facts(const struct policy *p, const struct route_facts *f,
                        const char *referral_id, const struct route_history *history,
                        struct decision *out);

/* decision_due_at for a priority and an event time: red +N clock hours; amber/green
 * the policy's time on the Nth working day strictly after the local date; blue none.
 * Returns false when there is no deadline. */
bool route_due_at(const struct policy *p, enum priority prio, int64_t occurred_at_s,
                  int64_t *due_at_s);

/* Working-day deadlines looked up rather than walked through the calendar: for every
 * local day from a year before the directory's first bank holiday to a year after its
 * last, and each working-day priority. Sets p->due_table (none without bank holidays);
 * returns 0, or -1 when out of memory. route_due_at() gives the same answers with or
 * without it (tests/test_route.c checks every day). */
struct route_due_table;
int route_build_due_table(struct policy *p);
void route_free_due_table(struct route_due_table *t);

/* "YYYY-MM-DDTHH:MM:SSZ" of decision_due_at (buf >= 21 bytes), or NULL when none. */
const char *route_format_due(const struct decision *d, char *buf);

/* ---------------------------------------------------------------- case events */

/* A case as the case store holds it. */
struct case_view {
    const char *referral_id;
    enum route_kind route;
    const char *destination;
    enum case_state state;
    /* Placement, used by step-up/step-down when `referral` is not given: the locality id
     * and family hub team id of the case's referral (route_case_placement()), or NULL. */
    const char *locality_id;
    const char *hub_id;
};

/* The locality and family hub of a referral, to store with its case. Point into the
 * directory; NULL when absent. */
void route_case_placement(const struct policy *p, const struct event *referral,
                          const char **locality_id, const char **hub_id);

enum case_effect {
    CASE_EFFECT_NONE,    /* nothing changes (appointments: notifications only) */
    CASE_EFFECT_REROUTE, /* *out holds the new decision; the case takes it */
    CASE_EFFECT_CLOSE,   /* the case goes to state closed */
};

/* Apply a case event (not referral.received) to a case, per the table "Case events
 * re-route a case". `referral` is the case's original referral.received event: needed
 * for consent.given (the rules run again with consent true) and preferred for placement;
 * `history` as for route_decide_referral. Returns EVENT_OK with *effect (and *out on a
 * re-route), EVENT_INVALID_TRANSITION when the case's state does not allow the event
 * (the case is unchanged), or EVENT_INVALID_FIELD for a triage destination the
 * directory does not know; detail says why without personal data. A re-route's priority
 * is its route's, and its deadline counts from the case event's occurred_at. */
enum event_error route_apply_case_event(const struct policy *p, const struct event *ev,
                                        const struct case_view *c, const struct event *referral,
                                        const struct route_history *history,
                                        enum case_effect *effect, struct decision *out,
                                        char *detail, size_t detail_len);

#endif
