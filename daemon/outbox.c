/* outbox: outbox rows -> Kafka -> marked published (see outbox.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "frontdoor/db.h"
#include "frontdoor/log.h"
#include "frontdoor/mono.h"
#include "frontdoor/outbox.h"

/* Only the holder of the lock reads rows; the others see none and try again later. The
 * lock alone keeps publishers apart (the case stores only insert), so the rows are not
 * locked too: a row lock writes every row once more. */
static const char *const SQL_TAKE =
    "WITH l AS MATERIALIZED (SELECT pg_try_advisory_xact_lock($1::int8) AS ok)\n"
    "SELECT o.id, o.kind, convert_from(o.msg_key, 'UTF8'), convert_from(o.payload, 'UTF8'),"
    " o.headers::text FROM outbox o, l WHERE l.ok AND o.published_at IS NULL\n"
    "ORDER BY o.id LIMIT $2::int";

static const char *const SQL_DEPTH = "SELECT count(*) FROM outbox WHERE published_at IS NULL";

/* ids is an array literal of numbers read from the table, never event data. A published
 * decision message goes (the decisions table and the topic hold it; an update would
 * write the whole row again and cost as much as its insert); a DLQ message is kept,
 * marked, so its dedupe key still absorbs the same offset consumed again. */
static const char *const SQL_MARK =
    "WITH gone AS (DELETE FROM outbox WHERE id = ANY($1::int8[]) AND kind = 'decision')\n"
    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::int8[]) AND kind = 'dlq'";

struct delivery {
    struct outbox *ob;
    size_t idx;
};

struct outbox {
    struct outbox_options opt;
    struct db *db;
    struct db_round *r;
    struct event *ev_kick, *ev_poll;
    bool busy, again; /* again: the last round was full, more rows may wait */
    /* pokes so far, and at the start of the round in flight: a poke during a round
     * (rows committed after its read) makes another round at once */
    uint64_t pokes, round_pokes;
    /* the round's rows being produced */
    int64_t *ids;
    bool *ok;
    struct delivery *dl;
    size_t n, cap, outstanding;
    bool txn_lost;
    uint64_t published;
    long depth;
    uint64_t looks; /* reads of the table completed */
    /* The depth is counted when the last read was short (few rows wait: cheap, and exact
     * for the drain at shutdown) or a second has passed: with a deep backlog the count
     * read every pending row on every full read (29 ms a read, a tenth of PostgreSQL's
     * time in the bench). Between counts, published rows are taken off. */
    bool last_short;
    int64_t counted_at_ms;
};

static void kick(struct outbox *ob)
{
    event_active(ob->ev_kick, 0, 0);
}

static void finish(struct outbox *ob)
{
    ob->busy = false;
    ob->n = 0;
    db_round_reset(ob->r);
    if (ob->again || ob->pokes != ob->round_pokes)
        kick(ob);
}

static void mark_done(void *arg, struct db_round *r, enum db_status st)
{
    struct outbox *ob = arg;
    if (st == DB_CLOSED)
        return;
    if (st != DB_OK) {
        db_log_error("outbox mark", r, st); /* published again later: accepted duplicate */
    } else {
        size_t acked = 0;
        for (size_t i = 0; i < ob->n; i++)
            acked += ob->ok[i];
        ob->published += acked;
        ob->depth = ob->depth > (long)acked ? ob->depth - (long)acked : 0;
        if (ob->depth == 0 && !ob->last_short)
            ob->depth = 1; /* the read was full: more may wait until a count says */
    }
    finish(ob);
}

/* Every delivery of the round is back: mark the acknowledged rows and commit. */
static void all_delivered(struct outbox *ob)
{
    if (ob->txn_lost || !db_is_up(ob->db)) {
        finish(ob); /* the lock and row locks died with the connection; rows stay pending */
        return;
    }
    char *ids = malloc(ob->n * 24 + 3);
    if (ids == NULL) {
        finish(ob);
        return;
    }
    size_t len = 0;
    ids[len++] = '{';
    for (size_t i = 0; i < ob->n; i++)
        if (ob->ok[i])
            len += (size_t)sprintf(ids + len, "%s%lld", len > 1 ? "," : "", (long long)ob->ids[i]);
    ids[len++] = '}';
    ids[len] = '\0';
    db_round_reset(ob->r);
    const char *p[1] = {ids};
    int rc = db_round_addv(ob->r, SQL_MARK, 1, p) < 0 || db_round_addv(ob->r, "COMMIT", 0, NULL) < 0
                 ? -1
                 : db_submit(ob->db, ob->r, mark_done, ob);
    free(ids);
    if (rc != 0)
        finish(ob);
}

static void on_delivery(void *arg, rd_kafka_resp_err_t err)
{
    struct delivery *d = arg;
    struct outbox *ob = d->ob;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ob->ok[d->idx] = true;
    } else {
        /* too large or a fatal producer: left unpublished, the daemon reports it */
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)ob->ids[d->idx]);
        log_error("outbox message not published", "outbox_id", id, "error", rd_kafka_err2name(err));
    }
    if (--ob->outstanding == 0)
        all_delivered(ob);
}

static rd_kafka_headers_t *headers_of(const char *json)
{
    json_t *h = json_loads(json, 0, NULL);
    if (!json_is_array(h) || json_array_size(h) == 0) {
        json_decref(h);
        return NULL;
    }
    rd_kafka_headers_t *hs = rd_kafka_headers_new(json_array_size(h));
    size_t i;
    json_t *pair;
    json_array_foreach(h, i, pair)
    {
        const char *k = json_string_value(json_array_get(pair, 0));
        const char *v = json_string_value(json_array_get(pair, 1));
        if (k && v)
            rd_kafka_header_add(hs, k, -1, v, -1);
    }
    json_decref(h);
    return hs;
}

static void taken(void *arg, struct db_round *r, enum db_status st)
{
    struct outbox *ob = arg;
    if (st == DB_CLOSED)
        return;
    if (st != DB_OK) {
        db_log_error("outbox read", r, st);
        if (st == DB_ERROR && db_is_up(ob->db)) {
            db_round_reset(ob->r);
            db_round_addv(ob->r, "ROLLBACK", 0, NULL);
            if (db_submit(ob->db, ob->r, mark_done, ob) == 0)
                return;
        }
        finish(ob);
        return;
    }
    PGresult *res = db_round_result(r, 1);
    size_t n = (size_t)PQntuples(res);
    if (db_round_count(r) == 3) { /* the round counted the pending rows too */
        PGresult *depth = db_round_result(r, 2);
        if (PQntuples(depth) == 1)
            ob->depth = strtol(PQgetvalue(depth, 0, 0), NULL, 10);
        ob->counted_at_ms = mono_now_us() / 1000;
    } else if (ob->depth < (long)n) {
        ob->depth = (long)n; /* at least what this read found */
    }
    ob->last_short = n < (size_t)ob->opt.batch;
    ob->looks++;
    if (n == 0) {
        ob->again = false; /* a poke meanwhile still counts (pokes) */
        db_round_reset(ob->r);
        db_round_addv(ob->r, "COMMIT", 0, NULL);
        if (db_submit(ob->db, ob->r, mark_done, ob) != 0)
            finish(ob);
        return;
    }
    if (n > ob->cap) {
        int64_t *ids = realloc(ob->ids, n * sizeof *ids);
        if (ids)
            ob->ids = ids;
        bool *ok = realloc(ob->ok, n * sizeof *ok);
        if (ok)
            ob->ok = ok;
        struct delivery *dl = realloc(ob->dl, n * sizeof *dl);
        if (dl)
            ob->dl = dl;
        if (!ids || !ok || !dl) {
            finish(ob);
            return;
        }
        ob->cap = n;
    }
    ob->n = n;
    ob->outstanding = n;
    ob->txn_lost = false;
    ob->again = n >= (size_t)ob->opt.batch; /* more may be waiting */
    for (size_t i = 0; i < n; i++) {
        ob->ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
        ob->ok[i] = false;
        ob->dl[i] = (struct delivery){ob, i};
        const char *kind = PQgetvalue(res, (int)i, 1);
        const char *topic = strcmp(kind, "dlq") == 0 ? ob->opt.cfg->kafka.dlq_topic
                                                     : ob->opt.cfg->kafka.decisions_topic;
        const char *key = PQgetisnull(res, (int)i, 2) ? NULL : PQgetvalue(res, (int)i, 2);
        kafka_produce(ob->opt.kafka, topic, key, key ? strlen(key) : 0, PQgetvalue(res, (int)i, 3),
                      (size_t)PQgetlength(res, (int)i, 3), headers_of(PQgetvalue(res, (int)i, 4)),
                      on_delivery, &ob->dl[i]);
    }
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct outbox *ob = arg;
    if (ob->busy || !db_is_up(ob->db))
        return;
    char key[24], lim[16];
    snprintf(key, sizeof key, "%lld", OUTBOX_LOCK_KEY);
    snprintf(lim, sizeof lim, "%d", ob->opt.batch);
    const char *p[2] = {key, lim};
    db_round_reset(ob->r);
    bool count =
        ob->last_short || ob->depth < 0 || mono_now_us() / 1000 - ob->counted_at_ms >= 1000;
    if (db_round_addv(ob->r, "BEGIN", 0, NULL) < 0 || db_round_addv(ob->r, SQL_TAKE, 2, p) < 0 ||
        (count && db_round_addv(ob->r, SQL_DEPTH, 0, NULL) < 0))
        return;
    ob->busy = true;
    ob->round_pokes = ob->pokes;
    if (db_submit(ob->db, ob->r, taken, ob) != 0)
        ob->busy = false;
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kick(arg);
}

static void on_up(void *arg)
{
    kick(arg);
}

static void on_down(void *arg, const char *reason)
{
    (void)reason;
    struct outbox *ob = arg;
    ob->txn_lost = true; /* deliveries still running are marked by a later round */
}

static void on_fatal(void *arg, const char *msg)
{
    struct outbox *ob = arg;
    if (ob->opt.on_fatal)
        ob->opt.on_fatal(ob->opt.arg, msg);
}

int outbox_open(const struct outbox_options *opt, struct outbox **out, char *err, size_t errlen)
{
    *out = NULL;
    struct outbox *ob = calloc(1, sizeof *ob);
    if (ob == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ob->opt = *opt;
    if (ob->opt.batch <= 0)
        ob->opt.batch = 500;
    if (ob->opt.poll_ms <= 0)
        ob->opt.poll_ms = 1000;
    ob->depth = -1;
    ob->r = db_round_new();
    ob->ev_kick = event_new(opt->base, -1, 0, kick_cb, ob);
    ob->ev_poll = event_new(opt->base, -1, EV_PERSIST, poll_cb, ob);
    if (!ob->r || !ob->ev_kick || !ob->ev_poll) {
        snprintf(err, errlen, "out of memory");
        outbox_free(ob);
        return -1;
    }
    struct timeval tv = {ob->opt.poll_ms / 1000, (ob->opt.poll_ms % 1000) * 1000};
    event_add(ob->ev_poll, &tv);
    struct db_options dbo = {
        .conninfo = opt->cfg->database.conninfo,
        .password = opt->cfg->database.password,
        .name = "frontdoord-outbox",
        .prepare = opt->cfg->database.prepared_statements,
        .skip_schema_check = opt->skip_schema_check,
    };
    struct db_callbacks cb = {.on_up = on_up, .on_down = on_down, .on_fatal = on_fatal, .arg = ob};
    if (db_open(opt->base, &dbo, &cb, &ob->db, err, errlen) != 0) {
        outbox_free(ob);
        return -1;
    }
    *out = ob;
    return 0;
}

void outbox_free(struct outbox *ob)
{
    if (ob == NULL)
        return;
    db_free(ob->db);
    db_round_free(ob->r);
    if (ob->ev_kick)
        event_free(ob->ev_kick);
    if (ob->ev_poll)
        event_free(ob->ev_poll);
    free(ob->ids);
    free(ob->ok);
    free(ob->dl);
    free(ob);
}

void outbox_poke(struct outbox *ob)
{
    if (ob == NULL)
        return;
    ob->pokes++;
    kick(ob);
}

void outbox_get_stats(const struct outbox *ob, struct outbox_stats *st)
{
    st->published = ob->published;
    st->depth = ob->depth;
    st->looks = ob->looks;
    st->connected = db_is_up(ob->db);
}
