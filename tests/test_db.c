/* Unit tests: the pure parts of the database connection (db.h). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/db.h"

/* Which links db_tls_problem() lets pass: those that stay on the machine, and TLS that
 * verifies the server (sslmode=verify-full). */
static const struct {
    const char *host, *sslmode;
    bool ssl;
    const char *problem; /* a word of the reason, or NULL */
} tls_cases[] = {
    {"/run/postgresql", "prefer", false, NULL},
    {"localhost", "disable", false, NULL},
    {"127.0.0.1", "prefer", false, NULL},
    {"::1", "prefer", false, NULL},
    {"", NULL, false, NULL},
    {"db.example", "verify-full", true, NULL},
    {"db.example", "prefer", false, "not encrypted"},
    {"db.example", "disable", false, "not encrypted"},
    {"10.0.0.5", "require", true, "not verified"},
    {"db.example", "verify-ca", true, "not verified"},
    {"db.example", "prefer", true, "not verified"},
    {"127.example", "prefer", false, "not encrypted"}, /* a name, not a loopback address */
    {"127.255.0.1", "prefer", false, NULL},
};

START_TEST(test_tls_problem)
{
    const char *p = db_tls_problem(tls_cases[_i].host, tls_cases[_i].sslmode, tls_cases[_i].ssl);
    if (tls_cases[_i].problem == NULL)
        ck_assert_msg(p == NULL, "%s %s: %s", tls_cases[_i].host, tls_cases[_i].sslmode, p);
    else
        ck_assert_msg(p != NULL && strstr(p, tls_cases[_i].problem) != NULL, "%s %s: %s",
                      tls_cases[_i].host, tls_cases[_i].sslmode, p ? p : "(none)");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("tls");
    tcase_add_loop_test(tc, test_tls_problem, 0, sizeof tls_cases / sizeof tls_cases[0]);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
