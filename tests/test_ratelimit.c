/* Unit tests of ratelimit: at most N starts in any rolling window, never more, and no
 * slower than that either. Times are milliseconds stepped by hand. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "frontdoor/ratelimit.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A script: at `t`, `available` is expected, then `take` starts are recorded and the next
 * free instant is `next`. */
static const struct step {
    int64_t t;
    int available;
    int take;
    int64_t next;
} script[] = {
    /* limit 3 per 60 000 ms */
    {0, 3, 2, 0},           /* two at 0 */
    {10000, 1, 1, 60000},   /* the third at 10 s; full until the first two leave */
    {59999, 0, 0, 60000},   /* 0 is still inside (59999 - 60000, 59999] */
    {60000, 2, 1, 60000},   /* the two at 0 left exactly one window later */
    {60001, 1, 1, 70000},   /* full again: 10000, 60000, 60001 */
    {69999, 0, 0, 70000},   /* */
    {70000, 1, 0, 70000},   /* 10000 left */
    {200000, 3, 3, 260000}, /* all left long ago */
};

START_TEST(scripted)
{
    struct ratelimit rl;
    ck_assert_int_eq(ratelimit_init(&rl, 3, 60000), 0);
    for (size_t i = 0; i < N_ELEMS(script); i++) {
        const struct step *s = &script[i];
        ck_assert_msg(ratelimit_available(&rl, s->t) == s->available, "step %zu: available %d", i,
                      ratelimit_available(&rl, s->t));
        for (int k = 0; k < s->take; k++)
            ck_assert_int_eq(ratelimit_take(&rl, s->t), 0);
        ck_assert_msg(ratelimit_next_free_ms(&rl, s->t) == s->next, "step %zu: next %lld", i,
                      (long long)ratelimit_next_free_ms(&rl, s->t));
    }
    /* a take over the limit is refused and changes nothing */
    ck_assert_int_eq(ratelimit_available(&rl, 200000), 0);
    ck_assert_int_eq(ratelimit_take(&rl, 200000), -1);
    ck_assert_int_eq(ratelimit_next_free_ms(&rl, 200000), 260000);
    ratelimit_free(&rl);
}
END_TEST

/* Greedy use at random moments: in every window of the run there are at most `limit`
 * starts (checked by brute force over every start), and whenever one was wanted and
 * refused the window really was full. */
START_TEST(never_exceeded)
{
    const int limits[] = {1, 2, 5, 50, 3000};
    srandom(12345);
    for (size_t li = 0; li < N_ELEMS(limits); li++) {
        int limit = limits[li];
        const int64_t window = 60000;
        struct ratelimit rl;
        ck_assert_int_eq(ratelimit_init(&rl, limit, window), 0);
        size_t cap = 40000, n = 0;
        int64_t *starts = malloc(cap * sizeof *starts);
        int64_t t = 0;
        while (n < cap - 1 && t < 30 * window) {
            /* about 1.5 times the limit is wanted; bursts at the same ms too */
            t += random() % (2 * window / limit + 1);
            int want = (int)(random() % 4);
            for (int k = 0; k < want && n < cap - 1; k++) {
                if (ratelimit_available(&rl, t) > 0) {
                    ck_assert_int_eq(ratelimit_take(&rl, t), 0);
                    starts[n++] = t;
                } else {
                    /* refused: `limit` started in (t - window, t] */
                    int inside = 0;
                    for (size_t j = 0; j < n; j++)
                        inside += starts[j] > t - window && starts[j] <= t;
                    ck_assert_int_eq(inside, limit);
                    ck_assert_int_gt(ratelimit_next_free_ms(&rl, t), t);
                }
            }
        }
        ck_assert_int_gt(n, (size_t)limit); /* the test did reach the limit */
        for (size_t i = 0; i < n; i++) {
            int inside = 0;
            for (size_t j = i; j < n && starts[j] < starts[i] + window; j++)
                inside++;
            ck_assert_msg(inside <= limit, "limit %d: %d starts in [%lld, +60 s)", limit, inside,
                          (long long)starts[i]);
        }
        free(starts);
        ratelimit_free(&rl);
    }
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("window");
    tcase_add_test(tc, scripted);
    tcase_add_test(tc, never_exceeded);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ratelimit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
