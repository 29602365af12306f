/* intake: tier-1 checks, dead-lettering, and hand-over to the sink (see intake.h). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "frontdoor/event.h"
#include "frontdoor/intake.h"
#include "frontdoor/log.h"
#include "frontdoor/metrics.h"

/* Room kept for the record's own framing when cutting a DLQ message to the size limit. */
#define RECORD_OVERHEAD 512

struct intake_item {
    struct sink_item s; /* first: a sink_item pointer is an intake_item pointer */
    struct intake *in;
    struct kafka_msg *msg;
    struct intake_item *prev, *next;
    /* dead-lettering */
    enum event_error error;
    char detail[SINK_DETAIL_MAX];
    size_t cut;   /* bytes of the original put on the DLQ message */
    bool by_sink; /* a step-9 rejection (the sink's), not a check 1-8 */
    int parts;    /* the dead letter and the alert still to complete */
    bool part_failed;
};

struct intake {
    struct kafka *k;
    struct sink *sink;
    const struct policy *policy;
    char *referrals_topic, *case_events_topic, *dlq_topic;
    size_t max_message_bytes;
    struct intake_item *items; /* every item in flight */
    size_t in_flight;
    uint64_t accepted, dead_lettered, rejected_by_sink, truncated;
    intake_unusable_fn unusable;
    void *unusable_arg;
};

static const char *num(char *buf, size_t len, long long v)
{
    snprintf(buf, len, "%lld", v);
    return buf;
}

int intake_new(struct kafka *k, struct sink *sink, const struct config *cfg,
               const struct policy *policy, struct intake **out)
{
    struct intake *in = calloc(1, sizeof *in);
    *out = NULL;
    if (in == NULL)
        return -1;
    in->k = k;
    in->sink = sink;
    in->policy = policy;
    in->max_message_bytes = cfg->kafka.max_message_bytes;
    in->referrals_topic = strdup(cfg->kafka.referrals_topic);
    in->case_events_topic = strdup(cfg->kafka.case_events_topic);
    in->dlq_topic = strdup(cfg->kafka.dlq_topic);
    if (in->referrals_topic == NULL || in->case_events_topic == NULL || in->dlq_topic == NULL) {
        intake_free(in);
        return -1;
    }
    *out = in;
    return 0;
}

void intake_set_unusable_hook(struct intake *in, intake_unusable_fn fn, void *arg)
{
    in->unusable = fn;
    in->unusable_arg = arg;
}

void intake_set_policy(struct intake *in, const struct policy *policy)
{
    in->policy = policy;
}

void intake_get_stats(const struct intake *in, struct intake_stats *st)
{
    st->in_flight = in->in_flight;
    st->accepted = in->accepted;
    st->dead_lettered = in->dead_lettered;
    st->rejected_by_sink = in->rejected_by_sink;
    st->truncated = in->truncated;
}

/* The item's effects are durable (or it is given up): store (or not) and free. */
static void item_finish(struct intake_item *it, bool durable)
{
    struct intake *in = it->in;
    if (it->prev)
        it->prev->next = it->next;
    else
        in->items = it->next;
    if (it->next)
        it->next->prev = it->prev;
    in->in_flight--;
    event_release(&it->s.ev);
    if (durable)
        kafka_msg_done(it->msg);
    else
        kafka_msg_release(it->msg);
    free(it);
}

/* ---------------------------------------------------------------- dead-lettering */

static void dlq_produce(struct intake_item *it);

/* One of a dead letter's parts (the DLQ message, the alert) is done. */
static void part_done(struct intake_item *it, bool ok)
{
    if (!ok)
        it->part_failed = true;
    if (--it->parts == 0)
        item_finish(it, !it->part_failed);
}

static void on_alert_done(void *ctx, bool ok)
{
    part_done(ctx, ok);
}

static void on_dlq_delivered(void *arg, rd_kafka_resp_err_t err)
{
    struct intake_item *it = arg;
    const struct kafka_msg *m = it->msg;
    char pb[16], ob[24], cb[24];
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_debug("dead letter delivered", "topic", m->topic, "partition",
                  num(pb, sizeof pb, m->partition), "offset", num(ob, sizeof ob, m->offset));
        metrics_count_event(m->topic, it->by_sink ? "rejected" : "unusable");
        metrics_count_dead_letter(m->topic, event_error_code(it->error));
        part_done(it, true);
        return;
    }
    if (kafka_err_is_too_large(err) && it->cut > 0) {
        /* The dead-letter topic's own limit is lower than the producer's: cut further. */
        it->cut /= 2;
        log_warn("dead letter too large, cutting further", "topic", m->topic, "partition",
                 num(pb, sizeof pb, m->partition), "offset", num(ob, sizeof ob, m->offset), "bytes",
                 num(cb, sizeof cb, (long long)it->cut));
        dlq_produce(it);
        return;
    }
    /* Fatal: given up in this run; consumed again after the restart. */
    log_error("dead letter not delivered", "topic", m->topic, "partition",
              num(pb, sizeof pb, m->partition), "offset", num(ob, sizeof ob, m->offset), "error",
              rd_kafka_err2name(err));
    part_done(it, false);
}

static int add_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
    return rd_kafka_header_add(h, name, -1, value, -1) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static void dlq_produce(struct intake_item *it)
{
    struct intake *in = it->in;
    const struct kafka_msg *m = it->msg;
    char pb[16], ob[24];
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    add_header(h, "error", event_error_code(it->error));
    add_header(h, "error_detail", it->detail);
    add_header(h, "source_topic", m->topic);
    add_header(h, "source_partition", num(pb, sizeof pb, m->partition));
    add_header(h, "source_offset", num(ob, sizeof ob, m->offset));
    if (it->cut < m->len)
        add_header(h, "truncated", "true");
    kafka_produce(in->k, in->dlq_topic, m->key, m->key_len, m->payload, it->cut, h,
                  on_dlq_delivered, it);
}

/* Largest part of the original that fits one message with its key and headers. */
static size_t dlq_room(const struct intake *in, const struct intake_item *it)
{
    size_t limit = kafka_max_message_bytes(in->k);
    size_t fixed = RECORD_OVERHEAD + it->msg->key_len + strlen(it->detail) +
                   strlen(it->msg->topic) + 200; /* header names and numbers */
    return limit > fixed ? limit - fixed : 0;
}

static void dead_letter(struct intake_item *it, enum event_error error, const char *detail)
{
    struct intake *in = it->in;
    const struct kafka_msg *m = it->msg;
    char pb[16], ob[24];
    it->error = error;
    snprintf(it->detail, sizeof it->detail, "%s", detail && detail[0] ? detail : "unusable event");
    size_t room = dlq_room(in, it);
    it->cut = m->len < room ? m->len : room;
    in->dead_lettered++;
    if (it->cut < m->len)
        in->truncated++;
    log_warn("event dead-lettered", "error", event_error_code(error), "topic", m->topic,
             "partition", num(pb, sizeof pb, m->partition), "offset", num(ob, sizeof ob, m->offset),
             "detail", it->detail);
    it->parts = 1;
    it->part_failed = false;
    if (in->unusable && strcmp(m->topic, in->referrals_topic) == 0) {
        it->parts = 2;
        if (in->unusable(in->unusable_arg, m->topic, m->partition, m->offset,
                         event_error_code(error), on_alert_done, it) != 0) {
            it->parts = 1;
            it->part_failed = true;
        }
    }
    dlq_produce(it);
}

/* ---------------------------------------------------------------- the sink */

static void on_sink_done(struct sink_item *s, enum sink_outcome outcome)
{
    struct intake_item *it = (struct intake_item *)s;
    switch (outcome) {
    case SINK_DURABLE:
        item_finish(it, true);
        return;
    case SINK_REJECTED:
        it->in->rejected_by_sink++;
        it->by_sink = true;
        event_release(&it->s.ev);
        dead_letter(it, s->error, s->detail);
        return;
    case SINK_ABANDONED:
    default:
        item_finish(it, false);
        return;
    }
}

void intake_on_message(void *arg, struct kafka_msg *msg)
{
    struct intake *in = arg;
    struct intake_item *it = calloc(1, sizeof *it);
    if (it == NULL) {
        /* Released unstored: this partition is consumed again after a restart. */
        log_error("out of memory", "where", "intake");
        kafka_msg_release(msg);
        return;
    }
    it->in = in;
    it->msg = msg;
    it->next = in->items;
    if (in->items)
        in->items->prev = it;
    in->items = it;
    in->in_flight++;

    enum event_topic kind;
    if (strcmp(msg->topic, in->referrals_topic) == 0) {
        kind = EVENT_TOPIC_REFERRALS;
    } else if (strcmp(msg->topic, in->case_events_topic) == 0) {
        kind = EVENT_TOPIC_CASE_EVENTS;
    } else {
        dead_letter(it, EVENT_UNKNOWN_TYPE, "not a topic frontdoord consumes");
        return;
    }

    char detail[SINK_DETAIL_MAX];
    enum event_error e = event_parse(msg->payload, msg->len, kind, in->max_message_bytes, &it->s.ev,
                                     detail, sizeof detail);
    if (e == EVENT_OK && in->policy != NULL) {
        e = policy_check_event(in->policy, &it->s.ev, detail, sizeof detail);
        if (e != EVENT_OK)
            event_release(&it->s.ev);
    }
    if (e != EVENT_OK) {
        dead_letter(it, e, detail);
        return;
    }
    it->s.kind = kind;
    it->s.topic = msg->topic;
    it->s.partition = msg->partition;
    it->s.offset = msg->offset;
    it->s.bytes = msg->payload;
    it->s.len = msg->len;
    it->s.done = on_sink_done;
    in->accepted++;
    char pb[16], ob[24];
    log_debug("event accepted", "type", event_type_name(it->s.ev.type), "event_id",
              it->s.ev.event_id, "referral", it->s.ev.referral_id, "topic", msg->topic, "partition",
              num(pb, sizeof pb, msg->partition), "offset", num(ob, sizeof ob, msg->offset));
    in->sink->ops->submit(in->sink->impl, &it->s);
}

void intake_free(struct intake *in)
{
    if (in == NULL)
        return;
    while (in->items != NULL)
        item_finish(in->items, false);
    free(in->referrals_topic);
    free(in->case_events_topic);
    free(in->dlq_topic);
    free(in);
}
