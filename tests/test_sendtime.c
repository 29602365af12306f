/* Unit tests of sendtime: the family SMS window, reminders, red deadlines, retries.
 *
 * Expected instants are UTC, worked out by hand from the UK's clock changes (2026: BST
 * from 29 March 01:00Z to 25 October 01:00Z) and checked with `TZ=Europe/London date -d`;
 * test inputs and expectations are written as RFC 3339 UTC strings and turned into
 * milliseconds here with glibc's timegm(), not with caltime.
 */
#define _GNU_SOURCE
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontdoor/caltime.h"
#include "frontdoor/sendtime.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* "2026-01-14T08:00:00Z" or with ".mmm" -> UTC ms. */
static int64_t T(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
    ck_assert_msg(rest != NULL, "bad test time %s", iso);
    int ms = 0;
    if (*rest == '.') {
        ck_assert_int_eq(sscanf(rest, ".%3dZ", &ms), 1);
    } else {
        ck_assert_str_eq(rest, "Z");
    }
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static struct tzone *london;
static struct sms_window window; /* 08:00-20:00 Europe/London, as directory.json */

static void setup(void)
{
    char err[256] = "";
    ck_assert_msg(caltime_load_zone("Europe/London", &london, err, sizeof err) == 0, "%s", err);
    window = (struct sms_window){london, 8 * 3600, 20 * 3600};
}

static void teardown(void)
{
    caltime_free_zone(london);
    london = NULL;
}

/* ------------------------------------------------------------------ window edges */

static const struct {
    const char *at; /* UTC */
    bool inside;
    const char *next; /* sendtime_window_next */
    const char *what;
} window_cases[] = {
    /* winter, GMT: local = UTC */
    {"2026-01-14T07:59:59Z", false, "2026-01-14T08:00:00Z", "winter 07:59:59"},
    {"2026-01-14T08:00:00Z", true, "2026-01-14T08:00:00Z", "winter 08:00:00"},
    {"2026-01-14T19:59:59Z", true, "2026-01-14T19:59:59Z", "winter 19:59:59"},
    {"2026-01-14T19:59:59.999Z", true, "2026-01-14T19:59:59.999Z", "winter 19:59:59.999"},
    {"2026-01-14T20:00:00Z", false, "2026-01-15T08:00:00Z", "winter 20:00:00"},
    {"2026-01-14T23:59:59Z", false, "2026-01-15T08:00:00Z", "winter 23:59:59"},
    {"2026-01-15T00:00:00Z", false, "2026-01-15T08:00:00Z", "winter midnight"},
    {"2026-12-31T21:00:00Z", false, "2027-01-01T08:00:00Z", "new year's eve"},
    /* summer, BST: local = UTC + 1 */
    {"2026-07-15T06:59:59Z", false, "2026-07-15T07:00:00Z", "summer 07:59:59"},
    {"2026-07-15T07:00:00Z", true, "2026-07-15T07:00:00Z", "summer 08:00:00"},
    {"2026-07-15T18:59:59Z", true, "2026-07-15T18:59:59Z", "summer 19:59:59"},
    {"2026-07-15T19:00:00Z", false, "2026-07-16T07:00:00Z", "summer 20:00:00"},
    {"2026-07-15T23:30:00Z", false, "2026-07-16T07:00:00Z", "summer 00:30 next day"},
    /* spring forward, Sunday 29 March 2026: 01:00 GMT -> 02:00 BST */
    {"2026-03-28T20:00:00Z", false, "2026-03-29T07:00:00Z", "Sat 20:00 GMT -> Sun 08:00 BST"},
    {"2026-03-29T00:30:00Z", false, "2026-03-29T07:00:00Z", "00:30 GMT on the change day"},
    {"2026-03-29T01:30:00Z", false, "2026-03-29T07:00:00Z", "02:30 BST on the change day"},
    {"2026-03-29T06:59:59Z", false, "2026-03-29T07:00:00Z", "spring 07:59:59 BST"},
    {"2026-03-29T07:00:00Z", true, "2026-03-29T07:00:00Z", "spring 08:00:00 BST"},
    {"2026-03-29T18:59:59Z", true, "2026-03-29T18:59:59Z", "spring 19:59:59 BST"},
    {"2026-03-29T19:00:00Z", false, "2026-03-30T07:00:00Z", "spring 20:00:00 BST"},
    /* fall back, Sunday 25 October 2026: 02:00 BST -> 01:00 GMT */
    {"2026-10-24T19:00:00Z", false, "2026-10-25T08:00:00Z", "Sat 20:00 BST -> Sun 08:00 GMT"},
    {"2026-10-25T00:30:00Z", false, "2026-10-25T08:00:00Z", "first 01:30 (BST)"},
    {"2026-10-25T01:30:00Z", false, "2026-10-25T08:00:00Z", "second 01:30 (GMT)"},
    {"2026-10-25T07:59:59Z", false, "2026-10-25T08:00:00Z", "autumn 07:59:59 GMT"},
    {"2026-10-25T08:00:00Z", true, "2026-10-25T08:00:00Z", "autumn 08:00:00 GMT"},
    {"2026-10-25T19:59:59Z", true, "2026-10-25T19:59:59Z", "autumn 19:59:59 GMT"},
    {"2026-10-25T20:00:00Z", false, "2026-10-26T08:00:00Z", "autumn 20:00:00 GMT"},
};

START_TEST(window_table)
{
    int64_t at = T(window_cases[_i].at);
    ck_assert_msg(sendtime_in_window(&window, at) == window_cases[_i].inside, "%s: inside",
                  window_cases[_i].what);
    ck_assert_msg(sendtime_window_next(&window, at) == T(window_cases[_i].next), "%s: next",
                  window_cases[_i].what);
}
END_TEST

static const struct {
    const char *at, *last, *what;
} last_cases[] = {
    {"2026-01-14T12:00:00Z", "2026-01-14T12:00:00Z", "inside: itself"},
    {"2026-01-14T20:00:00Z", "2026-01-14T19:59:59Z", "at the end"},
    {"2026-01-14T21:00:00Z", "2026-01-14T19:59:59Z", "21:00"},
    {"2026-01-14T06:00:00Z", "2026-01-13T19:59:59Z", "06:00 -> the evening before"},
    {"2026-01-14T07:59:59Z", "2026-01-13T19:59:59Z", "07:59:59"},
    {"2026-07-15T05:00:00Z", "2026-07-14T18:59:59Z", "summer 06:00 BST"},
    {"2026-07-15T20:00:00Z", "2026-07-15T18:59:59Z", "summer 21:00 BST"},
    {"2026-03-29T05:00:00Z", "2026-03-28T19:59:59Z", "Sun 06:00 BST -> Sat 19:59:59 GMT"},
    {"2026-03-30T05:00:00Z", "2026-03-29T18:59:59Z", "Mon 06:00 BST -> Sun 19:59:59 BST"},
    {"2026-10-25T07:00:00Z", "2026-10-24T18:59:59Z", "Sun 07:00 GMT -> Sat 19:59:59 BST"},
    {"2026-10-26T06:00:00Z", "2026-10-25T19:59:59Z", "Mon 06:00 GMT -> Sun 19:59:59 GMT"},
};

START_TEST(last_before_table)
{
    ck_assert_msg(sendtime_window_last_before(&window, T(last_cases[_i].at)) ==
                      T(last_cases[_i].last),
                  "%s", last_cases[_i].what);
}
END_TEST

/* A window that cannot hold anything never holds a text. */
START_TEST(bad_window_holds_nothing)
{
    int64_t at = T("2026-01-14T23:00:00Z");
    struct sms_window bad[] = {
        {NULL, 8 * 3600, 20 * 3600}, {london, 20 * 3600, 8 * 3600}, {london, 8 * 3600, 8 * 3600},
        {london, -1, 20 * 3600},     {london, 8 * 3600, 86401},
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        ck_assert(sendtime_in_window(&bad[i], at));
        ck_assert(sendtime_window_next(&bad[i], at) == at);
        ck_assert(sendtime_window_last_before(&bad[i], at) == at);
    }
    ck_assert(sendtime_window_next(NULL, at) == at);
}
END_TEST

/* ------------------------------------------------------------------ not_before */

static const struct {
    const char *template;
    const char *created, *not_before;
} nb_cases[] = {
    {"safeguarding_alert", "2026-01-14T02:00:00Z", "2026-01-14T02:00:00Z"},
    {"unusable_event", "2026-01-14T23:00:00Z", "2026-01-14T23:00:00Z"},
    {"safeguarding_alert_failed", "2026-07-15T03:00:00Z", "2026-07-15T03:00:00Z"},
    {"case_allocated", "2026-01-14T02:00:00Z", "2026-01-14T02:00:00Z"},
    {"decision_overdue", "2026-01-14T21:00:00Z", "2026-01-14T21:00:00Z"},
    {"appointment_booked", "2026-01-14T02:00:00Z", "2026-01-14T08:00:00Z"},
    {"appointment_booked", "2026-01-14T12:00:00Z", "2026-01-14T12:00:00Z"},
    {"appointment_cancelled", "2026-07-15T19:30:00Z", "2026-07-16T07:00:00Z"},
    {"appointment_reminder", "2026-01-14T19:59:59Z", "2026-01-14T19:59:59Z"},
    {"appointment_reminder", "2026-03-28T21:00:00Z", "2026-03-29T07:00:00Z"},
};

START_TEST(not_before_table)
{
    ck_assert_msg(sendtime_not_before(&window, nb_cases[_i].template, T(nb_cases[_i].created)) ==
                      T(nb_cases[_i].not_before),
                  "%s at %s", nb_cases[_i].template, nb_cases[_i].created);
}
END_TEST

START_TEST(red_and_family_names)
{
    ck_assert(sendtime_is_red("safeguarding_alert"));
    ck_assert(sendtime_is_red("unusable_event"));
    ck_assert(sendtime_is_red("safeguarding_alert_failed"));
    ck_assert(!sendtime_is_red("case_allocated"));
    ck_assert(!sendtime_is_red("appointment_booked"));
    ck_assert(!sendtime_is_red(NULL));
    ck_assert(sendtime_is_family_sms("appointment_booked"));
    ck_assert(sendtime_is_family_sms("appointment_reminder"));
    ck_assert(sendtime_is_family_sms("appointment_cancelled"));
    ck_assert(!sendtime_is_family_sms("safeguarding_alert"));
    ck_assert(!sendtime_is_family_sms(NULL));
}
END_TEST

/* ------------------------------------------------------------------ reminders */

static const struct {
    const char *occurred, *starts;
    const char *due; /* NULL: no reminder */
    const char *what;
} reminder_cases[] = {
    {"2026-01-14T10:00:00Z", "2026-01-15T10:00:00Z", "2026-01-14T10:00:00Z", "exactly 24 h"},
    {"2026-01-14T10:00:00Z", "2026-01-15T09:59:00Z", NULL, "23 h 59 min"},
    {"2026-01-14T10:00:00Z", "2026-01-15T09:59:59.999Z", NULL, "24 h less 1 ms"},
    {"2026-01-14T10:00:00Z", "2026-01-14T09:00:00Z", NULL, "starts before the booking"},
    {"2026-01-10T12:00:00Z", "2026-01-20T14:30:00Z", "2026-01-19T14:30:00Z", "inside: 24 h before"},
    {"2026-01-10T12:00:00Z", "2026-01-15T06:00:00Z", "2026-01-13T19:59:59Z",
     "06:00 -> the evening before's 19:59:59"},
    {"2026-01-10T12:00:00Z", "2026-01-15T21:00:00Z", "2026-01-14T19:59:59Z",
     "21:00 -> 19:59:59 the same day"},
    {"2026-01-10T12:00:00Z", "2026-01-15T20:00:00Z", "2026-01-14T19:59:59Z",
     "20:00 (end, exclusive) -> 19:59:59"},
    {"2026-01-10T12:00:00Z", "2026-01-15T19:59:59Z", "2026-01-14T19:59:59Z", "19:59:59 inside"},
    {"2026-01-10T12:00:00Z", "2026-01-15T08:00:00Z", "2026-01-14T08:00:00Z", "08:00 inside"},
    {"2026-01-10T12:00:00Z", "2026-01-15T07:59:59Z", "2026-01-13T19:59:59Z", "07:59:59 outside"},
    {"2026-07-10T12:00:00Z", "2026-07-16T05:00:00Z", "2026-07-14T18:59:59Z", "summer 06:00 BST"},
    {"2026-07-10T12:00:00Z", "2026-07-16T20:00:00Z", "2026-07-15T18:59:59Z", "summer 21:00 BST"},
    /* 24 h are clock hours: across the change the local time moves by an hour */
    {"2026-03-20T12:00:00Z", "2026-03-30T09:00:00Z", "2026-03-29T09:00:00Z",
     "Mon 10:00 BST -> Sun 10:00 BST"},
    {"2026-03-20T12:00:00Z", "2026-03-29T07:30:00Z", "2026-03-27T19:59:59Z",
     "Sun 08:30 BST -> Sat 07:30 GMT -> Fri 19:59:59 GMT"},
    {"2026-03-20T12:00:00Z", "2026-03-30T05:00:00Z", "2026-03-28T19:59:59Z",
     "Mon 06:00 BST -> Sun 06:00 BST -> Sat 19:59:59 GMT"},
    {"2026-10-20T12:00:00Z", "2026-10-26T07:30:00Z", "2026-10-24T18:59:59Z",
     "Mon 07:30 GMT -> Sun 07:30 GMT -> Sat 19:59:59 BST"},
    {"2026-10-20T12:00:00Z", "2026-10-25T20:30:00Z", "2026-10-24T18:59:59Z",
     "Sun 20:30 GMT -> Sat 21:30 BST -> Sat 19:59:59 BST"},
    {"2026-10-20T12:00:00Z", "2026-10-26T08:00:00Z", "2026-10-25T08:00:00Z",
     "Mon 08:00 GMT -> Sun 08:00 GMT"},
    /* no moment of the window between the booking and the reminder's time */
    {"2026-01-14T21:00:00Z", "2026-01-15T23:00:00Z", NULL, "booked 21:00, reminder 23:00"},
    {"2026-01-14T05:00:00Z", "2026-01-15T06:00:00Z", NULL, "booked 05:00, reminder 06:00"},
    {"2026-01-14T19:00:00Z", "2026-01-15T21:00:00Z", "2026-01-14T19:59:59Z",
     "booked 19:00, reminder 21:00"},
    {"2026-01-14T19:59:59.400Z", "2026-01-15T21:00:00Z", "2026-01-14T19:59:59.400Z",
     "booked in the window's last second"},
    {"2026-01-14T05:00:00Z", "2026-01-15T09:00:00Z", "2026-01-14T09:00:00Z",
     "booked 05:00, reminder 09:00"},
};

START_TEST(reminder_table)
{
    int64_t due = -1;
    bool made = sendtime_reminder_due(&window, T(reminder_cases[_i].occurred),
                                      T(reminder_cases[_i].starts), &due);
    if (reminder_cases[_i].due == NULL) {
        ck_assert_msg(!made, "%s: no reminder expected", reminder_cases[_i].what);
    } else {
        ck_assert_msg(made, "%s: reminder expected", reminder_cases[_i].what);
        ck_assert_msg(due == T(reminder_cases[_i].due), "%s: due %lld", reminder_cases[_i].what,
                      (long long)due);
    }
}
END_TEST

/* ------------------------------------------------------------------ red deadline */

START_TEST(red_deadline)
{
    int64_t created = T("2026-01-14T02:00:00Z");
    ck_assert(sendtime_red_deadline(created) == T("2026-01-14T02:05:00Z"));
    ck_assert(!sendtime_red_is_late(created, T("2026-01-14T02:04:59.999Z")));
    ck_assert(sendtime_red_is_late(created, T("2026-01-14T02:05:00Z")));
    ck_assert(sendtime_red_is_late(created, T("2026-01-14T03:00:00Z")));
}
END_TEST

/* ------------------------------------------------------------------ retries */

/* A "random" source giving one fixed number. */
static uint64_t fixed_u64(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static const struct {
    int attempts;
    uint64_t r;
    int64_t delay_ms;
} delay_cases[] = {
    /* ceiling = min(1 h, 30 s * 2^(attempts-1)); delay = 1000 + r % (ceiling - 1000 + 1) */
    {1, 0, 1000},
    {1, 28999, 29999},
    {1, 29000, 30000},
    {1, 29001, 1000},
    {1, UINT64_MAX, 1000 + 1275}, /* (2^64 - 1) mod 29001 = 1275 */
    {0, 29000, 30000},            /* fewer than 1 counts as 1 */
    {-5, 29000, 30000},
    {2, 59000, 60000},
    {2, 59001, 1000},
    {2, UINT64_MAX, 1000 + 15132}, /* (2^64 - 1) mod 59001 = 15132 */
    {3, 119000, 120000},
    {4, 239000, 240000},
    {5, 479000, 480000},
    {6, 959000, 960000},
    {7, 1919000, 1920000},
    {8, 3599000, 3600000}, /* 30 s * 128 = 3840 s: capped at 1 h */
    {8, 3599001, 1000},
    {9, 3599000, 3600000},
    {INT_MAX, 3599000, 3600000},
};

START_TEST(delay_table)
{
    uint64_t r = delay_cases[_i].r;
    struct rand_source src = {fixed_u64, &r};
    ck_assert_int_eq(sendtime_retry_delay(delay_cases[_i].attempts, &src),
                     delay_cases[_i].delay_ms);
}
END_TEST

static const struct {
    bool family;
    const char *due_from, *now;
    int attempts;
    int64_t retry_after_ms;
    uint64_t r;
    const char *next; /* NULL: give up */
    const char *what;
} plan_cases[] = {
    {false, "2026-01-14T10:00:00Z", "2026-01-14T11:00:00Z", 1, -1, 0, "2026-01-14T11:00:01Z",
     "backoff floor"},
    {false, "2026-01-14T10:00:00Z", "2026-01-14T11:00:00Z", 3, -1, 119000, "2026-01-14T11:02:00Z",
     "backoff ceiling of attempt 3"},
    {false, "2026-01-14T10:00:00Z", "2026-01-14T11:00:00Z", 3, 45000, 0, "2026-01-14T11:00:45Z",
     "Retry-After wins"},
    {false, "2026-01-14T10:00:00Z", "2026-01-14T11:00:00Z", 3, 0, 0, "2026-01-14T11:00:00Z",
     "Retry-After 0"},
    {false, "2026-01-14T10:00:00Z", "2026-01-15T09:59:50Z", 8, -1, 3599000, "2026-01-15T10:00:00Z",
     "last try at 24 h"},
    {false, "2026-01-14T10:00:00Z", "2026-01-15T09:00:00Z", 1, 7200000, 0, "2026-01-15T10:00:00Z",
     "Retry-After past 24 h: last try at 24 h"},
    {false, "2026-01-14T10:00:00Z", "2026-01-15T10:00:00Z", 1, -1, 0, NULL, "24 h: failed"},
    {false, "2026-01-14T10:00:00Z", "2026-01-16T10:00:00Z", 1, -1, 0, NULL, "48 h: failed"},
    {true, "2026-01-14T10:00:00Z", "2026-01-14T19:59:30Z", 1, 60000, 0, "2026-01-15T08:00:00Z",
     "family text: into the next window"},
    {true, "2026-01-14T10:00:00Z", "2026-01-14T12:00:00Z", 1, 60000, 0, "2026-01-14T12:01:00Z",
     "family text inside the window"},
    {true, "2026-01-14T07:30:00Z", "2026-01-14T19:59:30Z", 1, 60000, 0, NULL,
     "family text: next window after 24 h"},
    {true, "2026-03-28T08:00:00Z", "2026-03-28T19:59:30Z", 1, 60000, 0, "2026-03-29T07:00:00Z",
     "family text over the spring change"},
};

START_TEST(plan_table)
{
    uint64_t r = plan_cases[_i].r;
    struct rand_source src = {fixed_u64, &r};
    int64_t next = -1;
    enum sendtime_retry got = sendtime_plan_retry(
        plan_cases[_i].family ? &window : NULL, T(plan_cases[_i].due_from), T(plan_cases[_i].now),
        plan_cases[_i].attempts, plan_cases[_i].retry_after_ms, &src, &next);
    if (plan_cases[_i].next == NULL) {
        ck_assert_msg(got == SENDTIME_GIVE_UP, "%s", plan_cases[_i].what);
    } else {
        ck_assert_msg(got == SENDTIME_RETRY, "%s", plan_cases[_i].what);
        ck_assert_msg(next == T(plan_cases[_i].next), "%s: next %lld", plan_cases[_i].what,
                      (long long)next);
    }
}
END_TEST

/* ------------------------------------------------------------------ midnight, clocks */

static const struct {
    const char *at, *midnight;
} midnight_cases[] = {
    {"2026-01-14T12:00:00Z", "2026-01-15T00:00:00Z"},
    {"2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z"}, /* strictly after */
    {"2026-07-15T12:00:00Z", "2026-07-15T23:00:00Z"},
    {"2026-07-15T23:00:00Z", "2026-07-16T23:00:00Z"},
    {"2026-03-28T12:00:00Z", "2026-03-29T00:00:00Z"},
    {"2026-03-29T12:00:00Z", "2026-03-29T23:00:00Z"},
    {"2026-10-24T12:00:00Z", "2026-10-24T23:00:00Z"},
    {"2026-10-25T12:00:00Z", "2026-10-26T00:00:00Z"},
};

START_TEST(midnight_table)
{
    ck_assert(sendtime_next_midnight(london, T(midnight_cases[_i].at)) ==
              T(midnight_cases[_i].midnight));
}
END_TEST

START_TEST(clocks)
{
    int64_t t = T("2026-01-14T10:00:00Z");
    struct clock fixed = {sendtime_fixed_now_ms, &t};
    ck_assert(sendtime_now_ms(&fixed) == t);
    t += 1500;
    ck_assert(sendtime_now_ms(&fixed) == T("2026-01-14T10:00:01.500Z"));

    struct clock sys = sendtime_system_clock();
    int64_t before = (int64_t)time(NULL) * 1000;
    int64_t now = sendtime_now_ms(&sys);
    ck_assert(now >= before && now < before + 60000);

    /* the test clock: real time shifted to a chosen instant, running at real speed */
    int64_t offset = T("2026-11-23T19:59:58Z") - (int64_t)time(NULL) * 1000;
    struct clock shifted = {sendtime_offset_now_ms, &offset};
    int64_t s = sendtime_now_ms(&shifted);
    ck_assert(s >= T("2026-11-23T19:59:58Z") && s < T("2026-11-23T20:00:58Z"));

    struct rand_source rnd = sendtime_system_random();
    uint64_t a = rnd.next_u64(rnd.ctx), b = rnd.next_u64(rnd.ctx), c = rnd.next_u64(rnd.ctx);
    ck_assert(a != b || b != c);
    for (int i = 1; i < 12; i++) {
        int64_t d = sendtime_retry_delay(i, &rnd);
        ck_assert(d >= 1000 && d <= 3600000);
    }
}
END_TEST

static Suite *sendtime_suite(void)
{
    Suite *s = suite_create("sendtime");
    TCase *tc = tcase_create("window");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, window_table, 0, N_ELEMS(window_cases));
    tcase_add_loop_test(tc, last_before_table, 0, N_ELEMS(last_cases));
    tcase_add_test(tc, bad_window_holds_nothing);
    tcase_add_loop_test(tc, not_before_table, 0, N_ELEMS(nb_cases));
    tcase_add_test(tc, red_and_family_names);
    tcase_add_loop_test(tc, midnight_table, 0, N_ELEMS(midnight_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("reminder");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, reminder_table, 0, N_ELEMS(reminder_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("retry");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, red_deadline);
    tcase_add_loop_test(tc, delay_table, 0, N_ELEMS(delay_cases));
    tcase_add_loop_test(tc, plan_table, 0, N_ELEMS(plan_cases));
    tcase_add_test(tc, clocks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sendtime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
