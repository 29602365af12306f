/* sendtime: when a notification may be sent (notifications.md, "Timing" and "Delivery").
 *
 * Pure functions of their arguments: the time comes in from a struct clock and random
 * numbers from a struct rand_source, so a test (or a replay) can fix both. Nothing here
 * reads the time itself, nor TZ, tzset() or localtime(): local time is always
 * caltime's, in the directory's zone. All instants are UTC milliseconds since the epoch.
 */
#ifndef FRONTDOOR_SENDTIME_H
#define FRONTDOOR_SENDTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "frontdoor/caltime.h"

#define SENDTIME_SECOND_MS 1000LL
#define SENDTIME_MINUTE_MS (60 * SENDTIME_SECOND_MS)
#define SENDTIME_HOUR_MS   (60 * SENDTIME_MINUTE_MS)
/* A reminder is due this long before the appointment starts. */
#define SENDTIME_REMINDER_LEAD_MS (24 * SENDTIME_HOUR_MS)
/* A red notification not sent this long after its creation raises
 * safeguarding_alert_failed. */
#define SENDTIME_RED_DEADLINE_MS (5 * SENDTIME_MINUTE_MS)
/* Retries: exponential backoff with full jitter from 30 s up to 1 h, for 24 h at most. */
#define SENDTIME_RETRY_BASE_MS  (30 * SENDTIME_SECOND_MS)
#define SENDTIME_RETRY_CAP_MS   SENDTIME_HOUR_MS
#define SENDTIME_RETRY_FLOOR_MS SENDTIME_SECOND_MS
#define SENDTIME_GIVE_UP_MS     (24 * SENDTIME_HOUR_MS)

/* The single source of time for timing logic. now_ms returns UTC milliseconds since the
 * epoch; ctx is passed to it untouched (not owned). */
struct clock {
    int64_t (*now_ms)(void *ctx);
    void *ctx;
};

/* The time from c. */
int64_t sendtime_now_ms(const struct clock *c);
/* The real clock (CLOCK_REALTIME). */
struct clock sendtime_system_clock(void);
/* A clock standing still at *(int64_t *)ctx, for tests and replays:
 * `int64_t t = ...; struct clock c = {sendtime_fixed_now_ms, &t};` */
int64_t sendtime_fixed_now_ms(void *ctx);

/* The real clock shifted by *(int64_t *)ctx milliseconds: it runs at real speed from a
 * chosen instant (the daemon's test-only FRONTDOOR_TEST_CLOCK). */
int64_t sendtime_offset_now_ms(void *ctx);

/* A source of uniformly distributed 64-bit random numbers; ctx is not owned. */
struct rand_source {
    uint64_t (*next_u64)(void *ctx);
    void *ctx;
};

/* The kernel's random numbers (getrandom(2)). */
struct rand_source sendtime_system_random(void);

/* The family SMS window (directory calendar.family_sms_window, in calendar.timezone):
 * from start_s inclusive to end_s exclusive, seconds of the local day. Filled by the
 * caller, e.g. {dir->calendar.zone, dir->sms_window_start_s, dir->sms_window_end_s}.
 * The zone is not owned. A window without a zone or with not 0 <= start_s < end_s <= 86400
 * holds nothing (every instant counts as inside), so a bad window never stops texts. */
struct sms_window {
    const struct tzone *zone;
    int start_s;
    int end_s;
};

/* Is t inside the window (local second of the day in [start_s, end_s))? */
bool sendtime_in_window(const struct sms_window *w, int64_t t_ms);

/* The earliest instant >= t inside the window: t itself when inside, else the next window
 * start (the same day's before the window, the next day's after it). */
int64_t sendtime_window_next(const struct sms_window *w, int64_t t_ms);

/* The latest moment inside the window at or before t: t itself when inside, else the last
 * whole second before the end (19:59:59 for a 20:00 end) of the same day after the
 * window, or of the previous day before it. The end is exclusive, so its last second is
 * the latest moment a send can start and still be inside. */
int64_t sendtime_window_last_before(const struct sms_window *w, int64_t t_ms);

/* Red notifications (safeguarding_alert, unusable_event, safeguarding_alert_failed): never
 * held by the window, the queue order or a channel pause. */
bool sendtime_is_red(const char *template_name);
/* Family text messages (appointment_booked, appointment_reminder, appointment_cancelled):
 * held to the SMS window. */
bool sendtime_is_family_sms(const char *template_name);

/* The not_before of a notification created at created_ms: a family text waits for the
 * window (sendtime_window_next), everything else (red or staff) is due at once. For
 * appointment_reminder pass its due time from sendtime_reminder_due() as created_ms; it is
 * already inside the window and comes back unchanged. */
int64_t sendtime_not_before(const struct sms_window *w, const char *template_name,
                            int64_t created_ms);

/* The reminder of an appointment starting at starts_ms, booked by an event that occurred
 * at occurred_ms. Decided from the event alone, so a replay decides the same.
 * Returns false (no reminder) when the appointment starts less than 24 h after
 * occurred_ms, or when the window has no moment between the booking and the reminder's
 * time (e.g. booked at 21:00 for 23:00 the next day: the window closed at 19:59:59 before
 * the booking; the booking text itself then goes at the next window start). Else true
 * and *due_ms: starts_ms - 24 h when that is inside the window, else the latest moment
 * inside the window before it (sendtime_window_last_before), but never before
 * occurred_ms. */
bool sendtime_reminder_due(const struct sms_window *w, int64_t occurred_ms, int64_t starts_ms,
                           int64_t *due_ms);

/* When a red notification created at created_ms must be `sent` by: created + 5 min. At or
 * after that instant a red notification that is not sent raises safeguarding_alert_failed
 * (sendtime_red_is_late). */
int64_t sendtime_red_deadline(int64_t created_ms);
bool sendtime_red_is_late(int64_t created_ms, int64_t now_ms);

/* The wait before retry number `attempts` + 1, after `attempts` failed tries (>= 1; less
 * counts as 1): full jitter, uniform in [1 s, min(1 h, 30 s * 2^(attempts - 1))]. The
 * 1 s floor keeps a failing provider from being hit again at once. */
int64_t sendtime_retry_delay(int attempts, const struct rand_source *r);

enum sendtime_retry { SENDTIME_RETRY, SENDTIME_GIVE_UP };

/* After a transient failure at now_ms: retry, and when, or give up (`failed`).
 * due_from_ms is when the notification first became due: its created_at, or for one
 * created ahead of time (a reminder) its first not_before, so that it gets its 24 hours
 * of retries too. retry_after_ms is a provider's Retry-After (< 0: none), else the backoff
 * applies. w is the SMS window for a family text, NULL otherwise.
 * Gives up when now >= due_from + 24 h, or when a family text's next window moment is
 * after that. Otherwise *next_ms = now + the wait, brought back to due_from + 24 h when
 * later (one last try then), and into the window for a family text. */
enum sendtime_retry sendtime_plan_retry(const struct sms_window *w, int64_t due_from_ms,
                                        int64_t now_ms, int attempts, int64_t retry_after_ms,
                                        const struct rand_source *r, int64_t *next_ms);

/* The next local midnight strictly after t in zone z: where a channel paused by Notify's
 * daily limit (429 TooManyRequestsError) opens again. */
int64_t sendtime_next_midnight(const struct tzone *z, int64_t t_ms);

#endif
