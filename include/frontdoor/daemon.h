/* daemon: the running service (`frontdoord [--config FILE]`), on one libevent loop.
 *
 * Owns the event_base, the signals (as libevent events), the timers (status every
 * second, the systemd watchdog, the database-held metrics), the routing policy (rules,
 * directory, templates), the Kafka clients, intake, the sink (the case store in
 * PostgreSQL, database.conninfo; empty means libpq's defaults and PG* variables), the
 * outbox publisher of the decisions it commits, and the HTTP listener (http.h).
 *   - The consumer is held (paused) while the case store's database is not up; a lost
 *     connection logs "database not ready" and pauses consumption until it is back.
 *   - A database whose schema is older than this release (not migrated): the daemon logs
 *     a message naming `frontdoord --migrate` and exits 69 (EX_UNAVAILABLE).
 *   - SIGTERM / SIGINT: graceful stop. Stop fetching, let in-flight events finish (their
 *     case-store transactions commit; up to 20 s), commit the stored offsets and leave the
 *     group while the outbox publishes what was committed (up to 5 s more; the rest is
 *     durable and published by the next run), exit 0 within 30 s. A second
 *     signal exits at once (status 75, EX_TEMPFAIL): nothing is lost, what was not
 *     committed is consumed again.
 *   - SIGHUP: reload the main file and the policy into fresh structs; when both are valid
 *     they replace the running ones (log level and format, rules, directory, templates;
 *     intake and the case store get the new policy), otherwise every problem is logged
 *     ("reload refused", file:line) and the old ones keep running. Any other changed
 *     setting is named in a warning: it takes effect at the next start.
 *   - HTTP (http.listen): GET /healthz 200 while the loop runs; GET /readyz 200 when the
 *     case store's database and both Kafka clients are connected and the daemon is not
 *     stopping, else 503 with one reason a line; GET /metrics (metrics.h). Notification
 *     counts and overdue deadlines are read every 10 s on a connection of their own.
 *   - Notifications: the case store's plan hook writes each change's notification rows in
 *     its transaction (notify_plan.h, notify_store.h); intake's unusable hook writes the
 *     unusable_event row of a bad referrals-topic event before its offset is stored; the
 *     dispatcher (dispatch.h) sends them (it gets the new policy on a reload too), and on
 *     a graceful stop finishes the sends in flight within the flush time. POST
 *     /notify/callback takes Notify's delivery receipts (dispatch_handle_callback()).
 *     Every notification timing decision reads one clock: the real one, or, for tests
 *     only, FRONTDOOR_TEST_CLOCK (an RFC 3339 instant the clock starts from; a warning is
 *     logged).
 *   - systemd: READY=1 once the consumer has subscribed and the database is connected
 *     (schema checked); RELOADING=1 (with MONOTONIC_USEC) / READY=1 around a reload;
 *     WATCHDOG=1 from the loop at half of WATCHDOG_USEC; STATUS= (a one-line summary
 *     when it changes); STOPPING=1.
 */
#ifndef FRONTDOOR_DAEMON_H
#define FRONTDOOR_DAEMON_H

#include "frontdoor/config.h"

/* Run until stopped. Takes ownership of cfg (it may be replaced by a reload and is freed
 * before returning). Returns a sysexits.h code: 0 after a graceful stop, 78 for a bad
 * configuration or policy, 69 when Kafka or the HTTP listener cannot be set up or the
 * database schema is too old, 70 after a fatal error, 75 after a second signal. */
int daemon_run(struct config *cfg);

#endif
