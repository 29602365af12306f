/* daemon: event loop, signals, reload and stop (see daemon.h). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <systemd/sd-daemon.h>

#include "frontdoor/daemon.h"
#include "frontdoor/caltime.h"
#include "frontdoor/casestore.h"
#include "frontdoor/casestore_sink.h"
#include "frontdoor/db.h"
#include "frontdoor/dispatch.h"
#include "frontdoor/http.h"
#include "frontdoor/intake.h"
#include "frontdoor/kafka.h"
#include "frontdoor/log.h"
#include "frontdoor/metrics.h"
#include "frontdoor/mono.h"
#include "frontdoor/notify_plan.h"
#include "frontdoor/notify_store.h"
#include "frontdoor/outbox.h"
#include "frontdoor/policy.h"
#include "frontdoor/sendtime.h"

#define ERRS_LEN 16384
/* Graceful stop: in-flight events get this long, then the consumer closes; the whole stop
 * ends by STOP_MAX_S whatever happens (systemd's TimeoutStopSec is longer). */
#define DRAIN_MAX_S 20
#define STOP_MAX_S  28
/* After the drain, the outbox gets this long to publish what was committed (whatever is
 * left is durable and published by the next run, or by another daemon). */
#define FLUSH_MAX_S 5
/* The database-held metrics (notifications, overdue deadlines) are read this often. */
#define DB_METRICS_INTERVAL_S 10

enum run_state { RUNNING, DRAINING, CLOSING };

struct daemon {
    struct event_base *base;
    /* boot: the start-up configuration, kept for the whole run because the Kafka client,
     * the case store and the outbox borrow it (their settings take effect at the next
     * start). cfg: the latest accepted one (policy, log); equal to boot until a reload. */
    struct config *boot, *cfg;
    struct policy *policy;
    struct kafka *k;
    struct sink *sink;
    struct casestore **cs; /* the stores: owned by the sink once it exists */
    size_t n_cs;
    struct outbox *ob;
    struct intake *in;
    struct http *http;
    struct dispatch *dp;     /* notification delivery */
    struct clock clock;      /* every notification timing decision reads this */
    int64_t clock_offset;    /* FRONTDOOR_TEST_CLOCK (test only) */
    struct db *mdb;          /* the metrics queries' own connection */
    struct db_round *mround; /* in flight when mround_busy */
    bool mround_busy;
    struct event *sig_term, *sig_int, *sig_hup, *tick, *stop_tick, *watchdog_tick, *mtick;
    enum run_state state;
    int rc;
    double stop_started, close_started;
    uint64_t looks_at_close; /* outbox looks when the consumer began to close */
    bool subscribed, db_ready, notified_ready;
    char db_reason[128]; /* why the database is not ready (for /readyz) */
    char status[256];
};

/* seconds, for the stop's deadlines */
static double mono_now(void)
{
    return (double)mono_now_us() / 1e6;
}

static const char *num(char *buf, size_t len, long long v)
{
    snprintf(buf, len, "%lld", v);
    return buf;
}

/* Log a "file:line: message" list, one line each. */
static void log_problems(const char *msg, const char *errs)
{
    const char *p = errs;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        log_error(msg, "problem", line);
        p = nl ? nl + 1 : NULL;
    }
}

/* ---------------------------------------------------------------- stopping */

static uint64_t outbox_looks(const struct outbox *ob)
{
    struct outbox_stats os;
    outbox_get_stats(ob, &os);
    return os.looks;
}

static void on_stop_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    double elapsed = mono_now() - d->stop_started;
    struct intake_stats st;
    intake_get_stats(d->in, &st);
    char nb[24];

    if (d->state == DRAINING && (st.in_flight == 0 || elapsed >= DRAIN_MAX_S)) {
        if (st.in_flight > 0)
            log_warn("stopping with events in flight; they are consumed again at the next start",
                     "in_flight", num(nb, sizeof nb, (long long)st.in_flight));
        d->state = CLOSING;
        d->close_started = mono_now();
        d->looks_at_close = outbox_looks(d->ob);
        kafka_close_consumer(d->k);
        outbox_poke(d->ob); /* publish what the last transactions committed */
    }
    if (d->state == CLOSING && (kafka_consumer_closed(d->k) || elapsed >= STOP_MAX_S)) {
        struct outbox_stats os;
        outbox_get_stats(d->ob, &os);
        /* a look begun after the last commit, not one from before it */
        bool flushed = ((os.depth == 0 && os.looks > d->looks_at_close + 1) || !os.connected ||
                        d->rc != EX_OK) &&
                       dispatch_idle(d->dp); /* and the sends in flight recorded */
        if (!flushed && elapsed < STOP_MAX_S && mono_now() - d->close_started < FLUSH_MAX_S)
            return;
        if (!kafka_consumer_closed(d->k))
            log_warn("kafka consumer did not close in time; uncommitted offsets are consumed "
                     "again");
        if (!flushed)
            log_info("outbox messages left for the next run", "outbox_depth",
                     num(nb, sizeof nb, os.depth));
        event_base_loopbreak(d->base);
    }
}

/* drain: let in-flight events finish first (not after a fatal error: they cannot). */
static void begin_stop(struct daemon *d, int rc, const char *why, bool drain)
{
    if (d->state != RUNNING)
        return;
    struct intake_stats st;
    intake_get_stats(d->in, &st);
    char nb[24];
    d->state = DRAINING;
    d->rc = rc;
    d->stop_started = mono_now();
    sd_notify(0, "STOPPING=1");
    log_info("stopping", "reason", why, "in_flight", num(nb, sizeof nb, (long long)st.in_flight));
    kafka_stop_fetching(d->k);
    dispatch_stop(d->dp); /* claims nothing more; sends in flight finish and are recorded */
    if (!drain) {
        d->state = CLOSING;
        d->close_started = mono_now();
        d->looks_at_close = outbox_looks(d->ob);
        kafka_close_consumer(d->k);
    }
    struct timeval tenth = {0, 100 * 1000};
    event_add(d->stop_tick, &tenth);
    on_stop_tick(-1, 0, d);
}

static void on_fatal(void *arg)
{
    begin_stop(arg, EX_SOFTWARE, "fatal error", true);
}

/* ---------------------------------------------------------------- database */

static void notify_ready(struct daemon *d)
{
    if (d->notified_ready || !d->db_ready || !d->subscribed || d->state != RUNNING)
        return;
    d->notified_ready = true;
    log_info("frontdoord ready", "version", FRONTDOOR_VERSION, "bootstrap", kafka_bootstrap(d->k),
             "sink", d->sink->ops->name);
    sd_notify(0, "READY=1");
}

/* A case store's connection is up (schema checked) or down: consume only while every
 * store is up (an event may go to any of them). */
static void on_db_ready(void *arg, bool ready, const char *reason)
{
    struct daemon *d = arg;
    for (size_t i = 0; ready && i < d->n_cs; i++)
        ready = d->cs[i] != NULL && casestore_is_ready(d->cs[i]);
    if (ready == d->db_ready)
        return; /* nothing changed for the daemon as a whole */
    d->db_ready = ready;
    snprintf(d->db_reason, sizeof d->db_reason, "%s", ready ? "" : reason);
    kafka_hold(d->k, !ready);
    if (ready) {
        log_info("database ready; consuming", "reason", reason);
        sd_notifyf(0, "STATUS=database connected");
        notify_ready(d);
    } else {
        log_warn("database not ready; consumption paused", "reason", reason);
        sd_notifyf(0, "STATUS=database not ready: %s", reason);
    }
    d->status[0] = '\0';
}

/* The schema is older than this release needs: nothing can be done until migrated. */
static void on_db_fatal(void *arg, const char *msg)
{
    struct daemon *d = arg;
    if (d->state != RUNNING)
        return;
    log_error("cannot run against this database", "problem", msg);
    sd_notifyf(0, "STATUS=%s", msg);
    snprintf(d->db_reason, sizeof d->db_reason, "schema too old: run frontdoord --migrate");
    begin_stop(d, EX_UNAVAILABLE, "database schema too old", false);
}

static void on_outbox(void *arg)
{
    struct daemon *d = arg;
    outbox_poke(d->ob);
    dispatch_poke(d->dp); /* notification rows came with it */
}

/* The case store's plan hook: the notifications of a change, in its transaction. */
static int on_plan(void *arg, struct db_round *r, const struct casestore_change *ch)
{
    struct daemon *d = arg;
    struct notify_ctx ctx = {d->policy, &d->clock};
    struct notify_plan p;
    if (notify_plan_change(&ctx, ch, &p) != 0)
        return -1;
    int rc = notify_store_write_batch(r, ch->bulk, &p);
    for (size_t i = 0; i < p.n_rows; i++)
        if (p.rows[i].state == NOTIFY_SKIPPED)
            log_info("notification skipped", "referral", p.referral_id, "template",
                     p.rows[i].template_name, "channel",
                     p.rows[i].channel == TEMPLATE_EMAIL ? "email" : "sms", "reason",
                     p.rows[i].skip_reason);
    notify_plan_release(&p);
    return rc;
}

/* Intake's hook: an unusable event on the referrals topic alerts the Front Door. */
static int on_unusable(void *arg, const char *topic, int32_t partition, int64_t offset,
                       const char *error_code, void (*done)(void *ctx, bool ok), void *ctx)
{
    struct daemon *d = arg;
    if (d->dp == NULL)
        return -1;
    return dispatch_record_unusable(d->dp, topic, partition, offset, error_code, done, ctx);
}

/* POST /notify/callback: answered when the dispatcher has recorded the receipt. */
static void on_callback_reply(void *arg, int status, const char *text)
{
    char body[128];
    int n = snprintf(body, sizeof body, "%s\n", text);
    http_reply(arg, status, "text/plain; charset=utf-8", body,
               n > 0 && (size_t)n < sizeof body ? (size_t)n : 0);
}

static void on_callback(struct evhttp_request *req, void *arg)
{
    struct daemon *d = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    if (body == NULL) {
        on_callback_reply(req, 500, "out of memory");
        return;
    }
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    dispatch_handle_callback(d->dp, auth, body, len, on_callback_reply, req);
    free(body);
}

/* ---------------------------------------------------------------- reload */

/* Settings a reload applies; every other change waits for the next start (the Kafka
 * clients, the connections and the listener are built from them once). */
static const char *const reloadable[] = {
    "log.level", "log.format", "routing.rules", "routing.directory", "routing.templates",
};

static void warn_not_reloaded(void *arg, const char *name)
{
    (void)arg;
    for (size_t i = 0; i < sizeof reloadable / sizeof reloadable[0]; i++)
        if (strcmp(reloadable[i], name) == 0)
            return;
    log_warn("setting changed; it takes effect at the next start", "key", name);
}

static void reload(struct daemon *d)
{
    char *errs = malloc(ERRS_LEN);
    struct config *ncfg = NULL;
    struct policy *np = NULL;
    /* MONOTONIC_USEC: systemd's Type=notify-reload (253+) wants it with RELOADING=1. */
    if (d->notified_ready)
        sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, (uint64_t)mono_now_us());
    log_info("reloading", "config", d->cfg->path);
    if (errs == NULL) {
        log_error("reload refused", "problem", "out of memory");
        goto done;
    }
    if (config_load(d->cfg->path, &ncfg, errs, ERRS_LEN) != 0) {
        log_problems("reload refused", errs);
        goto done;
    }
    if (policy_load(ncfg, &np, errs, ERRS_LEN) != 0) {
        log_problems("reload refused", errs);
        config_free(ncfg);
        goto done;
    }
    config_diff(d->boot, ncfg, warn_not_reloaded, NULL);
    /* Swap: intake and the sink (the case store) borrow the policy; nothing keeps pointers
     * into the old one beyond a call (no decision outlives a batch). */
    intake_set_policy(d->in, np);
    dispatch_set_policy(d->dp, np);
    if (d->sink->ops->set_policy)
        d->sink->ops->set_policy(d->sink->impl, np);
    policy_free(d->policy);
    d->policy = np;
    if (d->cfg != d->boot)
        config_free(d->cfg);
    d->cfg = ncfg;
    log_setup((enum log_level)ncfg->log.level, ncfg->log.format, NULL);
    log_info("configuration reloaded", "rules", ncfg->routing.rules, "directory",
             ncfg->routing.directory, "templates", ncfg->routing.templates);
done:
    free(errs);
    if (d->notified_ready)
        sd_notify(0, "READY=1");
}

/* ---------------------------------------------------------------- signals and timer */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *d = arg;
    if (sig == SIGHUP) {
        if (d->state == RUNNING)
            reload(d);
        return;
    }
    if (d->state != RUNNING) {
        log_warn("second signal: exiting at once; what was not committed is consumed again",
                 "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
        _exit(EX_TEMPFAIL);
    }
    begin_stop(d, EX_OK, sig == SIGINT ? "SIGINT" : "SIGTERM", true);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    struct kafka_stats ks;
    kafka_get_stats(d->k, &ks);
    struct outbox_stats os;
    outbox_get_stats(d->ob, &os);
    char status[256];
    snprintf(status, sizeof status,
             "STATUS=%s: %llu consumed, %zu in flight, %zu partitions%s, %llu published, "
             "outbox %ld",
             d->state != RUNNING ? "stopping"
             : d->db_ready       ? "running"
                                 : "database not ready",
             (unsigned long long)ks.consumed, ks.in_flight, ks.assigned,
             ks.paused ? ", paused" : "", (unsigned long long)os.published, os.depth);
    if (strcmp(status, d->status) != 0) {
        sd_notify(0, status);
        memcpy(d->status, status, sizeof status);
    }
}

/* systemd's watchdog: pinged from the loop at half the interval it asked for, so a loop
 * that stops turning (a blocking call, a livelock) gets the daemon restarted. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sd_notify(0, "WATCHDOG=1");
}

/* ---------------------------------------------------------------- HTTP: health, metrics */

static const char text_plain[] = "text/plain; charset=utf-8";

/* Whether the daemon can do its work; the reasons (one a line) when not. */
static bool is_ready(struct daemon *d, char *why, size_t len)
{
    size_t used = 0;
    why[0] = '\0';
    if (d->state != RUNNING)
        used += (size_t)snprintf(why + used, len - used, "stopping\n");
    if (!d->db_ready && used < len)
        used += (size_t)snprintf(why + used, len - used, "database: %s\n",
                                 d->db_reason[0] ? d->db_reason : "not connected yet");
    char kw[256];
    if (!kafka_connected(d->k, kw, sizeof kw) && used < len)
        used += (size_t)snprintf(why + used, len - used, "%s\n", kw);
    return why[0] == '\0';
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
    (void)arg;
    /* Answered from the loop, so an answer means the loop turns. */
    http_reply(req, 200, text_plain, "ok\n", 3);
}

static void on_readyz(struct evhttp_request *req, void *arg)
{
    struct daemon *d = arg;
    char why[512];
    if (is_ready(d, why, sizeof why))
        http_reply(req, 200, text_plain, "ready\n", 6);
    else
        http_reply(req, 503, text_plain, why, strlen(why));
}

/* Gauges the daemon knows at any moment, set just before a scrape. */
static void update_gauges(struct daemon *d)
{
    char why[512];
    struct outbox_stats os;
    outbox_get_stats(d->ob, &os);
    metrics_set_outbox_depth(os.connected ? os.depth : -1);
    metrics_set_up("database", d->db_ready);
    metrics_set_up("kafka", kafka_connected(d->k, why, sizeof why));
    metrics_set_ready(is_ready(d, why, sizeof why));
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    update_gauges(arg);
    size_t len;
    char *text = metrics_render(&len);
    if (text == NULL) {
        http_reply(req, 500, text_plain, "out of memory\n", 14);
        return;
    }
    http_reply(req, 200, METRICS_CONTENT_TYPE, text, len);
    free(text);
}

/* ---------------------------------------------------------------- database-held metrics */

static const char *const SQL_METRICS_TIMEOUT = "SET statement_timeout = 5000";
static const char *const SQL_NOTIFICATION_COUNTS =
    "SELECT channel, state, count(*) FROM notifications GROUP BY channel, state";
static const char *const SQL_OVERDUE =
    "SELECT count(*) FROM cases WHERE state IN ('triage', 'awaiting_consent') "
    "AND decision_due_at < now()";

static void metrics_round_done(void *arg, struct db_round *r, enum db_status st)
{
    struct daemon *d = arg;
    d->mround_busy = false;
    if (st == DB_CLOSED)
        return;
    if (st != DB_OK) {
        db_log_error("metrics query", r, st);
        return;
    }
    /* Every channel and state the schema allows, so each series exists from the start. */
    static const char *const channels[] = {"email", "sms"};
    static const char *const states[] = {"queued",  "sending", "sent",     "delivered",
                                         "skipped", "failed",  "cancelled"};
    metrics_clear_notifications();
    for (size_t c = 0; c < 2; c++)
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
            metrics_set_notifications(channels[c], states[i], 0);
    PGresult *n = db_round_result(r, 1);
    for (int i = 0; i < PQntuples(n); i++)
        metrics_set_notifications(PQgetvalue(n, i, 0), PQgetvalue(n, i, 1),
                                  strtod(PQgetvalue(n, i, 2), NULL));
    PGresult *o = db_round_result(r, 2);
    if (PQntuples(o) == 1)
        metrics_set_deadlines_overdue(strtol(PQgetvalue(o, 0, 0), NULL, 10));
}

static void on_mtick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    if (d->mround_busy || !db_is_up(d->mdb) || d->state != RUNNING)
        return;
    db_round_reset(d->mround);
    if (db_round_addv(d->mround, SQL_METRICS_TIMEOUT, 0, NULL) < 0 ||
        db_round_addv(d->mround, SQL_NOTIFICATION_COUNTS, 0, NULL) < 0 ||
        db_round_addv(d->mround, SQL_OVERDUE, 0, NULL) < 0)
        return;
    if (db_submit(d->mdb, d->mround, metrics_round_done, d) == 0)
        d->mround_busy = true;
}

static void on_mdb_up(void *arg)
{
    on_mtick(-1, 0, arg); /* at once, then every DB_METRICS_INTERVAL_S */
}

static void on_mdb_down(void *arg, const char *reason)
{
    (void)reason;
    (void)arg;
    metrics_set_deadlines_overdue(-1); /* unknown until the next query */
}

static void on_mdb_fatal(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* the case store's connection reports it and stops the daemon */
}

/* libevent's own warnings (evhttp: a bad request, accept failures) in our log format. */
static void on_libevent_log(int severity, const char *msg)
{
    enum log_level l = severity == EVENT_LOG_DEBUG  ? LOG_DEBUG
                       : severity == EVENT_LOG_MSG  ? LOG_INFO
                       : severity == EVENT_LOG_WARN ? LOG_WARN
                                                    : LOG_ERROR;
    log_write(l, "libevent", "text", msg, NULL);
}

static void on_message(void *arg, struct kafka_msg *msg)
{
    struct daemon *d = arg;
    intake_on_message(d->in, msg);
}

/* ---------------------------------------------------------------- run */

static void teardown(struct daemon *d)
{
    struct event **evs[] = {&d->sig_term,  &d->sig_int,       &d->sig_hup, &d->tick,
                            &d->stop_tick, &d->watchdog_tick, &d->mtick};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (*evs[i] != NULL) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    /* The dispatcher first: it answers the receipts it still owes through the listener,
     * and drops the alerts intake waits for (those events are consumed again). */
    dispatch_free(d->dp);
    d->dp = NULL;
    http_free(d->http); /* requests not yet answered are dropped */
    db_free(d->mdb);    /* its round's callback learns DB_CLOSED */
    db_round_free(d->mround);
    /* Owners stop hearing from Kafka first, then free what callbacks would touch. */
    if (d->k != NULL)
        kafka_detach(d->k);
    if (d->sink != NULL)
        d->sink->ops->destroy(d->sink->impl); /* frees the case stores */
    else
        for (size_t i = 0; i < d->n_cs; i++)
            casestore_free(d->cs[i]);
    free(d->cs);
    intake_free(d->in);
    outbox_free(d->ob);
    kafka_free(d->k);
    policy_free(d->policy);
    if (d->cfg != d->boot)
        config_free(d->cfg);
    config_free(d->boot);
    if (d->base != NULL)
        event_base_free(d->base);
    metrics_reset();
}

int daemon_run(struct config *cfg)
{
    struct daemon d = {0};
    char err[1024];
    d.boot = d.cfg = cfg;
    d.rc = EX_OK;

    char *errs = malloc(ERRS_LEN);
    if (errs == NULL || policy_load(cfg, &d.policy, errs, ERRS_LEN) != 0) {
        log_problems("configuration refused", errs ? errs : "out of memory");
        free(errs);
        teardown(&d);
        return EX_CONFIG;
    }
    free(errs);

    /* Test only: notification timing runs from a set instant (documented in README). */
    const char *test_clock = getenv("FRONTDOOR_TEST_CLOCK");
    d.clock = sendtime_system_clock();
    if (test_clock && test_clock[0]) {
        int64_t at;
        if (!caltime_parse_datetime(test_clock, &at)) {
            log_error("FRONTDOOR_TEST_CLOCK is not an RFC 3339 date-time");
            teardown(&d);
            return EX_CONFIG;
        }
        d.clock_offset = at - sendtime_now_ms(&d.clock);
        d.clock = (struct clock){sendtime_offset_now_ms, &d.clock_offset};
        log_warn("test clock in use: notification timing runs from FRONTDOOR_TEST_CLOCK", "now",
                 test_clock);
    }

    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(on_libevent_log);
    d.base = event_base_new();
    if (d.base == NULL) {
        log_error("cannot create the event loop");
        teardown(&d);
        return EX_OSERR;
    }
    /* The listener first: a port in use stops the start at once, before anything joins
     * the consumer group. */
    if (http_open(d.base, cfg->http.listen, &d.http, err, sizeof err) != 0) {
        log_error("http listener failed", "reason", err);
        teardown(&d);
        return EX_UNAVAILABLE;
    }
    if (http_add_route(d.http, HTTP_GET, "/healthz", on_healthz, &d) != 0 ||
        http_add_route(d.http, HTTP_GET, "/readyz", on_readyz, &d) != 0 ||
        http_add_route(d.http, HTTP_GET, "/metrics", on_metrics, &d) != 0) {
        log_error("out of memory", "where", "start-up");
        teardown(&d);
        return EX_OSERR;
    }
    log_info("http listening", "address", http_address(d.http));
    struct kafka_handlers h = {.on_message = on_message, .on_fatal = on_fatal, .arg = &d};
    /* Room for a batch on every case store and the next one filling behind it. */
    struct kafka_limits lim = {
        .pause_at_messages = (size_t)cfg->kafka.max_in_flight,
        .resume_at_messages = (size_t)cfg->kafka.max_in_flight / 2,
        .pause_at_bytes = KAFKA_DEFAULT_PAUSE_BYTES,
    };
    int kr = kafka_open(d.base, cfg, &lim, &h, &d.k, err, sizeof err);
    if (kr != 0) {
        log_error("kafka setup failed", "reason", err);
        teardown(&d);
        return kr == KAFKA_ERR_CONFIG ? EX_CONFIG : EX_UNAVAILABLE;
    }
    /* Nothing is consumed until the case store's database is up (schema checked). */
    kafka_hold(d.k, true);
    struct outbox_options oo = {
        .base = d.base, .cfg = cfg, .kafka = d.k, .on_fatal = on_db_fatal, .arg = &d};
    if (outbox_open(&oo, &d.ob, err, sizeof err) != 0) {
        log_error("database setup failed", "reason", err);
        teardown(&d);
        return EX_UNAVAILABLE;
    }
    struct dispatch_options dpo = {
        .base = d.base,
        .cfg = cfg,
        .policy = d.policy,
        .clock = &d.clock,
        .on_fatal = on_db_fatal,
        .arg = &d,
    };
    bool config_error = false;
    if (dispatch_open(&dpo, &d.dp, &config_error, err, sizeof err) != 0) {
        log_error("notification delivery setup failed", "reason", err);
        teardown(&d);
        return config_error ? EX_CONFIG : EX_UNAVAILABLE;
    }
    if (http_add_route(d.http, HTTP_POST, "/notify/callback", on_callback, &d) != 0) {
        log_error("out of memory", "where", "start-up");
        teardown(&d);
        return EX_OSERR;
    }
    struct casestore_options co = {
        .base = d.base,
        .cfg = cfg,
        .policy = d.policy,
        .on_ready = on_db_ready,
        .on_fatal = on_db_fatal,
        .on_outbox = on_outbox,
        .plan = on_plan,
        .plan_bulk_sql = notify_store_bulk_sql,
        .plan_bulk_cols = NOTIFY_STORE_BULK_COLS,
        .arg = &d,
    };
    d.cs = calloc((size_t)cfg->database.connections, sizeof *d.cs);
    if (d.cs == NULL) {
        log_error("out of memory", "where", "start-up");
        teardown(&d);
        return EX_OSERR;
    }
    for (int i = 0; i < cfg->database.connections; i++) {
        if (casestore_open(&co, &d.cs[i], err, sizeof err) != 0) {
            log_error("database setup failed", "reason", err);
            teardown(&d);
            return EX_UNAVAILABLE;
        }
        d.n_cs++;
    }
    struct db_options mo = {.conninfo = cfg->database.conninfo,
                            .password = cfg->database.password,
                            .name = "frontdoord-metrics",
                            .prepare = cfg->database.prepared_statements};
    struct db_callbacks mcb = {
        .on_up = on_mdb_up, .on_down = on_mdb_down, .on_fatal = on_mdb_fatal, .arg = &d};
    if ((d.mround = db_round_new()) == NULL ||
        db_open(d.base, &mo, &mcb, &d.mdb, err, sizeof err) != 0) {
        log_error("database setup failed", "reason", d.mround ? err : "out of memory");
        teardown(&d);
        return EX_UNAVAILABLE;
    }
    if (casestore_sink_new(d.cs, d.n_cs, &d.sink) != 0 ||
        intake_new(d.k, d.sink, cfg, d.policy, &d.in) != 0) {
        log_error("out of memory", "where", "start-up");
        teardown(&d);
        return EX_OSERR;
    }
    intake_set_unusable_hook(d.in, on_unusable, &d);

    d.sig_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
    d.sig_int = evsignal_new(d.base, SIGINT, on_signal, &d);
    d.sig_hup = evsignal_new(d.base, SIGHUP, on_signal, &d);
    d.tick = event_new(d.base, -1, EV_PERSIST, on_tick, &d);
    d.stop_tick = event_new(d.base, -1, EV_PERSIST, on_stop_tick, &d);
    d.mtick = event_new(d.base, -1, EV_PERSIST, on_mtick, &d);
    struct timeval second = {1, 0}, minterval = {DB_METRICS_INTERVAL_S, 0};
    if (!d.sig_term || !d.sig_int || !d.sig_hup || !d.tick || !d.stop_tick || !d.mtick ||
        event_add(d.sig_term, NULL) || event_add(d.sig_int, NULL) || event_add(d.sig_hup, NULL) ||
        event_add(d.tick, &second) || event_add(d.mtick, &minterval)) {
        log_error("cannot set up signals and timers");
        teardown(&d);
        return EX_OSERR;
    }
    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        uint64_t half = wd_usec / 2;
        struct timeval tv = {(time_t)(half / 1000000u), (suseconds_t)(half % 1000000u)};
        d.watchdog_tick = event_new(d.base, -1, EV_PERSIST, on_watchdog, &d);
        if (d.watchdog_tick == NULL || event_add(d.watchdog_tick, &tv) != 0) {
            log_error("cannot set up the watchdog timer");
            teardown(&d);
            return EX_OSERR;
        }
        char ms[24];
        log_info("systemd watchdog enabled", "ping_ms",
                 num(ms, sizeof ms, (long long)(half / 1000)));
        sd_notify(0, "WATCHDOG=1");
    }

    if (kafka_subscribe(d.k, err, sizeof err) != 0) {
        log_error("kafka setup failed", "reason", err);
        teardown(&d);
        return EX_UNAVAILABLE;
    }
    d.subscribed = true;
    log_info("subscribed; waiting for the database", "bootstrap", kafka_bootstrap(d.k));
    notify_ready(&d); /* READY=1 once the database is up too */

    if (event_base_dispatch(d.base) < 0) {
        log_error("event loop failed");
        d.rc = EX_SOFTWARE;
    }
    int rc = d.rc;
    struct kafka_stats ks;
    kafka_get_stats(d.k, &ks);
    char cb[24], sb[24];
    log_info("stopped", "consumed", num(cb, sizeof cb, (long long)ks.consumed), "offsets_stored",
             num(sb, sizeof sb, (long long)ks.stored));
    teardown(&d);
    return rc;
}
