/* casestore: the durable side of event handling, in PostgreSQL.
 *
 * Consumed events that passed tier-1 checks 1-8 are submitted here. They are batched
 * (up to database.batch_max per transaction) and, in one transaction per batch:
 *   - the duplicate checks of events.md step 9 run (event_id_reused, duplicate_referral);
 *   - a referral is routed with its real history (rules 5 and 6) and gets its case,
 *     decision, audit row, outbox message (frontdoor.decisions) and processed_events row;
 *   - a case event drives the case state machine (routing-policy.md): re-route, close,
 *     or nothing (appointments); invalid_transition goes to the DLQ (via the outbox);
 *   - a case event whose case does not exist yet is held in held_events and retried for
 *     kafka.unknown_case_retry_seconds, then given up as unknown_case (DLQ via outbox).
 * Only after COMMIT does an event's completion callback run, so its Kafka offset is
 * stored only once its effects are durable. A transaction that fails is retried with
 * the same events; none is skipped. Idempotency lives in the database (unique keys,
 * advisory transaction locks per referral/child/family/event id), not in memory, so
 * several daemons may share one database.
 *
 * Everything runs on the caller's event loop; nothing blocks.
 */
#ifndef FRONTDOOR_CASESTORE_H
#define FRONTDOOR_CASESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "frontdoor/config.h"
#include "frontdoor/db.h"
#include "frontdoor/dbbulk.h"
#include "frontdoor/event.h"
#include "frontdoor/policy.h"
#include "frontdoor/route.h"

enum casestore_outcome {
    CASESTORE_ROUTED,    /* a new referral: case and decision written */
    CASESTORE_REROUTED,  /* a case event gave a new decision */
    CASESTORE_CLOSED,    /* case.closed */
    CASESTORE_APPLIED,   /* a case event that changes no routing (appointments) */
    CASESTORE_DUPLICATE, /* already processed with the same body: nothing changed */
    CASESTORE_HELD,      /* its case is unknown for now: stored in held_events, retried */
    CASESTORE_REJECTED,  /* a step-9 error: the DLQ message is in the outbox */
};

const char *casestore_outcome_name(enum casestore_outcome o);

/* Where a message came from (the DLQ headers and the held_events row need it). */
struct casestore_source {
    enum event_topic kind;
    const char *topic; /* copied */
    int32_t partition;
    int64_t offset;
};

/* What the completion callback learns. Pointers are valid during the callback only. */
struct casestore_result {
    enum casestore_outcome outcome;
    enum event_error error; /* CASESTORE_REJECTED: which step-9 code */
    const char *event_id;
    const char *referral_id;
    const struct decision *decision; /* ROUTED / REROUTED, else NULL */
};

/* Called once per submitted event, after its transaction committed (or, for a
 * duplicate, was found to need nothing). Never called for events still pending when the
 * store is freed: their offsets must not be stored. */
typedef void (*casestore_done_fn)(void *arg, const struct casestore_result *res);

/* A case as it stands after a change: what messages about it say. */
struct casestore_case {
    enum route_kind route;
    const char *destination;
    enum priority priority;
    const char *rule;
    bool has_due;
    int64_t due_at_s; /* decision_due_at, UTC seconds, when has_due */
};

/* A change about to be written, shown to the notification planner so it can add its
 * own statements (notification outbox rows) to the same transaction. */
struct casestore_change {
    enum casestore_outcome outcome; /* ROUTED, REROUTED, CLOSED, APPLIED or REJECTED */
    enum event_error error;         /* REJECTED: the code */
    const struct event *event;      /* the causing event */
    const struct event *referral;   /* the case's referral.received (may equal event), or
                                       NULL when there is no case (rejections) */
    const char *referral_id;
    const struct decision *decision; /* ROUTED / REROUTED */
    enum case_state from_state;      /* case events on a known case */
    enum case_state to_state;
    const struct casestore_case *case_after; /* NULL when there is no case (rejections) */
    const struct casestore_source *source;
    int64_t now_ms; /* the transaction's wall-clock time */
    /* The plan hook's multi-row insert (options.plan_bulk_sql), or NULL. Its rows are
     * written with the batch's other inserts, before every statement the hook adds to the
     * round: a row that a later statement of the batch must see (or that must follow one)
     * goes to the round instead. */
    struct dbbulk *bulk;
};

/* Add statements to `round` (the batch's write round, inside its transaction). Return 0,
 * or -1 to fail the batch (it is retried). */
typedef int (*casestore_plan_fn)(void *arg, struct db_round *round,
                                 const struct casestore_change *change);

struct casestore_options {
    struct event_base *base;
    const struct config *cfg;    /* borrowed: database.*, kafka.unknown_case_retry_s */
    const struct policy *policy; /* borrowed; see casestore_set_policy() */
    /* Ready (database up) or not, with a short reason; the consumer pauses while not. */
    void (*on_ready)(void *arg, bool ready, const char *reason);
    /* The daemon cannot run (schema too old): msg says what to run. */
    void (*on_fatal)(void *arg, const char *msg);
    /* A transaction committed new outbox rows (or the plan hook's rows): the publisher
     * and the notification dispatcher may look. */
    void (*on_outbox)(void *arg);
    casestore_plan_fn plan; /* optional: notifications */
    /* optional: a multi-row insert for the plan hook (dbbulk.h), and its column count */
    const char *plan_bulk_sql;
    int plan_bulk_cols;
    void *arg;
    int held_scan_ms;       /* how often held events are looked at (default 1000) */
    bool skip_schema_check; /* tests only */
};

struct casestore;

/* Start: connects at once (asynchronously). Returns 0 and *out (the caller frees it with
 * casestore_free()), or -1 with err set. */
int casestore_open(const struct casestore_options *opt, struct casestore **out, char *err,
                   size_t errlen);

/* Stop: work in flight is abandoned (its events are consumed again after a restart,
 * and are then duplicates or done for the first time). NULL is fine. */
void casestore_free(struct casestore *cs);

/* Swap the routing policy after a reload (borrowed; the old one may be freed once this
 * returns, as no decision outlives a batch). */
void casestore_set_policy(struct casestore *cs, const struct policy *policy);

/* Submit a parsed event. Ownership: *ev moves into the store (the caller's struct is
 * cleared); body is copied. done runs exactly once, from the loop, after commit.
 * Returns 0, or -1 when out of memory (then *ev is still the caller's). */
int casestore_submit(struct casestore *cs, const struct casestore_source *src, const char *body,
                     size_t len, struct event *ev, casestore_done_fn done, void *done_arg);

/* Events submitted and not yet done (for back-pressure: pause the consumer above a
 * limit). */
size_t casestore_pending(const struct casestore *cs);

bool casestore_is_ready(const struct casestore *cs);

/* True when nothing is queued or in flight (tests, graceful stop). */
bool casestore_idle(const struct casestore *cs);

/* Held events found in the last scan (for tests and metrics); -1 before the first. */
long casestore_held_count(const struct casestore *cs);

/* ---------------------------------------------------------------- pure helpers (tests) */

/* A time-ordered (version 7, RFC 9562) UUID: the wall clock's milliseconds, then 74
 * random bits; lower case, 36 characters + NUL. */
void casestore_new_uuid(char out[37]);

/* The frontdoor.decisions message (events.md) for a decision. Caller frees the result. */
char *casestore_decision_message(const char *event_id, const char *cause_event_id,
                                 const char *referral_id, const struct decision *d,
                                 int64_t decided_at_ms);

#endif
