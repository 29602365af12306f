/* Unit tests of the smtp provider's answer table (notifications.md: SMTP 5xx permanent,
 * 4xx and connection errors transient). */
#include <check.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/provider_smtp.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    int result;
    long reply;
    enum provider_outcome outcome;
    const char *error;
} replies[] = {
    {CURLE_OK, 250, PROVIDER_ACCEPTED, ""},
    {CURLE_SEND_ERROR, 550, PROVIDER_PERMANENT, "smtp 550"}, /* RCPT refused */
    {CURLE_WEIRD_SERVER_REPLY, 554, PROVIDER_PERMANENT, "smtp 554"},
    {CURLE_LOGIN_DENIED, 535, PROVIDER_PERMANENT, "smtp 535"},
    {CURLE_SEND_ERROR, 451, PROVIDER_TRANSIENT, "smtp 451"},
    {CURLE_WEIRD_SERVER_REPLY, 421, PROVIDER_TRANSIENT, "smtp 421"},
    {CURLE_OPERATION_TIMEDOUT, 0, PROVIDER_TRANSIENT, "smtp: timeout"},
    {CURLE_COULDNT_CONNECT, 0, PROVIDER_TRANSIENT, "smtp: connection error"},
    {CURLE_GOT_NOTHING, 0, PROVIDER_TRANSIENT, "smtp: connection error"},
    {CURLE_USE_SSL_FAILED, 250, PROVIDER_TRANSIENT, "smtp: the relay does not offer STARTTLS"},
};

START_TEST(reply_table)
{
    struct provider_result r;
    provider_smtp_classify(replies[_i].result, replies[_i].reply, &r);
    ck_assert_int_eq(r.outcome, replies[_i].outcome);
    ck_assert_str_eq(r.error, replies[_i].error);
    ck_assert_int_eq(r.retry_after_ms, -1);
}
END_TEST

static Suite *provider_smtp_suite(void)
{
    Suite *s = suite_create("provider_smtp");
    TCase *tc = tcase_create("smtp");
    tcase_add_loop_test(tc, reply_table, 0, N_ELEMS(replies));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(provider_smtp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
