/* Unit tests of mobile: UK mobile numbers to E.164, everything else invalid_mobile.
 * Expected numbers are written out by hand from Ofcom's numbering plan. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/mobile.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *in;
    const char *e164; /* NULL: invalid_mobile */
} cases[] = {
    /* the shapes people write */
    {"07700 900123", "+447700900123"},
    {"07700900123", "+447700900123"},
    {"+44 7700 900123", "+447700900123"},
    {"447700900123", "+447700900123"},
    {"+447700900123", "+447700900123"},
    {"(07700) 900-123", "+447700900123"},
    {"(07700) 900123", "+447700900123"},
    {"07700-900-123", "+447700900123"},
    {"0770 090 0123", "+447700900123"},
    {"  07700 900123  ", "+447700900123"},
    {"07700\t900123", "+447700900123"},
    {"+44 (0)7700 900123", "+447700900123"},
    {"+44(0)7700900123", "+447700900123"},
    {"44 (0)7700 900123", "+447700900123"},
    {"0044 7700 900123", "+447700900123"},
    {"00447700900123", "+447700900123"},
    {"+44-7700-900-123", "+447700900123"},
    /* mobile ranges */
    {"07123 456789", "+447123456789"},
    {"07400 123456", "+447400123456"},
    {"07512 345678", "+447512345678"},
    {"07812 345678", "+447812345678"},
    {"07912 345678", "+447912345678"},
    {"07624 123456", "+447624123456"}, /* Isle of Man */
    /* not mobiles */
    {"07012 345678", NULL}, /* personal number */
    {"07612 345678", NULL}, /* pager */
    {"01539 000000", NULL}, /* landline, Kendal */
    {"020 7946 0000", NULL},
    {"0113 496 0000", NULL},
    {"0300 123 4567", NULL},
    {"0800 123 4567", NULL},
    {"0900 123 4567", NULL},
    {"+44 20 7946 0000", NULL},
    {"441539000000", NULL},
    /* not UK */
    {"+33 6 12 34 56 78", NULL},
    {"+353 85 123 4567", NULL},
    {"+1 202 555 0100", NULL},
    {"0033612345678", NULL},
    {"7700900123", NULL}, /* no 0 or 44 in front */
    /* wrong lengths */
    {"0770090012", NULL},
    {"077009001234", NULL},
    {"+44770090012", NULL},
    {"+4477009001234", NULL},
    {"+44 07700 900123", NULL}, /* the trunk 0 after +44 only in brackets */
    {"4407700900123", NULL},
    {"0", NULL},
    {"07", NULL},
    /* other characters and shapes */
    {"07700 9OO123", NULL},
    {"07700.900.123", NULL},
    {"07700 900123 ext 4", NULL},
    {"tel:07700900123", NULL},
    {"+44 7700 900123+", NULL},
    {"44+7700900123", NULL},
    {"++447700900123", NULL},
    {"(07700 900123", NULL},
    {"07700) 900123", NULL},
    {"()07700900123", NULL},
    {"0(7700) 900123", NULL},
    {"(07700) (900) 123", NULL},
    {"+44 (7700) 900123", NULL},
    {"+44 (1)7700 900123", NULL},
    {"+(44) 7700 900123", NULL},
    {"07700\n900123", NULL},
    {"\xef\xbc\x90\x37\x37\x30\x30\x39\x30\x30\x31\x32\x33", NULL}, /* fullwidth 0 */
    {"0770090012300000000000000000000000000000000000000000", NULL},
    {"", NULL},
    {"   ", NULL},
    {"+", NULL},
    {NULL, NULL},
};

START_TEST(shapes)
{
    char out[MOBILE_E164_SIZE];
    const char *reason = "unset";
    int rc = mobile_normalise(cases[_i].in, out, sizeof out, &reason);
    if (cases[_i].e164 != NULL) {
        ck_assert_msg(rc == 0, "'%s' should be valid", cases[_i].in);
        ck_assert_str_eq(out, cases[_i].e164);
        ck_assert_ptr_null(reason);
    } else {
        ck_assert_msg(rc == -1, "'%s' should be invalid, got %s",
                      cases[_i].in ? cases[_i].in : "NULL", out);
        ck_assert_str_eq(reason, "invalid_mobile");
        ck_assert_str_eq(out, "");
    }
}
END_TEST

START_TEST(small_buffer_and_null_reason)
{
    char out[MOBILE_E164_SIZE - 1] = "x";
    const char *reason = NULL;
    ck_assert_int_eq(mobile_normalise("07700 900123", out, sizeof out, &reason), -1);
    ck_assert_str_eq(reason, MOBILE_REASON_INVALID);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(mobile_normalise("07700 900123", NULL, 0, &reason), -1);
    char ok[MOBILE_E164_SIZE];
    ck_assert_int_eq(mobile_normalise("07700 900123", ok, sizeof ok, NULL), 0);
    ck_assert_str_eq(ok, "+447700900123");
    ck_assert_int_eq(mobile_normalise("01539 000000", ok, sizeof ok, NULL), -1);
}
END_TEST

static Suite *mobile_suite(void)
{
    Suite *s = suite_create("mobile");
    TCase *tc = tcase_create("normalise");
    tcase_add_loop_test(tc, shapes, 0, N_ELEMS(cases));
    tcase_add_test(tc, small_buffer_and_null_reason);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mobile_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
