/* Integration tests of the database connection (db.h) against the real PostgreSQL
 * fixture (FD_PG_CONNINFO): statements parsed once per connection (db_options.prepare)
 * give the same results as unnamed ones, run by name from then on (the server's
 * pg_prepared_statements counts their plans), and every way a Parse can fail (bad SQL,
 * an aborted transaction, a lost connection) fails only its own round and is parsed again
 * later. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "frontdoor/db.h"

static struct event_base *base;
static struct event *tick;

struct conn {
    struct db *db;
    bool up;
    int downs;
};

struct wait {
    bool done;
    enum db_status st;
};

static void on_up(void *arg)
{
    ((struct conn *)arg)->up = true;
}

static void on_down(void *arg, const char *reason)
{
    (void)reason;
    struct conn *c = arg;
    c->up = false;
    c->downs++;
}

static void on_round(void *arg, struct db_round *r, enum db_status st)
{
    (void)r;
    struct wait *w = arg;
    w->st = st;
    w->done = true;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

/* Run the loop until *flag holds; the test fails after 20 s. */
static void loop_until(const bool *flag)
{
    time_t deadline = time(NULL) + 20;
    while (!*flag && time(NULL) < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    ck_assert_msg(*flag, "timed out");
}

static void setup(void)
{
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 50000}; /* wakes EVLOOP_ONCE when nothing else happens */
    event_add(tick, &tv);
}

static void teardown(void)
{
    event_free(tick);
    event_base_free(base);
}

static void conn_open(struct conn *c, bool prepare)
{
    const char *ci = getenv("FD_PG_CONNINFO");
    ck_assert_msg(ci != NULL, "FD_PG_CONNINFO is not set (run under ctest)");
    memset(c, 0, sizeof *c);
    struct db_options o = {.conninfo = ci,
                           .name = "it-db",
                           .backoff_initial_ms = 50,
                           .skip_schema_check = true,
                           .prepare = prepare};
    struct db_callbacks cb = {.on_up = on_up, .on_down = on_down, .arg = c};
    char err[256];
    ck_assert_int_eq(db_open(base, &o, &cb, &c->db, err, sizeof err), 0);
    loop_until(&c->up);
}

static enum db_status run(struct conn *c, struct db_round *r)
{
    struct wait w = {0};
    ck_assert_int_eq(db_submit(c->db, r, on_round, &w), 0);
    loop_until(&w.done);
    return w.st;
}

static const char *value(struct db_round *r, size_t stmt)
{
    PGresult *res = db_round_result(r, stmt);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(PQntuples(res), 1);
    return PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0);
}

/* One statement, one row, one column: its text. */
static void expect_one(struct conn *c, const char *sql, int n, const char *const *v,
                       const char *want)
{
    struct db_round *r = db_round_new();
    ck_assert_int_eq(db_round_addv(r, sql, n, v), 0);
    ck_assert_int_eq(run(c, r), DB_OK);
    ck_assert_str_eq(value(r, 0), want);
    db_round_free(r);
}

/* Executions of `sql` as this session's prepared statement (its custom plus generic
 * plans), or -1 when the session has no such statement. */
static int executions(struct conn *c, const char *sql)
{
    struct db_round *r = db_round_new();
    const char *v[] = {sql};
    ck_assert_int_eq(db_round_addv(r,
                                   "SELECT coalesce((SELECT (generic_plans + custom_plans)::int "
                                   "FROM pg_prepared_statements WHERE statement = $1), -1)",
                                   1, v),
                     0);
    ck_assert_int_eq(run(c, r), DB_OK);
    int n = atoi(value(r, 0));
    db_round_free(r);
    return n;
}

/* Parameters as the daemon sends them, by name and unnamed alike: text, SQL NULL and
 * binary bytea. */
static const struct {
    const char *sql;
    const char *a, *b;
    int blen; /* b as binary of this length, or -1 for text */
    const char *want;
} cases[] = {
    {"SELECT ($1::int + $2::int)::text", "40", "2", -1, "42"},
    {"SELECT coalesce($1::text, 'null') || '/' || coalesce($2::text, 'null')", NULL, "x", -1,
     "null/x"},
    {"SELECT length($2::bytea)::text || ':' || $1::text", "n", "a\0b\0c", 5, "5:n"},
    {"SELECT $1::jsonb -> 'k' ->> 0 || $2::text", "{\"k\": [\"v\"]}", "!", -1, "v!"},
};

START_TEST(test_same_results)
{
    /* _i: case; each run four times on a connection that prepares and one that does not */
    struct conn p, u;
    conn_open(&p, true);
    conn_open(&u, false);
    for (int k = 0; k < 4; k++) {
        struct conn *cs[] = {&p, &u};
        for (int j = 0; j < 2; j++) {
            struct db_round *r = db_round_new();
            const char *v[] = {cases[_i].a, cases[_i].b};
            int len[] = {0, cases[_i].blen < 0 ? 0 : cases[_i].blen};
            int fmt[] = {0, cases[_i].blen < 0 ? 0 : 1};
            ck_assert_int_eq(db_round_add(r, cases[_i].sql, 2, v, len, fmt), 0);
            ck_assert_int_eq(run(cs[j], r), DB_OK);
            ck_assert_str_eq(value(r, 0), cases[_i].want);
            db_round_free(r);
        }
    }
    ck_assert_int_eq(executions(&p, cases[_i].sql), 4);
    ck_assert_int_eq(executions(&u, cases[_i].sql), -1);
    db_free(p.db);
    db_free(u.db);
}
END_TEST

START_TEST(test_repeated_in_one_round)
{
    /* a statement new to the connection three times in one round: parsed once before the
     * first, all three by name */
    static const char *const sql = "SELECT ($1::int * 10)::text";
    struct conn c;
    conn_open(&c, true);
    struct db_round *r = db_round_new();
    const char *v[][1] = {{"1"}, {"2"}, {"3"}};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(db_round_addv(r, sql, 1, v[i]), i);
    ck_assert_int_eq(run(&c, r), DB_OK);
    ck_assert_str_eq(value(r, 0), "10");
    ck_assert_str_eq(value(r, 1), "20");
    ck_assert_str_eq(value(r, 2), "30");
    db_round_free(r);
    ck_assert_int_eq(executions(&c, sql), 3);
    db_free(c.db);
}
END_TEST

START_TEST(test_bad_sql)
{
    /* a Parse that fails: the round fails at that statement with the server's SQLSTATE
     * (not "no such prepared statement"), the next round runs, and the same text fails
     * the same way again */
    static const char *const bad = "SELEC 1";
    struct conn c;
    conn_open(&c, true);
    for (int k = 0; k < 2; k++) {
        struct db_round *r = db_round_new();
        ck_assert_int_eq(db_round_addv(r, "SELECT 'before'", 0, NULL), 0);
        ck_assert_int_eq(db_round_addv(r, bad, 0, NULL), 1);
        ck_assert_int_eq(db_round_addv(r, "SELECT 'after'", 0, NULL), 2);
        ck_assert_int_eq(run(&c, r), DB_ERROR);
        ck_assert_str_eq(db_round_sqlstate(r), "42601");
        ck_assert_int_eq(db_round_failed_index(r), 1);
        ck_assert_str_eq(value(r, 0), "before");
        db_round_free(r);
        expect_one(&c, "SELECT 'next'", 0, NULL, "next");
    }
    ck_assert_int_eq(executions(&c, "SELECT 'next'"), 2);
    ck_assert_int_eq(c.downs, 0);
    db_free(c.db);
}
END_TEST

START_TEST(test_aborted_transaction)
{
    /* a statement first seen in an aborted transaction cannot be parsed (25P02); after
     * ROLLBACK it is parsed and runs */
    static const char *const sql = "SELECT ($1::int * 3)::text";
    struct conn c;
    conn_open(&c, true);
    struct db_round *r = db_round_new();
    ck_assert_int_eq(db_round_addv(r, "BEGIN", 0, NULL), 0);
    ck_assert_int_eq(db_round_addv(r, "SELECT 1 / 0", 0, NULL), 1);
    ck_assert_int_eq(run(&c, r), DB_ERROR);
    ck_assert_str_eq(db_round_sqlstate(r), "22012");
    db_round_reset(r);
    const char *v[] = {"5"};
    ck_assert_int_eq(db_round_addv(r, sql, 1, v), 0);
    ck_assert_int_eq(run(&c, r), DB_ERROR);
    ck_assert_str_eq(db_round_sqlstate(r), "25P02");
    db_round_reset(r);
    ck_assert_int_eq(db_round_addv(r, "ROLLBACK", 0, NULL), 0);
    ck_assert_int_eq(run(&c, r), DB_OK);
    db_round_free(r);
    expect_one(&c, sql, 1, v, "15");
    expect_one(&c, sql, 1, v, "15");
    ck_assert_int_eq(executions(&c, sql), 2);
    db_free(c.db);
}
END_TEST

START_TEST(test_reconnect)
{
    /* the session ends (its backend terminated): the new session has none of the old
     * one's statements, and the daemon's are parsed there again */
    static const char *const sql = "SELECT ($1::int - 1)::text";
    struct conn c;
    conn_open(&c, true);
    const char *v[] = {"8"};
    expect_one(&c, sql, 1, v, "7");
    expect_one(&c, sql, 1, v, "7");
    ck_assert_int_eq(executions(&c, sql), 2);
    struct db_round *r = db_round_new();
    ck_assert_int_eq(db_round_addv(r, "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL), 0);
    enum db_status st = run(&c, r);
    ck_assert(st == DB_LOST || st == DB_ERROR);
    db_round_free(r);
    loop_until(&c.up);
    ck_assert_int_eq(c.downs, 1);
    expect_one(&c, sql, 1, v, "7");
    ck_assert_int_eq(executions(&c, sql), 1);
    db_free(c.db);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("db (PostgreSQL)");
    TCase *tc = tcase_create("prepare");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_same_results, 0, sizeof cases / sizeof cases[0]);
    tcase_add_test(tc, test_repeated_in_one_round);
    tcase_add_test(tc, test_bad_sql);
    tcase_add_test(tc, test_aborted_transaction);
    tcase_add_test(tc, test_reconnect);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
