/* direct_sink: route a referral and publish its decision straight to Kafka. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "frontdoor/caltime.h"
#include "frontdoor/direct_sink.h"
#include "frontdoor/log.h"
#include "frontdoor/route.h"

struct direct_sink {
    struct sink sink;
    struct kafka *k;
    const struct policy *policy;
    char *decisions_topic;
    size_t in_flight;
    struct pending *pending; /* productions awaiting their delivery report */
};

/* A random (version 4) UUID. */
static void new_uuid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        /* getrandom() does not fail for 16 bytes once the pool is ready; be safe anyway */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x =
            (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20);
        for (size_t i = 0; i < sizeof b; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = (unsigned char)(x >> 56);
        }
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* events.md "Produced: frontdoor.decisions", keys in its order. */
static char *decision_message(const struct event *ev, const struct decision *d)
{
    char id[37], decided[32], due[32];
    new_uuid(id);
    const char *when = route_format_due(d, due);
    json_t *reasons = json_array();
    for (size_t i = 0; i < d->n_reasons; i++)
        json_array_append_new(reasons, json_string(d->reasons[i]));
    json_t *o = json_object();
    json_object_set_new(o, "schema_version", json_integer(1));
    json_object_set_new(o, "type", json_string("case.routed"));
    json_object_set_new(o, "event_id", json_string(id));
    /* the input's event_id as written, as --explain prints it */
    json_t *raw_id = json_object_get(ev->root, "event_id");
    json_object_set_new(o, "cause_event_id",
                        json_string(raw_id ? json_string_value(raw_id) : ev->event_id));
    json_object_set_new(o, "referral_id", json_string(ev->referral_id));
    json_object_set_new(o, "route", json_string(rules_route_name(d->route)));
    json_object_set_new(o, "destination", json_string(d->destination));
    json_object_set_new(o, "priority", json_string(rules_priority_name(d->priority)));
    json_object_set_new(o, "rule", json_string(d->rule));
    json_object_set_new(o, "reasons", reasons);
    json_object_set_new(o, "decided_at", json_string(caltime_format_utc_ms(now_ms(), decided)));
    json_object_set_new(o, "decision_due_at", when ? json_string(when) : json_null());
    json_object_set_new(o, "state", json_string(rules_state_name(d->state)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

struct pending {
    struct direct_sink *ds;
    struct sink_item *item;
    struct pending *prev, *next;
};

static void on_delivered(void *arg, rd_kafka_resp_err_t err)
{
    struct pending *p = arg;
    struct direct_sink *ds = p->ds;
    struct sink_item *item = p->item;
    if (p->prev)
        p->prev->next = p->next;
    else
        ds->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    free(p);
    ds->in_flight--;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        sink_item_complete(item, SINK_DURABLE);
        return;
    }
    log_error("decision not published", "referral", item->ev.referral_id, "event_id",
              item->ev.event_id, "error", rd_kafka_err2name(err));
    sink_item_complete(item, SINK_ABANDONED);
}

static void submit(void *impl, struct sink_item *item)
{
    struct direct_sink *ds = impl;
    const struct event *ev = &item->ev;
    if (ev->type != EVENT_REFERRAL_RECEIVED) {
        log_info("case event acknowledged without a case store", "type", event_type_name(ev->type),
                 "event_id", ev->event_id, "referral", ev->referral_id);
        sink_item_complete(item, SINK_DURABLE);
        return;
    }
    struct decision d;
    route_decide_referral(ds->policy, ev, NULL, &d);
    char *msg = decision_message(ev, &d);
    struct pending *p = msg ? malloc(sizeof *p) : NULL;
    if (p == NULL) {
        free(msg);
        log_error("out of memory", "where", "direct sink", "referral", ev->referral_id);
        sink_item_complete(item, SINK_ABANDONED);
        return;
    }
    p->ds = ds;
    p->item = item;
    p->prev = NULL;
    p->next = ds->pending;
    if (ds->pending)
        ds->pending->prev = p;
    ds->pending = p;
    ds->in_flight++;
    log_info("referral routed", "referral", ev->referral_id, "event_id", ev->event_id, "route",
             rules_route_name(d.route), "destination", d.destination, "rule", d.rule, "priority",
             rules_priority_name(d.priority));
    kafka_produce(ds->k, ds->decisions_topic, ev->referral_id, strlen(ev->referral_id), msg,
                  strlen(msg), NULL, on_delivered, p);
    free(msg);
}

static void set_policy(void *impl, const struct policy *policy)
{
    struct direct_sink *ds = impl;
    ds->policy = policy;
}

static size_t in_flight(const void *impl)
{
    const struct direct_sink *ds = impl;
    return ds->in_flight;
}

/* After kafka_detach() no delivery is reported: free the records of those pending;
 * their items are intake's to release. */
static void destroy(void *impl)
{
    struct direct_sink *ds = impl;
    while (ds->pending != NULL) {
        struct pending *next = ds->pending->next;
        free(ds->pending);
        ds->pending = next;
    }
    free(ds->decisions_topic);
    free(ds);
}

static const struct sink_ops direct_ops = {
    .name = "direct",
    .submit = submit,
    .set_policy = set_policy,
    .in_flight = in_flight,
    .destroy = destroy,
};

int direct_sink_new(struct kafka *k, const struct config *cfg, const struct policy *policy,
                    struct sink **out)
{
    struct direct_sink *ds = calloc(1, sizeof *ds);
    *out = NULL;
    if (ds == NULL || (ds->decisions_topic = strdup(cfg->kafka.decisions_topic)) == NULL) {
        free(ds);
        return -1;
    }
    ds->k = k;
    ds->policy = policy;
    ds->sink.ops = &direct_ops;
    ds->sink.impl = ds;
    *out = &ds->sink;
    return 0;
}
