/* dispatch: notification outbox -> providers -> recorded outcome (see dispatch.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "frontdoor/caltime.h"
#include "frontdoor/casestore.h"
#include "frontdoor/db.h"
#include "frontdoor/dispatch.h"
#include "frontdoor/log.h"
#include "frontdoor/mobile.h"
#include "frontdoor/notify_plan.h"
#include "frontdoor/notify_store.h"
#include "frontdoor/provider_file.h"
#include "frontdoor/provider_notify.h"
#include "frontdoor/provider_smtp.h"
#include "frontdoor/ratelimit.h"

/* ---------------------------------------------------------------- SQL (parameters only) */

/* $1 channel, $2 now, $3 how many, $4 claim id, $5 lease end, $6 paused (red only).
 * The claimed ids as an array, not a joined subquery: the prepared statement's generic
 * plan does not know $3 and joined the subquery by hashing the whole table (a sequential
 * scan a claim, 110 ms with 400,000 rows); the array is looked up by primary key.
 * Red rows, then (unless paused) the others, each the first due rows of its range of the
 * claim index, read up to $2 and no further: one scan over both ranges could not stop at
 * $2, so while every queued row was due later (family texts overnight) each claim read
 * all of them (88 ms a claim with the bench's backlog). A row in 'sending' was due when
 * it was claimed, so not_before <= $2 holds for an expired lease too. UNION ALL keeps its
 * branches' order and the outer LIMIT stops reading (and locking) as soon as it has $3;
 * an outer ORDER BY made PostgreSQL 15 take 650 ms on the same rows. */
static const char *const SQL_CLAIM =
    "UPDATE notifications n SET state = 'sending', attempts = n.attempts + 1,"
    " claim = $4::uuid, lease_until = $5::timestamptz, updated_at = $2::timestamptz\n"
    "WHERE n.id = ANY (ARRAY(SELECT id FROM (\n"
    "  SELECT id FROM (SELECT id FROM notifications WHERE channel = $1 AND red\n"
    "    AND state IN ('queued', 'sending') AND not_before <= $2::timestamptz\n"
    "    AND (state = 'queued' OR lease_until <= $2::timestamptz)\n"
    "    ORDER BY not_before, seq LIMIT $3::int FOR UPDATE SKIP LOCKED) r\n"
    "  UNION ALL\n"
    "  SELECT id FROM (SELECT id FROM notifications WHERE channel = $1 AND NOT red\n"
    "    AND NOT $6::boolean\n"
    "    AND state IN ('queued', 'sending') AND not_before <= $2::timestamptz\n"
    "    AND (state = 'queued' OR lease_until <= $2::timestamptz)\n"
    "    ORDER BY not_before, seq LIMIT $3::int FOR UPDATE SKIP LOCKED) o\n"
    "  ) due LIMIT $3::int))\n"
    "RETURNING n.id::text, n.template, coalesce(n.recipient, ''), n.language,"
    " n.personalisation::text, n.attempts,"
    " (extract(epoch FROM coalesce(n.due_from, n.created_at)) * 1000)::int8, n.red,"
    " coalesce(n.referral_id, ''), (extract(epoch FROM n.not_before) * 1000)::int8";

/* When the channel's next queued row falls due (after the claim above): the dispatcher
 * wakes then, so a row goes at its not_before, not up to a poll later. Red and not red
 * apart, so each is the first row of its range of the claim index (min() over both read
 * every due row of the channel: 5 ms a call with a backlog). $1 channel, $2 now */
static const char *const SQL_NEXT_DUE =
    "SELECT (extract(epoch FROM least("
    "(SELECT not_before FROM notifications WHERE channel = $1 AND red AND state = 'queued'"
    " AND not_before > $2::timestamptz ORDER BY not_before LIMIT 1),"
    " (SELECT not_before FROM notifications WHERE channel = $1 AND NOT red AND state = 'queued'"
    " AND not_before > $2::timestamptz ORDER BY not_before LIMIT 1))) * 1000)::int8";

/* $1 id, $2 claim, $3 provider, $4 provider_ref, $5 now */
static const char *const SQL_MARK_SENT =
    "UPDATE notifications SET state = 'sent', provider = $3, provider_ref = $4,"
    " sent_at = $5::timestamptz, last_error = NULL, updated_at = $5::timestamptz, claim = NULL,"
    " lease_until = NULL,"
    " red_checked = red_checked OR (red AND $5::timestamptz <= created_at + interval '5 minutes')"
    " WHERE id = $1::uuid AND claim = $2::uuid AND state = 'sending'";

/* $1 id, $2 claim, $3 provider, $4 last_error, $5 now */
static const char *const SQL_MARK_FAILED =
    "UPDATE notifications SET state = 'failed', provider = $3, last_error = $4,"
    " updated_at = $5::timestamptz, claim = NULL, lease_until = NULL"
    " WHERE id = $1::uuid AND claim = $2::uuid AND state = 'sending'";

/* $1 id, $2 claim, $3 provider, $4 last_error, $5 now, $6 not_before */
static const char *const SQL_MARK_RETRY =
    "UPDATE notifications SET state = 'queued', provider = $3, last_error = $4,"
    " updated_at = $5::timestamptz, not_before = $6::timestamptz, claim = NULL, lease_until = NULL"
    " WHERE id = $1::uuid AND claim = $2::uuid AND state = 'sending'";

/* Cases undecided at their deadline without their decision_overdue yet. $1 now */
static const char *const SQL_OVERDUE =
    "SELECT c.referral_id, c.route, c.destination, c.priority, c.rule,"
    " extract(epoch FROM c.decision_due_at)::int8 FROM cases c\n"
    "WHERE c.state IN ('triage', 'awaiting_consent') AND c.decision_due_at <= $1::timestamptz\n"
    "  AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.dedupe_key ="
    " 'decision_overdue:' || c.referral_id || ':' ||"
    " extract(epoch FROM c.decision_due_at)::int8::text)\n"
    "ORDER BY c.decision_due_at LIMIT 100";

/* Red notifications not sent 5 minutes after their creation: their
 * safeguarding_alert_failed rows (email and sms, to the manager), each once (dedupe key
 * per red row and channel), and the red rows marked checked. $1 now, $2 manager email or
 * NULL, $3 manager mobile or NULL, $4 the case placeholders of "no case". */
static const char *const SQL_ALERT_FAILED =
    "WITH cand AS (SELECT id, template, channel, referral_id, personalisation FROM notifications\n"
    "    WHERE red AND NOT red_checked AND template IN ('safeguarding_alert', 'unusable_event')\n"
    "      AND created_at <= $1::timestamptz - interval '5 minutes'\n"
    "      AND (sent_at IS NULL OR sent_at > created_at + interval '5 minutes')\n"
    "    ORDER BY created_at LIMIT 100 FOR UPDATE SKIP LOCKED),\n"
    " mark AS (UPDATE notifications n SET red_checked = true FROM cand WHERE n.id = cand.id),\n"
    " ins AS (INSERT INTO notifications (id, referral_id, template, channel, recipient,"
    " language, personalisation, state, last_error, not_before, created_at, updated_at,"
    " due_from, dedupe_key, red)\n"
    "    SELECT gen_random_uuid(), cand.referral_id, 'safeguarding_alert_failed', ch.c,"
    " CASE ch.c WHEN 'email' THEN $2 ELSE $3 END, 'en',"
    " (CASE WHEN cand.template = 'unusable_event' THEN $4::jsonb ELSE cand.personalisation END)"
    " || jsonb_build_object('alert_id', cand.id::text, 'alert_template', cand.template,"
    " 'alert_channel', cand.channel),"
    " CASE WHEN (CASE ch.c WHEN 'email' THEN $2 ELSE $3 END) IS NULL THEN 'skipped'"
    " ELSE 'queued' END,"
    " CASE WHEN (CASE ch.c WHEN 'email' THEN $2 ELSE $3 END) IS NULL THEN 'no_recipient' END,"
    " $1::timestamptz, $1::timestamptz, $1::timestamptz, $1::timestamptz,"
    " 'safeguarding_alert_failed:' || cand.id::text || ':' || ch.c, true\n"
    "    FROM cand CROSS JOIN (VALUES ('email'), ('sms')) AS ch(c)\n"
    "    ON CONFLICT DO NOTHING RETURNING 1)\n"
    "SELECT (SELECT count(*) FROM cand), (SELECT count(*) FROM ins)";

/* A Notify receipt. $1 id, $2 new state, $3 last_error, $4 now, $5 Notify's id */
static const char *const SQL_RECEIPT =
    "WITH old AS (SELECT id, state FROM notifications WHERE id = $1::uuid FOR UPDATE),\n"
    " upd AS (UPDATE notifications n SET state = $2, last_error = $3,"
    " updated_at = $4::timestamptz, provider_ref = coalesce(n.provider_ref, $5),"
    " sent_at = coalesce(n.sent_at, $4::timestamptz), claim = NULL, lease_until = NULL"
    " FROM old WHERE n.id = old.id AND old.state IN ('sent', 'sending')"
    " RETURNING n.id, n.referral_id, old.state AS from_state),\n"
    " aud AS (INSERT INTO audit_log (referral_id, event_id, action, from_state, to_state)"
    " SELECT referral_id, id, 'notification.' || $2, from_state, $2 FROM upd"
    " WHERE referral_id IS NOT NULL ON CONFLICT DO NOTHING)\n"
    "SELECT (SELECT count(*) FROM upd), (SELECT state FROM old)";

/* ---------------------------------------------------------------- state */

struct dispatch;

struct channel {
    struct dispatch *d;
    enum template_channel ch;
    const char *name; /* "email", "sms" */
    const struct channel_config *cfg;
    struct provider prov;
    struct ratelimit rl;
    int max_in_flight, in_flight;
    int64_t lease_ms;
    bool claiming;        /* a claim round is out */
    bool claim_again;     /* asked to claim while one was out: look again after it */
    int64_t paused_until; /* daily limit: only red rows before this; 0 none */
    struct event *ev_wake;
    int64_t wake_at; /* when ev_wake fires (clock ms), 0 when not armed */
    struct dispatch_channel_stats st;
};

/* One claimed row, from its claim until its outcome is written. */
struct job {
    struct job *next, *prev;
    struct channel *ch;
    char id[37], claim[37];
    char *template_name, *recipient, *language, *referral_id;
    json_t *pers;
    int attempts;
    int64_t due_from_ms, due_ms; /* due_ms: the row's not_before when claimed */
    bool red;
    /* the outcome to write */
    bool sending; /* at the provider */
    const char *sql;
    char state[16];
    char error[200], ref[320];
    int64_t at_ms, not_before_ms;
    bool writing; /* in the outcome batch that is out */
};

struct notice {
    struct notice *next;
    char *topic;
    int32_t partition;
    int64_t offset;
    char code[40];
    void (*done)(void *arg, bool ok);
    void *arg;
    bool writing;
    struct dispatch *d;
};

struct callback_req {
    struct dispatch *d;
    dispatch_reply_fn reply;
    void *arg;
    char state[16];
};

struct dispatch {
    struct dispatch_options opt;
    const struct policy *policy;
    struct rand_source rand;
    struct db *db;
    struct channel chans[2];
    struct job *jobs; /* every job: at a provider or waiting for its write */
    struct notice *notices, *notices_tail;
    struct event *ev_kick, *ev_poll, *ev_timer, *ev_flush;
    bool stopping, overdue_busy, alert_busy;
    bool outcomes_out; /* an outcome batch's round is out */
    uint64_t overdue_created, alerts_created, unusable_created;
    uint64_t receipts_delivered, receipts_failed;
};

static void kick(struct dispatch *d);
static void write_outcome(struct job *j);
static void notices_flush(struct dispatch *d);

static int64_t now_ms(const struct dispatch *d)
{
    return sendtime_now_ms(d->opt.clock);
}

static const char *ts(int64_t ms, char buf[32])
{
    return caltime_format_utc_ms(ms, buf);
}

static const char *masked(const struct job *j, char *buf, size_t len)
{
    if (j->ch->ch == TEMPLATE_EMAIL)
        return log_mask_email(j->recipient, buf, len);
    return log_mask_phone(j->recipient, buf, len);
}

/* ---------------------------------------------------------------- the decision (pure) */

void dispatch_next_state(const struct provider_result *res, const struct sms_window *w, bool family,
                         bool red, const struct tzone *zone, int64_t now, int64_t due_from,
                         int attempts, const struct rand_source *rand, struct dispatch_next *out)
{
    memset(out, 0, sizeof *out);
    int64_t retry_after = -1;
    switch (res->outcome) {
    case PROVIDER_ACCEPTED:
        out->state = "sent";
        return;
    case PROVIDER_PERMANENT:
        out->state = "failed";
        return;
    case PROVIDER_DAILY_LIMIT:
        out->pause_channel = true;
        out->pause_until_ms = sendtime_next_midnight(zone, now);
        if (!red) {
            /* waits for the pause to end; the day's limit is no failure of its own */
            out->state = "queued";
            out->not_before_ms = out->pause_until_ms;
            return;
        }
        break; /* red: retried as usual, paused or not */
    case PROVIDER_AUTH:
        out->log_alert = true;
        break;
    case PROVIDER_RATE_LIMITED:
        retry_after = res->retry_after_ms;
        break;
    case PROVIDER_TRANSIENT:
    default:
        retry_after = res->retry_after_ms;
        break;
    }
    int64_t next;
    if (sendtime_plan_retry(family ? w : NULL, due_from, now, attempts, retry_after, rand, &next) ==
        SENDTIME_GIVE_UP) {
        out->state = "failed";
        return;
    }
    out->state = "queued";
    out->not_before_ms = next;
}

/* ---------------------------------------------------------------- jobs */

static void job_free(struct job *j)
{
    struct dispatch *d = j->ch->d;
    if (j->prev)
        j->prev->next = j->next;
    else
        d->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    free(j->template_name);
    free(j->recipient);
    free(j->language);
    free(j->referral_id);
    json_decref(j->pers);
    free(j);
}

/* Outcomes are written in batches: every outcome waiting when the previous batch's round
 * came back goes in one round, whose statements PostgreSQL commits as one implicit
 * transaction (they end with one Sync): one commit, one WAL flush, for the batch instead
 * of one a message. One batch is out at a time; at a low rate a batch is one outcome and
 * waits for nothing. */
#define OUTCOME_BATCH_MAX 500

struct outcome_batch {
    struct dispatch *d;
    size_t n;
    struct job *jobs[OUTCOME_BATCH_MAX];
};

static void outcomes_flush(struct dispatch *d);

static void outcome_written(void *arg, struct db_round *r, enum db_status st)
{
    struct outcome_batch *b = arg;
    struct dispatch *d = b->d;
    if (st == DB_CLOSED) {
        /* dispatch_free: the jobs are freed there */
        db_round_free(r);
        free(b);
        return;
    }
    d->outcomes_out = false;
    /* DB_ERROR: the failing statement rolled back the whole batch (one transaction); its
     * job is given up (never expected: the lease brings the row back), the others are
     * written again in the next batch. DB_LOST: all are written again (on_up). */
    int failed = st == DB_ERROR ? db_round_failed_index(r) : -1;
    if (st == DB_ERROR)
        db_log_error("notification outcomes", r, st);
    db_round_free(r);
    for (size_t i = 0; i < b->n; i++) {
        struct job *j = b->jobs[i];
        j->writing = false;
        if (st == DB_LOST || (st == DB_ERROR && (int)i != failed))
            continue;
        if (st == DB_ERROR)
            log_error("notification outcome not recorded", "notification", j->id);
        struct channel *ch = j->ch;
        job_free(j);
        ch->in_flight--;
    }
    free(b);
    outcomes_flush(d); /* nothing while the connection is down: on_up then */
    kick(d);
}

static void outcomes_flush(struct dispatch *d)
{
    if (d->outcomes_out || !db_is_up(d->db))
        return;
    struct outcome_batch *b = NULL;
    struct db_round *r = NULL;
    for (struct job *j = d->jobs; j; j = j->next) {
        if (j->sql == NULL || j->writing || j->sending)
            continue;
        if (b == NULL) {
            b = malloc(sizeof *b);
            r = db_round_new();
            if (b == NULL || r == NULL)
                break; /* written when the next batch or kick comes */
            b->d = d;
            b->n = 0;
        }
        char at[32], nb[32];
        const char *ref = j->ref[0] ? j->ref : NULL;
        const char *v[6] = {j->id,
                            j->claim,
                            j->ch->prov.ops->name,
                            j->sql == SQL_MARK_SENT ? ref : j->error,
                            ts(j->at_ms, at),
                            ts(j->not_before_ms, nb)};
        int n = j->sql == SQL_MARK_RETRY ? 6 : 5;
        if (db_round_addv(r, j->sql, n, v) < 0)
            break;
        b->jobs[b->n++] = j;
        if (b->n == OUTCOME_BATCH_MAX)
            break;
    }
    if (b == NULL || r == NULL || b->n == 0 || db_submit(d->db, r, outcome_written, b) != 0) {
        free(b);
        db_round_free(r);
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        b->jobs[i]->writing = true;
    d->outcomes_out = true;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    outcomes_flush(arg);
}

/* The job has its outcome (j->sql): written with the others of this loop pass. */
static void write_outcome(struct job *j)
{
    event_active(j->ch->d->ev_flush, 0, 0);
}

/* The provider answered. */
static void on_sent(void *arg, const struct provider_result *res)
{
    struct job *j = arg;
    struct channel *ch = j->ch;
    struct dispatch *d = ch->d;
    j->sending = false;
    int64_t now = now_ms(d);
    const struct directory *dir = d->policy->directory;
    struct sms_window w = {dir->calendar.zone, dir->sms_window_start_s, dir->sms_window_end_s};
    struct dispatch_next next;
    dispatch_next_state(res, &w, sendtime_is_family_sms(j->template_name), j->red,
                        dir->calendar.zone, now, j->due_from_ms, j->attempts, &d->rand, &next);
    char to[64], att[16], when[32];
    snprintf(att, sizeof att, "%d", j->attempts);
    j->at_ms = now;
    if (strcmp(next.state, "sent") == 0) {
        j->sql = SQL_MARK_SENT;
        snprintf(j->ref, sizeof j->ref, "%s", res->ref);
        ch->st.sent++;
        log_info("notification sent", "notification", j->id, "template", j->template_name,
                 "channel", ch->name, "to", masked(j, to, sizeof to), "provider",
                 ch->prov.ops->name, "attempts", att);
    } else if (strcmp(next.state, "failed") == 0) {
        j->sql = SQL_MARK_FAILED;
        snprintf(j->error, sizeof j->error, "%s%s", res->error,
                 res->outcome == PROVIDER_PERMANENT ? "" : " (gave up after 24 hours)");
        ch->st.failed++;
        log_warn("notification failed", "notification", j->id, "template", j->template_name,
                 "channel", ch->name, "error", j->error, "attempts", att);
    } else {
        j->sql = SQL_MARK_RETRY;
        j->not_before_ms = next.not_before_ms;
        snprintf(j->error, sizeof j->error, "%s", res->error);
        ch->st.retried++;
        if (next.log_alert)
            log_error("notification provider refused the credentials (bad API key or clock); "
                      "retrying",
                      "notification", j->id, "channel", ch->name, "error", res->error);
        log_info("notification will be retried", "notification", j->id, "template",
                 j->template_name, "channel", ch->name, "error", res->error, "attempts", att,
                 "not_before", ts(next.not_before_ms, when));
    }
    if (next.pause_channel && next.pause_until_ms > ch->paused_until) {
        ch->paused_until = next.pause_until_ms;
        log_warn("channel paused by the provider's daily limit; red notifications still go",
                 "channel", ch->name, "until", ts(next.pause_until_ms, when));
    }
    write_outcome(j);
}

/* A job that could not reach its provider (no template, render error, provider refused
 * to start): recorded as the given outcome. */
static void job_fail_now(struct job *j, enum provider_outcome o, const char *error)
{
    struct provider_result res = {.outcome = o, .retry_after_ms = -1};
    snprintf(res.error, sizeof res.error, "%.150s", error);
    on_sent(j, &res);
}

/* Placeholder values for template_render, pointing into the job's JSON. */
static size_t values_of(const json_t *o, struct template_value *vals, size_t cap)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (n < cap && json_is_string(v))
            vals[n++] = (struct template_value){k, json_string_value(v)};
    }
    return n;
}

static void job_send(struct job *j)
{
    struct channel *ch = j->ch;
    struct dispatch *d = ch->d;
    /* A family text falls due inside the window and is claimed at once (a timer wakes the
     * dispatcher then), so it goes inside it; one taken back from a dead daemon's lease, or
     * claimed late by a stalled machine, may be past the window's end: it waits for the
     * next window unless it fell due moments ago (a reminder due at 19:59:59 still goes). */
    const struct directory *dir = d->policy->directory;
    struct sms_window w = {dir->calendar.zone, dir->sms_window_start_s, dir->sms_window_end_s};
    int64_t now = now_ms(d);
    if (sendtime_is_family_sms(j->template_name) && !sendtime_in_window(&w, now) &&
        !(sendtime_in_window(&w, j->due_ms) && now - j->due_ms < 10 * SENDTIME_SECOND_MS)) {
        j->sql = SQL_MARK_RETRY;
        j->at_ms = now;
        j->not_before_ms = sendtime_window_next(&w, now);
        snprintf(j->error, sizeof j->error, "held for the SMS window");
        write_outcome(j);
        return;
    }
    struct provider_message m = {
        .id = j->id,
        .template_name = j->template_name,
        .channel = ch->ch,
        .language = j->language,
        .recipient = j->recipient,
        .personalisation = j->pers,
    };
    struct template_message msg = {0};
    if (ch->prov.ops->renders) {
        const struct template *t =
            template_find(d->policy->templates, j->template_name, ch->ch, j->language);
        struct template_value vals[32];
        size_t n = values_of(j->pers, vals, 32);
        char err[160];
        if (t == NULL) {
            job_fail_now(j, PROVIDER_PERMANENT, "no template for this notification");
            return;
        }
        if (template_render(t, vals, n, &msg, err, sizeof err) != 0) {
            char e[160];
            snprintf(e, sizeof e, "render: %.140s", err);
            job_fail_now(j, PROVIDER_PERMANENT, e);
            return;
        }
        m.subject = msg.subject;
        m.body = msg.body;
    }
    if (j->recipient[0] == '\0') {
        template_free_message(&msg);
        job_fail_now(j, PROVIDER_PERMANENT, "no recipient");
        return;
    }
    j->sending = true;
    int64_t start = now_ms(d);
    ratelimit_take(&ch->rl, start);
    if (log_enabled(LOG_DEBUG)) {
        /* the instant the rate limit counted, to check the limit from outside */
        char at[32];
        log_debug("notification sending", "notification", j->id, "channel", ch->name, "at",
                  ts(start, at));
    }
    int rc = ch->prov.ops->send(ch->prov.impl, &m, on_sent, j);
    template_free_message(&msg);
    if (rc != 0) {
        j->sending = false;
        job_fail_now(j, PROVIDER_TRANSIENT, "could not start sending");
    }
}

/* ---------------------------------------------------------------- claims */

static void claimed(void *arg, struct db_round *r, enum db_status st);

struct claim_ctx {
    struct channel *ch;
    char claim[37];
};

/* Wake the channel at clock instant at_ms (the earliest of the wanted times wins). */
static void arm_wake(struct channel *ch, int64_t at_ms)
{
    int64_t now = now_ms(ch->d);
    if (ch->wake_at > now && ch->wake_at <= at_ms && evtimer_pending(ch->ev_wake, NULL))
        return;
    int64_t ms = at_ms > now ? at_ms - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    ch->wake_at = at_ms;
    evtimer_add(ch->ev_wake, &tv);
}

static void claim_start(struct channel *ch)
{
    struct dispatch *d = ch->d;
    if (ch->claiming) {
        ch->claim_again = true; /* rows committed since that claim began may be missed */
        return;
    }
    if (d->stopping || !db_is_up(d->db))
        return;
    ch->claim_again = false;
    int64_t now = now_ms(d);
    int room = ch->max_in_flight - ch->in_flight;
    int avail = ratelimit_available(&ch->rl, now);
    if (avail <= 0 && room > 0) /* when the rolling window lets the next one start */
        arm_wake(ch, ratelimit_next_free_ms(&ch->rl, now) + 1);
    int n = room < avail ? room : avail;
    if (n <= 0)
        return;
    bool paused = ch->paused_until > now;
    struct claim_ctx *cc = calloc(1, sizeof *cc);
    struct db_round *r = db_round_new();
    if (cc == NULL || r == NULL) {
        free(cc);
        db_round_free(r);
        return;
    }
    cc->ch = ch;
    casestore_new_uuid(cc->claim);
    char t[32], lease[32], lim[16];
    snprintf(lim, sizeof lim, "%d", n);
    const char *v[6] = {ch->name,
                        ts(now, t),
                        lim,
                        cc->claim,
                        ts(now + ch->lease_ms, lease),
                        paused ? "true" : "false"};
    if (db_round_addv(r, SQL_CLAIM, 6, v) < 0 || db_round_addv(r, SQL_NEXT_DUE, 2, v) < 0 ||
        db_submit(d->db, r, claimed, cc) != 0) {
        free(cc);
        db_round_free(r);
        return;
    }
    ch->claiming = true;
}

static char *dup_value(PGresult *res, int i, int col)
{
    return strdup(PQgetvalue(res, i, col));
}

static void claimed(void *arg, struct db_round *r, enum db_status st)
{
    struct claim_ctx *cc = arg;
    struct channel *ch = cc->ch;
    struct dispatch *d = ch->d;
    if (st == DB_CLOSED) {
        free(cc);
        db_round_free(r);
        return;
    }
    ch->claiming = false;
    if (st != DB_OK) {
        db_log_error("notification claim", r, st);
        free(cc);
        db_round_free(r);
        return;
    }
    PGresult *res = db_round_result(r, 0);
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        struct job *j = calloc(1, sizeof *j);
        if (j == NULL)
            break; /* the lease brings the rest back */
        j->ch = ch;
        snprintf(j->id, sizeof j->id, "%s", PQgetvalue(res, i, 0));
        memcpy(j->claim, cc->claim, sizeof j->claim);
        j->template_name = dup_value(res, i, 1);
        j->recipient = dup_value(res, i, 2);
        j->language = dup_value(res, i, 3);
        j->pers = json_loads(PQgetvalue(res, i, 4), 0, NULL);
        j->attempts = atoi(PQgetvalue(res, i, 5));
        j->due_from_ms = strtoll(PQgetvalue(res, i, 6), NULL, 10);
        j->red = strcmp(PQgetvalue(res, i, 7), "t") == 0;
        j->referral_id = dup_value(res, i, 8);
        j->due_ms = strtoll(PQgetvalue(res, i, 9), NULL, 10);
        j->next = d->jobs;
        if (d->jobs)
            d->jobs->prev = j;
        d->jobs = j;
        ch->in_flight++;
        if (!j->template_name || !j->recipient || !j->language || !j->referral_id) {
            job_fail_now(j, PROVIDER_TRANSIENT, "out of memory");
            continue;
        }
        if (!json_is_object(j->pers)) {
            json_decref(j->pers);
            j->pers = json_object();
            job_fail_now(j, PROVIDER_PERMANENT, "personalisation is not an object");
            continue;
        }
        job_send(j);
    }
    PGresult *next = db_round_result(r, 1);
    if (next && PQntuples(next) == 1 && !PQgetisnull(next, 0, 0))
        arm_wake(ch, strtoll(PQgetvalue(next, 0, 0), NULL, 10));
    free(cc);
    db_round_free(r);
    /* more may be waiting: a full claim left some behind, or rows came during it */
    if (rows > 0 || ch->claim_again)
        kick(d);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dispatch *d = arg;
    for (int i = 0; i < 2; i++)
        claim_start(&d->chans[i]);
}

static void kick(struct dispatch *d)
{
    event_active(d->ev_kick, 0, 0);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct channel *ch = arg;
    ch->wake_at = 0;
    claim_start(ch);
}

/* ---------------------------------------------------------------- timers */

static void overdue_written(void *arg, struct db_round *r, enum db_status st)
{
    struct dispatch *d = arg;
    if (st != DB_CLOSED) {
        d->overdue_busy = false;
        if (st != DB_OK)
            db_log_error("decision_overdue rows", r, st);
        else
            kick(d);
    }
    db_round_free(r);
}

static void overdue_found(void *arg, struct db_round *r, enum db_status st)
{
    struct dispatch *d = arg;
    if (st == DB_CLOSED) {
        db_round_free(r);
        return;
    }
    if (st != DB_OK) {
        db_log_error("overdue decisions", r, st);
        d->overdue_busy = false;
        db_round_free(r);
        return;
    }
    PGresult *res = db_round_result(r, 0);
    struct db_round *w = db_round_new();
    struct notify_ctx ctx = {d->policy, d->opt.clock};
    int rc = w ? 0 : -1;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        const char *route = PQgetvalue(res, i, 1), *prio = PQgetvalue(res, i, 3);
        struct casestore_case c = {
            .destination = PQgetvalue(res, i, 2),
            .rule = PQgetvalue(res, i, 4),
            .has_due = true,
            .due_at_s = strtoll(PQgetvalue(res, i, 5), NULL, 10),
            .priority = strcmp(prio, "red") == 0     ? PRIORITY_RED
                        : strcmp(prio, "amber") == 0 ? PRIORITY_AMBER
                        : strcmp(prio, "green") == 0 ? PRIORITY_GREEN
                                                     : PRIORITY_BLUE,
        };
        if (!rules_parse_route(route, strlen(route), &c.route))
            c.route = ROUTE_MANUAL_TRIAGE;
        struct notify_plan p;
        const char *rid = PQgetvalue(res, i, 0);
        if (notify_plan_overdue(&ctx, rid, &c, &p) != 0) {
            rc = -1;
            break;
        }
        rc = notify_store_write(w, &p);
        notify_plan_release(&p);
        log_warn("decision overdue", "referral", rid, "route", route, "priority", prio);
        d->overdue_created++;
    }
    db_round_free(r);
    if (rc != 0 || db_round_count(w) == 0 || db_submit(d->db, w, overdue_written, d) != 0) {
        db_round_free(w);
        d->overdue_busy = false;
    }
}

static void alert_done(void *arg, struct db_round *r, enum db_status st)
{
    struct dispatch *d = arg;
    if (st != DB_CLOSED) {
        d->alert_busy = false;
        if (st != DB_OK) {
            db_log_error("safeguarding_alert_failed rows", r, st);
        } else {
            PGresult *res = db_round_result(r, 0);
            long late = strtol(PQgetvalue(res, 0, 0), NULL, 10);
            long made = strtol(PQgetvalue(res, 0, 1), NULL, 10);
            if (late > 0) {
                char a[24], b[24];
                snprintf(a, sizeof a, "%ld", late);
                snprintf(b, sizeof b, "%ld", made);
                log_error("red notifications not sent within 5 minutes; the manager is told",
                          "late", a, "alerts_created", b);
                d->alerts_created += (uint64_t)made;
                kick(d);
            }
        }
    }
    db_round_free(r);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dispatch *d = arg;
    if (d->stopping || !db_is_up(d->db))
        return;
    char now[32];
    ts(now_ms(d), now);
    if (!d->overdue_busy) {
        struct db_round *r = db_round_new();
        const char *v[1] = {now};
        if (r && db_round_addv(r, SQL_OVERDUE, 1, v) >= 0 &&
            db_submit(d->db, r, overdue_found, d) == 0)
            d->overdue_busy = true;
        else
            db_round_free(r);
    }
    if (!d->alert_busy) {
        /* the manager's address and mobile, or NULL (the rows are then skipped) */
        const struct dir_team *m = directory_find_team(d->policy->directory, NOTIFY_TEAM_MANAGER,
                                                       strlen(NOTIFY_TEAM_MANAGER));
        char mobile[MOBILE_E164_SIZE] = "";
        const char *reason;
        const char *email = m && notify_valid_email(m->email) ? m->email : NULL;
        const char *phone =
            m && mobile_normalise(m->phone, mobile, sizeof mobile, &reason) == 0 ? mobile : NULL;
        json_t *none = notify_case_values(d->policy, NULL, NULL);
        char *none_s = none ? json_dumps(none, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(none);
        struct db_round *r = db_round_new();
        const char *v[4] = {now, email, phone, none_s};
        if (none_s && r && db_round_addv(r, SQL_ALERT_FAILED, 4, v) >= 0 &&
            db_submit(d->db, r, alert_done, d) == 0)
            d->alert_busy = true;
        else
            db_round_free(r);
        free(none_s);
    }
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    kick(arg);
}

/* ---------------------------------------------------------------- unusable events */

static void notice_free(struct notice *n)
{
    free(n->topic);
    free(n);
}

static void notice_written(void *arg, struct db_round *r, enum db_status st)
{
    struct notice *n = arg;
    if (st == DB_ERROR) /* never expected: the event is given up for this run */
        db_log_error("unusable_event row", r, st);
    db_round_free(r);
    if (st == DB_CLOSED)
        return; /* freed with the dispatcher's list */
    struct dispatch *d = n->d;
    n->writing = false;
    if (st == DB_LOST)
        return; /* again on_up */
    /* unlink */
    struct notice **pp = &d->notices;
    while (*pp && *pp != n)
        pp = &(*pp)->next;
    if (*pp)
        *pp = n->next;
    d->notices_tail = NULL;
    for (struct notice *t = d->notices; t; t = t->next)
        d->notices_tail = t;
    if (st == DB_OK) {
        d->unusable_created++;
        kick(d);
    }
    n->done(n->arg, st == DB_OK);
    notice_free(n);
}

static void notices_flush(struct dispatch *d)
{
    if (!db_is_up(d->db))
        return;
    struct notify_ctx ctx = {d->policy, d->opt.clock};
    for (struct notice *n = d->notices; n; n = n->next) {
        if (n->writing)
            continue;
        struct notify_plan p;
        struct db_round *r = db_round_new();
        if (r == NULL ||
            notify_plan_unusable(&ctx, n->topic, n->partition, n->offset, n->code, &p) != 0) {
            db_round_free(r);
            return;
        }
        int rc = notify_store_write(r, &p);
        notify_plan_release(&p);
        if (rc != 0 || db_submit(d->db, r, notice_written, n) != 0) {
            db_round_free(r);
            return;
        }
        n->writing = true;
    }
}

int dispatch_record_unusable(struct dispatch *d, const char *topic, int32_t partition,
                             int64_t offset, const char *error_code,
                             void (*done)(void *arg, bool ok), void *arg)
{
    struct notice *n = calloc(1, sizeof *n);
    if (n == NULL || (n->topic = strdup(topic)) == NULL) {
        free(n);
        return -1;
    }
    n->d = d;
    n->partition = partition;
    n->offset = offset;
    snprintf(n->code, sizeof n->code, "%s", error_code);
    n->done = done;
    n->arg = arg;
    if (d->notices_tail)
        d->notices_tail->next = n;
    else
        d->notices = n;
    d->notices_tail = n;
    notices_flush(d);
    return 0;
}

/* ---------------------------------------------------------------- receipts */

static void receipt_done(void *arg, struct db_round *r, enum db_status st)
{
    struct callback_req *cr = arg;
    if (st == DB_CLOSED) {
        cr->reply(cr->arg, 503, "stopping"); /* Notify sends it again */
        db_round_free(r);
        free(cr);
        return;
    }
    if (st == DB_OK) {
        PGresult *res = db_round_result(r, 0);
        long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        if (n > 0) {
            if (strcmp(cr->state, "delivered") == 0)
                cr->d->receipts_delivered++;
            else
                cr->d->receipts_failed++;
            cr->reply(cr->arg, 200, "recorded");
        } else {
            cr->reply(cr->arg, 200, "nothing to change");
        }
    } else if (st == DB_LOST) {
        cr->reply(cr->arg, 503, "database unavailable");
    } else {
        db_log_error("delivery receipt", r, st);
        cr->reply(cr->arg, 500, "database error");
    }
    db_round_free(r);
    free(cr);
}

/* Constant time whatever the lengths: both sides hashed, the digests compared. */
static bool token_matches(const char *given, size_t given_len, const char *want)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)given, given_len, a);
    SHA256((const unsigned char *)want, strlen(want), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

static bool is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0')
            return false;
    }
    return true;
}

void dispatch_handle_callback(struct dispatch *d, const char *authorization, const char *body,
                              size_t len, dispatch_reply_fn reply, void *arg)
{
    const char *token = d->opt.cfg->http.callback_token;
    if (token == NULL) {
        reply(arg, 404, "no callback token configured");
        return;
    }
    const char *given = "";
    size_t given_len = 0;
    if (authorization && strncmp(authorization, "Bearer ", 7) == 0) {
        given = authorization + 7;
        given_len = strlen(given);
    }
    if (!token_matches(given, given_len, token)) {
        log_warn("delivery receipt refused: bad or missing bearer token");
        reply(arg, 401, "unauthorized");
        return;
    }
    json_error_t jerr;
    json_t *o = json_loadb(body, len, 0, &jerr);
    const char *ref = json_string_value(json_object_get(o, "reference"));
    const char *status = json_string_value(json_object_get(o, "status"));
    const char *nid = json_string_value(json_object_get(o, "id"));
    if (!json_is_object(o) || !is_uuid(ref) || status == NULL) {
        json_decref(o);
        reply(arg, 400, "not a delivery receipt");
        return;
    }
    const char *state = NULL;
    if (strcmp(status, "delivered") == 0)
        state = "delivered";
    else if (strcmp(status, "permanent-failure") == 0 || strcmp(status, "temporary-failure") == 0 ||
             strcmp(status, "technical-failure") == 0)
        state = "failed";
    if (state == NULL) {
        /* sending, pending, ...: not an outcome yet */
        json_decref(o);
        reply(arg, 200, "not a final status");
        return;
    }
    if (!db_is_up(d->db)) {
        json_decref(o);
        reply(arg, 503, "database unavailable");
        return;
    }
    struct callback_req *cr = calloc(1, sizeof *cr);
    struct db_round *r = db_round_new();
    char now[32], err[80];
    snprintf(err, sizeof err, "notify receipt: %.60s", status);
    const char *v[5] = {ref, state, strcmp(state, "failed") == 0 ? err : NULL, ts(now_ms(d), now),
                        nid && strlen(nid) < 128 ? nid : NULL};
    if (cr == NULL || r == NULL || db_round_addv(r, SQL_RECEIPT, 5, v) < 0) {
        free(cr);
        db_round_free(r);
        json_decref(o);
        reply(arg, 500, "out of memory");
        return;
    }
    cr->d = d;
    cr->reply = reply;
    cr->arg = arg;
    snprintf(cr->state, sizeof cr->state, "%s", state);
    log_info("delivery receipt", "notification", ref, "status", status);
    json_decref(o);
    if (db_submit(d->db, r, receipt_done, cr) != 0) {
        free(cr);
        db_round_free(r);
        reply(arg, 503, "database unavailable");
    }
}

/* ---------------------------------------------------------------- connection */

static void on_up(void *arg)
{
    struct dispatch *d = arg;
    /* outcomes the lost connection did not take, then the waiting alerts */
    outcomes_flush(d);
    notices_flush(d);
    kick(d);
}

static void on_down(void *arg, const char *reason)
{
    (void)arg;
    (void)reason;
}

static void on_fatal(void *arg, const char *msg)
{
    struct dispatch *d = arg;
    if (d->opt.on_fatal)
        d->opt.on_fatal(d->opt.arg, msg);
}

/* ---------------------------------------------------------------- public */

static int make_provider(struct dispatch *d, struct channel *ch, char *err, size_t errlen)
{
    const struct config *cfg = d->opt.cfg;
    switch (ch->cfg->provider) {
    case PROVIDER_FILE:
        return provider_file_new(d->opt.base, ch->ch, ch->cfg->spool_dir, cfg->email_from,
                                 &ch->prov, err, errlen);
    case PROVIDER_SMTP:
        return provider_smtp_new(d->opt.base, cfg, &ch->prov, err, errlen);
    case PROVIDER_NOTIFY:
        return provider_notify_new(d->opt.base, ch->ch, ch->cfg, &ch->prov, err, errlen);
    }
    snprintf(err, errlen, "unknown provider");
    return -1;
}

int dispatch_open(const struct dispatch_options *opt, struct dispatch **out, bool *config_error,
                  char *err, size_t errlen)
{
    *out = NULL;
    *config_error = false;
    struct dispatch *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->opt = *opt;
    d->policy = opt->policy;
    d->rand = opt->rand ? *opt->rand : sendtime_system_random();
    if (d->opt.poll_ms <= 0)
        d->opt.poll_ms = 1000;
    if (d->opt.timer_ms <= 0)
        d->opt.timer_ms = 2000;
    d->ev_kick = event_new(opt->base, -1, 0, kick_cb, d);
    d->ev_poll = event_new(opt->base, -1, EV_PERSIST, poll_cb, d);
    d->ev_timer = event_new(opt->base, -1, EV_PERSIST, timer_cb, d);
    d->ev_flush = event_new(opt->base, -1, 0, flush_cb, d);
    if (!d->ev_kick || !d->ev_poll || !d->ev_timer || !d->ev_flush) {
        snprintf(err, errlen, "out of memory");
        dispatch_free(d);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        struct channel *ch = &d->chans[i];
        ch->d = d;
        ch->ch = i == 0 ? TEMPLATE_EMAIL : TEMPLATE_SMS;
        ch->name = i == 0 ? "email" : "sms";
        ch->cfg = i == 0 ? &opt->cfg->email : &opt->cfg->sms;
        ch->max_in_flight = ch->cfg->max_in_flight > 0 ? ch->cfg->max_in_flight : 20;
        /* a claimed row returns to others only well after its send must have ended */
        ch->lease_ms = (int64_t)(2 * (ch->cfg->timeout_s > 0 ? ch->cfg->timeout_s : 30) + 60) *
                       SENDTIME_SECOND_MS;
        ch->ev_wake = evtimer_new(opt->base, wake_cb, ch);
        if (ch->ev_wake == NULL ||
            ratelimit_init(&ch->rl, ch->cfg->rate_limit_per_minute, SENDTIME_MINUTE_MS) != 0) {
            snprintf(err, errlen, "out of memory");
            dispatch_free(d);
            return -1;
        }
        char perr[512];
        if (make_provider(d, ch, perr, sizeof perr) != 0) {
            snprintf(err, errlen, "[%s] provider %s: %s", ch->name,
                     ch->cfg->provider == PROVIDER_FILE   ? "file"
                     : ch->cfg->provider == PROVIDER_SMTP ? "smtp"
                                                          : "notify",
                     perr);
            *config_error = true;
            dispatch_free(d);
            return -1;
        }
    }
    struct timeval poll = {d->opt.poll_ms / 1000, (d->opt.poll_ms % 1000) * 1000};
    struct timeval timer = {d->opt.timer_ms / 1000, (d->opt.timer_ms % 1000) * 1000};
    event_add(d->ev_poll, &poll);
    event_add(d->ev_timer, &timer);
    struct db_options dbo = {
        .conninfo = opt->cfg->database.conninfo,
        .password = opt->cfg->database.password,
        .name = "frontdoord-dispatch",
        .prepare = opt->cfg->database.prepared_statements,
        .skip_schema_check = opt->skip_schema_check,
        /* Every claim and scan here has an index in its ORDER BY's order and a LIMIT: read
         * it in order and stop. Statistics taken while the rows were mostly sent estimate a
         * backlog of thousands as 2 rows, and the planner then sorted the whole backlog on
         * every claim (bench: 31,000 rows, 80 ms a claim, a third of PostgreSQL's time).
         * Nor a sequential scan: every statement here finds its rows by an index, and with
         * no sequential plan to fall back to, a plan made once (generic_plans) keeps using
         * the index as the table grows (made on a nearly empty table, the claim's generic
         * plan read the whole table for the ids it had claimed). Planned at every run, the
         * dispatcher's statements spent more time planning than running (1 ms a claim,
         * 0.8 ms a next-due look-up, 0.2 ms a sent mark). */
        .session_sql = "SELECT set_config('enable_sort', 'off', false),"
                       " set_config('enable_seqscan', 'off', false)",
        .generic_plans = true,
    };
    struct db_callbacks cb = {.on_up = on_up, .on_down = on_down, .on_fatal = on_fatal, .arg = d};
    if (db_open(opt->base, &dbo, &cb, &d->db, err, errlen) != 0) {
        dispatch_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void dispatch_free(struct dispatch *d)
{
    if (d == NULL)
        return;
    /* the providers first: they abandon their sends and call nothing back */
    for (int i = 0; i < 2; i++) {
        struct channel *ch = &d->chans[i];
        if (ch->prov.ops)
            ch->prov.ops->destroy(ch->prov.impl);
        ch->prov.ops = NULL;
    }
    db_free(d->db); /* rounds in flight get DB_CLOSED */
    while (d->jobs) {
        struct job *j = d->jobs;
        j->ch->in_flight--;
        job_free(j);
    }
    while (d->notices) {
        struct notice *n = d->notices;
        d->notices = n->next;
        notice_free(n);
    }
    for (int i = 0; i < 2; i++) {
        ratelimit_free(&d->chans[i].rl);
        if (d->chans[i].ev_wake)
            event_free(d->chans[i].ev_wake);
    }
    if (d->ev_kick)
        event_free(d->ev_kick);
    if (d->ev_poll)
        event_free(d->ev_poll);
    if (d->ev_timer)
        event_free(d->ev_timer);
    if (d->ev_flush)
        event_free(d->ev_flush);
    free(d);
}

void dispatch_set_policy(struct dispatch *d, const struct policy *policy)
{
    d->policy = policy;
}

void dispatch_poke(struct dispatch *d)
{
    if (d != NULL)
        kick(d);
}

void dispatch_stop(struct dispatch *d)
{
    if (d != NULL)
        d->stopping = true;
}

bool dispatch_idle(const struct dispatch *d)
{
    return d == NULL || d->jobs == NULL;
}

void dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *st)
{
    memset(st, 0, sizeof *st);
    st->email = d->chans[0].st;
    st->sms = d->chans[1].st;
    st->email.in_flight = d->chans[0].in_flight;
    st->sms.in_flight = d->chans[1].in_flight;
    int64_t now = now_ms(d);
    st->email.paused = d->chans[0].paused_until > now;
    st->sms.paused = d->chans[1].paused_until > now;
    st->overdue_created = d->overdue_created;
    st->alerts_failed_created = d->alerts_created;
    st->unusable_created = d->unusable_created;
    st->receipts_delivered = d->receipts_delivered;
    st->receipts_failed = d->receipts_failed;
    st->connected = db_is_up(d->db);
}
