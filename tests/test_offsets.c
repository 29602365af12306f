/* Unit tests: the per-partition offset tracker (which offset may be stored). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "frontdoor/offsets.h"

/* One step of a script: begin an offset, complete one, or reset. */
enum op { B, C, R, END };

struct step {
    enum op op;
    int64_t offset;
    int64_t want; /* B: enum offsets_begin_result; C: offset to store or -1 */
};

static const struct {
    const char *name;
    struct step steps[16];
    size_t want_in_flight;
} scripts[] = {
    {"in order",
     {{B, 0, OFFSETS_BEGUN}, {B, 1, OFFSETS_BEGUN}, {C, 0, 1}, {C, 1, 2}, {END, 0, 0}},
     0},
    {"later finishes first: nothing stored until the earlier is done",
     {{B, 5, OFFSETS_BEGUN},
      {B, 6, OFFSETS_BEGUN},
      {B, 7, OFFSETS_BEGUN},
      {C, 7, -1},
      {C, 6, -1},
      {C, 5, 8},
      {END, 0, 0}},
     0},
    {"middle done, head pending",
     {{B, 10, OFFSETS_BEGUN},
      {B, 11, OFFSETS_BEGUN},
      {B, 12, OFFSETS_BEGUN},
      {C, 11, -1},
      {END, 0, 0}},
     3},
    {"head done releases only the leading run",
     {{B, 1, OFFSETS_BEGUN},
      {B, 2, OFFSETS_BEGUN},
      {B, 3, OFFSETS_BEGUN},
      {B, 4, OFFSETS_BEGUN},
      {C, 2, -1},
      {C, 1, 3},
      {C, 4, -1},
      {END, 0, 0}},
     2},
    {"gaps in offsets (compaction, transaction markers)",
     {{B, 100, OFFSETS_BEGUN}, {B, 105, OFFSETS_BEGUN}, {C, 105, -1}, {C, 100, 106}, {END, 0, 0}},
     0},
    {"completing twice or an unknown offset changes nothing",
     {{B, 3, OFFSETS_BEGUN},
      {B, 4, OFFSETS_BEGUN},
      {C, 4, -1},
      {C, 4, -1},
      {C, 99, -1},
      {C, 3, 5},
      {C, 3, -1},
      {END, 0, 0}},
     0},
    {"offsets must rise",
     {{B, 7, OFFSETS_BEGUN},
      {B, 7, OFFSETS_BACKWARDS},
      {B, 6, OFFSETS_BACKWARDS},
      {B, -1, OFFSETS_BACKWARDS},
      {END, 0, 0}},
     1},
    {"a finished offset cannot be begun again",
     {{B, 7, OFFSETS_BEGUN},
      {C, 7, 8},
      {B, 7, OFFSETS_BACKWARDS},
      {B, 8, OFFSETS_BEGUN},
      {END, 0, 0}},
     1},
    {"reset forgets in-flight offsets (revoked or lost partition)",
     {{B, 7, OFFSETS_BEGUN},
      {B, 8, OFFSETS_BEGUN},
      {R, 0, 0},
      {C, 7, -1},
      {B, 3, OFFSETS_BEGUN},
      {C, 3, 4},
      {END, 0, 0}},
     0},
    {"complete on an empty tracker", {{C, 0, -1}, {END, 0, 0}}, 0},
};

START_TEST(test_script)
{
    struct partition_offsets p;
    offsets_init(&p);
    for (const struct step *s = scripts[_i].steps; s->op != END; s++) {
        switch (s->op) {
        case B:
            ck_assert_msg(offsets_begin(&p, s->offset) == (enum offsets_begin_result)s->want,
                          "%s: begin %lld", scripts[_i].name, (long long)s->offset);
            break;
        case C: {
            int64_t got = offsets_complete(&p, s->offset);
            ck_assert_msg(got == s->want, "%s: complete %lld gave %lld, want %lld",
                          scripts[_i].name, (long long)s->offset, (long long)got,
                          (long long)s->want);
            break;
        }
        case R:
            offsets_reset(&p);
            break;
        case END:
            break;
        }
    }
    ck_assert_msg(offsets_in_flight(&p) == scripts[_i].want_in_flight, "%s: in flight %zu",
                  scripts[_i].name, offsets_in_flight(&p));
    offsets_free(&p);
}
END_TEST

/* Many offsets, the ring grown and wrapped, completed in a scrambled order: the stored
 * offset only ever rises, never passes a pending offset, and ends past the last one. */
START_TEST(test_scrambled_many)
{
    enum { N = 5000 };
    struct partition_offsets p;
    offsets_init(&p);
    static int64_t order[N];
    int64_t base = 1000;
    /* Begin in waves so the ring wraps around while it holds entries. */
    int64_t next = 0, stored = -1;
    size_t n_order = 0;
    unsigned seed = 12345;
    while (next < N || n_order > 0) {
        while (next < N && n_order < 300) {
            ck_assert_int_eq(offsets_begin(&p, base + next), OFFSETS_BEGUN);
            order[n_order++] = base + next;
            next++;
        }
        /* complete a pseudo-random pending one */
        seed = seed * 1103515245u + 12345u;
        size_t k = (seed >> 8) % n_order;
        int64_t off = order[k];
        order[k] = order[--n_order];
        int64_t got = offsets_complete(&p, off);
        if (got >= 0) {
            ck_assert_int_gt(got, stored);
            /* nothing below the stored offset may still be pending */
            for (size_t j = 0; j < n_order; j++)
                ck_assert_int_ge(order[j], got);
            stored = got;
        }
    }
    ck_assert_int_eq(stored, base + N);
    ck_assert_uint_eq(offsets_in_flight(&p), 0);
    offsets_free(&p);
}
END_TEST

START_TEST(test_pending)
{
    struct partition_offsets p;
    offsets_init(&p);
    ck_assert(!offsets_pending(&p, 1));
    offsets_begin(&p, 1);
    offsets_begin(&p, 2);
    ck_assert(offsets_pending(&p, 1));
    offsets_complete(&p, 2);
    ck_assert(!offsets_pending(&p, 2));
    ck_assert(offsets_pending(&p, 1));
    offsets_free(&p);
}
END_TEST

static Suite *offsets_suite(void)
{
    Suite *s = suite_create("offsets");
    TCase *tc = tcase_create("tracker");
    tcase_add_loop_test(tc, test_script, 0, sizeof scripts / sizeof scripts[0]);
    tcase_add_test(tc, test_scrambled_many);
    tcase_add_test(tc, test_pending);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(offsets_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
