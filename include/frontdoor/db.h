/* db: one asynchronous PostgreSQL connection driven by the libevent loop.
 *
 * libpq runs non-blocking in pipeline mode: the connection is opened with
 * PQconnectStartParams/PQconnectPoll on PQsocket(), statements are queued with
 * PQsendQueryParams (or, with db_options.prepare, parsed once with PQsendPrepare and run
 * with PQsendQueryPrepared) and flushed on write readiness, results are read on read
 * readiness.
 * Nothing here blocks, so it is safe in any callback of the loop.
 *
 * Work is sent as rounds: a list of statements followed by one pipeline Sync, answered
 * by one callback with every statement's result. A transaction may span rounds (BEGIN
 * in the first, COMMIT in the last): the caller then keeps the connection to itself by
 * submitting its next round only from the previous round's callback.
 *
 * After each (re)connection the schema version is checked (migrations.h) before the
 * connection is reported up. A lost connection fails every round in flight with DB_LOST
 * and is retried with exponential backoff; the callers retry their work.
 *
 * Errors are logged by SQLSTATE and constraint name only: PostgreSQL's message and
 * DETAIL echo row values, which may be personal data.
 */
#ifndef FRONTDOOR_DB_H
#define FRONTDOOR_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <libpq-fe.h>

enum db_status {
    DB_OK,     /* every statement succeeded */
    DB_ERROR,  /* a statement failed: db_round_sqlstate() says why; later ones were skipped */
    DB_LOST,   /* the connection broke: the outcome of a COMMIT in the round is unknown */
    DB_CLOSED, /* db_free() ran: nothing more will happen */
};

/* ---------------------------------------------------------------- rounds */

struct db_round;

/* Ownership: the caller owns a round; db only borrows it between db_submit() and its
 * callback, during which the caller must not touch or free it. */
struct db_round *db_round_new(void);
void db_round_free(struct db_round *r);

/* Empty a round for reuse (results and parameters are released). */
void db_round_reset(struct db_round *r);

/* Append one statement. `sql` must be a string literal or otherwise outlive the round:
 * SQL text is never built from data, every value goes in a parameter. Values are copied.
 * values[i] NULL is SQL NULL. lengths/formats may be NULL (all text); format 1 is
 * binary (bytea) and needs its length. Returns the statement's index, or -1 (no memory). */
int db_round_add(struct db_round *r, const char *sql, int nparams, const char *const *values,
                 const int *lengths, const int *formats);

/* Shorthand for text parameters only. */
int db_round_addv(struct db_round *r, const char *sql, int nparams, const char *const *values);

/* Like db_round_addv, without copying the values: they must stay unchanged until
 * db_submit() has returned (it hands them to libpq, which copies them as it sends). For
 * large parameters built by the caller (dbbulk.h). */
int db_round_addv_borrowed(struct db_round *r, const char *sql, int nparams,
                           const char *const *values);

size_t db_round_count(const struct db_round *r);

/* Move every statement of src (not yet submitted) to the end of dst; src is left empty.
 * Statement i of src becomes statement base + i of dst, where base is the count dst had,
 * which is returned; -1 when out of memory (nothing moved). */
int db_round_take(struct db_round *dst, struct db_round *src);

/* The result of statement i after the callback (owned by the round), or NULL when the
 * statement did not run. */
PGresult *db_round_result(const struct db_round *r, size_t i);

/* For DB_ERROR: the SQLSTATE and constraint name (or "") of the first failed statement,
 * and its index. */
const char *db_round_sqlstate(const struct db_round *r);
const char *db_round_constraint(const struct db_round *r);
int db_round_failed_index(const struct db_round *r);

/* Milliseconds from submission to the Sync result (the round-trip time). */
double db_round_elapsed_ms(const struct db_round *r);

/* ---------------------------------------------------------------- connection */

struct db;

typedef void (*db_round_fn)(void *arg, struct db_round *r, enum db_status st);

struct db_callbacks {
    /* Connected and the schema is recent enough: rounds may be submitted. */
    void (*on_up)(void *arg);
    /* The connection was lost (after the rounds in flight were failed); reconnecting.
     * reason is short and fixed ("connection lost", "connect failed"). */
    void (*on_down)(void *arg, const char *reason);
    /* The daemon cannot run against this database (the schema is too old); msg says
     * what to do. No reconnection follows. */
    void (*on_fatal)(void *arg, const char *msg);
    void *arg;
};

struct db_options {
    const char *conninfo;   /* libpq string or URI; copied */
    const char *password;   /* or NULL; copied and wiped on free */
    const char *name;       /* for logs and application_name, e.g. "casestore" */
    int backoff_initial_ms; /* first reconnection delay (default 250) */
    int backoff_max_ms;     /* cap (default 30000) */
    int connect_timeout_ms; /* a connection attempt taking longer is abandoned (10000) */
    bool skip_schema_check; /* tests only */
    /* or NULL: run on every new connection after the schema check (e.g. a planner
     * setting); not copied, must outlive the db */
    const char *session_sql;
    /* parse each distinct statement once per connection (a named prepared statement) and
     * run it by name from then on; off behind a pooler that does not keep them (PgBouncer
     * in transaction mode before 1.21) */
    bool prepare;
    /* with prepare: plan each statement once (plan_cache_mode = force_generic_plan) rather
     * than at every run (force_custom_plan). Only for statements whose best plan does not
     * depend on the tables' sizes: a generic plan made while a table was nearly empty
     * keeps its sequential scans as the table grows (the dispatcher's claim read every
     * notification row that way: 40-100 ms a claim). */
    bool generic_plans;
};

/* Create the connection and start connecting at once. Returns 0 and *out (owned by the
 * caller, released with db_free()), or -1 with err set. */
int db_open(struct event_base *base, const struct db_options *opt, const struct db_callbacks *cb,
            struct db **out, char *err, size_t errlen);

/* Close: rounds in flight get DB_CLOSED, the connection is finished. NULL is fine. */
void db_free(struct db *db);

bool db_is_up(const struct db *db);

/* Queue a round (ending it with a Sync). Returns 0, or -1 when the connection is not up
 * (nothing is sent; submit again after on_up). The callback runs from the loop, never
 * from inside db_submit(). */
int db_submit(struct db *db, struct db_round *r, db_round_fn cb, void *arg);

/* Rounds submitted and not yet answered. */
size_t db_in_flight(const struct db *db);

/* Delay before reconnection attempt `attempt` (0-based): initial * 2^attempt capped at
 * max, then "equal jitter" from rnd in [0, 1): half fixed, half random, so many daemons
 * do not reconnect in step. Pure; exposed for tests. */
int db_backoff_ms(int attempt, int initial_ms, int max_ms, double rnd);

/* Whether a connection protects what crosses it (README, security): NULL when it does
 * (TLS with sslmode=verify-full, or a Unix socket or loopback host, which never leave the
 * machine), else a short fixed reason. host and sslmode as libpq reports them for the
 * connection (PQhost, the effective sslmode); ssl_in_use from PQsslInUse. Pure. */
const char *db_tls_problem(const char *host, const char *sslmode, bool ssl_in_use);

/* Log a failed round as SQLSTATE and constraint only. */
void db_log_error(const char *what, const struct db_round *r, enum db_status st);

#endif
