/* db: asynchronous libpq in pipeline mode on the libevent loop (see db.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "frontdoor/db.h"
#include "frontdoor/log.h"
#include "frontdoor/metrics.h"
#include "frontdoor/migrations.h"
#include "frontdoor/mono.h"

/* ---------------------------------------------------------------- rounds */

struct db_stmt {
    const char *sql; /* borrowed: a literal */
    int nparams;
    char **values; /* owned copies (unless borrowed); NULL entries are SQL NULL */
    bool borrowed; /* values belong to the caller (db_round_addv_borrowed) */
    int *lengths;
    int *formats;
    PGresult *result; /* owned */
    int prep;         /* this round: index of the statement cache entry whose Parse was
                       * sent before it, or -1 */
    bool prep_read;   /* that Parse's result was read; its end (NULL) comes next */
};

struct db_round {
    struct db_stmt *stmts;
    size_t n, cap;
    size_t next; /* statement whose results are being read */
    int failed;  /* index of the first failed statement, or -1 */
    char sqlstate[6];
    char constraint[64];
    int64_t sent_us; /* mono_now_us() */
    double elapsed_ms;
    db_round_fn cb;
    void *cb_arg;
    struct db_round *queue_next; /* in flight, oldest first */
};

struct db_round *db_round_new(void)
{
    struct db_round *r = calloc(1, sizeof *r);
    if (r != NULL)
        r->failed = -1;
    return r;
}

static void stmt_release(struct db_stmt *s)
{
    for (int i = 0; i < s->nparams && !s->borrowed; i++)
        free(s->values[i]);
    free(s->values);
    free(s->lengths);
    free(s->formats);
    PQclear(s->result);
    memset(s, 0, sizeof *s);
}

void db_round_reset(struct db_round *r)
{
    for (size_t i = 0; i < r->n; i++)
        stmt_release(&r->stmts[i]);
    r->n = 0;
    r->next = 0;
    r->failed = -1;
    r->sqlstate[0] = r->constraint[0] = '\0';
    r->elapsed_ms = 0;
}

void db_round_free(struct db_round *r)
{
    if (r == NULL)
        return;
    db_round_reset(r);
    free(r->stmts);
    free(r);
}

int db_round_add(struct db_round *r, const char *sql, int nparams, const char *const *values,
                 const int *lengths, const int *formats)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct db_stmt *s = realloc(r->stmts, cap * sizeof *s);
        if (s == NULL)
            return -1;
        r->stmts = s;
        r->cap = cap;
    }
    struct db_stmt *s = &r->stmts[r->n];
    memset(s, 0, sizeof *s);
    s->sql = sql;
    if (nparams > 0) {
        s->values = calloc((size_t)nparams, sizeof *s->values);
        s->lengths = calloc((size_t)nparams, sizeof *s->lengths);
        s->formats = calloc((size_t)nparams, sizeof *s->formats);
        if (s->values == NULL || s->lengths == NULL || s->formats == NULL) {
            free(s->values);
            free(s->lengths);
            free(s->formats);
            return -1;
        }
        s->nparams = nparams;
        for (int i = 0; i < nparams; i++) {
            if (values[i] == NULL)
                continue;
            int binary = formats != NULL && formats[i] == 1;
            size_t len = binary ? (size_t)lengths[i] : strlen(values[i]);
            s->values[i] = malloc(len + 1);
            if (s->values[i] == NULL) {
                stmt_release(s);
                return -1;
            }
            memcpy(s->values[i], values[i], len);
            s->values[i][len] = '\0';
            s->lengths[i] = (int)len;
            s->formats[i] = binary;
        }
    }
    return (int)r->n++;
}

int db_round_addv(struct db_round *r, const char *sql, int nparams, const char *const *values)
{
    return db_round_add(r, sql, nparams, values, NULL, NULL);
}

int db_round_addv_borrowed(struct db_round *r, const char *sql, int nparams,
                           const char *const *values)
{
    int idx = db_round_add(r, sql, 0, NULL, NULL, NULL);
    if (idx < 0)
        return -1;
    struct db_stmt *s = &r->stmts[idx];
    s->values = calloc((size_t)nparams, sizeof *s->values);
    s->lengths = calloc((size_t)nparams, sizeof *s->lengths);
    s->formats = calloc((size_t)nparams, sizeof *s->formats);
    if (s->values == NULL || s->lengths == NULL || s->formats == NULL) {
        stmt_release(s);
        r->n--;
        return -1;
    }
    s->nparams = nparams;
    s->borrowed = true;
    for (int i = 0; i < nparams; i++)
        s->values[i] = (char *)values[i];
    return idx;
}

size_t db_round_count(const struct db_round *r)
{
    return r->n;
}

int db_round_take(struct db_round *dst, struct db_round *src)
{
    size_t base = dst->n;
    if (dst->n + src->n > dst->cap) {
        size_t cap = dst->cap ? dst->cap : 16;
        while (cap < dst->n + src->n)
            cap *= 2;
        struct db_stmt *s = realloc(dst->stmts, cap * sizeof *s);
        if (s == NULL)
            return -1;
        dst->stmts = s;
        dst->cap = cap;
    }
    if (src->n > 0)
        memcpy(dst->stmts + dst->n, src->stmts, src->n * sizeof *src->stmts);
    dst->n += src->n;
    src->n = 0; /* the statements' buffers now belong to dst */
    db_round_reset(src);
    return (int)base;
}

PGresult *db_round_result(const struct db_round *r, size_t i)
{
    return i < r->n ? r->stmts[i].result : NULL;
}

const char *db_round_sqlstate(const struct db_round *r)
{
    return r->sqlstate;
}

const char *db_round_constraint(const struct db_round *r)
{
    return r->constraint;
}

int db_round_failed_index(const struct db_round *r)
{
    return r->failed;
}

double db_round_elapsed_ms(const struct db_round *r)
{
    return r->elapsed_ms;
}

/* ---------------------------------------------------------------- connection */

enum conn_state { CONN_IDLE, CONN_CONNECTING, CONN_CHECKING, CONN_UP, CONN_FATAL };

/* A statement parsed once on the server (a named prepared statement): PostgreSQL then
 * skips parsing and, once it settles on a generic plan, planning, which for the
 * daemon's short multi-row statements cost as much as running them. Per connection:
 * forgotten when it drops. */
enum prep_state { PREP_NONE, PREP_SENT, PREP_READY };
#define DB_PREP_MAX 128 /* distinct statements; more run unnamed (every SQL is a literal) */

struct db_prep {
    char *sql; /* a copy: the key is the text, never the caller's pointer */
    uint64_t hash;
    enum prep_state state;
    const struct db_round *sent_in; /* PREP_SENT: the round whose Parse is in flight */
};

struct db {
    struct event_base *base;
    struct db_options opt;
    char *conninfo, *password, *name;
    struct db_callbacks cb;

    PGconn *conn;
    enum conn_state state;
    struct event *ev_read, *ev_write; /* on PQsocket while connecting or up */
    struct event *ev_timer;           /* reconnect backoff and connect timeout */
    struct event *ev_deliver;         /* runs completed round callbacks from the loop */
    int attempt;

    struct db_round *head, *tail; /* in flight, oldest first */
    size_t n_in_flight;
    struct db_round *done_head, *done_tail; /* answered, callbacks pending */
    struct db_round check;                  /* the schema version check */
    struct db_prep prep[DB_PREP_MAX];
    size_t n_prep;
};

static void conn_start(struct db *db);
static void conn_poll(struct db *db);

int db_backoff_ms(int attempt, int initial_ms, int max_ms, double rnd)
{
    double d = initial_ms;
    for (int i = 0; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    if (rnd < 0)
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    return (int)(d / 2 + d / 2 * rnd);
}

void db_log_error(const char *what, const struct db_round *r, enum db_status st)
{
    if (st == DB_ERROR) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", r->failed);
        log_error("database statement failed", "what", what, "sqlstate", r->sqlstate, "constraint",
                  r->constraint, "statement", idx);
    } else if (st == DB_LOST) {
        log_warn("database connection lost during a round", "what", what);
    }
}

static void stop_io(struct db *db)
{
    if (db->ev_read) {
        event_free(db->ev_read);
        db->ev_read = NULL;
    }
    if (db->ev_write) {
        event_free(db->ev_write);
        db->ev_write = NULL;
    }
}

/* Queue a finished round for its callback, which runs from ev_deliver: callbacks may
 * submit again or free things, so they never run in the middle of reading results. */
static void round_done(struct db *db, struct db_round *r)
{
    r->queue_next = NULL;
    if (db->done_tail)
        db->done_tail->queue_next = r;
    else
        db->done_head = r;
    db->done_tail = r;
    event_active(db->ev_deliver, 0, 0);
}

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct db *db = arg;
    /* Take the list: callbacks may append more. */
    struct db_round *r = db->done_head;
    db->done_head = db->done_tail = NULL;
    while (r != NULL) {
        struct db_round *next = r->queue_next;
        enum db_status st = r->failed == -2 ? DB_LOST : r->failed >= 0 ? DB_ERROR : DB_OK;
        r->queue_next = NULL;
        r->cb(r->cb_arg, r, st);
        r = next;
    }
}

/* Fail every round in flight (failed = -2 marks DB_LOST) and drop the connection. */
static void conn_drop(struct db *db, const char *reason)
{
    bool was_up = db->state == CONN_UP;
    stop_io(db);
    if (db->conn) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    while (db->head) {
        struct db_round *r = db->head;
        db->head = r->queue_next;
        r->failed = -2;
        round_done(db, r);
    }
    db->tail = NULL;
    db->n_in_flight = 0;
    for (size_t i = 0; i < db->n_prep; i++)
        db->prep[i].state = PREP_NONE; /* the server's session, and its statements, are gone */
    if (db->state == CONN_FATAL)
        return;
    db->state = CONN_IDLE;
    int delay = db_backoff_ms(db->attempt, db->opt.backoff_initial_ms, db->opt.backoff_max_ms,
                              (double)random() / ((double)RAND_MAX + 1.0));
    if (db->attempt < 30)
        db->attempt++;
    char ms[16];
    snprintf(ms, sizeof ms, "%d", delay);
    log_warn("database unavailable, retrying", "db", db->name, "reason", reason, "retry_ms", ms);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(db->ev_timer, &tv);
    if (was_up && db->cb.on_down)
        db->cb.on_down(db->cb.arg, reason);
    else if (db->attempt == 1 && db->cb.on_down)
        db->cb.on_down(db->cb.arg, reason);
}

static void want_write(struct db *db)
{
    if (db->ev_write && !event_pending(db->ev_write, EV_WRITE, NULL))
        event_add(db->ev_write, NULL);
}

static void flush_out(struct db *db)
{
    int rc = PQflush(db->conn);
    if (rc < 0)
        conn_drop(db, "connection lost");
    else if (rc == 1)
        want_write(db);
}

/* Read every result available and hand out the rounds they finish. */
static void read_results(struct db *db)
{
    if (!PQconsumeInput(db->conn)) {
        conn_drop(db, "connection lost");
        return;
    }
    while (db->head != NULL) {
        if (PQisBusy(db->conn))
            break;
        struct db_round *r = db->head;
        PGresult *res = PQgetResult(db->conn);
        if (res == NULL) {
            /* end of one statement's results; none pending means wait for input */
            if (r->next >= r->n)
                break;
            if (r->stmts[r->next].prep_read) {
                r->stmts[r->next].prep_read = false; /* the Parse's end, not the statement's */
                r->stmts[r->next].prep = -1;
                continue;
            }
            r->next++;
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            r->elapsed_ms = (double)(mono_now_us() - r->sent_us) / 1000.0;
            metrics_observe_db_rtt(db->name, r->elapsed_ms / 1000.0);
            db->head = r->queue_next;
            if (db->head == NULL)
                db->tail = NULL;
            db->n_in_flight--;
            round_done(db, r);
            continue;
        }
        if (r->next >= r->n) {
            PQclear(res);
            continue;
        }
        struct db_stmt *s = &r->stmts[r->next];
        if (s->prep >= 0 && !s->prep_read) {
            /* the Parse sent before the statement: ready for later rounds if it worked;
             * if it failed the statement fails with its error (it is aborted next) */
            db->prep[s->prep].state = st == PGRES_COMMAND_OK ? PREP_READY : PREP_NONE;
            s->prep_read = true;
            if (st == PGRES_COMMAND_OK || st == PGRES_PIPELINE_ABORTED) {
                PQclear(res);
                continue;
            }
        }
        PQclear(s->result);
        s->result = res;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && r->failed < 0) {
            r->failed = (int)r->next;
            const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
            snprintf(r->sqlstate, sizeof r->sqlstate, "%s", code ? code : "?????");
            snprintf(r->constraint, sizeof r->constraint, "%s", cons ? cons : "");
        }
    }
    if (PQstatus(db->conn) == CONNECTION_BAD)
        conn_drop(db, "connection lost");
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct db *db = arg;
    if (db->state == CONN_CONNECTING) {
        conn_poll(db);
        return;
    }
    if (db->conn == NULL)
        return;
    if (what & EV_WRITE) {
        flush_out(db);
        if (db->conn == NULL)
            return;
    }
    if (what & EV_READ)
        read_results(db);
}

/* The cache entry of a statement's text, added if new; -1 when the cache is full. */
static int prep_find(struct db *db, const char *sql)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    for (size_t i = 0; i < db->n_prep; i++)
        if (db->prep[i].hash == h && strcmp(db->prep[i].sql, sql) == 0)
            return (int)i;
    if (db->n_prep == DB_PREP_MAX)
        return -1;
    char *copy = strdup(sql);
    if (copy == NULL)
        return -1;
    db->prep[db->n_prep] = (struct db_prep){.sql = copy, .hash = h, .state = PREP_NONE};
    return (int)db->n_prep++;
}

/* Send a round's statements and its Sync; the results come back in read_results. */
static int send_round(struct db *db, struct db_round *r, db_round_fn cb, void *arg)
{
    r->cb = cb;
    r->cb_arg = arg;
    r->next = 0;
    r->failed = -1;
    r->sqlstate[0] = r->constraint[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        PQclear(r->stmts[i].result);
        r->stmts[i].result = NULL;
    }
    r->sent_us = mono_now_us();
    for (size_t i = 0; i < r->n; i++) {
        struct db_stmt *s = &r->stmts[i];
        s->prep = -1;
        s->prep_read = false;
        int e = db->state == CONN_UP && db->opt.prepare ? prep_find(db, s->sql) : -1;
        char name[16];
        if (e >= 0)
            snprintf(name, sizeof name, "fd%d", e);
        if (e >= 0 && db->prep[e].state == PREP_NONE) {
            if (!PQsendPrepare(db->conn, name, s->sql, s->nparams, NULL))
                return -1;
            db->prep[e].state = PREP_SENT;
            db->prep[e].sent_in = r;
            s->prep = e;
        }
        /* A Parse in flight from another round may yet fail: until it is answered, run
         * unnamed. One of this round went before: if it fails, so does the round. */
        int ok =
            e >= 0 && (db->prep[e].state == PREP_READY ||
                       (db->prep[e].state == PREP_SENT && db->prep[e].sent_in == r))
                ? PQsendQueryPrepared(db->conn, name, s->nparams, (const char *const *)s->values,
                                      s->lengths, s->formats, 0)
                : PQsendQueryParams(db->conn, s->sql, s->nparams, NULL,
                                    (const char *const *)s->values, s->lengths, s->formats, 0);
        if (!ok)
            return -1;
    }
    if (!PQpipelineSync(db->conn))
        return -1;
    r->queue_next = NULL;
    if (db->tail)
        db->tail->queue_next = r;
    else
        db->head = r;
    db->tail = r;
    db->n_in_flight++;
    flush_out(db);
    return 0;
}

/* 127.0.0.0/8, ::1 or "localhost": the connection does not leave the machine. */
static bool is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

const char *db_tls_problem(const char *host, const char *sslmode, bool ssl_in_use)
{
    if (host == NULL || host[0] == '\0' || host[0] == '/' || is_loopback(host))
        return NULL; /* a Unix socket or loopback: nothing crosses a network */
    if (!ssl_in_use)
        return "not encrypted (set sslmode=verify-full)";
    if (sslmode == NULL || strcmp(sslmode, "verify-full") != 0)
        return "encrypted, but the server is not verified (set sslmode=verify-full)";
    return NULL;
}

/* A database link an attacker on the network could read or change is worth a warning at
 * every connection (the operator's conninfo decides; libpq's default is sslmode=prefer). */
static void warn_tls(struct db *db)
{
    const char *sslmode = NULL;
    PQconninfoOption *opts = PQconninfo(db->conn);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, "sslmode") == 0)
            sslmode = o->val;
    const char *problem = db_tls_problem(PQhost(db->conn), sslmode, PQsslInUse(db->conn));
    if (problem != NULL)
        log_warn("database connection is not protected by verified TLS", "db", db->name, "host",
                 PQhost(db->conn), "problem", problem);
    PQconninfoFree(opts);
}

static void check_done(void *arg, struct db_round *r, enum db_status st)
{
    struct db *db = arg;
    if (st == DB_LOST || st == DB_CLOSED)
        return; /* conn_drop already scheduled a retry */
    int have = -1;
    if (st == DB_OK) {
        PGresult *res = db_round_result(r, 0);
        if (PQntuples(res) == 1)
            have = atoi(PQgetvalue(res, 0, 0));
    } else if (strcmp(db_round_sqlstate(r), "42P01") == 0) {
        have = 0; /* no schema_version table: never migrated */
    }
    if (have < 0) {
        db_log_error("schema check", r, st);
        conn_drop(db, "schema check failed");
        return;
    }
    char msg[256];
    if (migrations_check_version(have, msg, sizeof msg) != 0) {
        log_error("database schema too old", "db", db->name, "action", "run frontdoord --migrate");
        db->state = CONN_FATAL;
        conn_drop(db, "schema too old");
        if (db->cb.on_fatal)
            db->cb.on_fatal(db->cb.arg, msg);
        return;
    }
    db->state = CONN_UP;
    db->attempt = 0;
    log_info("database connected", "db", db->name);
    warn_tls(db);
    if (db->cb.on_up)
        db->cb.on_up(db->cb.arg);
}

/* libpq prints notices and warnings to stderr as they are; their text may quote values,
 * so only the severity and SQLSTATE are logged, as for errors. */
static void on_notice(void *arg, const PGresult *res)
{
    struct db *db = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    log_warn("database notice", "db", db->name, "severity", sev ? sev : "", "sqlstate",
             code ? code : "");
}

/* The connection is open: switch to non-blocking pipeline mode and check the schema. */
static void conn_established(struct db *db)
{
    evtimer_del(db->ev_timer);
    PQsetNoticeReceiver(db->conn, on_notice, db);
    if (PQsetnonblocking(db->conn, 1) != 0 || !PQenterPipelineMode(db->conn)) {
        conn_drop(db, "pipeline mode failed");
        return;
    }
    stop_io(db);
    int fd = PQsocket(db->conn);
    db->ev_read = event_new(db->base, fd, EV_READ | EV_PERSIST, io_cb, db);
    db->ev_write = event_new(db->base, fd, EV_WRITE, io_cb, db);
    if (db->ev_read == NULL || db->ev_write == NULL || event_add(db->ev_read, NULL) != 0) {
        conn_drop(db, "out of memory");
        return;
    }
    if (db->opt.skip_schema_check) {
        db->state = CONN_UP;
        db->attempt = 0;
        if (db->cb.on_up)
            db->cb.on_up(db->cb.arg);
        return;
    }
    db->state = CONN_CHECKING;
    db_round_reset(&db->check);
    /* jit off: the daemon's statements are short, and a JIT compile triggered by a
     * pessimistic estimate costs far more than the statement itself. Prepared statements
     * are planned as the caller chose (db_options.generic_plans), never by PostgreSQL's
     * guess after five runs: a generic plan is made once, with the table's size at that
     * moment. */
    if (db_round_addv(&db->check, migrations_version_sql, 0, NULL) < 0 ||
        db_round_addv(&db->check, "SET jit = off", 0, NULL) < 0 ||
        (db->opt.prepare &&
         db_round_addv(&db->check,
                       db->opt.generic_plans ? "SET plan_cache_mode = force_generic_plan"
                                             : "SET plan_cache_mode = force_custom_plan",
                       0, NULL) < 0) ||
        (db->opt.session_sql && db_round_addv(&db->check, db->opt.session_sql, 0, NULL) < 0) ||
        send_round(db, &db->check, check_done, db) != 0)
        conn_drop(db, "connection lost");
}

/* One step of PQconnectPoll; waits on the socket in the direction libpq asks for. */
static void conn_poll(struct db *db)
{
    PostgresPollingStatusType st = PQconnectPoll(db->conn);
    if (st == PGRES_POLLING_OK) {
        conn_established(db);
        return;
    }
    if (st == PGRES_POLLING_FAILED) {
        conn_drop(db, "connect failed");
        return;
    }
    /* The socket may change between attempts (several hosts, SSL retry). */
    stop_io(db);
    short dir = st == PGRES_POLLING_WRITING ? EV_WRITE : EV_READ;
    db->ev_read = event_new(db->base, PQsocket(db->conn), dir, io_cb, db);
    if (db->ev_read == NULL || event_add(db->ev_read, NULL) != 0)
        conn_drop(db, "out of memory");
}

static void conn_start(struct db *db)
{
    /* Our defaults first: the operator's conninfo (expanded from dbname) overrides them. */
    const char *keys[12];
    const char *vals[12];
    int n = 0;
    keys[n] = "application_name", vals[n++] = db->name;
    keys[n] = "keepalives", vals[n++] = "1";
    keys[n] = "keepalives_idle", vals[n++] = "30";
    keys[n] = "keepalives_interval", vals[n++] = "10";
    keys[n] = "keepalives_count", vals[n++] = "3";
    keys[n] = "tcp_user_timeout", vals[n++] = "60000";
    keys[n] = "dbname", vals[n++] = db->conninfo;
    if (db->password)
        keys[n] = "password", vals[n++] = db->password;
    keys[n] = NULL, vals[n] = NULL;

    db->state = CONN_CONNECTING;
    db->conn = PQconnectStartParams(keys, vals, 1);
    if (db->conn == NULL || PQstatus(db->conn) == CONNECTION_BAD) {
        conn_drop(db, "connect failed");
        return;
    }
    struct timeval tv = {db->opt.connect_timeout_ms / 1000,
                         (db->opt.connect_timeout_ms % 1000) * 1000};
    evtimer_add(db->ev_timer, &tv);
    /* libpq: before the first PQconnectPoll, behave as if it asked to wait for writing. */
    db->ev_read = event_new(db->base, PQsocket(db->conn), EV_WRITE, io_cb, db);
    if (db->ev_read == NULL || event_add(db->ev_read, NULL) != 0)
        conn_drop(db, "out of memory");
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct db *db = arg;
    if (db->state == CONN_CONNECTING) {
        conn_drop(db, "connect timed out"); /* libpq's connect_timeout is not async-aware */
        return;
    }
    if (db->state == CONN_IDLE)
        conn_start(db);
}

int db_open(struct event_base *base, const struct db_options *opt, const struct db_callbacks *cb,
            struct db **out, char *err, size_t errlen)
{
    *out = NULL;
    struct db *db = calloc(1, sizeof *db);
    if (db == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    db->base = base;
    db->opt = *opt;
    if (db->opt.backoff_initial_ms <= 0)
        db->opt.backoff_initial_ms = 250;
    if (db->opt.backoff_max_ms <= 0)
        db->opt.backoff_max_ms = 30000;
    if (db->opt.connect_timeout_ms <= 0)
        db->opt.connect_timeout_ms = 10000;
    db->conninfo = strdup(opt->conninfo ? opt->conninfo : "");
    db->password = opt->password ? strdup(opt->password) : NULL;
    db->name = strdup(opt->name ? opt->name : "frontdoord");
    db->opt.conninfo = db->opt.password = db->opt.name = NULL;
    if (cb)
        db->cb = *cb;
    db->check.failed = -1;
    static bool seeded;
    if (!seeded) { /* jitter differs between daemons started together */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        srandom((unsigned)(ts.tv_nsec ^ ts.tv_sec ^ ((long)getpid() << 16)));
        seeded = true;
    }
    db->ev_timer = evtimer_new(base, timer_cb, db);
    db->ev_deliver = event_new(base, -1, 0, deliver_cb, db);
    if (db->conninfo == NULL || db->name == NULL || (opt->password && db->password == NULL) ||
        db->ev_timer == NULL || db->ev_deliver == NULL) {
        snprintf(err, errlen, "out of memory");
        db_free(db);
        return -1;
    }
    conn_start(db);
    *out = db;
    return 0;
}

void db_free(struct db *db)
{
    if (db == NULL)
        return;
    db->state = CONN_FATAL; /* no reconnection from conn_drop */
    if (db->ev_deliver)
        conn_drop(db, "closing");
    /* Callbacks still pending (answered or failed rounds) learn that we are closing. */
    struct db_round *r = db->done_head;
    db->done_head = db->done_tail = NULL;
    while (r != NULL) {
        struct db_round *next = r->queue_next;
        if (r != &db->check)
            r->cb(r->cb_arg, r, DB_CLOSED);
        r = next;
    }
    if (db->ev_timer)
        event_free(db->ev_timer);
    if (db->ev_deliver)
        event_free(db->ev_deliver);
    db_round_reset(&db->check);
    free(db->check.stmts);
    for (size_t i = 0; i < db->n_prep; i++)
        free(db->prep[i].sql);
    free(db->conninfo);
    if (db->password) {
        memset(db->password, 0, strlen(db->password));
        free(db->password);
    }
    free(db->name);
    free(db);
}

bool db_is_up(const struct db *db)
{
    return db != NULL && db->state == CONN_UP;
}

int db_submit(struct db *db, struct db_round *r, db_round_fn cb, void *arg)
{
    if (!db_is_up(db))
        return -1;
    if (send_round(db, r, cb, arg) != 0) {
        /* A failed send means a broken connection; if it was queued, conn_drop fails it. */
        bool queued = false;
        for (struct db_round *q = db->head; q; q = q->queue_next)
            queued |= q == r;
        conn_drop(db, "connection lost");
        return queued ? 0 : -1;
    }
    return 0;
}

size_t db_in_flight(const struct db *db)
{
    return db->n_in_flight;
}
