/* event: parsing and tier-1 validation of consumed events (events.md).
 *
 * event_parse() runs checks 1-8 of events.md in their order on the raw bytes of one
 * message and, when they pass, fills a struct event that points into the parsed JSON.
 * Ownership: the struct event owns its JSON tree; release it with event_release().
 */
#ifndef FRONTDOOR_EVENT_H
#define FRONTDOOR_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "frontdoor/caltime.h"

/* Outcome codes, as written on the DLQ `error` header and by --explain. */
enum event_error {
    EVENT_OK = 0,
    EVENT_TOO_LARGE,
    EVENT_INVALID_JSON,
    EVENT_UNSUPPORTED_SCHEMA_VERSION,
    EVENT_INVALID_EVENT_ID,
    EVENT_UNKNOWN_TYPE,
    EVENT_MISSING_FIELD,
    EVENT_INVALID_FIELD,
    /* tier 1, step 9: found against the database */
    EVENT_ID_REUSED,
    EVENT_DUPLICATE_REFERRAL,
    EVENT_UNKNOWN_CASE,
    EVENT_INVALID_TRANSITION,
};

/* "too_large", "invalid_json", ..., "event_id_reused", "invalid_transition". */
const char *event_error_code(enum event_error e);

/* Which topic a message came from: each accepts only its own types. */
enum event_topic { EVENT_TOPIC_REFERRALS, EVENT_TOPIC_CASE_EVENTS };

enum event_type {
    EVENT_REFERRAL_RECEIVED,
    EVENT_CONSENT_GIVEN,
    EVENT_CASE_TRIAGED,
    EVENT_CASE_STEPPED_UP,
    EVENT_CASE_STEPPED_DOWN,
    EVENT_CASE_NO_COORDINATOR,
    EVENT_APPOINTMENT_BOOKED,
    EVENT_APPOINTMENT_CANCELLED,
    EVENT_CASE_CLOSED,
};

/* "referral.received", "consent.given", ... */
const char *event_type_name(enum event_type t);

/* referral.received: the referral fields routing reads, picked out of the JSON in the
 * same pass that finds referral.id, so routing does no member lookups. "Present" means
 * present and not null. Pointers point into the event's root. */
struct event_referral {
    const json_t *needs;  /* referral.needs, NULL when absent */
    const char *child_id; /* child.id when a string (maybe empty), else NULL */
    size_t child_id_len;
    const char *school_urn; /* child.school_urn when a string, else NULL */
    size_t school_urn_len;
    const char *family_id; /* family.id when a string (maybe empty), else NULL */
    size_t family_id_len;
    struct civil_date dob, edd; /* when dob_valid / edd_valid */
    char district[5];           /* child.postcode's outward code, "" when none */
    signed char level;          /* level_of_need when a whole number 1-4, else 0 */
    bool has_level;             /* level_of_need present */
    bool has_child_id;          /* child.id present */
    bool has_dob, dob_valid;    /* child.date_of_birth present / a YYYY-MM-DD date */
    bool has_edd, edd_valid;    /* child.expected_due_date present / a YYYY-MM-DD date */
    bool immediate_risk;        /* safeguarding.immediate_risk is true */
    bool early_help;            /* family.consent.early_help is true */
    bool send;                  /* child.send is true */
};

struct event {
    json_t *root; /* owned */
    enum event_type type;
    char event_id[37];       /* lower-cased UUID */
    int64_t occurred_at_ms;  /* UTC */
    const char *referral_id; /* referral.id or case.referral_id; points into root */

    /* case.triaged */
    const char *triage_route;
    const char *triage_destination;
    /* appointment.booked / appointment.cancelled */
    const char *appointment_id;
    int64_t appointment_starts_at_ms; /* booked only */

    /* referral.received */
    struct event_referral ref;
};

/* Run checks 1-8 on one message. max_bytes is the configured size limit. Returns
 * EVENT_OK and fills *ev, or an error code with a human-readable `detail` that never
 * carries personal data (field names and codes only). On error *ev holds nothing. */
enum event_error event_parse(const char *bytes, size_t len, enum event_topic topic,
                             size_t max_bytes, struct event *ev, char *detail, size_t detail_len);

void event_release(struct event *ev);

#endif
