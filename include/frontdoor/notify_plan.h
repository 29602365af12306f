/* notify_plan: which notifications a change creates (notifications.md, "Who is told
 * what" and "Timing"), as pure functions.
 *
 * Given a change the case store is about to commit (casestore.h), the directory and the
 * time from one injected clock, the planner returns the rows to add to the notification
 * outbox and the pending rows to cancel; notify_store.h turns a plan into statements of
 * the same transaction. No I/O, no global state: a test (or a replay with the same clock)
 * gets the same plan.
 *
 *   - recipients come from the directory (teams by id, the school's Early Help Officer or,
 *     while the directory marks that officer absent on the day the notification is
 *     created, the cover officer) or from the case's referral (the referrer's email, the
 *     family's mobile);
 *   - a family text is `skipped` with `no_sms_consent` unless family.consent.sms is true,
 *     else with `invalid_mobile` unless the mobile is a UK mobile (mobile.h); any message
 *     without a usable address is `skipped` too (`no_email`, `invalid_email`,
 *     `no_recipient`), so staff can see who was not told;
 *   - not_before: family texts wait for the SMS window, a reminder is due 24 h before the
 *     appointment (sendtime.h); red and staff messages are due at once;
 *   - personalisation holds exactly the placeholder values of the template's set
 *     (config/templates/README.md): ids and the decision for staff, never free text from
 *     the referral.
 *
 * Ownership: a plan owns its JSON values; pointers in it into the change, the event or
 * the directory are valid while those are. Release with notify_plan_release().
 */
#ifndef FRONTDOOR_NOTIFY_PLAN_H
#define FRONTDOOR_NOTIFY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "frontdoor/casestore.h"
#include "frontdoor/policy.h"
#include "frontdoor/sendtime.h"
#include "frontdoor/template.h"

/* Notification states (operations.md, the notifications table). */
enum notify_state {
    NOTIFY_QUEUED,
    NOTIFY_SENDING,
    NOTIFY_SENT,
    NOTIFY_DELIVERED,
    NOTIFY_SKIPPED,
    NOTIFY_FAILED,
    NOTIFY_CANCELLED,
};
const char *notify_state_name(enum notify_state s);

/* Reasons a notification is skipped, as written to last_error. */
#define NOTIFY_SKIP_NO_SMS_CONSENT "no_sms_consent"
#define NOTIFY_SKIP_INVALID_MOBILE "invalid_mobile"
#define NOTIFY_SKIP_NO_EMAIL       "no_email"
#define NOTIFY_SKIP_INVALID_EMAIL  "invalid_email"
#define NOTIFY_SKIP_NO_RECIPIENT   "no_recipient"

/* Directory team ids the spec names as recipients. */
#define NOTIFY_TEAM_DUTY    "social-care-duty"
#define NOTIFY_TEAM_TRIAGE  "front-door-triage"
#define NOTIFY_TEAM_MANAGER "front-door-manager"

#define NOTIFY_MAX_ROWS      4
#define NOTIFY_RECIPIENT_MAX 256
#define NOTIFY_KEY_MAX       320

/* One notification to create. */
struct notify_row {
    const char *template_name; /* a catalogue name (static) */
    enum template_channel channel;
    char recipient[NOTIFY_RECIPIENT_MAX]; /* email, or E.164 mobile; "" when skipped */
    char language[8];                     /* family texts: contact.language; else "en" */
    enum notify_state state;              /* NOTIFY_QUEUED or NOTIFY_SKIPPED */
    const char *skip_reason;              /* NOTIFY_SKIP_*, when skipped */
    int64_t created_ms;
    int64_t not_before_ms;
    int64_t due_from_ms; /* retries give up 24 h after this (the first due moment) */
    bool red;
    char dedupe_key[NOTIFY_KEY_MAX]; /* "" when the row needs none (cause_event_id keys it) */
    const char *appointment_id;      /* appointment texts, else NULL */
    /* appointment_cancelled: the date, time and place come from the latest
     * appointment_booked row of the same appointment (the cancel event has only the id);
     * the store merges that row's personalisation under this one's. */
    bool from_booking;
    json_t *personalisation; /* owned: an object of strings */
};

struct notify_plan {
    const char *referral_id;    /* NULL for an event without a case */
    const char *cause_event_id; /* NULL for timer-made and unusable_event rows */
    int64_t now_ms;             /* the clock when planned */
    struct notify_row rows[NOTIFY_MAX_ROWS];
    size_t n_rows;
    /* Pending (queued) rows to cancel before the new rows are added, with the reason
     * written to last_error: the reminder of appointment cancel_appointment_id
     * (rescheduled or cancelled), and every family text of the case (case closed). */
    const char *cancel_appointment_id;
    const char *cancel_reminder_reason;
    bool cancel_family_texts;
};

/* What the planner reads: the policy (directory, SMS window zone) and the clock. */
struct notify_ctx {
    const struct policy *policy;
    const struct clock *clock;
};

/* The rows of one change (a routed referral, a re-route, a closed case, an appointment,
 * or a rejected referrals-topic event). Returns 0 (maybe with no rows), or -1 when out of
 * memory (the plan is then released). */
int notify_plan_change(const struct notify_ctx *ctx, const struct casestore_change *ch,
                       struct notify_plan *out);

/* unusable_event for an event on the referrals topic: topic, partition, offset and the
 * error code only, to front-door-triage, at once. Keyed by the event's coordinates, so
 * an event consumed again creates nothing new. */
int notify_plan_unusable(const struct notify_ctx *ctx, const char *topic, int32_t partition,
                         int64_t offset, const char *error_code, struct notify_plan *out);

/* decision_overdue for a case still undecided at its deadline, to front-door-manager.
 * Keyed by case and deadline: one per case deadline, whichever daemon sees it first. */
int notify_plan_overdue(const struct notify_ctx *ctx, const char *referral_id,
                        const struct casestore_case *c, struct notify_plan *out);

/* The dedupe keys of timer-made rows, so SQL can look for them. */
void notify_overdue_key(const char *referral_id, int64_t due_at_s, char out[NOTIFY_KEY_MAX]);

/* The case placeholders (referral_id, route, destination, priority, decision_due_at,
 * rule, team_name) of a case; c NULL gives "none" for each (an alert about an unusable
 * event). Returns a new object, or NULL when out of memory. */
json_t *notify_case_values(const struct policy *p, const char *referral_id,
                           const struct casestore_case *c);

/* The name the messages give a destination: the team's name, a school's name, "the
 * referrer", or the id itself when the directory does not know it. */
const char *notify_team_name(const struct directory *dir, const char *destination);

/* A plain email address (dot-atom local part, dotted domain, ASCII, at most 254 bytes):
 * anything else is never handed to a mail server. */
bool notify_valid_email(const char *s);

void notify_plan_release(struct notify_plan *p);

#endif
