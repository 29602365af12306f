/* metrics: one registry of labelled series and its Prometheus text (see metrics.h). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/metrics.h"

#define MAX_LABELS 2

enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct series {
    char *lv[MAX_LABELS]; /* label values, owned */
    double value;         /* counter, gauge */
    uint64_t *buckets;    /* histogram: observations per bucket (not cumulative), +Inf last */
    double sum;
    uint64_t count;
};

struct family {
    const char *name;
    const char *help;
    enum mtype type;
    int nlabels;
    const char *labels[MAX_LABELS];
    struct series **s;
    size_t n, cap;
};

const double metrics_db_rtt_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,  0.015, 0.02,
                                         0.025,  0.03,  0.04,   0.05,  0.075, 0.1,   0.25,
                                         0.5,    1,     2.5,    5,     10};
const size_t metrics_db_rtt_nbuckets = sizeof metrics_db_rtt_buckets / sizeof(double);

enum {
    F_EVENTS,
    F_DEAD_LETTERED,
    F_DECISIONS,
    F_NOTIFICATIONS,
    F_OUTBOX_DEPTH,
    F_CONSUMER_LAG,
    F_DB_RTT,
    F_EVENT_COMMIT,
    F_EVENT_E2E,
    F_OVERDUE,
    F_UP,
    F_READY,
    F_DROPPED,
    F_COUNT
};

static struct family families[F_COUNT] = {
    [F_EVENTS] = {.name = "frontdoord_events_consumed_total",
                  "Consumed events whose effects are durable, by topic and outcome.",
                  M_COUNTER,
                  2,
                  {"topic", "outcome"}},
    [F_DEAD_LETTERED] = {.name = "frontdoord_events_dead_lettered_total",
                         "Events sent to the dead-letter topic, by source topic and error code.",
                         M_COUNTER,
                         2,
                         {"topic", "error"}},
    [F_DECISIONS] = {.name = "frontdoord_decisions_total",
                     "Routing decisions committed, by route and rule.",
                     M_COUNTER,
                     2,
                     {"route", "rule"}},
    [F_NOTIFICATIONS] = {.name = "frontdoord_notifications",
                         "Notifications in the database, by channel and state.",
                         M_GAUGE,
                         2,
                         {"channel", "state"}},
    [F_OUTBOX_DEPTH] = {.name = "frontdoord_outbox_depth",
                        "Outbox messages committed and not yet published to Kafka.",
                        M_GAUGE,
                        0,
                        {NULL}},
    [F_CONSUMER_LAG] = {.name = "frontdoord_kafka_consumer_lag",
                        "Messages between the committed offset and the high watermark, by "
                        "assigned partition.",
                        M_GAUGE,
                        2,
                        {"topic", "partition"}},
    [F_DB_RTT] = {.name = "frontdoord_database_round_trip_seconds",
                  "Time from sending a pipeline round to its last result, by connection.",
                  M_HISTOGRAM,
                  1,
                  {"db"}},
    [F_EVENT_COMMIT] = {.name = "frontdoord_event_commit_seconds",
                        "Time from consuming an event to its effects committed, by topic.",
                        M_HISTOGRAM,
                        1,
                        {"topic"}},
    [F_EVENT_E2E] = {.name = "frontdoord_event_end_to_end_seconds",
                     "Time from an event's Kafka timestamp (its producer's clock) to its "
                     "effects committed, by topic.",
                     M_HISTOGRAM,
                     1,
                     {"topic"}},
    [F_OVERDUE] = {.name = "frontdoord_decision_deadlines_overdue",
                   "Cases still in triage or awaiting consent after their decision_due_at.",
                   M_GAUGE,
                   0,
                   {NULL}},
    [F_UP] = {.name = "frontdoord_up",
              "Whether a component is connected (1) or not (0).",
              M_GAUGE,
              1,
              {"component"}},
    [F_READY] = {.name = "frontdoord_ready",
                 "1 when the database and Kafka are connected and the daemon is running.",
                 M_GAUGE,
                 0,
                 {NULL}},
    [F_DROPPED] = {.name = "frontdoord_metrics_dropped_total",
                   "Observations dropped (out of memory or too many label sets).",
                   M_COUNTER,
                   0,
                   {NULL}},
};

/* ---------------------------------------------------------------- registry */

static void series_free(struct series *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < MAX_LABELS; i++)
        free(s->lv[i]);
    free(s->buckets);
    free(s);
}

static void family_clear(struct family *f)
{
    for (size_t i = 0; i < f->n; i++)
        series_free(f->s[i]);
    free(f->s);
    f->s = NULL;
    f->n = f->cap = 0;
}

void metrics_reset(void)
{
    for (int i = 0; i < F_COUNT; i++)
        family_clear(&families[i]);
}

static void dropped(void)
{
    struct family *f = &families[F_DROPPED];
    if (f->n == 0) {
        struct series *s = calloc(1, sizeof *s);
        struct series **a = s ? malloc(sizeof *a) : NULL;
        if (a == NULL) {
            free(s);
            return;
        }
        a[0] = s;
        f->s = a;
        f->n = f->cap = 1;
    }
    f->s[0]->value++;
}

/* The series of family `fi` with these label values, created (zero) when new; NULL
 * (the observation is dropped) when out of memory or over the cap. */
static struct series *series_get(int fi, const char *const *lv)
{
    struct family *f = &families[fi];
    for (size_t i = 0; i < f->n; i++) {
        int k = 0;
        while (k < f->nlabels && strcmp(f->s[i]->lv[k], lv[k]) == 0)
            k++;
        if (k == f->nlabels)
            return f->s[i];
    }
    if (f->n >= METRICS_MAX_SERIES)
        goto drop;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct series **a = realloc(f->s, cap * sizeof *a);
        if (a == NULL)
            goto drop;
        f->s = a;
        f->cap = cap;
    }
    struct series *s = calloc(1, sizeof *s);
    if (s == NULL)
        goto drop;
    for (int k = 0; k < f->nlabels; k++)
        if ((s->lv[k] = strdup(lv[k] ? lv[k] : "")) == NULL) {
            series_free(s);
            goto drop;
        }
    if (f->type == M_HISTOGRAM &&
        (s->buckets = calloc(metrics_db_rtt_nbuckets + 1, sizeof *s->buckets)) == NULL) {
        series_free(s);
        goto drop;
    }
    f->s[f->n++] = s;
    return s;
drop:
    dropped();
    return NULL;
}

static void add(int fi, double v, const char *l0, const char *l1)
{
    const char *lv[MAX_LABELS] = {l0 ? l0 : "", l1 ? l1 : ""};
    struct series *s = series_get(fi, lv);
    if (s != NULL)
        s->value += v;
}

static void set(int fi, double v, const char *l0, const char *l1)
{
    const char *lv[MAX_LABELS] = {l0 ? l0 : "", l1 ? l1 : ""};
    struct series *s = series_get(fi, lv);
    if (s != NULL)
        s->value = v;
}

void metrics_count_event(const char *topic, const char *outcome)
{
    add(F_EVENTS, 1, topic, outcome);
}

void metrics_count_dead_letter(const char *topic, const char *error)
{
    add(F_DEAD_LETTERED, 1, topic, error);
}

void metrics_count_decision(const char *route, const char *rule)
{
    add(F_DECISIONS, 1, route, rule);
}

static void observe(int fi, const char *l0, double seconds)
{
    const char *lv[MAX_LABELS] = {l0 ? l0 : "", ""};
    struct series *s = series_get(fi, lv);
    if (s == NULL)
        return;
    if (!(seconds >= 0)) /* NaN or a clock step backwards: count it as 0 */
        seconds = 0;
    size_t b = 0;
    while (b < metrics_db_rtt_nbuckets && seconds > metrics_db_rtt_buckets[b])
        b++;
    s->buckets[b]++;
    s->sum += seconds;
    s->count++;
}

void metrics_observe_db_rtt(const char *db, double seconds)
{
    observe(F_DB_RTT, db, seconds);
}

void metrics_observe_event_commit(const char *topic, double seconds)
{
    observe(F_EVENT_COMMIT, topic, seconds);
}

void metrics_observe_event_end_to_end(const char *topic, double seconds)
{
    observe(F_EVENT_E2E, topic, seconds);
}

void metrics_clear_notifications(void)
{
    family_clear(&families[F_NOTIFICATIONS]);
}

void metrics_set_notifications(const char *channel, const char *state, double count)
{
    set(F_NOTIFICATIONS, count, channel, state);
}

/* A label-less gauge: present with a value, or absent while unknown. */
static void set_plain(int fi, long v)
{
    if (v < 0)
        family_clear(&families[fi]);
    else
        set(fi, (double)v, NULL, NULL);
}

void metrics_set_outbox_depth(long depth)
{
    set_plain(F_OUTBOX_DEPTH, depth);
}

void metrics_set_deadlines_overdue(long count)
{
    set_plain(F_OVERDUE, count);
}

void metrics_clear_consumer_lag(void)
{
    family_clear(&families[F_CONSUMER_LAG]);
}

void metrics_set_consumer_lag(const char *topic, int32_t partition, int64_t lag)
{
    if (lag < 0)
        return;
    char pb[16];
    snprintf(pb, sizeof pb, "%d", (int)partition);
    set(F_CONSUMER_LAG, (double)lag, topic, pb);
}

void metrics_set_up(const char *component, bool up)
{
    set(F_UP, up ? 1 : 0, component, NULL);
}

void metrics_set_ready(bool ready)
{
    set(F_READY, ready ? 1 : 0, NULL, NULL);
}

/* ---------------------------------------------------------------- text format */

/* Label values escape backslash, double quote and line feed; HELP text backslash and
 * line feed (the exposition format's rules). */
static void put_escaped(FILE *m, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", m);
        else if (*s == '\n')
            fputs("\\n", m);
        else if (*s == '"' && quote)
            fputs("\\\"", m);
        else
            fputc(*s, m);
    }
}

/* Shortest form that reads back as the same double; integers without a fraction. */
static void put_value(FILE *m, double v)
{
    if (isnan(v)) {
        fputs("NaN", m);
        return;
    }
    if (isinf(v)) {
        fputs(v > 0 ? "+Inf" : "-Inf", m);
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        fprintf(m, "%.0f", v);
        return;
    }
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, sizeof buf, "%.17g", v);
    fputs(buf, m);
}

/* {a="x",b="y"}, with an extra label (a histogram's le) when `extra` is set. */
static void put_labels(FILE *m, const struct family *f, const struct series *s, const char *extra,
                       const char *extra_value)
{
    if (f->nlabels == 0 && extra == NULL)
        return;
    fputc('{', m);
    for (int k = 0; k < f->nlabels; k++) {
        fprintf(m, "%s%s=\"", k ? "," : "", f->labels[k]);
        put_escaped(m, s->lv[k], true);
        fputc('"', m);
    }
    if (extra != NULL)
        fprintf(m, "%s%s=\"%s\"", f->nlabels ? "," : "", extra, extra_value);
    fputc('}', m);
}

static int sort_nlabels;

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    for (int k = 0; k < sort_nlabels; k++) {
        int c = strcmp(x->lv[k], y->lv[k]);
        if (c != 0)
            return c;
    }
    return 0;
}

static void put_family(FILE *m, struct family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    fprintf(m, "# HELP %s ", f->name);
    put_escaped(m, f->help, false);
    fprintf(m, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    sort_nlabels = f->nlabels;
    if (f->n > 1)
        qsort(f->s, f->n, sizeof *f->s, cmp_series);
    for (size_t i = 0; i < f->n; i++) {
        const struct series *s = f->s[i];
        if (f->type != M_HISTOGRAM) {
            fputs(f->name, m);
            put_labels(m, f, s, NULL, NULL);
            fputc(' ', m);
            put_value(m, s->value);
            fputc('\n', m);
            continue;
        }
        uint64_t cum = 0;
        for (size_t b = 0; b <= metrics_db_rtt_nbuckets; b++) {
            char le[32];
            if (b < metrics_db_rtt_nbuckets)
                snprintf(le, sizeof le, "%g", metrics_db_rtt_buckets[b]);
            else
                snprintf(le, sizeof le, "+Inf");
            cum += s->buckets[b];
            fprintf(m, "%s_bucket", f->name);
            put_labels(m, f, s, "le", le);
            fprintf(m, " %llu\n", (unsigned long long)cum);
        }
        fprintf(m, "%s_sum", f->name);
        put_labels(m, f, s, NULL, NULL);
        fputc(' ', m);
        put_value(m, s->sum);
        fprintf(m, "\n%s_count", f->name);
        put_labels(m, f, s, NULL, NULL);
        fprintf(m, " %llu\n", (unsigned long long)s->count);
    }
}

char *metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    if (m == NULL)
        return NULL;
    for (int i = 0; i < F_COUNT; i++)
        put_family(m, &families[i]);
    if (fclose(m) != 0) {
        free(buf);
        return NULL;
    }
    if (len != NULL)
        *len = n;
    return buf;
}
