/* sendtime: the family SMS window, reminders, red deadlines and retry backoff.
 *
 * Local times go through caltime in the directory's zone, a day at a time, so DST days
 * (23 or 25 hours long) need no special case: "08:00 tomorrow" is the next civil date at
 * 08:00, whatever its offset.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "frontdoor/sendtime.h"

/* ------------------------------------------------------------------ clock and random */

int64_t sendtime_now_ms(const struct clock *c)
{
    return c->now_ms(c->ctx);
}

static int64_t system_now_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct clock sendtime_system_clock(void)
{
    return (struct clock){system_now_ms, NULL};
}

int64_t sendtime_fixed_now_ms(void *ctx)
{
    return *(const int64_t *)ctx;
}

int64_t sendtime_offset_now_ms(void *ctx)
{
    return system_now_ms(NULL) + *(const int64_t *)ctx;
}

static uint64_t system_next_u64(void *ctx)
{
    (void)ctx;
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        /* Cannot happen for 8 bytes once the pool is ready; jitter needs no secrecy, so a
         * time-seeded mix (splitmix64) is good enough then. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32;
        v += 0x9E3779B97F4A7C15ull;
        v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ull;
        v = (v ^ (v >> 27)) * 0x94D049BB133111EBull;
        v ^= v >> 31;
    }
    return v;
}

struct rand_source sendtime_system_random(void)
{
    return (struct rand_source){system_next_u64, NULL};
}

/* ------------------------------------------------------------------ the window */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool window_valid(const struct sms_window *w)
{
    return w != NULL && w->zone != NULL && w->start_s >= 0 && w->start_s < w->end_s &&
           w->end_s <= 86400;
}

/* Local date and second of the day of t. */
static struct civil_date local_of(const struct sms_window *w, int64_t t_ms, int *sod)
{
    return caltime_local_date(w->zone, floor_div(t_ms, 1000), sod);
}

static struct civil_date add_days(struct civil_date d, int n)
{
    return caltime_civil_from_days(caltime_days_from_civil(d) + n);
}

static int64_t local_ms(const struct sms_window *w, struct civil_date d, int sod)
{
    return caltime_local_to_utc(w->zone, d, sod) * 1000;
}

bool sendtime_in_window(const struct sms_window *w, int64_t t_ms)
{
    if (!window_valid(w))
        return true;
    int sod;
    (void)local_of(w, t_ms, &sod);
    return sod >= w->start_s && sod < w->end_s;
}

int64_t sendtime_window_next(const struct sms_window *w, int64_t t_ms)
{
    if (!window_valid(w))
        return t_ms;
    int sod;
    struct civil_date d = local_of(w, t_ms, &sod);
    if (sod >= w->start_s && sod < w->end_s)
        return t_ms;
    int64_t next = local_ms(w, sod < w->start_s ? d : add_days(d, 1), w->start_s);
    return next > t_ms ? next : t_ms; /* only a zone's odd gap could make it earlier */
}

int64_t sendtime_window_last_before(const struct sms_window *w, int64_t t_ms)
{
    if (!window_valid(w))
        return t_ms;
    int sod;
    struct civil_date d = local_of(w, t_ms, &sod);
    if (sod >= w->start_s && sod < w->end_s)
        return t_ms;
    int64_t last = local_ms(w, sod >= w->end_s ? d : add_days(d, -1), w->end_s - 1);
    return last < t_ms ? last : t_ms;
}

/* ------------------------------------------------------------------ what is held */

static bool name_in(const char *name, const char *const *list)
{
    if (name == NULL)
        return false;
    for (; *list != NULL; list++)
        if (strcmp(name, *list) == 0)
            return true;
    return false;
}

bool sendtime_is_red(const char *template_name)
{
    static const char *const red[] = {"safeguarding_alert", "unusable_event",
                                      "safeguarding_alert_failed", NULL};
    return name_in(template_name, red);
}

bool sendtime_is_family_sms(const char *template_name)
{
    static const char *const family[] = {"appointment_booked", "appointment_reminder",
                                         "appointment_cancelled", NULL};
    return name_in(template_name, family);
}

int64_t sendtime_not_before(const struct sms_window *w, const char *template_name,
                            int64_t created_ms)
{
    if (sendtime_is_red(template_name) || !sendtime_is_family_sms(template_name))
        return created_ms;
    return sendtime_window_next(w, created_ms);
}

bool sendtime_reminder_due(const struct sms_window *w, int64_t occurred_ms, int64_t starts_ms,
                           int64_t *due_ms)
{
    if (starts_ms - occurred_ms < SENDTIME_REMINDER_LEAD_MS)
        return false;
    int64_t at = starts_ms - SENDTIME_REMINDER_LEAD_MS;
    if (!sendtime_in_window(w, at)) {
        at = sendtime_window_last_before(w, at);
        /* The window's last second before the reminder time may still be after the
         * booking by less than a second: that moment counts, from the booking on. */
        if (floor_div(at, 1000) < floor_div(occurred_ms, 1000))
            return false;
        if (at < occurred_ms)
            at = occurred_ms;
    }
    *due_ms = at;
    return true;
}

/* ------------------------------------------------------------------ deadlines, retries */

int64_t sendtime_red_deadline(int64_t created_ms)
{
    return created_ms + SENDTIME_RED_DEADLINE_MS;
}

bool sendtime_red_is_late(int64_t created_ms, int64_t now_ms)
{
    return now_ms >= sendtime_red_deadline(created_ms);
}

int64_t sendtime_retry_delay(int attempts, const struct rand_source *r)
{
    int64_t ceiling = SENDTIME_RETRY_BASE_MS;
    for (int i = 1; i < attempts && ceiling < SENDTIME_RETRY_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > SENDTIME_RETRY_CAP_MS)
        ceiling = SENDTIME_RETRY_CAP_MS;
    uint64_t span = (uint64_t)(ceiling - SENDTIME_RETRY_FLOOR_MS) + 1;
    /* The modulo bias over 2^64 is below 1e-12 for spans of an hour: irrelevant here. */
    return SENDTIME_RETRY_FLOOR_MS + (int64_t)(r->next_u64(r->ctx) % span);
}

enum sendtime_retry sendtime_plan_retry(const struct sms_window *w, int64_t due_from_ms,
                                        int64_t now_ms, int attempts, int64_t retry_after_ms,
                                        const struct rand_source *r, int64_t *next_ms)
{
    int64_t give_up_at = due_from_ms + SENDTIME_GIVE_UP_MS;
    if (now_ms >= give_up_at)
        return SENDTIME_GIVE_UP;
    int64_t wait = retry_after_ms >= 0 ? retry_after_ms : sendtime_retry_delay(attempts, r);
    int64_t next = wait > give_up_at - now_ms ? give_up_at : now_ms + wait;
    if (w != NULL) {
        next = sendtime_window_next(w, next);
        if (next > give_up_at)
            return SENDTIME_GIVE_UP;
    }
    *next_ms = next;
    return SENDTIME_RETRY;
}

int64_t sendtime_next_midnight(const struct tzone *z, int64_t t_ms)
{
    int sod;
    struct civil_date d = caltime_local_date(z, floor_div(t_ms, 1000), &sod);
    struct civil_date next = caltime_civil_from_days(caltime_days_from_civil(d) + 1);
    return caltime_local_to_utc(z, next, 0) * 1000;
}
