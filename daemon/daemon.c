/* daemon: event loop, signals, reload and stop (see daemon.h). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "frontdoor/daemon.h"
#include "frontdoor/callback_http.h"
#include "frontdoor/caltime.h"
#include "frontdoor/casestore.h"
#include "frontdoor/casestore_sink.h"
#include "frontdoor/dispatch.h"
#include "frontdoor/intake.h"
#include "frontdoor/kafka.h"
#include "frontdoor/log.h"
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
    struct casestore *cs; /* owned by sink */
    struct outbox *ob;
    struct intake *in;
    struct dispatch *dp;       /* notification delivery */
    struct callback_http *cbh; /* Notify receipts (interim listener) */
    struct clock clock;        /* every notification timing decision reads this */
    int64_t clock_offset;      /* FRONTDOOR_TEST_CLOCK (test only) */
    struct event *sig_term, *sig_int, *sig_hup, *tick, *stop_tick;
    enum run_state state;
    int rc;
    double stop_started, close_started;
    bool watchdog;
    bool subscribed, db_ready, notified_ready;
    char status[256];
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
        kafka_close_consumer(d->k);
        outbox_poke(d->ob); /* publish what the last transactions committed */
    }
    if (d->state == CLOSING && (kafka_consumer_closed(d->k) || elapsed >= STOP_MAX_S)) {
        struct outbox_stats os;
        outbox_get_stats(d->ob, &os);
        bool flushed = (os.depth == 0 || !os.connected || d->rc != EX_OK) && dispatch_idle(d->dp);
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
    dispatch_stop(d->dp); /* sends in flight finish and are recorded */
    if (!drain) {
        d->state = CLOSING;
        d->close_started = mono_now();
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

/* The case store's connection is up (schema checked) or down: consume only while up. */
static void on_db_ready(void *arg, bool ready, const char *reason)
{
    struct daemon *d = arg;
    d->db_ready = ready;
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
    int rc = notify_store_write(r, &p);
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
    return dispatch_record_unusable(d->dp, topic, partition, offset, error_code, done, ctx);
}

/* ---------------------------------------------------------------- reload */

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static bool kafka_settings_differ(const struct config *a, const struct config *b)
{
    if (str_differs(a->kafka.brokers, b->kafka.brokers) ||
        str_differs(a->kafka.group_id, b->kafka.group_id) ||
        str_differs(a->kafka.referrals_topic, b->kafka.referrals_topic) ||
        str_differs(a->kafka.case_events_topic, b->kafka.case_events_topic) ||
        str_differs(a->kafka.decisions_topic, b->kafka.decisions_topic) ||
        str_differs(a->kafka.dlq_topic, b->kafka.dlq_topic) ||
        a->kafka.max_message_bytes != b->kafka.max_message_bytes ||
        a->kafka.n_rdkafka != b->kafka.n_rdkafka)
        return true;
    for (size_t i = 0; i < a->kafka.n_rdkafka; i++)
        if (str_differs(a->kafka.rdkafka[i].key, b->kafka.rdkafka[i].key) ||
            str_differs(a->kafka.rdkafka[i].value, b->kafka.rdkafka[i].value))
            return true;
    return false;
}

/* Providers, limits and the listener are made at start; templates reload with the
 * policy. */
static bool notify_settings_differ(const struct config *a, const struct config *b)
{
    const struct channel_config *ca[2] = {&a->email, &a->sms}, *cb[2] = {&b->email, &b->sms};
    for (int i = 0; i < 2; i++) {
        if (ca[i]->provider != cb[i]->provider || str_differs(ca[i]->spool_dir, cb[i]->spool_dir) ||
            str_differs(ca[i]->notify_url, cb[i]->notify_url) ||
            str_differs(ca[i]->notify_api_key, cb[i]->notify_api_key) ||
            ca[i]->rate_limit_per_minute != cb[i]->rate_limit_per_minute ||
            ca[i]->timeout_s != cb[i]->timeout_s || ca[i]->max_in_flight != cb[i]->max_in_flight ||
            ca[i]->n_notify_templates != cb[i]->n_notify_templates)
            return true;
        for (size_t k = 0; k < ca[i]->n_notify_templates; k++)
            if (str_differs(ca[i]->notify_templates[k].key, cb[i]->notify_templates[k].key) ||
                str_differs(ca[i]->notify_templates[k].value, cb[i]->notify_templates[k].value))
                return true;
    }
    return str_differs(a->email_smtp_url, b->email_smtp_url) ||
           str_differs(a->email_from, b->email_from) ||
           str_differs(a->email_smtp_username, b->email_smtp_username) ||
           str_differs(a->email_smtp_password, b->email_smtp_password) ||
           str_differs(a->email_smtp_ca_file, b->email_smtp_ca_file) ||
           str_differs(a->http.listen, b->http.listen) ||
           str_differs(a->http.callback_token, b->http.callback_token);
}

static void reload(struct daemon *d)
{
    char *errs = malloc(ERRS_LEN);
    struct config *ncfg = NULL;
    struct policy *np = NULL;
    if (d->notified_ready)
        sd_notify(0, "RELOADING=1");
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
    if (kafka_settings_differ(d->boot, ncfg))
        log_warn("kafka settings changed; they take effect at the next start");
    if (str_differs(d->boot->database.conninfo, ncfg->database.conninfo))
        log_warn("database settings changed; they take effect at the next start");
    if (notify_settings_differ(d->boot, ncfg))
        log_warn("notification delivery settings changed; they take effect at the next start");
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
             ncfg->routing.directory);
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
    if (d->watchdog)
        sd_notify(0, "WATCHDOG=1");
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

static void on_message(void *arg, struct kafka_msg *msg)
{
    struct daemon *d = arg;
    intake_on_message(d->in, msg);
}

/* ---------------------------------------------------------------- run */

static void teardown(struct daemon *d)
{
    struct event **evs[] = {&d->sig_term, &d->sig_int, &d->sig_hup, &d->tick, &d->stop_tick};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (*evs[i] != NULL) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    /* Owners stop hearing from Kafka first, then free what callbacks would touch. */
    if (d->k != NULL)
        kafka_detach(d->k);
    if (d->sink != NULL)
        d->sink->ops->destroy(d->sink->impl); /* frees the case store */
    else
        casestore_free(d->cs);
    /* The dispatcher answers the receipts it still owes through the listener, and drops
     * the alerts intake waits for (those events are consumed again). */
    dispatch_free(d->dp);
    callback_http_free(d->cbh);
    intake_free(d->in);
    outbox_free(d->ob);
    kafka_free(d->k);
    policy_free(d->policy);
    if (d->cfg != d->boot)
        config_free(d->cfg);
    config_free(d->boot);
    if (d->base != NULL)
        event_base_free(d->base);
}

int daemon_run(struct config *cfg)
{
    struct daemon d = {0};
    char err[1024];
    d.boot = d.cfg = cfg;
    d.rc = EX_OK;

    char *errs = malloc(ERRS_LEN);
    if (errs == NULL || policy_load(cfg, &d.policy, errs, ERRS_LEN) != 0) {
        if (errs != NULL)
            fputs(errs, stderr);
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
            fprintf(stderr, "frontdoord: FRONTDOOR_TEST_CLOCK is not an RFC 3339 date-time\n");
            teardown(&d);
            return EX_CONFIG;
        }
        d.clock_offset = at - sendtime_now_ms(&d.clock);
        d.clock = (struct clock){sendtime_offset_now_ms, &d.clock_offset};
        log_warn("test clock in use: notification timing runs from FRONTDOOR_TEST_CLOCK", "now",
                 test_clock);
    }

    signal(SIGPIPE, SIG_IGN);
    d.base = event_base_new();
    if (d.base == NULL) {
        log_error("cannot create the event loop");
        teardown(&d);
        return EX_OSERR;
    }
    struct kafka_handlers h = {.on_message = on_message, .on_fatal = on_fatal, .arg = &d};
    int kr = kafka_open(d.base, cfg, NULL, &h, &d.k, err, sizeof err);
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
    if (cfg->http.callback_token != NULL &&
        callback_http_open(d.base, cfg->http.listen, d.dp, &d.cbh, err, sizeof err) != 0) {
        log_error("http listener setup failed", "reason", err);
        teardown(&d);
        return EX_UNAVAILABLE;
    }
    struct casestore_options co = {
        .base = d.base,
        .cfg = cfg,
        .policy = d.policy,
        .on_ready = on_db_ready,
        .on_fatal = on_db_fatal,
        .on_outbox = on_outbox,
        .plan = on_plan,
        .arg = &d,
    };
    if (casestore_open(&co, &d.cs, err, sizeof err) != 0) {
        log_error("database setup failed", "reason", err);
        teardown(&d);
        return EX_UNAVAILABLE;
    }
    if (casestore_sink_new(d.cs, &d.sink) != 0 ||
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
    struct timeval second = {1, 0};
    if (!d.sig_term || !d.sig_int || !d.sig_hup || !d.tick || !d.stop_tick ||
        event_add(d.sig_term, NULL) || event_add(d.sig_int, NULL) || event_add(d.sig_hup, NULL) ||
        event_add(d.tick, &second)) {
        log_error("cannot set up signals and timers");
        teardown(&d);
        return EX_OSERR;
    }
    uint64_t wd_usec = 0;
    d.watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;

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
