/* migrations: numbered schema migrations compiled into the binary (see migrations.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "frontdoor/migrations.h"

/* Every advisory lock key of --migrate: one arbitrary constant, so two migrating
 * processes take turns. */
#define MIGRATIONS_LOCK_KEY 7310452211986120001LL

/* A migration is applied once and never edited afterwards: a later change is a new
 * entry. Constraints make duplicates impossible whatever the code does: one case per
 * referral id, one decision per causing event, one processed row per event id, one
 * outbox message per dedupe key, one held row per event id. */
static const char *const migrations[] = {
    /* 1: the case store */
    "CREATE TABLE cases (\n"
    "    referral_id text PRIMARY KEY CHECK (referral_id ~ '^[A-Za-z0-9._/-]{1,64}$'),\n"
    "    child_id text,\n"
    "    family_id text,\n"
    "    state text NOT NULL\n"
    "        CHECK (state IN ('allocated', 'triage', 'awaiting_consent', 'closed')),\n"
    "    route text NOT NULL CHECK (route IN ('school', 'family_hub', "
    "'targeted_family_help', 'youth_support', 'family_help_panel', 'social_care', "
    "'manual_triage', 'consent_required', 'signpost')),\n"
    "    destination text NOT NULL,\n"
    "    priority text NOT NULL CHECK (priority IN ('red', 'amber', 'green', 'blue')),\n"
    "    rule text NOT NULL,\n"
    "    level_of_need smallint CHECK (level_of_need BETWEEN 1 AND 4),\n"
    "    received_at timestamptz NOT NULL,\n"
    "    decided_at timestamptz NOT NULL,\n"
    "    decision_due_at timestamptz,\n"
    "    closed_at timestamptz,\n"
    "    locality_id text,\n"
    "    hub_id text,\n"
    "    referral_event_id uuid NOT NULL UNIQUE,\n"
    "    referral_body bytea NOT NULL,\n"
    "    updated_at timestamptz NOT NULL DEFAULT now(),\n"
    "    CONSTRAINT cases_closed_at CHECK ((state = 'closed') = (closed_at IS NOT NULL))\n"
    ");\n"
    "CREATE INDEX cases_child_id ON cases (child_id) WHERE child_id IS NOT NULL;\n"
    "CREATE INDEX cases_family_id ON cases (family_id) WHERE family_id IS NOT NULL;\n"
    "\n"
    "CREATE TABLE decisions (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    referral_id text NOT NULL REFERENCES cases (referral_id),\n"
    "    cause_event_id uuid NOT NULL UNIQUE,\n"
    "    event_id uuid NOT NULL UNIQUE,\n"
    "    route text NOT NULL,\n"
    "    destination text NOT NULL,\n"
    "    priority text NOT NULL,\n"
    "    rule text NOT NULL,\n"
    "    reasons jsonb NOT NULL CHECK (jsonb_typeof(reasons) = 'array'),\n"
    "    state text NOT NULL,\n"
    "    decided_at timestamptz NOT NULL,\n"
    "    decision_due_at timestamptz\n"
    ");\n"
    "CREATE INDEX decisions_referral_id ON decisions (referral_id, decided_at);\n"
    "\n"
    "CREATE TABLE processed_events (\n"
    "    event_id uuid PRIMARY KEY,\n"
    "    body_sha256 bytea NOT NULL CHECK (length(body_sha256) = 32),\n"
    "    topic text NOT NULL,\n"
    "    referral_id text,\n"
    "    outcome text NOT NULL,\n"
    "    processed_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "\n"
    "CREATE TABLE audit_log (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    referral_id text NOT NULL,\n"
    "    event_id uuid NOT NULL,\n"
    "    action text NOT NULL,\n"
    "    from_state text,\n"
    "    to_state text,\n"
    "    actor text NOT NULL DEFAULT 'frontdoord',\n"
    "    at timestamptz NOT NULL DEFAULT now(),\n"
    "    UNIQUE (event_id, action)\n"
    ");\n"
    "CREATE INDEX audit_log_referral_id ON audit_log (referral_id, id);\n"
    "\n"
    "CREATE TABLE outbox (\n"
    "    id bigserial PRIMARY KEY,\n"
    "    dedupe_key text NOT NULL UNIQUE,\n"
    "    kind text NOT NULL CHECK (kind IN ('decision', 'dlq')),\n"
    "    msg_key bytea,\n"
    "    payload bytea NOT NULL,\n"
    "    headers jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(headers) = 'array'),\n"
    "    created_at timestamptz NOT NULL DEFAULT now(),\n"
    "    published_at timestamptz\n"
    ");\n"
    "CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;\n"
    "\n"
    "CREATE TABLE notifications (\n"
    "    id uuid PRIMARY KEY,\n"
    "    referral_id text,\n"
    "    cause_event_id uuid,\n"
    "    template text NOT NULL,\n"
    "    channel text NOT NULL CHECK (channel IN ('email', 'sms')),\n"
    "    recipient text,\n"
    "    language text NOT NULL DEFAULT 'en',\n"
    "    personalisation jsonb NOT NULL DEFAULT '{}',\n"
    "    state text NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'delivered', "
    "'skipped', 'failed', 'cancelled')),\n"
    "    attempts integer NOT NULL DEFAULT 0,\n"
    "    not_before timestamptz NOT NULL DEFAULT now(),\n"
    "    provider_ref text,\n"
    "    last_error text,\n"
    "    created_at timestamptz NOT NULL DEFAULT now(),\n"
    "    updated_at timestamptz NOT NULL DEFAULT now(),\n"
    "    UNIQUE (cause_event_id, template, channel)\n"
    ");\n"
    "CREATE INDEX notifications_due ON notifications (not_before)\n"
    "    WHERE state IN ('queued', 'sending');\n"
    "CREATE INDEX notifications_referral_id ON notifications (referral_id);\n"
    "\n"
    "CREATE TABLE held_events (\n"
    "    seq bigserial PRIMARY KEY,\n"
    "    event_id uuid NOT NULL UNIQUE,\n"
    "    referral_id text NOT NULL,\n"
    "    topic text NOT NULL,\n"
    "    source_partition integer NOT NULL,\n"
    "    source_offset bigint NOT NULL,\n"
    "    body bytea NOT NULL,\n"
    "    held_at timestamptz NOT NULL DEFAULT now(),\n"
    "    give_up_at timestamptz NOT NULL\n"
    ");\n"
    "CREATE INDEX held_events_referral_id ON held_events (referral_id, seq);\n"
    "CREATE INDEX held_events_give_up_at ON held_events (give_up_at);\n",

    /* 2: the notification outbox and its dispatcher (notifications.md). Every
     * notification row is written in the transaction of its cause; timer-made ones
     * (decision_overdue, safeguarding_alert_failed) and unusable_event rows carry a
     * dedupe_key, so several daemons create each exactly once. A dispatcher claims a row
     * by setting state 'sending', a fresh claim id and a lease; a row whose lease ran out
     * (its daemon died) is claimed again. */
    "ALTER TABLE notifications\n"
    "    ADD COLUMN seq bigserial,\n"
    "    ADD COLUMN dedupe_key text UNIQUE,\n"
    "    ADD COLUMN appointment_id text,\n"
    "    ADD COLUMN red boolean NOT NULL DEFAULT false,\n"
    "    ADD COLUMN red_checked boolean NOT NULL DEFAULT false,\n"
    "    ADD COLUMN due_from timestamptz,\n"
    "    ADD COLUMN sent_at timestamptz,\n"
    "    ADD COLUMN provider text,\n"
    "    ADD COLUMN claim uuid,\n"
    "    ADD COLUMN lease_until timestamptz,\n"
    "    ADD CONSTRAINT notifications_skip_reason\n"
    "        CHECK (state NOT IN ('skipped', 'cancelled') OR last_error IS NOT NULL),\n"
    "    ADD CONSTRAINT notifications_sending_claim\n"
    "        CHECK (state <> 'sending' OR (claim IS NOT NULL AND lease_until IS NOT NULL));\n"
    "CREATE INDEX notifications_claimable ON notifications (channel, red DESC, not_before)\n"
    "    WHERE state IN ('queued', 'sending');\n"
    "CREATE INDEX notifications_red_unchecked ON notifications (created_at)\n"
    "    WHERE red AND NOT red_checked;\n"
    "CREATE INDEX notifications_appointment ON notifications (referral_id, appointment_id)\n"
    "    WHERE appointment_id IS NOT NULL;\n"
    "CREATE INDEX cases_undecided_due ON cases (decision_due_at)\n"
    "    WHERE state IN ('triage', 'awaiting_consent');\n",

    /* 3: the claim's whole order (channel, red first, not_before, then seq) in one index,
     * so a claim reads its few rows in order and stops: without seq every claim read and
     * sorted every due row of its channel (18 ms with 9,000 queued, growing with the
     * backlog; a backlog of decisions' emails made the claims the bottleneck). */
    "CREATE INDEX notifications_claim_order ON notifications (channel, red DESC, not_before, seq)\n"
    "    WHERE state IN ('queued', 'sending');\n"
    "DROP INDEX notifications_claimable;\n",

    /* 4: two fewer index entries for every notification row, the table the intake writes
     * most (two rows a referral): notifications_due served only the next-due look-up, which
     * reads notifications_claim_order since; and the dedupe key, set only on timer-made and
     * unusable_event rows, is unique where set instead of indexing every row's NULL (its
     * inserts say ON CONFLICT DO NOTHING, which a partial unique index satisfies too). */
    "DROP INDEX notifications_due;\n"
    "CREATE UNIQUE INDEX notifications_dedupe_key ON notifications (dedupe_key)\n"
    "    WHERE dedupe_key IS NOT NULL;\n"
    "ALTER TABLE notifications DROP CONSTRAINT notifications_dedupe_key_key;\n",
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

const char *const migrations_version_sql =
    "SELECT coalesce(max(version), 0)::int FROM schema_version";

int migrations_latest(void)
{
    return N_MIGRATIONS;
}

int migrations_check_version(int have, char *msg, size_t msglen)
{
    if (have >= N_MIGRATIONS) {
        if (msglen)
            msg[0] = '\0';
        return 0;
    }
    snprintf(msg, msglen,
             "the database schema is version %d but this release needs version %d: run "
             "`frontdoord --migrate` first",
             have, N_MIGRATIONS);
    return -1;
}

/* Run one fixed statement; on failure name the step and the SQLSTATE only. */
static int exec_step(PGconn *conn, const char *sql, const char *step, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(err, errlen, "%s failed (SQLSTATE %s)", step, state ? state : "none");
        rc = -1;
    }
    PQclear(r);
    return rc;
}

static int read_version(PGconn *conn, int *out, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, migrations_version_sql);
    int rc = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        *out = atoi(PQgetvalue(r, 0, 0));
    } else {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(err, errlen, "reading schema_version failed (SQLSTATE %s)",
                 state ? state : "none");
        rc = -1;
    }
    PQclear(r);
    return rc;
}

int migrations_run(PGconn *conn, int *from, int *to, char *err, size_t errlen)
{
    char lock_sql[96];
    snprintf(lock_sql, sizeof lock_sql, "SELECT pg_advisory_lock(%lld)", MIGRATIONS_LOCK_KEY);
    char unlock_sql[96];
    snprintf(unlock_sql, sizeof unlock_sql, "SELECT pg_advisory_unlock(%lld)", MIGRATIONS_LOCK_KEY);

    *from = *to = 0;
    if (exec_step(conn, "SET client_min_messages = warning", "setup", err, errlen) != 0 ||
        exec_step(conn, lock_sql, "taking the migration lock", err, errlen) != 0)
        return -1;
    int rc = exec_step(conn,
                       "CREATE TABLE IF NOT EXISTS schema_version (\n"
                       "    version integer PRIMARY KEY,\n"
                       "    release text NOT NULL,\n"
                       "    applied_at timestamptz NOT NULL DEFAULT now()\n"
                       ")",
                       "creating schema_version", err, errlen);
    int have = 0;
    if (rc == 0)
        rc = read_version(conn, &have, err, errlen);
    *from = *to = have;
    for (int v = have + 1; rc == 0 && v <= N_MIGRATIONS; v++) {
        char step[64];
        snprintf(step, sizeof step, "migration %d", v);
        rc = exec_step(conn, "BEGIN", step, err, errlen);
        if (rc == 0)
            rc = exec_step(conn, migrations[v - 1], step, err, errlen);
        if (rc == 0) {
            char vbuf[16];
            snprintf(vbuf, sizeof vbuf, "%d", v);
            const char *params[2] = {vbuf, FRONTDOOR_VERSION};
            PGresult *r = PQexecParams(conn,
                                       "INSERT INTO schema_version (version, release) "
                                       "VALUES ($1::int, $2)",
                                       2, NULL, params, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                snprintf(err, errlen, "%s: recording the version failed (SQLSTATE %s)", step,
                         state ? state : "none");
                rc = -1;
            }
            PQclear(r);
        }
        if (rc == 0)
            rc = exec_step(conn, "COMMIT", step, err, errlen);
        if (rc == 0) {
            *to = v;
        } else {
            PQclear(PQexec(conn, "ROLLBACK"));
        }
    }
    /* The lock is released on disconnect anyway; unlock so a reused connection is clean. */
    PQclear(PQexec(conn, unlock_sql));
    return rc;
}

/* Warnings name their SQLSTATE only: a message text may quote row values. */
static void on_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    fprintf(stderr, "frontdoord: --migrate: database %s (SQLSTATE %s)\n", sev ? sev : "notice",
            code ? code : "none");
}

int migrations_main(const char *conninfo, const char *password)
{
    const char *keys[] = {"dbname", "password", "application_name", NULL};
    const char *vals[] = {conninfo ? conninfo : "", password, "frontdoord-migrate", NULL};
    if (password == NULL) {
        keys[1] = "application_name";
        vals[1] = "frontdoord-migrate";
        keys[2] = NULL;
        vals[2] = NULL;
    }
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        /* libpq's connection message names host and user, never case data. */
        fprintf(stderr, "frontdoord: cannot connect to the database: %s",
                conn ? PQerrorMessage(conn) : "out of memory\n");
        PQfinish(conn);
        return EX_UNAVAILABLE;
    }
    PQsetNoticeReceiver(conn, on_notice, NULL);
    int from, to;
    char err[256];
    int rc = migrations_run(conn, &from, &to, err, sizeof err);
    PQfinish(conn);
    if (rc != 0) {
        fprintf(stderr, "frontdoord: --migrate: %s; the schema is at version %d\n", err, to);
        return EX_UNAVAILABLE;
    }
    if (from == to)
        printf("frontdoord: database schema is up to date (version %d)\n", to);
    else
        printf("frontdoord: database schema migrated from version %d to %d\n", from, to);
    return EX_OK;
}
