/* casestore: cases, decisions and idempotency in PostgreSQL (see casestore.h).
 *
 * One transaction per batch, in two pipelined rounds on one connection:
 *   round 1: BEGIN; advisory transaction locks on every referral, event, child and
 *            family id of the batch (sorted, so batches of two daemons cannot deadlock
 *            on them); the processed/held check of each event; the cases the batch
 *            touches and the history of its children and families; held referral ids.
 *   (C)      every event in order against a batch-local copy of those cases, so later
 *            events of the batch see the effects of earlier ones;
 *   round 2: the writes, then COMMIT. Rows that only add (processed events, cases,
 *            decisions, audit, outbox) go as one multi-row statement per table
 *            (dbbulk.h), ahead of the statements that change rows, which keep the
 *            batch's order; an update can only touch a case inserted earlier, so
 *            putting every insert first keeps the meaning and saves a statement per row.
 * Completion callbacks run only after COMMIT. Any failure rolls back and retries the
 * same events (halving the batch so one bad event cannot hold many back).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "frontdoor/caltime.h"
#include "frontdoor/casestore.h"
#include "frontdoor/dbbulk.h"
#include "frontdoor/log.h"
#include "frontdoor/metrics.h"

/* ---------------------------------------------------------------- SQL (parameters only) */

static const char *const SQL_BEGIN = "BEGIN";
static const char *const SQL_COMMIT = "COMMIT";
static const char *const SQL_ROLLBACK = "ROLLBACK";

/* Sorted by lock id: volatile functions run after ORDER BY, so every batch takes its
 * locks in one global order. */
static const char *const SQL_LOCK =
    "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h "
    "FROM jsonb_array_elements_text($1::jsonb) AS k) s ORDER BY h";

/* One row per event of the batch, in order (bodies hashed here, SHA-256): processed
 * before (NULL: never; true: with this body; false: with another body), and held
 * before (the same). */
static const char *const SQL_SEEN =
    "SELECT (SELECT p.body_sha256 = x.h FROM processed_events p WHERE p.event_id = x.e),\n"
    "       (SELECT sha256(he.body) = x.h FROM held_events he WHERE he.event_id = x.e)\n"
    "FROM unnest($1::uuid[], $2::bytea[]) WITH ORDINALITY AS x(e, h, i) ORDER BY x.i";

/* A held event being retried: still there (else another daemon resolved it), and
 * whether its time is up. */
static const char *const SQL_HELD_ROW =
    "SELECT give_up_at <= now() FROM held_events WHERE event_id = $1::uuid FOR UPDATE";

/* The cases the batch names, and every case of the same children and families
 * (including those of the cases named by case events). Every step is an index lookup
 * per id (LATERAL ... OFFSET 0 keeps the planner from a scan of the whole table when
 * its estimates are off), so the cost follows the batch, not the table. */
static const char *const SQL_CASES =
    "WITH ids AS MATERIALIZED (SELECT DISTINCT jsonb_array_elements_text($1::jsonb) AS id),\n"
    " named AS MATERIALIZED (SELECT x.* FROM ids, LATERAL (SELECT c.referral_id, c.child_id,"
    " c.family_id FROM cases c WHERE c.referral_id = ids.id OFFSET 0) x),\n"
    " kids AS (SELECT jsonb_array_elements_text($2::jsonb) AS id\n"
    "          UNION SELECT child_id FROM named WHERE child_id IS NOT NULL),\n"
    " fams AS (SELECT jsonb_array_elements_text($3::jsonb) AS id\n"
    "          UNION SELECT family_id FROM named WHERE family_id IS NOT NULL),\n"
    " hits AS (SELECT referral_id FROM named\n"
    "   UNION SELECT x.referral_id FROM kids, LATERAL (SELECT c.referral_id FROM cases c"
    " WHERE c.child_id = kids.id OFFSET 0) x\n"
    "   UNION SELECT x.referral_id FROM fams, LATERAL (SELECT c.referral_id FROM cases c"
    " WHERE c.family_id = fams.id OFFSET 0) x)\n"
    "SELECT c.referral_id, c.child_id, c.family_id, c.state, c.route, c.destination,\n"
    "       (extract(epoch FROM c.decided_at) * 1000)::int8,\n"
    "       (extract(epoch FROM c.closed_at) * 1000)::int8, c.locality_id, c.hub_id,\n"
    "       CASE WHEN c.referral_id IN (SELECT id FROM ids)\n"
    "            THEN convert_from(c.referral_body, 'UTF8') END,\n"
    "       c.priority, c.rule, extract(epoch FROM c.decision_due_at)::int8\n"
    "FROM hits, LATERAL (SELECT * FROM cases c WHERE c.referral_id = hits.referral_id"
    " OFFSET 0) c";

static const char *const SQL_HELD_REFS =
    "SELECT DISTINCT referral_id FROM held_events "
    "WHERE referral_id IN (SELECT jsonb_array_elements_text($1::jsonb))";

/* The multi-row inserts of round 2 (dbbulk.h): one array parameter per column. */
static const char *const SQL_INSERT_PROCESSED =
    "INSERT INTO processed_events (event_id, body_sha256, topic, referral_id, outcome)\n"
    "SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::text[], $5::text[])";
#define NCOL_PROCESSED 5

static const char *const SQL_INSERT_CASE =
    "INSERT INTO cases (referral_id, child_id, family_id, state, route, destination, priority,"
    " rule, level_of_need, received_at, decided_at, decision_due_at, closed_at, locality_id,"
    " hub_id, referral_event_id, referral_body)\n"
    "SELECT r, c, f, st, ro, de, pr, ru, lv, rc, dc, du, cl, lo, hu, ev, convert_to(b, 'UTF8')"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::text[], $7::text[], $8::text[], $9::smallint[], $10::timestamptz[],"
    " $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::text[], $15::text[],"
    " $16::uuid[], $17::text[])"
    " AS x(r, c, f, st, ro, de, pr, ru, lv, rc, dc, du, cl, lo, hu, ev, b)";
#define NCOL_CASE 17

static const char *const SQL_UPDATE_ROUTE =
    "UPDATE cases SET state = $2, route = $3, destination = $4, priority = $5, rule = $6,"
    " decided_at = $7::timestamptz, decision_due_at = $8::timestamptz,"
    " closed_at = $9::timestamptz, updated_at = now() WHERE referral_id = $1";

static const char *const SQL_CLOSE_CASE =
    "UPDATE cases SET state = 'closed', closed_at = $2::timestamptz, updated_at = now()"
    " WHERE referral_id = $1";

static const char *const SQL_INSERT_DECISION =
    "INSERT INTO decisions (referral_id, cause_event_id, event_id, route, destination,"
    " priority, rule, reasons, state, decided_at, decision_due_at)\n"
    "SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],"
    " $6::text[], $7::text[], $8::jsonb[], $9::text[], $10::timestamptz[],"
    " $11::timestamptz[])";
#define NCOL_DECISION 11

/* Ordered, so the audit of a case reads in the order things happened. */
static const char *const SQL_INSERT_AUDIT =
    "INSERT INTO audit_log (referral_id, event_id, action, from_state, to_state)\n"
    "SELECT r, e, a, f, t FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[],"
    " $5::text[]) WITH ORDINALITY AS x(r, e, a, f, t, i) ORDER BY x.i";
#define NCOL_AUDIT 5

/* Ordered: the publisher produces by id, so a case's decisions keep their order. A DLQ
 * message may be written again when the same offset is consumed again (an
 * event_id_reused event is never marked processed): the dedupe key absorbs it. */
static const char *const SQL_INSERT_OUTBOX =
    "INSERT INTO outbox (dedupe_key, kind, msg_key, payload, headers)\n"
    "SELECT k, kind, convert_to(mk, 'UTF8'), convert_to(pl, 'UTF8'), coalesce(h, '[]')"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])"
    " WITH ORDINALITY AS x(k, kind, mk, pl, h, i) ORDER BY x.i"
    " ON CONFLICT (dedupe_key) DO NOTHING";
#define NCOL_OUTBOX 5

static const char *const SQL_HOLD =
    "INSERT INTO held_events (event_id, referral_id, topic, source_partition, source_offset,"
    " body, give_up_at) VALUES ($1::uuid, $2, $3, $4::int, $5::int8, $6::bytea,"
    " now() + make_interval(secs => $7::int)) ON CONFLICT (event_id) DO NOTHING";

static const char *const SQL_UNHOLD = "DELETE FROM held_events WHERE event_id = $1::uuid";

/* Held events ready to be looked at again: their case exists, or their time is up. */
static const char *const SQL_HELD_SCAN =
    "SELECT event_id::text, referral_id, topic, source_partition, source_offset,"
    " convert_from(body, 'UTF8') FROM held_events h WHERE give_up_at <= now()"
    " OR EXISTS (SELECT 1 FROM cases c WHERE c.referral_id = h.referral_id)"
    " ORDER BY seq LIMIT $1::int";

static const char *const SQL_HELD_COUNT = "SELECT count(*) FROM held_events";

/* ---------------------------------------------------------------- state */

/* A growing JSON text (see jw_mem below). */
struct jw {
    char *s;
    size_t len, cap;
    bool oom;
};

struct msg {
    struct msg *next;
    struct casestore_source src;
    char *topic; /* owned copy of src.topic */
    char *body;  /* owned */
    size_t len;
    struct event ev; /* owned when has_ev */
    bool has_ev;
    enum event_error parse_error; /* a held body that no longer parses */
    casestore_done_fn done;       /* NULL for a retried held event */
    void *done_arg;
    bool from_hold;
    char event_id[37];
    char referral_id[72];
    unsigned char sha[32]; /* SHA-256 of body */
    /* per attempt */
    int st_held_row;
    enum casestore_outcome outcome;
    enum event_error error;
    bool has_decision;
    struct decision decision;
    bool skip; /* a retried held event another daemon already resolved */
};

/* A case as the batch sees it: read in round 1, changed by earlier events of the batch. */
struct bcase {
    char *referral_id, *child_id, *family_id, *destination, *locality_id, *hub_id, *rule;
    enum route_kind route;
    enum case_state state;
    enum priority priority; /* the latest decision's, with its rule and deadline: what */
    bool has_due;           /* messages about the case say */
    int64_t due_at_s;
    int64_t decided_at_ms, closed_at_ms;
    char *body; /* the referral.received body, when the batch needs it */
    size_t body_len;
    struct event ref;
    int ref_state;                    /* 0 not parsed, 1 parsed, -1 does not parse, 2 borrowed */
    const struct event *ref_borrowed; /* a referral of this batch: its msg's event */
};

struct casestore {
    struct casestore_options opt;
    const struct policy *policy;
    struct db *db;
    bool ready, fatal;

    struct msg *q_head, *q_tail; /* waiting, in submission order */
    size_t n_queued, n_pending;

    /* the batch in flight */
    bool busy;
    bool retry_batch;
    struct msg **batch;
    size_t n_batch, cap_batch;
    size_t batch_limit;
    int failures;
    struct db_round *r1, *r2, *rb;
    struct db_round *r2rows; /* round 2's row-changing statements, in batch order */
    int st_seen;
    double read_ms, plan_ms;      /* the batch's round 1 and planning, for the debug log */
    struct jw jw_reasons, jw_msg; /* reused for every decision */
    struct dbbulk *b_seen, *b_processed, *b_case, *b_decision, *b_audit, *b_outbox;
    struct dbbulk *b_plan; /* the plan hook's multi-row insert, when it has one */
    struct bcase *cases;
    size_t n_cases, cap_cases;
    /* the cases hashed by referral, child and family id: heads hold an index + 1 (0:
     * none), next_* the next case of the same bucket; n_heads a power of two */
    size_t *head_ref, *head_kid, *head_fam, *next_ref, *next_kid, *next_fam;
    size_t n_heads;
    int st_cases, st_held_refs;
    struct history_case *hist_child, *hist_family;
    bool new_case, new_outbox, released_hold;
    int64_t now_ms;

    struct event *ev_kick;  /* start work from the loop */
    struct event *ev_retry; /* retry after a failure */
    struct event *ev_scan;  /* held events */
    bool scan_due;
    long held_count;
};

static void kick(struct casestore *cs);

/* ---------------------------------------------------------------- small helpers */

const char *casestore_outcome_name(enum casestore_outcome o)
{
    static const char *const names[] = {"routed",    "rerouted", "closed",  "applied",
                                        "duplicate", "held",     "rejected"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "unknown";
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void casestore_new_uuid(char out[37])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    /* version 7: the first 48 bits are the Unix time in milliseconds, so ids made one
     * after another land side by side in a primary key instead of on a random page of it
     * (fewer pages dirtied and written in full after each checkpoint) */
    uint64_t ms = (uint64_t)wall_ms();
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x70);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* A small JSON writer for the messages this module makes: they are flat and made for
 * every decision, and building a jansson tree only to print it cost more than the rest
 * of a decision. Strings are escaped as RFC 8259 requires. */
static void jw_mem(struct jw *w, const char *p, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 512;
        while (w->len + n + 1 > cap)
            cap *= 2;
        char *ns = realloc(w->s, cap);
        if (ns == NULL) {
            w->oom = true;
            return;
        }
        w->s = ns;
        w->cap = cap;
    }
    memcpy(w->s + w->len, p, n);
    w->len += n;
    w->s[w->len] = '\0';
}

static void jw_raw(struct jw *w, const char *p)
{
    jw_mem(w, p, strlen(p));
}

static void jw_str(struct jw *w, const char *p)
{
    static const char hex[] = "0123456789abcdef";
    jw_mem(w, "\"", 1);
    const char *run = p;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jw_mem(w, run, (size_t)(p - run));
        char e[7] = {'\\', (char)c, 0};
        if (c < 0x20) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            e[6] = 0;
        }
        jw_raw(w, e);
        run = p + 1;
    }
    jw_mem(w, run, (size_t)(p - run));
    jw_mem(w, "\"", 1);
}

/* ,"key":"value" (value NULL: null) */
static void jw_member(struct jw *w, const char *key, const char *value)
{
    jw_raw(w, ",\"");
    jw_raw(w, key);
    jw_raw(w, "\":");
    if (value)
        jw_str(w, value);
    else
        jw_raw(w, "null");
}

/* The reasons as a JSON array. */
static void jw_reasons(struct jw *w, const struct decision *d)
{
    jw_raw(w, "[");
    for (size_t i = 0; i < d->n_reasons; i++) {
        if (i)
            jw_raw(w, ",");
        jw_str(w, d->reasons[i]);
    }
    jw_raw(w, "]");
}

/* events.md's frontdoor.decisions message, its fields in the spec's order. */
static void jw_decision(struct jw *w, const char *event_id, const char *cause_event_id,
                        const char *referral_id, const struct decision *d, int64_t decided_at_ms,
                        const char *reasons)
{
    char decided[32], due[32];
    caltime_format_utc_ms(decided_at_ms, decided);
    jw_raw(w, "{\"schema_version\":1,\"type\":\"case.routed\"");
    jw_member(w, "event_id", event_id);
    jw_member(w, "cause_event_id", cause_event_id);
    jw_member(w, "referral_id", referral_id);
    jw_member(w, "route", rules_route_name(d->route));
    jw_member(w, "destination", d->destination);
    jw_member(w, "priority", rules_priority_name(d->priority));
    jw_member(w, "rule", d->rule);
    jw_raw(w, ",\"reasons\":");
    jw_raw(w, reasons);
    jw_member(w, "decided_at", decided);
    jw_member(w, "decision_due_at", route_format_due(d, due));
    jw_member(w, "state", rules_state_name(d->state));
    jw_raw(w, "}");
}

char *casestore_decision_message(const char *event_id, const char *cause_event_id,
                                 const char *referral_id, const struct decision *d,
                                 int64_t decided_at_ms)
{
    struct jw r = {0}, w = {0};
    jw_reasons(&r, d);
    if (!r.oom)
        jw_decision(&w, event_id, cause_event_id, referral_id, d, decided_at_ms, r.s);
    free(r.s);
    if (w.oom || r.oom) {
        free(w.s);
        return NULL;
    }
    return w.s;
}

/* The child and family ids of a referral as the case store keeps and compares them: the
 * ones event_parse() picked (a non-empty string without an embedded NUL), else NULL. A
 * jansson string is NUL-terminated at its length, so these are C strings. */
static const char *ref_child_id(const struct event *ev)
{
    return ev->ref.child_id && ev->ref.child_id_len > 0 ? ev->ref.child_id : NULL;
}

static const char *ref_family_id(const struct event *ev)
{
    return ev->ref.family_id && ev->ref.family_id_len > 0 ? ev->ref.family_id : NULL;
}

/* level_of_need as stored: a whole number 1-4, else 0 (stored as NULL). */
static int level_of(const struct event *ev)
{
    const json_t *j = json_object_get(json_object_get(ev->root, "referral"), "level_of_need");
    double v;
    if (json_is_integer(j))
        v = (double)json_integer_value(j);
    else if (json_is_real(j))
        v = json_real_value(j);
    else
        return 0;
    return v == 1 || v == 2 || v == 3 || v == 4 ? (int)v : 0;
}

static void msg_free(struct msg *m)
{
    if (m == NULL)
        return;
    if (m->has_ev)
        event_release(&m->ev);
    free(m->topic);
    free(m->body);
    free(m);
}

static void bcase_clear(struct bcase *c)
{
    free(c->referral_id);
    free(c->child_id);
    free(c->family_id);
    free(c->destination);
    free(c->locality_id);
    free(c->hub_id);
    free(c->rule);
    free(c->body);
    if (c->ref_state == 1)
        event_release(&c->ref);
    memset(c, 0, sizeof *c);
}

static void cases_clear(struct casestore *cs)
{
    for (size_t i = 0; i < cs->n_cases; i++)
        bcase_clear(&cs->cases[i]);
    cs->n_cases = 0;
    size_t *heads[] = {cs->head_ref, cs->head_kid, cs->head_fam};
    for (size_t i = 0; i < 3; i++)
        if (heads[i])
            memset(heads[i], 0, cs->n_heads * sizeof *heads[i]);
}

static size_t id_bucket(const struct casestore *cs, const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h & (cs->n_heads - 1);
}

static void index_put(struct casestore *cs, size_t *head, size_t *next, const char *key, size_t i)
{
    if (key == NULL)
        return;
    size_t b = id_bucket(cs, key);
    next[i] = head[b];
    head[b] = i + 1;
}

/* Index case c (its ids set). */
static void case_index(struct casestore *cs, const struct bcase *c)
{
    size_t i = (size_t)(c - cs->cases);
    index_put(cs, cs->head_ref, cs->next_ref, c->referral_id, i);
    index_put(cs, cs->head_kid, cs->next_kid, c->child_id, i);
    index_put(cs, cs->head_fam, cs->next_fam, c->family_id, i);
}

/* Room for cap cases in the index (rehashing what is there). */
static int index_grow(struct casestore *cs, size_t cap)
{
    size_t **nexts[] = {&cs->next_ref, &cs->next_kid, &cs->next_fam};
    for (size_t i = 0; i < 3; i++) {
        size_t *n = realloc(*nexts[i], cap * sizeof *n);
        if (n == NULL)
            return -1;
        *nexts[i] = n;
    }
    size_t nh = cs->n_heads ? cs->n_heads : 128;
    while (nh < 2 * cap)
        nh *= 2;
    if (nh == cs->n_heads)
        return 0;
    size_t **heads[] = {&cs->head_ref, &cs->head_kid, &cs->head_fam};
    for (size_t i = 0; i < 3; i++) {
        size_t *h = calloc(nh, sizeof *h);
        if (h == NULL)
            return -1;
        free(*heads[i]);
        *heads[i] = h;
    }
    cs->n_heads = nh;
    for (size_t i = 0; i < cs->n_cases; i++)
        case_index(cs, &cs->cases[i]);
    return 0;
}

static struct bcase *case_find(struct casestore *cs, const char *referral_id)
{
    if (cs->n_heads == 0)
        return NULL;
    for (size_t i = cs->head_ref[id_bucket(cs, referral_id)]; i; i = cs->next_ref[i - 1])
        if (strcmp(cs->cases[i - 1].referral_id, referral_id) == 0)
            return &cs->cases[i - 1];
    return NULL;
}

static struct bcase *case_add(struct casestore *cs)
{
    if (cs->n_cases == cs->cap_cases) {
        size_t cap = cs->cap_cases ? cs->cap_cases * 2 : 64;
        struct bcase *n = realloc(cs->cases, cap * sizeof *n);
        struct history_case *hc = realloc(cs->hist_child, cap * sizeof *hc);
        if (hc)
            cs->hist_child = hc;
        struct history_case *hf = realloc(cs->hist_family, cap * sizeof *hf);
        if (hf)
            cs->hist_family = hf;
        if (n)
            cs->cases = n;
        if (!n || !hc || !hf || index_grow(cs, cap) != 0)
            return NULL;
        cs->cap_cases = cap;
    }
    struct bcase *c = &cs->cases[cs->n_cases++];
    memset(c, 0, sizeof *c);
    return c;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The referral of a case, parsed from its stored body (NULL when it does not parse). */
static const struct event *case_referral(struct bcase *c)
{
    if (c->ref_state == 2)
        return c->ref_borrowed;
    if (c->ref_state == 0) {
        char detail[128];
        c->ref_state = -1;
        if (c->body && event_parse(c->body, c->body_len, EVENT_TOPIC_REFERRALS, (size_t)-1, &c->ref,
                                   detail, sizeof detail) == EVENT_OK)
            c->ref_state = 1;
    }
    return c->ref_state == 1 ? &c->ref : NULL;
}

/* The cases of one child (by_child) or family, in the order they were added. */
static size_t history_collect(struct casestore *cs, const char *id, bool by_child,
                              struct history_case *out)
{
    if (id == NULL || cs->n_heads == 0)
        return 0;
    const size_t *head = by_child ? cs->head_kid : cs->head_fam;
    const size_t *next = by_child ? cs->next_kid : cs->next_fam;
    size_t n = 0;
    for (size_t i = head[id_bucket(cs, id)]; i; i = next[i - 1]) {
        const struct bcase *c = &cs->cases[i - 1];
        const char *cid = by_child ? c->child_id : c->family_id;
        if (cid == NULL || strcmp(cid, id) != 0)
            continue;
        out[n++] = (struct history_case){
            .referral_id = c->referral_id,
            .child_id = c->child_id,
            .route = c->route,
            .destination = c->destination,
            .open = c->state != CASE_CLOSED,
            .closed_at_ms = c->closed_at_ms,
            .decided_at_ms = c->decided_at_ms,
        };
    }
    for (size_t a = 0, b = n; a + 1 < b; a++, b--) { /* the chain runs newest first */
        struct history_case t = out[a];
        out[a] = out[b - 1];
        out[b - 1] = t;
    }
    return n;
}

/* History for rules 5 and 6: the batch's cases of this child and this family. */
static void history_for(struct casestore *cs, const char *child_id, const char *family_id,
                        struct route_history *h)
{
    memset(h, 0, sizeof *h);
    h->child_cases = cs->hist_child;
    h->family_cases = cs->hist_family;
    h->n_child_cases = history_collect(cs, child_id, true, cs->hist_child);
    h->n_family_cases = history_collect(cs, family_id, false, cs->hist_family);
}

/* ---------------------------------------------------------------- statements */

/* Parameter lists are built in small fixed arrays: every statement has at most 17. */
struct params {
    const char *v[20];
    int len[20];
    int fmt[20];
    int n;
};

static void p_text(struct params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void p_bytes(struct params *p, const char *s, size_t len)
{
    p->v[p->n] = s;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

static int add(struct db_round *r, const char *sql, struct params *p)
{
    return db_round_add(r, sql, p->n, p->v, p->len, p->fmt);
}

static const char *ts_or_null(bool has, int64_t ms, char *buf)
{
    return has ? caltime_format_utc_ms(ms, buf) : NULL;
}

static int w_processed(struct casestore *cs, const struct msg *m, const char *outcome)
{
    const char *v[NCOL_PROCESSED] = {m->event_id, (const char *)m->sha, m->topic,
                                     m->referral_id[0] ? m->referral_id : NULL, outcome};
    const long lens[NCOL_PROCESSED] = {-1, (long)sizeof m->sha, -1, -1, -1};
    return dbbulk_add(cs->b_processed, v, lens);
}

static int w_audit(struct casestore *cs, const struct msg *m, const char *action, const char *from,
                   const char *to)
{
    const char *v[NCOL_AUDIT] = {m->referral_id, m->event_id, action, from, to};
    return dbbulk_add(cs->b_audit, v, NULL);
}

/* An outbox message: kind "decision" or "dlq"; headers a JSON array or NULL. */
/* payload is a JSON text (a decision, or a usable event's own bytes), so NUL-free UTF-8:
 * it travels as text, half the size of bytea hex. */
static int w_outbox(struct casestore *cs, const char *dedupe_key, const char *kind, const char *key,
                    const char *payload, const char *headers)
{
    const char *v[NCOL_OUTBOX] = {dedupe_key, kind, key, payload, headers};
    cs->new_outbox = true;
    return dbbulk_add(cs->b_outbox, v, NULL);
}

static int w_unhold(struct db_round *r, const struct msg *m)
{
    struct params p = {.n = 0};
    p_text(&p, m->event_id);
    return add(r, SQL_UNHOLD, &p);
}

/* The decision row and its frontdoor.decisions outbox message. */
static int w_decision(struct casestore *cs, const struct msg *m, const struct decision *d)
{
    char uuid[37], decided[32], due[32];
    casestore_new_uuid(uuid);
    caltime_format_utc_ms(cs->now_ms, decided);
    const char *due_s = route_format_due(d, due);
    /* cause_event_id as the input wrote it, as --explain prints it */
    const char *raw = json_string_value(json_object_get(m->ev.root, "event_id"));
    struct jw *r = &cs->jw_reasons, *w = &cs->jw_msg;
    r->len = w->len = 0;
    r->oom = w->oom = false;
    jw_reasons(r, d);
    if (!r->oom)
        jw_decision(w, uuid, raw ? raw : m->event_id, m->referral_id, d, cs->now_ms, r->s);
    if (r->oom || w->oom)
        return -1;
    const char *v[NCOL_DECISION] = {m->referral_id,
                                    m->event_id,
                                    uuid,
                                    rules_route_name(d->route),
                                    d->destination,
                                    rules_priority_name(d->priority),
                                    d->rule,
                                    r->s,
                                    rules_state_name(d->state),
                                    decided,
                                    due_s};
    char key[64];
    snprintf(key, sizeof key, "decision:%s", m->event_id);
    if (dbbulk_add(cs->b_decision, v, NULL) != 0 ||
        w_outbox(cs, key, "decision", m->referral_id, w->s, NULL) != 0)
        return -1;
    return 0;
}

/* A rejected event: its DLQ message goes to the outbox (headers as events.md says). */
static int w_dlq(struct casestore *cs, const struct msg *m, enum event_error e, const char *detail)
{
    char part[16], off[24], key[400];
    snprintf(part, sizeof part, "%d", (int)m->src.partition);
    snprintf(off, sizeof off, "%lld", (long long)m->src.offset);
    snprintf(key, sizeof key, "dlq:%s:%s:%s", m->topic, part, off);
    json_t *h =
        json_pack("[[s,s],[s,s],[s,s],[s,s],[s,s]]", "error", event_error_code(e), "error_detail",
                  detail, "source_topic", m->topic, "source_partition", part, "source_offset", off);
    char *hs = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    int rc = -1;
    if (hs)
        rc = w_outbox(cs, key, "dlq", m->referral_id[0] ? m->referral_id : NULL, m->body, hs);
    free(hs);
    return rc < 0 ? -1 : 0;
}

static int plan(struct casestore *cs, struct db_round *r, const struct msg *m,
                const struct event *referral, const struct bcase *c, enum case_state from,
                enum case_state to)
{
    if (cs->opt.plan == NULL)
        return 0;
    struct casestore_case after;
    if (c != NULL)
        after = (struct casestore_case){
            .route = c->route,
            .destination = c->destination,
            .priority = c->priority,
            .rule = c->rule ? c->rule : "",
            .has_due = c->has_due,
            .due_at_s = c->due_at_s,
        };
    struct casestore_change ch = {
        .outcome = m->outcome,
        .error = m->error,
        .event = m->has_ev ? &m->ev : NULL,
        .referral = referral,
        .referral_id = m->referral_id,
        .decision = m->has_decision ? &m->decision : NULL,
        .from_state = from,
        .to_state = to,
        .case_after = c ? &after : NULL,
        .source = &m->src,
        .now_ms = cs->now_ms,
        .bulk = cs->b_plan,
    };
    size_t before = db_round_count(r), before_rows = cs->b_plan ? dbbulk_rows(cs->b_plan) : 0;
    int rc = cs->opt.plan(cs->opt.arg, r, &ch);
    if (db_round_count(r) > before || (cs->b_plan && dbbulk_rows(cs->b_plan) > before_rows))
        cs->new_outbox = true; /* on_outbox after COMMIT: notifications to send */
    return rc;
}

static int reject(struct casestore *cs, struct db_round *r, struct msg *m, enum event_error e,
                  const char *detail, bool mark_processed)
{
    m->outcome = CASESTORE_REJECTED;
    m->error = e;
    int rc = w_dlq(cs, m, e, detail);
    if (rc == 0 && mark_processed && w_processed(cs, m, event_error_code(e)) < 0)
        rc = -1;
    if (rc == 0 && m->from_hold && w_unhold(r, m) < 0)
        rc = -1;
    if (rc == 0)
        rc = plan(cs, r, m, NULL, NULL, CASE_STATE_COUNT, CASE_STATE_COUNT);
    return rc;
}

static int hold(struct casestore *cs, struct db_round *r, struct msg *m)
{
    m->outcome = CASESTORE_HELD;
    if (m->from_hold)
        return 0; /* it stays where it is */
    char part[16], off[24], secs[16];
    snprintf(part, sizeof part, "%d", (int)m->src.partition);
    snprintf(off, sizeof off, "%lld", (long long)m->src.offset);
    snprintf(secs, sizeof secs, "%d", cs->opt.cfg->kafka.unknown_case_retry_s);
    struct params p = {.n = 0};
    p_text(&p, m->event_id);
    p_text(&p, m->referral_id);
    p_text(&p, m->topic);
    p_text(&p, part);
    p_text(&p, off);
    p_bytes(&p, m->body, m->len);
    p_text(&p, secs);
    return add(r, SQL_HOLD, &p) < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- one event */

static int do_referral(struct casestore *cs, struct db_round *r, struct msg *m)
{
    const struct event *ev = &m->ev;
    if (case_find(cs, m->referral_id)) {
        log_warn("event rejected", "event", m->event_id, "referral", m->referral_id, "error",
                 "duplicate_referral");
        return reject(cs, r, m, EVENT_DUPLICATE_REFERRAL,
                      "a case with this referral id already exists", true);
    }

    const char *child = ref_child_id(ev);
    const char *family = ref_family_id(ev);
    struct route_history h;
    history_for(cs, child, family, &h);
    struct decision *d = &m->decision;
    route_decide_referral(cs->policy, ev, &h, d);
    m->has_decision = true;
    m->outcome = CASESTORE_ROUTED;
    const char *locality = NULL, *hub = NULL;
    route_case_placement(cs->policy, ev, &locality, &hub);

    /* the batch's view first, so later events of the batch see this case */
    struct bcase *c = case_add(cs);
    if (c == NULL)
        return -1;
    c->referral_id = strdup(m->referral_id);
    c->child_id = dup_or_null(child);
    c->family_id = dup_or_null(family);
    if (c->referral_id == NULL || (child && !c->child_id) || (family && !c->family_id))
        return -1;
    case_index(cs, c);
    c->destination = strdup(d->destination);
    c->locality_id = dup_or_null(locality);
    c->hub_id = dup_or_null(hub);
    c->rule = strdup(d->rule);
    c->route = d->route;
    c->state = d->state;
    c->priority = d->priority;
    c->has_due = d->has_due;
    c->due_at_s = d->due_at_s;
    c->decided_at_ms = cs->now_ms;
    c->closed_at_ms = d->state == CASE_CLOSED ? ev->occurred_at_ms : 0;
    /* the referral is this batch's own: later events of the batch use its parsed event
     * (the msg outlives the batch's case view) */
    c->ref_state = 2;
    c->ref_borrowed = &m->ev;
    if (!c->destination || !c->rule)
        return -1;

    char received[32], decided[32], due[32], closed[32], level[8];
    int lvl = level_of(ev);
    snprintf(level, sizeof level, "%d", lvl);
    const char *v[NCOL_CASE] = {m->referral_id,
                                child,
                                family,
                                rules_state_name(d->state),
                                rules_route_name(d->route),
                                d->destination,
                                rules_priority_name(d->priority),
                                d->rule,
                                lvl ? level : NULL,
                                caltime_format_utc_ms(ev->occurred_at_ms, received),
                                caltime_format_utc_ms(cs->now_ms, decided),
                                ts_or_null(d->has_due, d->due_at_s * 1000, due),
                                ts_or_null(d->state == CASE_CLOSED, ev->occurred_at_ms, closed),
                                locality,
                                hub,
                                m->event_id,
                                m->body};
    /* the body is a usable event's JSON text: NUL-free UTF-8, sent as text */
    if (w_processed(cs, m, "routed") < 0 || dbbulk_add(cs->b_case, v, NULL) < 0 ||
        w_decision(cs, m, d) < 0 ||
        w_audit(cs, m, "referral.received", NULL, rules_state_name(d->state)) < 0)
        return -1;
    cs->new_case = true;
    return plan(cs, r, m, ev, c, CASE_STATE_COUNT, d->state);
}

static int do_case_event(struct casestore *cs, struct db_round *r, struct msg *m, bool expired,
                         bool behind_hold)
{
    const struct event *ev = &m->ev;
    struct bcase *c = case_find(cs, m->referral_id);
    if (behind_hold)
        return hold(cs, r, m); /* keep the case's events in order */
    if (c == NULL) {
        if (cs->opt.cfg->kafka.unknown_case_retry_s > 0 && !expired) {
            return hold(cs, r, m);
        }
        return reject(cs, r, m, EVENT_UNKNOWN_CASE, "no case has this referral id", true);
    }
    const struct event *referral = case_referral(c);
    struct case_view view = {
        .referral_id = c->referral_id,
        .route = c->route,
        .destination = c->destination,
        .state = c->state,
        .locality_id = c->locality_id,
        .hub_id = c->hub_id,
    };
    struct route_history h;
    history_for(cs, c->child_id, c->family_id, &h);
    enum case_effect effect;
    char detail[256];
    enum event_error e = route_apply_case_event(cs->policy, ev, &view, referral, &h, &effect,
                                                &m->decision, detail, sizeof detail);
    if (e != EVENT_OK) {
        return reject(cs, r, m, e, detail, true);
    }
    enum case_state from = c->state;
    const char *type = event_type_name(ev->type);
    char t1[32], t2[32], t3[32];
    if (effect == CASE_EFFECT_REROUTE) {
        struct decision *d = &m->decision;
        m->has_decision = true;
        m->outcome = CASESTORE_REROUTED;
        char *dest = strdup(d->destination), *rule = strdup(d->rule);
        if (dest == NULL || rule == NULL) {
            free(dest);
            free(rule);
            return -1;
        }
        free(c->destination);
        c->destination = dest;
        free(c->rule);
        c->rule = rule;
        c->route = d->route;
        c->state = d->state;
        c->priority = d->priority;
        c->has_due = d->has_due;
        c->due_at_s = d->due_at_s;
        c->decided_at_ms = cs->now_ms;
        c->closed_at_ms = d->state == CASE_CLOSED ? ev->occurred_at_ms : 0;
        struct params p = {.n = 0};
        p_text(&p, m->referral_id);
        p_text(&p, rules_state_name(d->state));
        p_text(&p, rules_route_name(d->route));
        p_text(&p, d->destination);
        p_text(&p, rules_priority_name(d->priority));
        p_text(&p, d->rule);
        p_text(&p, caltime_format_utc_ms(cs->now_ms, t1));
        p_text(&p, ts_or_null(d->has_due, d->due_at_s * 1000, t2));
        p_text(&p, ts_or_null(d->state == CASE_CLOSED, ev->occurred_at_ms, t3));
        if (add(r, SQL_UPDATE_ROUTE, &p) < 0 || w_decision(cs, m, d) < 0)
            return -1;
    } else if (effect == CASE_EFFECT_CLOSE) {
        m->outcome = CASESTORE_CLOSED;
        c->state = CASE_CLOSED;
        c->closed_at_ms = ev->occurred_at_ms;
        struct params p = {.n = 0};
        p_text(&p, m->referral_id);
        p_text(&p, caltime_format_utc_ms(ev->occurred_at_ms, t1));
        if (add(r, SQL_CLOSE_CASE, &p) < 0)
            return -1;
    } else {
        m->outcome = CASESTORE_APPLIED;
    }
    if (w_processed(cs, m, casestore_outcome_name(m->outcome)) < 0 ||
        w_audit(cs, m, type, rules_state_name(from), rules_state_name(c->state)) < 0 ||
        (m->from_hold && w_unhold(r, m) < 0))
        return -1;
    if (m->from_hold)
        cs->released_hold = true;
    return plan(cs, r, m, referral, c, from, c->state);
}

/* ---------------------------------------------------------------- batches */

static void batch_requeue(struct casestore *cs)
{
    /* Back to the head of the queue, in order; retried held events stay in the table. */
    struct msg *head = NULL, **tail = &head;
    for (size_t i = 0; i < cs->n_batch; i++) {
        struct msg *m = cs->batch[i];
        if (m->from_hold) {
            msg_free(m);
            continue;
        }
        *tail = m;
        tail = &m->next;
        cs->n_queued++;
    }
    *tail = cs->q_head;
    if (cs->q_head == NULL && head != NULL) {
        struct msg *t = head;
        while (t->next)
            t = t->next;
        cs->q_tail = t;
    }
    cs->q_head = head ? head : cs->q_head;
    cs->n_batch = 0;
}

static void batch_end(struct casestore *cs)
{
    cases_clear(cs);
    db_round_reset(cs->r1);
    db_round_reset(cs->r2);
    cs->busy = false;
    cs->retry_batch = false;
}

static void retry_later(struct casestore *cs, bool shrink)
{
    cs->failures++;
    if (shrink && cs->batch_limit > 1)
        cs->batch_limit = (cs->batch_limit + 1) / 2;
    batch_requeue(cs);
    batch_end(cs);
    cs->busy = true; /* until the retry timer */
    int ms = db_backoff_ms(cs->failures - 1, 100, 30000, (double)random() / RAND_MAX);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(cs->ev_retry, &tv);
}

static void rollback_done(void *arg, struct db_round *r, enum db_status st)
{
    (void)r;
    struct casestore *cs = arg;
    if (st == DB_CLOSED)
        return;
    retry_later(cs, true);
}

/* A round failed: roll back (when the connection survived) and retry the batch. */
static void batch_failed(struct casestore *cs, const char *what, struct db_round *r,
                         enum db_status st)
{
    if (st == DB_CLOSED)
        return;
    if (r)
        db_log_error(what, r, st);
    if (st == DB_LOST || !db_is_up(cs->db)) {
        /* The transaction died with the connection; the batch waits for on_up. */
        batch_requeue(cs);
        batch_end(cs);
        return;
    }
    db_round_reset(cs->r1);
    db_round_addv(cs->r1, SQL_ROLLBACK, 0, NULL);
    if (db_submit(cs->db, cs->r1, rollback_done, cs) != 0) {
        batch_requeue(cs);
        batch_end(cs);
    }
}

/* One line per event, once its transaction committed: a batch that fails and is retried
 * logs nothing twice, and nothing that did not happen. Ids and codes only. */
static void log_committed(const struct msg *m)
{
    const char *type = m->has_ev ? event_type_name(m->ev.type) : "";
    const struct decision *d = &m->decision;
    switch (m->outcome) {
    case CASESTORE_ROUTED:
        log_info("referral routed", "event", m->event_id, "referral", m->referral_id, "route",
                 rules_route_name(d->route), "destination", d->destination, "rule", d->rule,
                 "priority", rules_priority_name(d->priority));
        break;
    case CASESTORE_REROUTED:
        log_info("case re-routed", "event", m->event_id, "referral", m->referral_id, "type", type,
                 "route", rules_route_name(d->route), "destination", d->destination, "rule",
                 d->rule, "priority", rules_priority_name(d->priority));
        break;
    case CASESTORE_CLOSED:
        log_info("case closed", "event", m->event_id, "referral", m->referral_id);
        break;
    case CASESTORE_APPLIED:
        log_info("case event applied", "event", m->event_id, "referral", m->referral_id, "type",
                 type);
        break;
    case CASESTORE_HELD:
        if (!m->from_hold) /* not again at every retry */
            log_info("case event held until its referral arrives", "event", m->event_id, "referral",
                     m->referral_id, "type", type);
        break;
    case CASESTORE_REJECTED:
        log_warn("event rejected", "event", m->event_id, "referral", m->referral_id, "type", type,
                 "error", event_error_code(m->error));
        break;
    case CASESTORE_DUPLICATE:
    default:
        log_info("duplicate event ignored", "event", m->event_id, "referral", m->referral_id);
        break;
    }
}

static void round2_done(void *arg, struct db_round *r, enum db_status st)
{
    struct casestore *cs = arg;
    if (st != DB_OK) {
        batch_failed(cs, "batch write", r, st);
        return;
    }
    if (log_enabled(LOG_DEBUG)) {
        char n[16], ms[24], rd[24], pl[24];
        snprintf(n, sizeof n, "%zu", cs->n_batch);
        snprintf(ms, sizeof ms, "%.1f", db_round_elapsed_ms(r));
        snprintf(rd, sizeof rd, "%.1f", cs->read_ms);
        snprintf(pl, sizeof pl, "%.1f", cs->plan_ms);
        log_debug("batch committed", "events", n, "read_ms", rd, "plan_ms", pl, "write_ms", ms);
    }
    cs->failures = 0;
    cs->batch_limit = (size_t)cs->opt.cfg->database.batch_max;
    for (size_t i = 0; i < cs->n_batch; i++) {
        struct msg *m = cs->batch[i];
        if (m->outcome == CASESTORE_HELD)
            cs->held_count = -1; /* unknown until the next scan */
        /* Counted once committed: a retried batch counts nothing twice. A retried held
         * event was counted as consumed (held) when it came from Kafka. */
        if (!m->skip)
            log_committed(m);
        if (m->has_decision && !m->skip)
            metrics_count_decision(rules_route_name(m->decision.route), m->decision.rule);
        if (m->outcome == CASESTORE_REJECTED && !m->skip)
            metrics_count_dead_letter(m->topic, event_error_code(m->error));
        if (m->done) {
            metrics_count_event(m->topic, casestore_outcome_name(m->outcome));
            struct casestore_result res = {
                .outcome = m->outcome,
                .error = m->error,
                .event_id = m->event_id,
                .referral_id = m->referral_id,
                .decision = m->has_decision ? &m->decision : NULL,
            };
            m->done(m->done_arg, &res);
            cs->n_pending--;
        }
        msg_free(m);
    }
    cs->n_batch = 0;
    bool outbox = cs->new_outbox;
    /* held events may now find their case; none known held: the periodic scan will do
     * (it also finds what other daemons hold) */
    if ((cs->new_case || cs->released_hold) && cs->held_count != 0)
        cs->scan_due = true;
    batch_end(cs);
    if (outbox && cs->opt.on_outbox)
        cs->opt.on_outbox(cs->opt.arg);
    kick(cs);
}

/* Round 1 answered: decide every event and send the writes. */
static void round1_done(void *arg, struct db_round *r, enum db_status st)
{
    struct casestore *cs = arg;
    if (st != DB_OK) {
        batch_failed(cs, "batch read", r, st);
        return;
    }
    cs->read_ms = db_round_elapsed_ms(r);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the cases */
    PGresult *res = db_round_result(r, (size_t)cs->st_cases);
    for (int i = 0; i < PQntuples(res); i++) {
        struct bcase *c = case_add(cs);
        if (c == NULL) {
            batch_failed(cs, "out of memory", NULL, DB_ERROR);
            return;
        }
        c->referral_id = strdup(PQgetvalue(res, i, 0));
        c->child_id = PQgetisnull(res, i, 1) ? NULL : strdup(PQgetvalue(res, i, 1));
        c->family_id = PQgetisnull(res, i, 2) ? NULL : strdup(PQgetvalue(res, i, 2));
        if (c->referral_id == NULL || (c->child_id == NULL && !PQgetisnull(res, i, 1)) ||
            (c->family_id == NULL && !PQgetisnull(res, i, 2))) {
            batch_failed(cs, "out of memory", NULL, DB_ERROR);
            return;
        }
        case_index(cs, c);
        const char *state = PQgetvalue(res, i, 3), *route = PQgetvalue(res, i, 4);
        if (!rules_parse_state(state, strlen(state), &c->state))
            c->state = CASE_TRIAGE;
        if (!rules_parse_route(route, strlen(route), &c->route))
            c->route = ROUTE_MANUAL_TRIAGE;
        c->destination = strdup(PQgetvalue(res, i, 5));
        c->decided_at_ms = strtoll(PQgetvalue(res, i, 6), NULL, 10);
        c->closed_at_ms = PQgetisnull(res, i, 7) ? 0 : strtoll(PQgetvalue(res, i, 7), NULL, 10);
        c->locality_id = PQgetisnull(res, i, 8) ? NULL : strdup(PQgetvalue(res, i, 8));
        c->hub_id = PQgetisnull(res, i, 9) ? NULL : strdup(PQgetvalue(res, i, 9));
        const char *prio = PQgetvalue(res, i, 11);
        c->priority = strcmp(prio, "red") == 0     ? PRIORITY_RED
                      : strcmp(prio, "amber") == 0 ? PRIORITY_AMBER
                      : strcmp(prio, "green") == 0 ? PRIORITY_GREEN
                                                   : PRIORITY_BLUE;
        c->rule = strdup(PQgetvalue(res, i, 12));
        c->has_due = !PQgetisnull(res, i, 13);
        c->due_at_s = c->has_due ? strtoll(PQgetvalue(res, i, 13), NULL, 10) : 0;
        if (!PQgetisnull(res, i, 10)) {
            c->body_len = (size_t)PQgetlength(res, i, 10);
            c->body = malloc(c->body_len + 1);
            if (c->body)
                memcpy(c->body, PQgetvalue(res, i, 10), c->body_len + 1);
        }
    }
    /* referral ids with events already held (fresh batches only) */
    PGresult *held = cs->st_held_refs >= 0 ? db_round_result(r, (size_t)cs->st_held_refs) : NULL;

    cs->now_ms = wall_ms();
    struct db_round *w = cs->r2rows;
    db_round_reset(w);
    struct dbbulk *bulks[] = {cs->b_processed, cs->b_case, cs->b_decision, cs->b_audit,
                              cs->b_outbox};
    for (size_t i = 0; i < sizeof bulks / sizeof bulks[0]; i++)
        dbbulk_reset(bulks[i]);
    if (cs->b_plan)
        dbbulk_reset(cs->b_plan);
    int rc = 0;
    for (size_t i = 0; i < cs->n_batch && rc == 0; i++) {
        struct msg *m = cs->batch[i];
        m->outcome = CASESTORE_DUPLICATE;
        m->error = EVENT_OK;
        m->has_decision = false;
        bool expired = false;
        if (m->from_hold) {
            PGresult *hr = db_round_result(r, (size_t)m->st_held_row);
            if (PQntuples(hr) == 0) {
                m->skip = true; /* resolved meanwhile by another daemon */
                continue;
            }
            expired = strcmp(PQgetvalue(hr, 0, 0), "t") == 0;
        }
        if (!m->has_ev) { /* a held body that no longer parses */
            rc = reject(cs, w, m, m->parse_error, "the held event no longer parses", true);
            continue;
        }
        /* step 9: the same event id earlier in this batch, or already in the database */
        bool dup = false, reused = false, dup_held = false;
        for (size_t j = 0; j < i && !dup && !reused; j++) {
            const struct msg *o = cs->batch[j];
            if (strcmp(o->event_id, m->event_id) != 0 || o->skip)
                continue;
            if (o->len == m->len && memcmp(o->body, m->body, m->len) == 0) {
                dup = true;
                dup_held = o->outcome == CASESTORE_HELD;
            } else {
                reused = true;
            }
        }
        PGresult *sr = db_round_result(r, (size_t)cs->st_seen);
        const char *proc = PQgetisnull(sr, (int)i, 0) ? NULL : PQgetvalue(sr, (int)i, 0);
        const char *held_same = PQgetisnull(sr, (int)i, 1) ? NULL : PQgetvalue(sr, (int)i, 1);
        if (!dup && !reused && proc) {
            if (strcmp(proc, "t") == 0)
                dup = true;
            else
                reused = true;
        }
        if (!dup && !reused && held_same && !m->from_hold) {
            if (strcmp(held_same, "t") == 0)
                dup = dup_held = true; /* held already: it waits there */
            else
                reused = true;
        }
        if (reused) {
            /* never marked processed: the id belongs to the first body */
            bool was_held = m->from_hold;
            m->from_hold = false;
            rc = reject(cs, w, m, EVENT_ID_REUSED,
                        "event_id was already processed with a different body", false);
            m->from_hold = was_held;
            if (rc == 0 && was_held)
                rc = w_unhold(w, m) < 0 ? -1 : 0;
            continue;
        }
        if (dup) {
            m->outcome = dup_held ? CASESTORE_HELD : CASESTORE_DUPLICATE;
            if (m->from_hold && !dup_held)
                rc = w_unhold(w, m) < 0 ? -1 : 0;
            continue;
        }
        if (m->ev.type == EVENT_REFERRAL_RECEIVED) {
            rc = do_referral(cs, w, m);
            continue;
        }
        /* a case event behind held events of its case waits its turn */
        bool behind = false;
        for (size_t j = 0; j < i && !behind; j++)
            behind = cs->batch[j]->outcome == CASESTORE_HELD && !cs->batch[j]->skip &&
                     strcmp(cs->batch[j]->referral_id, m->referral_id) == 0 &&
                     cs->batch[j]->has_ev && cs->batch[j]->ev.type != EVENT_REFERRAL_RECEIVED;
        for (int k = 0; held && !m->from_hold && !behind && k < PQntuples(held); k++)
            behind = strcmp(PQgetvalue(held, k, 0), m->referral_id) == 0;
        rc = do_case_event(cs, w, m, expired, behind);
    }
    /* the inserts first (see the top of the file), then the changes in order */
    struct db_round *out = cs->r2;
    db_round_reset(out);
    for (size_t i = 0; i < sizeof bulks / sizeof bulks[0] && rc == 0; i++)
        if (dbbulk_flush(bulks[i], out) == -1)
            rc = -1;
    if (rc == 0 && cs->b_plan && dbbulk_flush(cs->b_plan, out) == -1)
        rc = -1;
    if (rc == 0 && db_round_take(out, w) < 0)
        rc = -1;
    if (rc == 0 && db_round_addv(out, SQL_COMMIT, 0, NULL) < 0)
        rc = -1;
    if (rc != 0) {
        batch_failed(cs, "batch planning", NULL, DB_ERROR);
        return;
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cs->plan_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (db_submit(cs->db, out, round2_done, cs) != 0) {
        batch_requeue(cs);
        batch_end(cs);
    }
}

static int json_add_str(json_t *a, const char *prefix, const char *s)
{
    if (s == NULL)
        return 0;
    size_t n = strlen(prefix) + strlen(s) + 1;
    char *k = malloc(n);
    if (k == NULL)
        return -1;
    snprintf(k, n, "%s%s", prefix, s);
    int rc = json_array_append_new(a, json_string(k));
    free(k);
    return rc;
}

/* Send round 1 for the events in cs->batch. */
static void batch_start(struct casestore *cs)
{
    struct db_round *r = cs->r1;
    db_round_reset(r);
    cs->new_case = cs->new_outbox = cs->released_hold = false;
    json_t *locks = json_array(), *ids = json_array(), *kids = json_array(), *fams = json_array(),
           *ce_ids = json_array();
    int rc = locks && ids && kids && fams && ce_ids ? 0 : -1;
    for (size_t i = 0; i < cs->n_batch && rc == 0; i++) {
        struct msg *m = cs->batch[i];
        m->skip = false;
        rc |= json_add_str(locks, "e:", m->event_id);
        if (m->referral_id[0]) {
            rc |= json_add_str(locks, "r:", m->referral_id);
            rc |= json_array_append_new(ids, json_string(m->referral_id));
        }
        if (m->has_ev && m->ev.type == EVENT_REFERRAL_RECEIVED) {
            const char *kid = ref_child_id(&m->ev);
            const char *fam = ref_family_id(&m->ev);
            rc |= json_add_str(locks, "c:", kid);
            rc |= json_add_str(locks, "f:", fam);
            if (kid)
                rc |= json_array_append_new(kids, json_string(kid));
            if (fam)
                rc |= json_array_append_new(fams, json_string(fam));
        } else if (m->referral_id[0]) {
            rc |= json_array_append_new(ce_ids, json_string(m->referral_id));
        }
    }
    char *s_locks = rc == 0 ? json_dumps(locks, JSON_COMPACT) : NULL;
    char *s_ids = rc == 0 ? json_dumps(ids, JSON_COMPACT) : NULL;
    char *s_kids = rc == 0 ? json_dumps(kids, JSON_COMPACT) : NULL;
    char *s_fams = rc == 0 ? json_dumps(fams, JSON_COMPACT) : NULL;
    char *s_ce = rc == 0 ? json_dumps(ce_ids, JSON_COMPACT) : NULL;
    json_decref(locks);
    json_decref(ids);
    json_decref(kids);
    json_decref(fams);
    json_decref(ce_ids);
    if (!s_locks || !s_ids || !s_kids || !s_fams || !s_ce)
        rc = -1;

    if (rc == 0 && db_round_addv(r, SQL_BEGIN, 0, NULL) < 0)
        rc = -1;
    const char *lp[1] = {s_locks};
    if (rc == 0 && db_round_addv(r, SQL_LOCK, 1, lp) < 0)
        rc = -1;
    dbbulk_reset(cs->b_seen);
    for (size_t i = 0; i < cs->n_batch && rc == 0; i++) {
        struct msg *m = cs->batch[i];
        EVP_Digest(m->body, m->len, m->sha, NULL, EVP_sha256(), NULL);
        const char *v[2] = {m->event_id, (const char *)m->sha};
        const long lens[2] = {-1, (long)sizeof m->sha};
        m->st_held_row = -1;
        if (dbbulk_add(cs->b_seen, v, lens) < 0)
            rc = -1;
        if (rc == 0 && m->from_hold) {
            struct params q = {.n = 0};
            p_text(&q, m->event_id);
            m->st_held_row = add(r, SQL_HELD_ROW, &q);
            if (m->st_held_row < 0)
                rc = -1;
        }
    }
    if (rc == 0 && (cs->st_seen = dbbulk_flush(cs->b_seen, r)) < 0)
        rc = -1;
    const char *cp[3] = {s_ids, s_kids, s_fams};
    if (rc == 0 && (cs->st_cases = db_round_addv(r, SQL_CASES, 3, cp)) < 0)
        rc = -1;
    cs->st_held_refs = -1;
    const char *hp[1] = {s_ce};
    if (rc == 0 && !cs->retry_batch &&
        (cs->st_held_refs = db_round_addv(r, SQL_HELD_REFS, 1, hp)) < 0)
        rc = -1;
    free(s_locks);
    free(s_ids);
    free(s_kids);
    free(s_fams);
    free(s_ce);
    if (rc != 0 || db_submit(cs->db, r, round1_done, cs) != 0) {
        if (rc != 0)
            log_error("out of memory preparing a batch");
        batch_requeue(cs);
        batch_end(cs);
        if (rc != 0)
            retry_later(cs, true);
    }
}

/* ---------------------------------------------------------------- held events */

static void scan_done(void *arg, struct db_round *r, enum db_status st)
{
    struct casestore *cs = arg;
    if (st == DB_CLOSED)
        return;
    cs->busy = false;
    if (st != DB_OK) {
        db_log_error("held event scan", r, st);
        db_round_reset(r);
        kick(cs);
        return;
    }
    PGresult *cnt = db_round_result(r, 1);
    if (PQntuples(cnt) == 1)
        cs->held_count = strtol(PQgetvalue(cnt, 0, 0), NULL, 10);
    PGresult *res = db_round_result(r, 0);
    cs->n_batch = 0;
    for (int i = 0; i < PQntuples(res) && cs->n_batch < cs->cap_batch; i++) {
        struct msg *m = calloc(1, sizeof *m);
        if (m == NULL)
            break;
        m->from_hold = true;
        snprintf(m->event_id, sizeof m->event_id, "%s", PQgetvalue(res, i, 0));
        snprintf(m->referral_id, sizeof m->referral_id, "%s", PQgetvalue(res, i, 1));
        m->topic = strdup(PQgetvalue(res, i, 2));
        m->src.kind = EVENT_TOPIC_CASE_EVENTS;
        m->src.topic = m->topic;
        m->src.partition = (int32_t)strtol(PQgetvalue(res, i, 3), NULL, 10);
        m->src.offset = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        m->len = (size_t)PQgetlength(res, i, 5);
        m->body = malloc(m->len + 1);
        if (m->topic == NULL || m->body == NULL) {
            msg_free(m);
            break;
        }
        memcpy(m->body, PQgetvalue(res, i, 5), m->len + 1);
        char detail[256];
        m->parse_error = event_parse(m->body, m->len, EVENT_TOPIC_CASE_EVENTS, (size_t)-1, &m->ev,
                                     detail, sizeof detail);
        m->has_ev = m->parse_error == EVENT_OK;
        cs->batch[cs->n_batch++] = m;
    }
    db_round_reset(r);
    if (cs->n_batch == 0) {
        kick(cs);
        return;
    }
    cs->busy = true;
    cs->retry_batch = true;
    batch_start(cs);
}

static void scan_start(struct casestore *cs)
{
    cs->scan_due = false;
    struct db_round *r = cs->r1;
    db_round_reset(r);
    char lim[16];
    snprintf(lim, sizeof lim, "%zu", cs->batch_limit);
    const char *p[1] = {lim};
    if (db_round_addv(r, SQL_HELD_SCAN, 1, p) < 0 || db_round_addv(r, SQL_HELD_COUNT, 0, NULL) < 0)
        return;
    cs->busy = true;
    if (db_submit(cs->db, r, scan_done, cs) != 0)
        cs->busy = false;
}

/* ---------------------------------------------------------------- scheduling */

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct casestore *cs = arg;
    if (cs->busy || !db_is_up(cs->db))
        return;
    if (cs->scan_due) {
        scan_start(cs);
        return;
    }
    if (cs->q_head == NULL)
        return;
    cs->n_batch = 0;
    while (cs->q_head && cs->n_batch < cs->batch_limit) {
        struct msg *m = cs->q_head;
        cs->q_head = m->next;
        m->next = NULL;
        cs->n_queued--;
        cs->batch[cs->n_batch++] = m;
    }
    if (cs->q_head == NULL)
        cs->q_tail = NULL;
    cs->busy = true;
    cs->retry_batch = false;
    batch_start(cs);
}

static void kick(struct casestore *cs)
{
    event_active(cs->ev_kick, 0, 0);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct casestore *cs = arg;
    cs->busy = false;
    kick(cs);
}

static void scan_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct casestore *cs = arg;
    cs->scan_due = true;
    kick(cs);
}

static void db_up(void *arg)
{
    struct casestore *cs = arg;
    cs->ready = true;
    if (cs->opt.on_ready)
        cs->opt.on_ready(cs->opt.arg, true, "database connected");
    cs->scan_due = true;
    kick(cs);
}

static void db_down(void *arg, const char *reason)
{
    struct casestore *cs = arg;
    cs->ready = false;
    if (cs->opt.on_ready)
        cs->opt.on_ready(cs->opt.arg, false, reason);
}

static void db_fatal(void *arg, const char *msg)
{
    struct casestore *cs = arg;
    cs->ready = false;
    cs->fatal = true;
    if (cs->opt.on_fatal)
        cs->opt.on_fatal(cs->opt.arg, msg);
}

/* ---------------------------------------------------------------- public */

int casestore_open(const struct casestore_options *opt, struct casestore **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    struct casestore *cs = calloc(1, sizeof *cs);
    if (cs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cs->opt = *opt;
    cs->policy = opt->policy;
    cs->held_count = -1;
    cs->batch_limit =
        (size_t)(opt->cfg->database.batch_max > 0 ? opt->cfg->database.batch_max : 500);
    cs->cap_batch = cs->batch_limit;
    cs->batch = calloc(cs->cap_batch, sizeof *cs->batch);
    cs->r1 = db_round_new();
    cs->r2 = db_round_new();
    cs->r2rows = db_round_new();
    cs->b_seen = dbbulk_new(SQL_SEEN, 2);
    cs->b_processed = dbbulk_new(SQL_INSERT_PROCESSED, NCOL_PROCESSED);
    cs->b_case = dbbulk_new(SQL_INSERT_CASE, NCOL_CASE);
    cs->b_decision = dbbulk_new(SQL_INSERT_DECISION, NCOL_DECISION);
    cs->b_audit = dbbulk_new(SQL_INSERT_AUDIT, NCOL_AUDIT);
    cs->b_outbox = dbbulk_new(SQL_INSERT_OUTBOX, NCOL_OUTBOX);
    if (opt->plan_bulk_sql)
        cs->b_plan = dbbulk_new(opt->plan_bulk_sql, opt->plan_bulk_cols);
    cs->ev_kick = event_new(opt->base, -1, 0, kick_cb, cs);
    cs->ev_retry = evtimer_new(opt->base, retry_cb, cs);
    cs->ev_scan = event_new(opt->base, -1, EV_PERSIST, scan_cb, cs);
    if (!cs->batch || !cs->r1 || !cs->r2 || !cs->r2rows || !cs->b_seen || !cs->b_processed ||
        !cs->b_case || !cs->b_decision || !cs->b_audit || !cs->b_outbox ||
        (opt->plan_bulk_sql && !cs->b_plan) || !cs->ev_kick || !cs->ev_retry || !cs->ev_scan) {
        snprintf(err, errlen, "out of memory");
        casestore_free(cs);
        return -1;
    }
    int scan_ms = opt->held_scan_ms > 0 ? opt->held_scan_ms : 1000;
    struct timeval tv = {scan_ms / 1000, (scan_ms % 1000) * 1000};
    event_add(cs->ev_scan, &tv);
    struct db_options dbo = {
        .conninfo = opt->cfg->database.conninfo,
        .password = opt->cfg->database.password,
        .name = "frontdoord-casestore",
        /* its statements insert from arrays and look rows up by unique keys or
         * LATERAL index probes: the same plan at any table size, and its planning cost
         * as much as running them (2.5 ms for the case read of a batch) */
        .generic_plans = true,
        .prepare = opt->cfg->database.prepared_statements,
        .skip_schema_check = opt->skip_schema_check,
    };
    struct db_callbacks cb = {.on_up = db_up, .on_down = db_down, .on_fatal = db_fatal, .arg = cs};
    if (db_open(opt->base, &dbo, &cb, &cs->db, err, errlen) != 0) {
        casestore_free(cs);
        return -1;
    }
    *out = cs;
    return 0;
}

void casestore_free(struct casestore *cs)
{
    if (cs == NULL)
        return;
    db_free(cs->db); /* rounds in flight get DB_CLOSED and do nothing */
    cs->db = NULL;
    for (size_t i = 0; i < cs->n_batch; i++)
        msg_free(cs->batch[i]);
    while (cs->q_head) {
        struct msg *m = cs->q_head;
        cs->q_head = m->next;
        msg_free(m);
    }
    cases_clear(cs);
    free(cs->cases);
    free(cs->head_ref);
    free(cs->head_kid);
    free(cs->head_fam);
    free(cs->next_ref);
    free(cs->next_kid);
    free(cs->next_fam);
    free(cs->hist_child);
    free(cs->hist_family);
    free(cs->batch);
    db_round_free(cs->r1);
    db_round_free(cs->r2);
    db_round_free(cs->r2rows);
    free(cs->jw_reasons.s);
    free(cs->jw_msg.s);
    dbbulk_free(cs->b_seen);
    dbbulk_free(cs->b_processed);
    dbbulk_free(cs->b_case);
    dbbulk_free(cs->b_decision);
    dbbulk_free(cs->b_audit);
    dbbulk_free(cs->b_outbox);
    dbbulk_free(cs->b_plan);
    if (cs->ev_kick)
        event_free(cs->ev_kick);
    if (cs->ev_retry)
        event_free(cs->ev_retry);
    if (cs->ev_scan)
        event_free(cs->ev_scan);
    free(cs);
}

void casestore_set_policy(struct casestore *cs, const struct policy *policy)
{
    cs->policy = policy;
}

int casestore_submit(struct casestore *cs, const struct casestore_source *src, const char *body,
                     size_t len, struct event *ev, casestore_done_fn done, void *done_arg)
{
    struct msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -1;
    m->topic = strdup(src->topic ? src->topic : "");
    m->body = malloc(len + 1);
    if (m->topic == NULL || m->body == NULL) {
        msg_free(m);
        return -1;
    }
    memcpy(m->body, body, len);
    m->body[len] = '\0';
    m->len = len;
    m->src = *src;
    m->src.topic = m->topic;
    m->ev = *ev;
    m->has_ev = true;
    memset(ev, 0, sizeof *ev);
    m->done = done;
    m->done_arg = done_arg;
    snprintf(m->event_id, sizeof m->event_id, "%s", m->ev.event_id);
    snprintf(m->referral_id, sizeof m->referral_id, "%s",
             m->ev.referral_id ? m->ev.referral_id : "");
    if (cs->q_tail)
        cs->q_tail->next = m;
    else
        cs->q_head = m;
    cs->q_tail = m;
    cs->n_queued++;
    cs->n_pending++;
    kick(cs);
    return 0;
}

size_t casestore_pending(const struct casestore *cs)
{
    return cs->n_pending;
}

bool casestore_is_ready(const struct casestore *cs)
{
    return cs->ready && !cs->fatal;
}

bool casestore_idle(const struct casestore *cs)
{
    return cs->n_pending == 0 && !cs->busy;
}

long casestore_held_count(const struct casestore *cs)
{
    return cs->held_count;
}
