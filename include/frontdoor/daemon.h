/* daemon: the running service (`frontdoord [--config FILE]`), on one libevent loop.
 *
 * Owns the event_base, the signals (as libevent events), the 1 s timer (systemd
 * watchdog and status), the routing policy, the Kafka clients, intake, the sink (the
 * case store in PostgreSQL, database.conninfo; empty means libpq's defaults and PG*
 * variables) and the outbox publisher of the decisions it commits.
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
 *     they replace the running ones (log level and format, rules, directory), otherwise
 *     every problem is logged and the old ones keep running. Kafka and database settings
 *     take effect at the next start.
 *   - SIGHUP also hands the new policy (rules, directory, templates) to the case store
 *     and the notification dispatcher.
 *   - Notifications: the case store's plan hook writes each change's notification rows in
 *     its transaction (notify_plan.h, notify_store.h); intake's unusable hook writes the
 *     unusable_event row of a bad referrals-topic event before its offset is stored; the
 *     dispatcher (dispatch.h) sends them, and on a graceful stop finishes the sends in
 *     flight within the flush time. Every notification timing decision reads one clock:
 *     the real one, or, for tests only, FRONTDOOR_TEST_CLOCK (an RFC 3339 instant the
 *     clock starts from; a warning is logged). With http.callback_token_file set, an
 *     interim listener on http.listen takes Notify's receipts (callback_http.h).
 *   - systemd: READY=1 once the consumer has subscribed and the database is connected
 *     (schema checked), RELOADING=1 / READY=1 around a
 *     reload, WATCHDOG=1 every second from the loop, STATUS=, STOPPING=1.
 */
#ifndef FRONTDOOR_DAEMON_H
#define FRONTDOOR_DAEMON_H

#include "frontdoor/config.h"

/* Run until stopped. Takes ownership of cfg (it may be replaced by a reload and is freed
 * before returning). Returns a sysexits.h code: 0 after a graceful stop, 78 for a bad
 * configuration or policy, 69 when Kafka cannot be set up or the database schema is too
 * old, 70 after a fatal error. */
int daemon_run(struct config *cfg);

#endif
