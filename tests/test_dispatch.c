/* Unit tests of dispatch_next_state(): what becomes of a notification after a provider's
 * answer (notifications.md, "Outcomes and retries"), with a fixed clock and fixed random
 * numbers. Expected instants are worked out by hand (GMT in November, so local = UTC):
 * full jitter picks floor + r mod (ceiling - floor + 1) ms with floor 1 s and ceiling
 * min(1 h, 30 s * 2^(attempts - 1)); the random source here returns 29 000, so the wait is
 * 30 s whatever the ceiling, or 1 s with 0. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontdoor/caltime.h"
#include "frontdoor/dispatch.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int64_t T(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
    ck_assert_msg(rest != NULL && strcmp(rest, "Z") == 0, "bad test time %s", iso);
    return (int64_t)timegm(&tm) * 1000;
}

static uint64_t RND;
static uint64_t fixed_rand(void *ctx)
{
    (void)ctx;
    return RND;
}

static const struct {
    const char *what;
    enum provider_outcome outcome;
    int64_t retry_after_ms;
    bool family, red;
    const char *now, *due_from;
    int attempts;
    uint64_t rnd;
    const char *state;      /* sent, failed, queued */
    const char *not_before; /* queued: when */
    bool pause, alert;
} cases[] = {
    {"accepted", PROVIDER_ACCEPTED, -1, false, false, "2026-11-24T10:00:00Z",
     "2026-11-24T10:00:00Z", 1, 0, "sent", NULL, false, false},
    {"400: never retried", PROVIDER_PERMANENT, -1, false, false, "2026-11-24T10:00:00Z",
     "2026-11-24T10:00:00Z", 1, 0, "failed", NULL, false, false},
    {"5xx: backoff, first retry", PROVIDER_TRANSIENT, -1, false, false, "2026-11-24T10:00:00Z",
     "2026-11-24T10:00:00Z", 1, 29000, "queued", "2026-11-24T10:00:30Z", false, false},
    {"5xx: the floor", PROVIDER_TRANSIENT, -1, false, false, "2026-11-24T10:00:00Z",
     "2026-11-24T10:00:00Z", 5, 0, "queued", "2026-11-24T10:00:01Z", false, false},
    {"5xx: 24 h after becoming due it fails", PROVIDER_TRANSIENT, -1, false, false,
     "2026-11-25T10:00:00Z", "2026-11-24T10:00:00Z", 30, 29000, "failed", NULL, false, false},
    {"5xx: the last try is at 24 h", PROVIDER_TRANSIENT, -1, false, false, "2026-11-25T09:59:50Z",
     "2026-11-24T10:00:00Z", 30, 29000, "queued", "2026-11-25T10:00:00Z", false, false},
    {"5xx with Retry-After", PROVIDER_TRANSIENT, 120000, false, false, "2026-11-24T10:00:00Z",
     "2026-11-24T10:00:00Z", 1, 29000, "queued", "2026-11-24T10:02:00Z", false, false},
    {"429 RateLimitError: Retry-After", PROVIDER_RATE_LIMITED, 60000, false, false,
     "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", 2, 0, "queued", "2026-11-24T10:01:00Z", false,
     false},
    {"429 RateLimitError without Retry-After: backoff", PROVIDER_RATE_LIMITED, -1, false, false,
     "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", 2, 29000, "queued", "2026-11-24T10:00:30Z",
     false, false},
    {"403: retried, alert in the log", PROVIDER_AUTH, -1, false, false, "2026-11-24T10:00:00Z",
     "2026-11-24T10:00:00Z", 3, 29000, "queued", "2026-11-24T10:00:30Z", false, true},
    {"403 at 24 h: failed, still an alert", PROVIDER_AUTH, -1, false, false, "2026-11-25T10:00:00Z",
     "2026-11-24T10:00:00Z", 40, 0, "failed", NULL, false, true},
    {"429 TooManyRequestsError: paused until midnight", PROVIDER_DAILY_LIMIT, -1, false, false,
     "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", 1, 29000, "queued", "2026-11-25T00:00:00Z",
     true, false},
    {"daily limit in summer: midnight BST", PROVIDER_DAILY_LIMIT, -1, false, false,
     "2026-07-14T10:00:00Z", "2026-07-14T10:00:00Z", 1, 29000, "queued", "2026-07-14T23:00:00Z",
     true, false},
    {"daily limit, red: paused, yet retried at once", PROVIDER_DAILY_LIMIT, -1, false, true,
     "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z", 1, 29000, "queued", "2026-11-24T10:00:30Z",
     true, false},
    {"family text: a retry after 20:00 waits for 08:00", PROVIDER_TRANSIENT, -1, true, false,
     "2026-11-24T19:59:50Z", "2026-11-24T19:00:00Z", 1, 29000, "queued", "2026-11-25T08:00:00Z",
     false, false},
    {"family text: next window after the 24 h: failed", PROVIDER_TRANSIENT, -1, true, false,
     "2026-11-25T19:59:50Z", "2026-11-24T20:30:00Z", 9, 29000, "failed", NULL, false, false},
    {"staff email: no window", PROVIDER_TRANSIENT, -1, false, false, "2026-11-24T19:59:50Z",
     "2026-11-24T19:00:00Z", 1, 29000, "queued", "2026-11-24T20:00:20Z", false, false},
};

START_TEST(next_table)
{
    char err[256];
    struct tzone *z;
    ck_assert_msg(caltime_load_zone("Europe/London", &z, err, sizeof err) == 0, "%s", err);
    struct sms_window w = {z, 8 * 3600, 20 * 3600};
    struct rand_source r = {fixed_rand, NULL};
    RND = cases[_i].rnd;
    struct provider_result res = {.outcome = cases[_i].outcome,
                                  .retry_after_ms = cases[_i].retry_after_ms};
    struct dispatch_next n;
    dispatch_next_state(&res, &w, cases[_i].family, cases[_i].red, z, T(cases[_i].now),
                        T(cases[_i].due_from), cases[_i].attempts, &r, &n);
    ck_assert_msg(strcmp(n.state, cases[_i].state) == 0, "%s: %s", cases[_i].what, n.state);
    if (cases[_i].not_before) {
        char got[32];
        ck_assert_msg(n.not_before_ms == T(cases[_i].not_before), "%s: not_before %s",
                      cases[_i].what, caltime_format_utc(n.not_before_ms / 1000, got));
    }
    ck_assert_int_eq(n.pause_channel, cases[_i].pause);
    if (cases[_i].pause)
        ck_assert_int_eq(n.pause_until_ms, sendtime_next_midnight(z, T(cases[_i].now)));
    ck_assert_int_eq(n.log_alert, cases[_i].alert);
    caltime_free_zone(z);
}
END_TEST

static Suite *dispatch_suite(void)
{
    Suite *s = suite_create("dispatch");
    TCase *tc = tcase_create("outcomes");
    tcase_add_loop_test(tc, next_table, 0, N_ELEMS(cases));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dispatch_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
