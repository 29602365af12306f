/* Unit tests: dbbulk, rows as PostgreSQL array literal elements. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/db.h"
#include "frontdoor/dbbulk.h"

static const struct {
    const char *in, *want;
} quotes[] = {
    {"plain", "\"plain\""},
    {"", "\"\""},
    {"NULL", "\"NULL\""}, /* quoted: the text NULL, not SQL NULL */
    {"a\"b", "\"a\\\"b\""},
    {"back\\slash", "\"back\\\\slash\""},
    {"{x},y", "\"{x},y\""},
    {"\\\"", "\"\\\\\\\"\""},
    {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
};

START_TEST(test_quote_text)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    ck_assert_int_eq(dbbulk_quote_text(&buf, &len, &cap, quotes[_i].in), 0);
    ck_assert_str_eq(buf, quotes[_i].want);
    ck_assert_uint_eq(len, strlen(quotes[_i].want));
    free(buf);
}
END_TEST

/* Rows are counted, a flush appends exactly one statement and empties the bulk; an empty
 * bulk appends nothing. */
START_TEST(test_flush)
{
    struct dbbulk *b = dbbulk_new("SELECT * FROM unnest($1::text[], $2::bytea[])", 2);
    ck_assert_ptr_nonnull(b);
    struct db_round *r = db_round_new();
    ck_assert_int_eq(dbbulk_flush(b, r), -2);
    ck_assert_uint_eq(db_round_count(r), 0);
    const char *v1[2] = {"a", "\x01\xff"};
    const long l1[2] = {-1, 2};
    const char *v2[2] = {NULL, NULL};
    ck_assert_int_eq(dbbulk_add(b, v1, l1), 0);
    ck_assert_int_eq(dbbulk_add(b, v2, NULL), 0);
    ck_assert_uint_eq(dbbulk_rows(b), 2);
    ck_assert_int_eq(dbbulk_flush(b, r), 0);
    ck_assert_uint_eq(db_round_count(r), 1);
    ck_assert_uint_eq(dbbulk_rows(b), 0);
    ck_assert_int_eq(dbbulk_add(b, v1, l1), 0);
    ck_assert_int_eq(dbbulk_flush(b, r), 1);
    db_round_free(r);
    dbbulk_free(b);
    ck_assert_ptr_null(dbbulk_new("x", 0));
    ck_assert_ptr_null(dbbulk_new("x", DBBULK_MAX_COLS + 1));
}
END_TEST

/* db_round_take moves statements in order and leaves the source empty. */
START_TEST(test_round_take)
{
    struct db_round *a = db_round_new(), *b = db_round_new();
    const char *v[1] = {"1"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(db_round_addv(a, "SELECT $1", 1, v), i);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(db_round_addv(b, "SELECT $1", 1, v), i);
    ck_assert_int_eq(db_round_take(a, b), 3);
    ck_assert_uint_eq(db_round_count(a), 23);
    ck_assert_uint_eq(db_round_count(b), 0);
    ck_assert_int_eq(db_round_take(a, b), 23);
    ck_assert_uint_eq(db_round_count(a), 23);
    db_round_free(a);
    db_round_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dbbulk");
    TCase *tc = tcase_create("dbbulk");
    tcase_add_loop_test(tc, test_quote_text, 0, (int)(sizeof quotes / sizeof quotes[0]));
    tcase_add_test(tc, test_flush);
    tcase_add_test(tc, test_round_take);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
