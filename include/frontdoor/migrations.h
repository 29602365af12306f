/* migrations: the database schema, as numbered SQL migrations compiled into the binary.
 *
 * `frontdoord --migrate` applies every migration newer than the database's
 * schema_version, each in its own transaction, under an advisory lock so two migrating
 * processes do not race. The daemon checks the version on every connection and refuses
 * to run on an older schema (migrations_check_version()).
 *
 * The contract tables of operations.md (cases, decisions, notifications,
 * processed_events, audit_log) are created here, plus the project's own: outbox (Kafka
 * messages written in the transaction that caused them), held_events (case events
 * waiting for their referral) and schema_version.
 */
#ifndef FRONTDOOR_MIGRATIONS_H
#define FRONTDOOR_MIGRATIONS_H

#include <stddef.h>

#include <libpq-fe.h>

/* The schema version this release needs (the number of the newest migration). */
int migrations_latest(void);

/* The query that reads a database's schema version: one row, one int column (0 when the
 * table is empty). A database without the table answers SQLSTATE 42P01 (version 0). */
extern const char *const migrations_version_sql;

/* Compare a database's version with the release's: 0 when usable, -1 with a message
 * naming `frontdoord --migrate` when older. A newer schema is usable (a rolling upgrade
 * migrates before it restarts the old daemons). */
int migrations_check_version(int have, char *msg, size_t msglen);

/* Apply the missing migrations on a connected, blocking connection (only --migrate calls
 * this, before any event loop runs). *from and *to receive the versions before and
 * after. Returns 0, or -1 with err set (SQLSTATE only: server messages may hold data). */
int migrations_run(PGconn *conn, int *from, int *to, char *err, size_t errlen);

/* `frontdoord --migrate`: connect with conninfo (and password when not NULL), migrate,
 * print the outcome on stdout/stderr. Returns a sysexits.h code (0, 69 unavailable). */
int migrations_main(const char *conninfo, const char *password);

#endif
