/* dispatch: delivers the notification outbox (notifications.md, "Delivery").
 *
 * The case store writes notification rows in the transactions of their causes
 * (notify_plan.h, notify_store.h); this dispatcher, on its own database connection and
 * the daemon's loop, sends them:
 *
 *   claim   One statement per channel takes due rows: `queued` with not_before <= now, or
 *           `sending` whose lease ran out (their daemon died), red first, then oldest,
 *           `FOR UPDATE SKIP LOCKED`, and sets them `sending` with a fresh claim id and
 *           a lease. Two daemons can never hold one row: the row lock decides, and the
 *           outcome is written only where the claim id is still ours. It takes no more
 *           than the channel's rate limit (any rolling 60 s, ratelimit.h) and its
 *           in-flight bound allow; while the channel is paused only red rows.
 *   send    Rendered from the templates (file, smtp) or as personalisation (notify),
 *           then handed to the channel's provider (provider.h).
 *   record  accepted: `sent`, provider_ref, sent_at; permanent: `failed`; transient
 *           (5xx, timeouts, SMTP 4xx, 403, 429): `queued` again, not_before after
 *           exponential backoff with full jitter (30 s up to 1 h) or Retry-After; a
 *           family text's retry waits for the SMS window; 24 h after the notification
 *           became due it is `failed`. 429 TooManyRequestsError pauses the channel until
 *           midnight Europe/London; red rows are still tried while it is paused.
 *   timers  Every 2 seconds: a case still in triage or awaiting_consent at its
 *           decision_due_at gets decision_overdue, and a red notification (safeguarding
 *           alert, unusable event) not sent 5 minutes after its creation gets
 *           safeguarding_alert_failed (email and sms); unique dedupe keys make each exactly
 *           once whichever daemon sees it first.
 *
 * The one way a message goes out twice: a provider accepted it and the daemon died (or
 * lost the database for longer than the lease) before the row was marked `sent`; the
 * row is then claimed again. Every timing decision takes its time from the injected
 * clock, so tests can set it.
 *
 * Ownership: the caller owns struct dispatch; cfg, policy and clock are borrowed and
 * must outlive it (dispatch_set_policy() swaps the policy after a reload).
 */
#ifndef FRONTDOOR_DISPATCH_H
#define FRONTDOOR_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "frontdoor/config.h"
#include "frontdoor/policy.h"
#include "frontdoor/provider.h"
#include "frontdoor/sendtime.h"

struct dispatch;

struct dispatch_options {
    struct event_base *base;
    const struct config *cfg; /* database.*, email.*, sms.*, http.callback_token */
    const struct policy *policy;
    const struct clock *clock;
    const struct rand_source *rand;               /* backoff jitter; NULL: the kernel's */
    void (*on_fatal)(void *arg, const char *msg); /* schema too old */
    void *arg;
    int poll_ms;  /* look for due rows this often besides pokes (default 1000) */
    int timer_ms; /* overdue decisions and late red alerts (default 2000) */
    bool skip_schema_check;
};

/* Creates the providers of both channels (the spool folders, the libcurl multi handle)
 * and connects. Returns 0 and *out, or -1 with err set (a configuration the providers
 * refuse: the caller exits 78, or 69 for other start-up failures as *fatal_config
 * says). */
int dispatch_open(const struct dispatch_options *opt, struct dispatch **out, bool *config_error,
                  char *err, size_t errlen);

/* Sends in flight are abandoned (their rows are claimed again after the lease). */
void dispatch_free(struct dispatch *d);

void dispatch_set_policy(struct dispatch *d, const struct policy *policy);

/* New rows were committed: look for due ones now. */
void dispatch_poke(struct dispatch *d);

/* Graceful stop: claim nothing more; sends in flight finish and are recorded. */
void dispatch_stop(struct dispatch *d);

/* Nothing in flight: no send, no outcome waiting to be written. */
bool dispatch_idle(const struct dispatch *d);

/* An event on the referrals topic was unusable (tier-1 checks): write its
 * unusable_event row, then call done(arg, true) from the loop. While the database is down
 * the row waits (and the consumer is paused anyway); done is not called when the
 * dispatcher is freed first (the event is consumed again after a restart, and the dedupe
 * key keeps it to one alert). Returns 0, or -1 when out of memory. */
int dispatch_record_unusable(struct dispatch *d, const char *topic, int32_t partition,
                             int64_t offset, const char *error_code,
                             void (*done)(void *arg, bool ok), void *arg);

/* POST /notify/callback: a GOV.UK Notify delivery receipt. `authorization` is the
 * request's Authorization header (NULL when absent), compared in constant time with
 * `Bearer <http.callback_token>`. A receipt for a `sent` (or still `sending`) row moves it
 * to `delivered` (status delivered) or `failed` (permanent-, temporary- or
 * technical-failure) and adds a case audit row; anything else changes nothing. reply
 * runs exactly once, maybe before this returns: 200 done (or nothing to do), 400 not a
 * receipt, 401 bad or missing token, 404 no callback token configured, 503 database
 * down, 500 database error. */
typedef void (*dispatch_reply_fn)(void *arg, int status, const char *text);
void dispatch_handle_callback(struct dispatch *d, const char *authorization, const char *body,
                              size_t len, dispatch_reply_fn reply, void *arg);

struct dispatch_channel_stats {
    uint64_t sent, failed, retried;
    int in_flight;
    bool paused;
};

struct dispatch_stats {
    struct dispatch_channel_stats email, sms;
    uint64_t overdue_created, alerts_failed_created, unusable_created;
    uint64_t receipts_delivered, receipts_failed; /* Notify delivery receipts recorded */
    bool connected;
};

void dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *st);

/* ---------------------------------------------------------------- pure helpers (tests) */

/* What becomes of a row after a provider's answer. */
struct dispatch_next {
    const char *state; /* "sent", "failed" or "queued" */
    int64_t not_before_ms;
    bool pause_channel; /* daily limit: the channel pauses until pause_until_ms */
    int64_t pause_until_ms;
    bool log_alert; /* 403: an error line in the log, every time */
};

/* res: the provider's answer; family: a family text (its retries wait for window w);
 * red: tried even while the channel is paused; now_ms, due_from_ms, attempts: as
 * sendtime_plan_retry() takes them; zone: for the daily pause's midnight. */
void dispatch_next_state(const struct provider_result *res, const struct sms_window *w, bool family,
                         bool red, const struct tzone *zone, int64_t now_ms, int64_t due_from_ms,
                         int attempts, const struct rand_source *rand, struct dispatch_next *out);

#endif
