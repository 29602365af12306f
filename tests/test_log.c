/* Unit tests: log lines and the masking helpers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/log.h"

/* ---- masking, table-driven */

static const struct {
    const char *in;
    const char *out;
} phone_cases[] = {
    {"07700 900123", "07*******23"},
    {"07700900123", "07*******23"},
    {"+44 7700 900123", "44********23"},
    {"01539 000000", "01*******00"},
    {"123", "***"},
    {"", "***"},
    {NULL, "***"},
    {"no digits here", "***"},
    {"0770 0900 123 4567 8901 2345 6789 0123 4567 8901", "***"}, /* absurd length */
};

START_TEST(test_mask_phone)
{
    char buf[64];
    ck_assert_str_eq(log_mask_phone(phone_cases[_i].in, buf, sizeof buf), phone_cases[_i].out);
}
END_TEST

static const struct {
    const char *in;
    const char *out;
} email_cases[] = {
    {"alex@example.org", "a***@example.org"},
    {"a@example.org", "a***@example.org"},
    {"referrer.name+tag@sub.example.org", "r***@sub.example.org"},
    {"no-at-sign", "***"},
    {"@example.org", "***"},
    {"alex@", "***"},
    {"", "***"},
    {NULL, "***"},
    {"alex smith@example.org", "***"},
    {"\xc3\xa9lodie@example.org", "****@example.org"},
};

START_TEST(test_mask_email)
{
    char buf[64];
    ck_assert_str_eq(log_mask_email(email_cases[_i].in, buf, sizeof buf), email_cases[_i].out);
}
END_TEST

START_TEST(test_mask_small_buffer)
{
    char buf[4];
    ck_assert_str_eq(log_mask_email("alex@example.org", buf, sizeof buf), "***");
    ck_assert_str_eq(log_mask_phone("07700 900123", buf, sizeof buf), "***");
}
END_TEST

/* ---- log lines */

static char *capture(enum log_level min, enum log_format_kind fmt, void (*emit)(void))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    log_setup(min, fmt, f);
    emit();
    fclose(f);
    log_setup(LOG_INFO, LOG_FORMAT_LOGFMT, NULL);
    return buf;
}

static void emit_routed(void)
{
    log_info("referral routed", "referral", "REF-2026-000123", "route", "school", "destination",
             "school-900301", "rule", "school", "priority", "green");
}

START_TEST(test_logfmt_line)
{
    char *s = capture(LOG_INFO, LOG_FORMAT_LOGFMT, emit_routed);
    ck_assert_str_eq(s, "level=info msg=\"referral routed\" referral=REF-2026-000123 "
                        "route=school destination=school-900301 rule=school priority=green\n");
    free(s);
}
END_TEST

START_TEST(test_json_line)
{
    char *s = capture(LOG_INFO, LOG_FORMAT_JSON, emit_routed);
    ck_assert_str_eq(s, "{\"level\":\"info\",\"msg\":\"referral routed\",\"referral\":"
                        "\"REF-2026-000123\",\"route\":\"school\",\"destination\":"
                        "\"school-900301\",\"rule\":\"school\",\"priority\":\"green\"}\n");
    free(s);
}
END_TEST

static void emit_hostile(void)
{
    log_warn("event rejected", "detail", "line one\nlevel=error msg=\"forged\"", "empty", "",
             "bad key!", "x", "null", NULL);
}

START_TEST(test_values_cannot_forge_lines)
{
    char *s = capture(LOG_DEBUG, LOG_FORMAT_LOGFMT, emit_hostile);
    /* exactly one line, the newline and quotes escaped */
    ck_assert_ptr_eq(strchr(s, '\n'), s + strlen(s) - 1);
    ck_assert_str_eq(s, "level=warn msg=\"event rejected\" "
                        "detail=\"line one\\nlevel=error msg=\\\"forged\\\"\" empty=\"\" "
                        "invalid_key=x null=\"\"\n");
    free(s);
    s = capture(LOG_DEBUG, LOG_FORMAT_JSON, emit_hostile);
    ck_assert_ptr_eq(strchr(s, '\n'), s + strlen(s) - 1);
    ck_assert_ptr_nonnull(strstr(s, "\"detail\":\"line one\\nlevel=error msg=\\\"forged\\\"\""));
    free(s);
}
END_TEST

static void emit_levels(void)
{
    log_debug("d");
    log_info("i");
    log_warn("w");
    log_error("e");
}

static const struct {
    enum log_level min;
    const char *expect;
} level_cases[] = {
    {LOG_DEBUG, "level=debug msg=d\nlevel=info msg=i\nlevel=warn msg=w\nlevel=error msg=e\n"},
    {LOG_INFO, "level=info msg=i\nlevel=warn msg=w\nlevel=error msg=e\n"},
    {LOG_WARN, "level=warn msg=w\nlevel=error msg=e\n"},
    {LOG_ERROR, "level=error msg=e\n"},
    {LOG_OFF, ""},
};

START_TEST(test_level_filter)
{
    char *s = capture(level_cases[_i].min, LOG_FORMAT_LOGFMT, emit_levels);
    ck_assert_str_eq(s, level_cases[_i].expect);
    free(s);
}
END_TEST

static const struct {
    const char *name;
    int level;
} parse_cases[] = {
    {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN}, {"warning", LOG_WARN},
    {"error", LOG_ERROR}, {"verbose", -1},    {"", -1},           {"INFO", -1},
};

START_TEST(test_parse_level)
{
    ck_assert_int_eq(log_parse_level(parse_cases[_i].name), parse_cases[_i].level);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("mask");
    tcase_add_loop_test(tc, test_mask_phone, 0, N(phone_cases));
    tcase_add_loop_test(tc, test_mask_email, 0, N(email_cases));
    tcase_add_test(tc, test_mask_small_buffer);
    suite_add_tcase(s, tc);
    tc = tcase_create("lines");
    tcase_add_test(tc, test_logfmt_line);
    tcase_add_test(tc, test_json_line);
    tcase_add_test(tc, test_values_cannot_forge_lines);
    tcase_add_loop_test(tc, test_level_filter, 0, N(level_cases));
    tcase_add_loop_test(tc, test_parse_level, 0, N(parse_cases));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
