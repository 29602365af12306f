/* frontdoor-casestore-feed: a test driver for the case store without Kafka.
 *
 *   frontdoor-casestore-feed --config FILE [--db CONNINFO] [--retry-seconds N]
 *       [--scan-ms N] [--batch N] [--interval-ms N] [--partition N] [--offset-base N]
 *       [--drain-held] [--timeout S] FILE...
 *
 * Reads events, one JSON object a line, from each FILE ("-" = stdin); a referral.received
 * goes as if from the referrals topic, anything else from the case-events topic. Each
 * line gets offset = offset-base + its number among all lines. Every event is submitted
 * (all at once, or one every --interval-ms) on one libevent loop, and one line per
 * completion is printed:  <offset> <event_id> <outcome> <error or -> <referral_id>
 * Lines that fail checks 1-8 print "<offset> - unusable <code> -". With --drain-held the
 * tool also waits until held_events is empty. Exit 0 when everything completed, 1 on a
 * timeout, 69 when the schema is too old, 64/78 for usage and configuration. With
 * --publish the outbox publisher runs too (against kafka.brokers of the configuration)
 * and the tool also waits until every outbox row is published.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <event2/event.h>

#include "frontdoor/casestore.h"
#include "frontdoor/config.h"
#include "frontdoor/kafka.h"
#include "frontdoor/log.h"
#include "frontdoor/outbox.h"
#include "frontdoor/policy.h"

struct line {
    char *text;
    size_t len;
    long long offset;
};

struct feed {
    struct event_base *base;
    struct casestore *cs;
    struct line *lines;
    size_t n_lines, next, done;
    int partition;
    bool drain_held;
    int rc;
    struct event *ev_tick;
    int interval_ms;
    struct outbox *ob;      /* with --publish */
    uint64_t looks_at_idle; /* outbox looks when everything was done (UINT64_MAX: not yet) */
};

static void on_done(void *arg, const struct casestore_result *res)
{
    struct line *l = arg;
    printf("%lld %s %s %s %s\n", l->offset, res->event_id, casestore_outcome_name(res->outcome),
           res->outcome == CASESTORE_REJECTED ? event_error_code(res->error) : "-",
           res->referral_id && *res->referral_id ? res->referral_id : "-");
    fflush(stdout);
}

static void on_ready(void *arg, bool ready, const char *reason)
{
    (void)arg;
    fprintf(stderr, "casestore-feed: %s (%s)\n", ready ? "ready" : "not ready", reason);
}

static void on_fatal(void *arg, const char *msg)
{
    struct feed *f = arg;
    fprintf(stderr, "casestore-feed: %s\n", msg);
    f->rc = EX_UNAVAILABLE;
    event_base_loopbreak(f->base);
}

static void release_msg(void *arg, struct kafka_msg *msg)
{
    (void)arg;
    kafka_msg_release(msg); /* never subscribed: nothing arrives */
}

static void poke(void *arg)
{
    struct feed *f = arg;
    outbox_poke(f->ob);
}

static void submit_one(struct feed *f)
{
    struct line *l = &f->lines[f->next++];
    struct event ev;
    char detail[256];
    const char *type_hint = strstr(l->text, "\"referral.received\"");
    enum event_topic topic = type_hint ? EVENT_TOPIC_REFERRALS : EVENT_TOPIC_CASE_EVENTS;
    enum event_error e = event_parse(l->text, l->len, topic, 65536, &ev, detail, sizeof detail);
    if (e != EVENT_OK) {
        printf("%lld - unusable %s -\n", l->offset, event_error_code(e));
        return;
    }
    struct casestore_source src = {
        .kind = topic,
        .topic = topic == EVENT_TOPIC_REFERRALS ? "frontdoor.referrals" : "frontdoor.case-events",
        .partition = f->partition,
        .offset = l->offset,
    };
    if (casestore_submit(f->cs, &src, l->text, l->len, &ev, on_done, l) != 0) {
        event_release(&ev);
        fprintf(stderr, "casestore-feed: out of memory\n");
    }
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feed *f = arg;
    if (f->interval_ms > 0) {
        if (f->next < f->n_lines)
            submit_one(f);
    } else {
        while (f->next < f->n_lines)
            submit_one(f);
    }
    bool held_clear = !f->drain_held || casestore_held_count(f->cs) == 0;
    if (f->ob) {
        /* the last look may predate the last commit: wait for one begun after it */
        struct outbox_stats st;
        outbox_get_stats(f->ob, &st);
        bool idle = f->next == f->n_lines && casestore_idle(f->cs);
        if (!idle)
            f->looks_at_idle = UINT64_MAX;
        else if (f->looks_at_idle == UINT64_MAX)
            f->looks_at_idle = st.looks;
        held_clear = held_clear && st.depth == 0 && st.looks > f->looks_at_idle + 1;
    }
    if (f->next == f->n_lines && casestore_idle(f->cs) && held_clear) {
        f->rc = 0;
        event_base_loopbreak(f->base);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct feed *f = arg;
    fprintf(stderr, "casestore-feed: timed out (%zu pending)\n", casestore_pending(f->cs));
    f->rc = 1;
    event_base_loopbreak(f->base);
}

static int read_lines(const char *path, struct feed *f, long long *offset)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL) {
        perror(path);
        return -1;
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, in)) >= 0) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            buf[--n] = '\0';
        if (n == 0)
            continue;
        struct line *ls = realloc(f->lines, (f->n_lines + 1) * sizeof *ls);
        if (ls == NULL)
            break;
        f->lines = ls;
        ls[f->n_lines].text = strdup(buf);
        ls[f->n_lines].len = (size_t)n;
        ls[f->n_lines].offset = (*offset)++;
        f->n_lines++;
    }
    free(buf);
    if (in != stdin)
        fclose(in);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, 'd'},
        {"retry-seconds", required_argument, NULL, 'r'},
        {"scan-ms", required_argument, NULL, 's'},
        {"batch", required_argument, NULL, 'b'},
        {"interval-ms", required_argument, NULL, 'i'},
        {"partition", required_argument, NULL, 'p'},
        {"offset-base", required_argument, NULL, 'o'},
        {"drain-held", no_argument, NULL, 'H'},
        {"publish", no_argument, NULL, 'P'},
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *db = NULL;
    int retry_s = -1, scan_ms = 200, batch = 0, timeout_s = 120;
    long long offset = 0;
    bool publish = false;
    struct kafka *k = NULL;
    struct feed f = {.rc = 1, .looks_at_idle = UINT64_MAX};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'r':
            retry_s = atoi(optarg);
            break;
        case 's':
            scan_ms = atoi(optarg);
            break;
        case 'b':
            batch = atoi(optarg);
            break;
        case 'i':
            f.interval_ms = atoi(optarg);
            break;
        case 'p':
            f.partition = atoi(optarg);
            break;
        case 'o':
            offset = atoll(optarg);
            break;
        case 'H':
            f.drain_held = true;
            break;
        case 'P':
            publish = true;
            break;
        case 't':
            timeout_s = atoi(optarg);
            break;
        default:
            return EX_USAGE;
        }
    }
    if (config_path == NULL || optind >= argc) {
        fprintf(stderr, "usage: frontdoor-casestore-feed --config FILE [options] FILE...\n");
        return EX_USAGE;
    }
    char errs[8192];
    struct config *cfg;
    if (config_load(config_path, &cfg, errs, sizeof errs) != 0) {
        fputs(errs, stderr);
        return EX_CONFIG;
    }
    log_setup((enum log_level)cfg->log.level, cfg->log.format, NULL);
    if (db) {
        free(cfg->database.conninfo);
        cfg->database.conninfo = strdup(db);
    }
    if (retry_s >= 0)
        cfg->kafka.unknown_case_retry_s = retry_s;
    if (batch > 0)
        cfg->database.batch_max = batch;
    struct policy *pol;
    if (policy_load(cfg, &pol, errs, sizeof errs) != 0) {
        fputs(errs, stderr);
        config_free(cfg);
        return EX_CONFIG;
    }
    for (int i = optind; i < argc; i++)
        if (read_lines(argv[i], &f, &offset) != 0) {
            policy_free(pol);
            config_free(cfg);
            return EX_NOINPUT;
        }

    f.base = event_base_new();
    struct casestore_options o = {
        .base = f.base,
        .cfg = cfg,
        .policy = pol,
        .on_ready = on_ready,
        .on_fatal = on_fatal,
        .arg = &f,
        .held_scan_ms = scan_ms,
    };
    char err[256];
    if (publish) {
        struct kafka_handlers kh = {.on_message = release_msg, .arg = &f};
        struct outbox_options oo = {.base = f.base, .cfg = cfg, .poll_ms = 100, .arg = &f};
        if (kafka_open(f.base, cfg, NULL, &kh, &k, err, sizeof err) != 0 ||
            (oo.kafka = k, outbox_open(&oo, &f.ob, err, sizeof err)) != 0) {
            fprintf(stderr, "casestore-feed: %s\n", err);
            return EX_UNAVAILABLE;
        }
        o.on_outbox = poke;
    }
    if (casestore_open(&o, &f.cs, err, sizeof err) != 0) {
        fprintf(stderr, "casestore-feed: %s\n", err);
        f.rc = EX_UNAVAILABLE;
    } else {
        int ms = f.interval_ms > 0 ? f.interval_ms : 20;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        f.ev_tick = event_new(f.base, -1, EV_PERSIST, tick, &f);
        event_add(f.ev_tick, &tv);
        struct timeval to = {timeout_s, 0};
        struct event *ev_to = evtimer_new(f.base, on_timeout, &f);
        event_add(ev_to, &to);
        event_base_dispatch(f.base);
        event_free(ev_to);
        event_free(f.ev_tick);
    }
    if (k)
        kafka_detach(k); /* no delivery callback may reach the outbox from here */
    outbox_free(f.ob);
    casestore_free(f.cs);
    kafka_free(k);
    event_base_free(f.base);
    for (size_t i = 0; i < f.n_lines; i++)
        free(f.lines[i].text);
    free(f.lines);
    policy_free(pol);
    config_free(cfg);
    return f.rc;
}
