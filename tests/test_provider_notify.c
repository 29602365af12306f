/* Unit tests of the notify provider's pure parts: the API key, the JWT (compared with one
 * made by Python's hmac module, see below) and what each documented answer means. */
#include <check.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/provider_notify.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(api_key)
{
    char sid[37], secret[37];
    ck_assert_int_eq(provider_notify_parse_key("my_test-key-26785a09-ab16-4eb0-8407-a37497a57506-"
                                               "3d844edf-8d35-48ac-975b-e847b4f122b0",
                                               sid, secret),
                     0);
    ck_assert_str_eq(sid, "26785a09-ab16-4eb0-8407-a37497a57506");
    ck_assert_str_eq(secret, "3d844edf-8d35-48ac-975b-e847b4f122b0");
    ck_assert_int_eq(provider_notify_parse_key("26785a09-ab16-4eb0-8407-a37497a57506-"
                                               "3d844edf-8d35-48ac-975b-e847b4f122b0",
                                               sid, secret),
                     -1); /* no key name */
    ck_assert_int_eq(provider_notify_parse_key("k-26785a09-ab16-4eb0-8407-a37497a57506-"
                                               "3d844edf-8d35-48ac-975b-e847b4f122bZ",
                                               sid, secret),
                     -1);
    ck_assert_int_eq(provider_notify_parse_key("k-26785a09-ab16-4eb0-8407-a37497a57506_"
                                               "3d844edf-8d35-48ac-975b-e847b4f122b0",
                                               sid, secret),
                     -1);
    ck_assert_int_eq(provider_notify_parse_key(NULL, sid, secret), -1);
}
END_TEST

/* /usr/bin/python3 -c "import hmac,hashlib,base64,json
 *   b=lambda x: base64.urlsafe_b64encode(x).rstrip(b'=').decode()
 *   h=b(b'{\"typ\":\"JWT\",\"alg\":\"HS256\"}')
 *   p=b(json.dumps({'iss':'26785a09-ab16-4eb0-8407-a37497a57506','iat':1795428900},
 *                  separators=(',',':')).encode())
 *   print(h+'.'+p+'.'+b(hmac.new(b'3d844edf-8d35-48ac-975b-e847b4f122b0',
 *                                (h+'.'+p).encode(), hashlib.sha256).digest()))" */
START_TEST(jwt)
{
    char *t = provider_notify_jwt("26785a09-ab16-4eb0-8407-a37497a57506",
                                  "3d844edf-8d35-48ac-975b-e847b4f122b0", 1795428900);
    ck_assert_str_eq(t, "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
                        "eyJpc3MiOiIyNjc4NWEwOS1hYjE2LTRlYjAtODQwNy1hMzc0OTdhNTc1MDYiLCJpYXQiOjE3"
                        "OTU0Mjg5MDB9.JEW3hvT0pe8wxhlU9aHgOeZ91BqAMMKDvKNrVZ7ghEs");
    free(t);
}
END_TEST

static const struct {
    int result;
    long status;
    const char *body;
    long retry_after_s;
    enum provider_outcome outcome;
    const char *error;
    const char *ref;
    long retry_after_ms;
} answers[] = {
    {CURLE_OK, 201, "{\"id\": \"740e5834-3a29-46b4-9a6f-16142fde533a\", \"reference\": \"x\"}", -1,
     PROVIDER_ACCEPTED, "", "740e5834-3a29-46b4-9a6f-16142fde533a", -1},
    {CURLE_OK, 400,
     "{\"errors\": [{\"error\": \"BadRequestError\", \"message\": \"Can't send to this recipient "
     "+447700900123\"}], \"status_code\": 400}",
     -1, PROVIDER_PERMANENT, "notify 400 BadRequestError", "", -1},
    {CURLE_OK, 400,
     "{\"errors\": [{\"error\": \"ValidationError\", \"message\": \"phone_number Not a UK mobile "
     "number\"}], \"status_code\": 400}",
     -1, PROVIDER_PERMANENT, "notify 400 ValidationError", "", -1},
    {CURLE_OK, 403,
     "{\"errors\": [{\"error\": \"AuthError\", \"message\": \"Error: Your system clock must be "
     "accurate to within 30 seconds\"}], \"status_code\": 403}",
     -1, PROVIDER_AUTH, "notify 403 AuthError", "", -1},
    {CURLE_OK, 429,
     "{\"errors\": [{\"error\": \"RateLimitError\", \"message\": \"Exceeded rate limit for key "
     "type LIVE of 3000 requests per 60 seconds\"}], \"status_code\": 429}",
     30, PROVIDER_RATE_LIMITED, "notify 429 RateLimitError", "", 30000},
    {CURLE_OK, 429,
     "{\"errors\": [{\"error\": \"TooManyRequestsError\", \"message\": \"Exceeded send limits "
     "(250000) for today\"}], \"status_code\": 429}",
     -1, PROVIDER_DAILY_LIMIT, "notify 429 TooManyRequestsError", "", -1},
    {CURLE_OK, 500,
     "{\"errors\": [{\"error\": \"Exception\", \"message\": \"Internal server error\"}], "
     "\"status_code\": 500}",
     -1, PROVIDER_TRANSIENT, "notify 500 Exception", "", -1},
    {CURLE_OK, 503, "<html>bad gateway</html>", 120, PROVIDER_TRANSIENT, "notify 503", "", 120000},
    {CURLE_OK, 404, "", -1, PROVIDER_TRANSIENT, "notify 404", "", -1},
    {CURLE_OK, 400, "{\"errors\": [{\"error\": \"<script>x\"}]}", -1, PROVIDER_PERMANENT,
     "notify 400", "", -1},
    {CURLE_OPERATION_TIMEDOUT, 0, NULL, -1, PROVIDER_TRANSIENT, "notify: timeout", "", -1},
    {CURLE_GOT_NOTHING, 0, NULL, -1, PROVIDER_TRANSIENT, "notify: connection error", "", -1},
    {CURLE_RECV_ERROR, 0, NULL, -1, PROVIDER_TRANSIENT, "notify: connection error", "", -1},
    {CURLE_COULDNT_CONNECT, 0, NULL, -1, PROVIDER_TRANSIENT, "notify: connection error", "", -1},
    {CURLE_PARTIAL_FILE, 200, "{\"id\"", -1, PROVIDER_TRANSIENT, "notify: connection error", "",
     -1},
};

START_TEST(answer_table)
{
    struct provider_result r;
    const char *b = answers[_i].body;
    provider_notify_classify(answers[_i].result, answers[_i].status, b, b ? strlen(b) : 0,
                             answers[_i].retry_after_s, &r);
    ck_assert_int_eq(r.outcome, answers[_i].outcome);
    ck_assert_str_eq(r.error, answers[_i].error);
    ck_assert_str_eq(r.ref, answers[_i].ref);
    ck_assert_int_eq(r.retry_after_ms, answers[_i].retry_after_ms);
    /* Notify's message never reaches the error text (it may quote the recipient) */
    ck_assert_ptr_null(strstr(r.error, "+44"));
    ck_assert_ptr_null(strstr(r.error, "clock"));
}
END_TEST

static Suite *provider_notify_suite(void)
{
    Suite *s = suite_create("provider_notify");
    TCase *tc = tcase_create("notify");
    tcase_add_test(tc, api_key);
    tcase_add_test(tc, jwt);
    tcase_add_loop_test(tc, answer_table, 0, N_ELEMS(answers));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(provider_notify_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
