/* Tests of the Kafka module and intake against librdkafka's mock cluster, in process
 * (one fresh cluster per test): backpressure (pause at the bound, keep polling, resume by
 * itself), out-of-order completions, offsets committed only for durable messages, a
 * restart resuming from the committed offsets, a revoked partition's in-flight messages
 * consumed again by the new owner without their offsets being stored by the old one, and
 * a sink rejection dead-lettered with its headers. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "frontdoor/config.h"
#include "frontdoor/intake.h"
#include "frontdoor/kafka.h"
#include "frontdoor/log.h"
#include "frontdoor/sink.h"

#define REFERRALS "t.referrals"
#define CASES     "t.case-events"
#define DECISIONS "t.decisions"
#define DLQ       "t.dlq"

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char bootstrap[512];
static char tmpdir[] = "/tmp/frontdoor-kafka-test-XXXXXX";
static struct config *cfg;

static void setup(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    ck_assert_ptr_nonnull(mock_rk);
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    ck_assert_ptr_nonnull(mock);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, REFERRALS, 2, 1), 0);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, CASES, 1, 1), 0);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, DECISIONS, 1, 1), 0);
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, DLQ, 1, 1), 0);
    snprintf(bootstrap, sizeof bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mock));

    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char path[256];
    snprintf(path, sizeof path, "%s/fd.conf", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "[kafka]\nbrokers = %s\ngroup_id = test-group\nreferrals_topic = " REFERRALS
            "\ncase_events_topic = " CASES "\ndecisions_topic = " DECISIONS "\ndlq_topic = " DLQ
            "\nrdkafka.session.timeout.ms = 6000\n"
            "rdkafka.heartbeat.interval.ms = 200\n"
            "[log]\nlevel = warn\n",
            bootstrap);
    fclose(f);
    char errs[4096];
    ck_assert_msg(config_load(path, &cfg, errs, sizeof errs) == 0, "%s", errs);
    log_setup(LOG_WARN, LOG_FORMAT_LOGFMT, NULL);
}

static void teardown(void)
{
    config_free(cfg);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Produce n messages "<prefix>-<i>" to one partition, synchronously. */
static void produce_n(const char *topic, int partition, int n, const char *prefix)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < n; i++) {
        char v[64];
        snprintf(v, sizeof v, "%s-%d", prefix, i);
        ck_assert_int_eq(
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_VALUE(v, strlen(v)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            0);
    }
    ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);
}

static void produce_raw(const char *topic, const char *key, const char *value)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    ck_assert_int_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_KEY(key, strlen(key)),
                                       RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);
}

/* The group's committed offset of one partition (-1001 when none). */
static int64_t committed(const char *topic, int partition)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "group.id", "test-group", errstr, sizeof errstr);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    ck_assert_int_eq(rd_kafka_committed(c, l, 10000), 0);
    int64_t off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
    return off;
}

/* ---------------------------------------------------------------- a consumer that holds */

struct holder {
    struct kafka *k;
    struct kafka_msg *held[512];
    int n_held;
    bool auto_done; /* complete every message at once */
    int consumed;
    /* per partition: referrals 0 and 1, case events 0 */
    int per_partition[3];
    int64_t first_offset[3];
};

static int slot(const struct kafka_msg *m)
{
    return strcmp(m->topic, REFERRALS) == 0 ? m->partition : 2;
}

static void on_hold(void *arg, struct kafka_msg *m)
{
    struct holder *h = arg;
    h->consumed++;
    if (h->per_partition[slot(m)]++ == 0)
        h->first_offset[slot(m)] = m->offset;
    if (h->auto_done) {
        kafka_msg_done(m);
        return;
    }
    ck_assert_int_lt(h->n_held, 512);
    h->held[h->n_held++] = m;
}

/* Run the loop until pred() holds or timeout_s pass. */
struct waiter {
    struct event_base *base;
    bool (*pred)(void *);
    void *arg;
    bool met;
};

static void on_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct waiter *w = arg;
    if (w->pred == NULL || w->pred(w->arg)) {
        w->met = w->pred != NULL;
        event_base_loopbreak(w->base);
    }
}

static bool run_until(struct event_base *base, bool (*pred)(void *), void *arg, double timeout_s)
{
    struct waiter w = {base, pred, arg, false};
    if (pred && pred(arg))
        return true;
    struct event *tick = event_new(base, -1, EV_PERSIST, on_check, &w);
    struct timeval tv = {0, 20 * 1000};
    event_add(tick, &tv);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        event_base_loop(base, EVLOOP_ONCE);
        if (w.met)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 >= timeout_s)
            break;
    }
    event_free(tick);
    return w.met;
}

static void run_for(struct event_base *base, double s)
{
    run_until(base, NULL, NULL, s);
}

static struct kafka *open_kafka(struct event_base *base, const struct kafka_limits *lim,
                                struct holder *h)
{
    struct kafka_handlers hd = {.on_message = on_hold, .arg = h};
    char err[512];
    struct kafka *k;
    ck_assert_msg(kafka_open(base, cfg, lim, &hd, &k, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(kafka_subscribe(k, err, sizeof err), 0);
    h->k = k;
    return k;
}

static bool closed_p(void *arg)
{
    return kafka_consumer_closed(arg);
}

static void close_kafka(struct event_base *base, struct kafka *k)
{
    kafka_stop_fetching(k);
    kafka_close_consumer(k);
    ck_assert_msg(run_until(base, closed_p, k, 15), "consumer did not close");
    kafka_detach(k);
    kafka_free(k);
}

static struct kafka_stats stats(struct kafka *k)
{
    struct kafka_stats st;
    kafka_get_stats(k, &st);
    return st;
}

static bool paused_with_10(void *arg)
{
    struct holder *h = arg;
    return h->n_held >= 10 && stats(h->k).paused;
}

static bool consumed_120(void *arg)
{
    struct holder *h = arg;
    return h->consumed >= 120 && stats(h->k).in_flight == 0;
}

START_TEST(test_backpressure_and_out_of_order)
{
    struct event_base *base = event_base_new();
    produce_n(REFERRALS, 0, 60, "p0");
    produce_n(REFERRALS, 1, 60, "p1");
    struct kafka_limits lim = {
        .pause_at_messages = 10, .resume_at_messages = 5, .pause_at_bytes = 1u << 30};
    struct holder h = {0};
    struct kafka *k = open_kafka(base, &lim, &h);

    ck_assert_msg(run_until(base, paused_with_10, &h, 20), "not paused at the bound: %d held",
                  h.n_held);
    int at_pause = h.n_held;
    uint64_t pauses = stats(k).pauses;
    /* Paused: the loop keeps polling for 2 s and memory stays bounded. */
    run_for(base, 2.0);
    ck_assert_msg(h.n_held <= at_pause + 2 && h.n_held < 20,
                  "consumption went on while paused: %d then %d", at_pause, h.n_held);
    ck_assert(stats(k).paused);
    ck_assert_uint_eq(stats(k).in_flight, (size_t)h.n_held);

    /* Complete every held message but the oldest of each partition, newest first:
     * nothing may be stored while an earlier offset of its partition is pending. */
    int oldest[2] = {-1, -1};
    for (int i = 0; i < h.n_held; i++) {
        int p = h.held[i]->partition;
        if (oldest[p] < 0 || h.held[i]->offset < h.held[oldest[p]]->offset)
            oldest[p] = i;
    }
    for (int i = h.n_held - 1; i >= 0; i--)
        if (i != oldest[0] && i != oldest[1]) {
            kafka_msg_done(h.held[i]);
            h.held[i] = NULL;
        }
    ck_assert_uint_eq(stats(k).stored, 0);
    /* Now the oldest: the whole leading run of its partition is stored at once, and the
     * count falling under the resume mark lets consumption go on by itself. */
    for (int p = 0; p < 2; p++)
        if (oldest[p] >= 0) {
            kafka_msg_done(h.held[oldest[p]]);
            h.held[oldest[p]] = NULL;
        }
    ck_assert_uint_ge(stats(k).stored, 1);
    ck_assert(!stats(k).paused);
    h.n_held = 0;
    h.auto_done = true;
    ck_assert_msg(run_until(base, consumed_120, &h, 20), "consumed %d of 120", h.consumed);
    ck_assert_int_eq(h.consumed, 120); /* nothing twice within one assignment */
    ck_assert_uint_ge(stats(k).pauses, pauses);
    close_kafka(base, k);
    /* Everything was done: the group committed both partitions to their ends. */
    ck_assert_int_eq(committed(REFERRALS, 0), 60);
    ck_assert_int_eq(committed(REFERRALS, 1), 60);
    event_base_free(base);
}
END_TEST

static bool consumed_at_least_10(void *arg)
{
    struct holder *h = arg;
    return h->consumed >= 10 && stats(h->k).in_flight == 0;
}

static bool consumed_at_least_3(void *arg)
{
    return ((struct holder *)arg)->consumed >= 3;
}

static bool consumed_at_least_5(void *arg)
{
    return ((struct holder *)arg)->consumed >= 5;
}

static bool assigned_p(void *arg)
{
    return stats(arg).assigned > 0;
}

/* The owner's hold (database down) pauses consumption, also of partitions assigned while
 * held, and releasing it resumes. */
START_TEST(test_hold_pauses_new_assignments)
{
    struct event_base *base = event_base_new();
    produce_n(REFERRALS, 0, 5, "held");
    struct holder h = {.auto_done = true};
    struct kafka *k = open_kafka(base, NULL, &h);
    kafka_hold(k, true);
    ck_assert(stats(k).paused);
    ck_assert(run_until(base, assigned_p, k, 20));
    run_for(base, 2.0);
    ck_assert_int_eq(h.consumed, 0);
    ck_assert(stats(k).paused);
    kafka_hold(k, false);
    ck_assert(!stats(k).paused);
    ck_assert_msg(run_until(base, consumed_at_least_5, &h, 10), "consumed %d", h.consumed);
    close_kafka(base, k);
    event_base_free(base);
}
END_TEST

START_TEST(test_restart_resumes_from_committed)
{
    struct event_base *base = event_base_new();
    produce_n(REFERRALS, 0, 10, "first");

    struct holder h1 = {.auto_done = true};
    struct kafka *k1 = open_kafka(base, NULL, &h1);
    ck_assert(run_until(base, consumed_at_least_10, &h1, 20));
    close_kafka(base, k1);
    ck_assert_int_eq(committed(REFERRALS, 0), 10);

    /* A message that was consumed but never done is not committed: held by k2 and then
     * given up (kafka_msg_release), it comes back to k3. */
    produce_n(REFERRALS, 0, 5, "second");
    struct holder h2 = {0};
    struct kafka *k2 = open_kafka(base, NULL, &h2);
    ck_assert_msg(run_until(base, consumed_at_least_5, &h2, 20), "consumed %d", h2.consumed);
    run_for(base, 0.5);
    ck_assert_int_eq(h2.consumed, 5); /* only the new ones */
    ck_assert_int_eq(h2.first_offset[0], 10);
    kafka_msg_done(h2.held[0]);
    kafka_msg_done(h2.held[1]);
    for (int i = 2; i < h2.n_held; i++)
        kafka_msg_release(h2.held[i]);
    close_kafka(base, k2);
    ck_assert_int_eq(committed(REFERRALS, 0), 12);

    struct holder h3 = {.auto_done = true};
    struct kafka *k3 = open_kafka(base, NULL, &h3);
    ck_assert(run_until(base, consumed_at_least_3, &h3, 20));
    run_for(base, 0.5);
    ck_assert_msg(h3.consumed == 3 && h3.first_offset[0] == 12,
                  "after a restart: %d messages from offset %lld, want 3 from 12", h3.consumed,
                  (long long)h3.first_offset[0]);
    close_kafka(base, k3);
    event_base_free(base);
}
END_TEST

struct pair {
    struct holder *a, *b;
};

/* B has every message of each partition it took (from the first it read), and the two
 * assignments account for all three partitions: A held all 60 all along, so counting A
 * and B together was true as soon as B had read one message (a CI run saw B at 1 of 20). */
static bool every_partition_done(void *arg)
{
    struct pair *p = arg;
    size_t moved = 0;
    for (int i = 0; i < 3; i++) {
        if (p->b->per_partition[i] == 0)
            continue;
        if (p->b->per_partition[i] < 20)
            return false;
        moved++;
    }
    struct kafka_stats sa = stats(p->a->k), sb = stats(p->b->k);
    return moved > 0 && sb.in_flight == 0 && sa.assigned + sb.assigned == 3 && sb.assigned == moved;
}

static bool a_holds_60(void *arg)
{
    return ((struct holder *)arg)->n_held >= 60;
}

START_TEST(test_revoked_partition_is_consumed_again)
{
    struct event_base *base = event_base_new();
    produce_n(REFERRALS, 0, 20, "p0");
    produce_n(REFERRALS, 1, 20, "p1");
    produce_n(CASES, 0, 20, "c0");

    /* A takes every partition and holds all 60 messages without finishing any. */
    struct holder a = {0};
    struct kafka *ka = open_kafka(base, NULL, &a);
    ck_assert_msg(run_until(base, a_holds_60, &a, 20), "A holds %d", a.n_held);

    /* B joins: the cooperative rebalance moves partitions from A to B, which consumes
     * them from the committed offset (none: the beginning), since A stored nothing. */
    struct holder b = {.auto_done = true};
    struct kafka *kb = open_kafka(base, NULL, &b);
    struct pair p = {&a, &b};
    ck_assert_msg(run_until(base, every_partition_done, &p, 40), "B consumed %d", b.consumed);
    int moved = 0;
    for (int i = 0; i < 3; i++)
        if (b.per_partition[i] > 0) {
            moved++;
            ck_assert_int_eq(b.per_partition[i], 20);
            ck_assert_int_eq(b.first_offset[i], 0);
        }
    ck_assert_int_ge(moved, 1);
    ck_assert_uint_eq(stats(ka).assigned + stats(kb).assigned, 3);
    ck_assert_uint_eq(stats(ka).assigned, (size_t)(3 - moved));

    /* A finishes its held messages late: only the partitions it still owns store. */
    uint64_t stored_before = stats(ka).stored;
    for (int i = 0; i < a.n_held; i++)
        kafka_msg_done(a.held[i]);
    ck_assert_uint_eq(stats(ka).stored, stored_before + 20 * (uint64_t)(3 - moved));
    ck_assert_uint_eq(stats(ka).in_flight, 0);
    run_for(base, 1.5); /* auto-commit */
    close_kafka(base, kb);
    close_kafka(base, ka);
    ck_assert_int_eq(committed(REFERRALS, 0), 20);
    ck_assert_int_eq(committed(REFERRALS, 1), 20);
    ck_assert_int_eq(committed(CASES, 0), 20);
    event_base_free(base);
}
END_TEST

/* ---------------------------------------------------------------- intake and a sink */

struct test_sink {
    struct sink sink;
    int submitted;
};

static void ts_submit(void *impl, struct sink_item *item)
{
    struct test_sink *s = impl;
    s->submitted++;
    if (strcmp(item->ev.referral_id, "REF-REJECT") == 0) {
        item->error = EVENT_DUPLICATE_REFERRAL;
        snprintf(item->detail, sizeof item->detail, "referral.id already has a case");
        sink_item_complete(item, SINK_REJECTED);
        return;
    }
    sink_item_complete(item, SINK_DURABLE);
}

static size_t ts_in_flight(const void *impl)
{
    (void)impl;
    return 0;
}

static void ts_destroy(void *impl)
{
    (void)impl;
}

static const struct sink_ops ts_ops = {
    .name = "test", .submit = ts_submit, .in_flight = ts_in_flight, .destroy = ts_destroy};

static void on_intake(void *arg, struct kafka_msg *m)
{
    intake_on_message(*(struct intake **)arg, m);
}

static bool intake_idle_2(void *arg)
{
    struct intake_stats st;
    intake_get_stats(arg, &st);
    return st.accepted == 2 && st.in_flight == 0;
}

/* The first message of a topic's partition 0, copied (a message must not outlive its
 * client handle). */
struct copied {
    char *key, *value;
    size_t key_len, len;
    char *headers[8][2];
    int n_headers;
};

static bool read_first(const char *topic, struct copied *out)
{
    char errstr[512];
    memset(out, 0, sizeof *out);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "group.id", "reader", errstr, sizeof errstr);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_message_t *m = NULL;
    for (int i = 0; i < 100 && m == NULL; i++) {
        m = rd_kafka_consumer_poll(c, 100);
        if (m && m->err) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    if (m != NULL) {
        out->key = strndup(m->key, m->key_len);
        out->key_len = m->key_len;
        out->value = strndup(m->payload, m->len);
        out->len = m->len;
        rd_kafka_headers_t *h;
        const char *name;
        const void *v;
        size_t n;
        if (rd_kafka_message_headers(m, &h) == 0)
            for (size_t i = 0;
                 out->n_headers < 8 && rd_kafka_header_get_all(h, i, &name, &v, &n) == 0; i++) {
                out->headers[out->n_headers][0] = strdup(name);
                out->headers[out->n_headers][1] = strndup(v, n);
                out->n_headers++;
            }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return m != NULL;
}

static const char *header(const struct copied *c, const char *name)
{
    for (int i = 0; i < c->n_headers; i++)
        if (strcmp(c->headers[i][0], name) == 0)
            return c->headers[i][1];
    return NULL;
}

static void copied_free(struct copied *c)
{
    free(c->key);
    free(c->value);
    for (int i = 0; i < c->n_headers; i++) {
        free(c->headers[i][0]);
        free(c->headers[i][1]);
    }
}

START_TEST(test_sink_rejection_is_dead_lettered)
{
    struct event_base *base = event_base_new();
    const char *ok =
        "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-000000000001\", "
        "\"type\": \"referral.received\", \"occurred_at\": \"2026-11-23T10:15:00Z\", "
        "\"referral\": {\"id\": \"REF-OK\"}}";
    const char *rej =
        "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-000000000002\", "
        "\"type\": \"referral.received\", \"occurred_at\": \"2026-11-23T10:15:00Z\", "
        "\"referral\": {\"id\": \"REF-REJECT\"}}";
    produce_raw(REFERRALS, "REF-OK", ok);
    produce_raw(REFERRALS, "REF-REJECT", rej);

    struct test_sink ts = {.sink = {.ops = &ts_ops}};
    ts.sink.impl = &ts;
    struct intake *in = NULL;
    struct kafka_handlers hd = {.on_message = on_intake, .arg = &in};
    char err[512];
    struct kafka *k;
    ck_assert_msg(kafka_open(base, cfg, NULL, &hd, &k, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(intake_new(k, &ts.sink, cfg, NULL, &in), 0);
    ck_assert_int_eq(kafka_subscribe(k, err, sizeof err), 0);
    ck_assert(run_until(base, intake_idle_2, in, 20));
    struct intake_stats st;
    intake_get_stats(in, &st);
    ck_assert_int_eq(ts.submitted, 2);
    ck_assert_uint_eq(st.rejected_by_sink, 1);
    ck_assert_uint_eq(st.dead_lettered, 1);
    kafka_stop_fetching(k);
    kafka_close_consumer(k);
    ck_assert(run_until(base, closed_p, k, 15));
    kafka_detach(k);
    intake_free(in);
    kafka_free(k);

    struct copied m;
    ck_assert(read_first(DLQ, &m));
    ck_assert_int_eq((int)m.len, (int)strlen(rej));
    ck_assert_str_eq(m.value, rej);
    ck_assert_str_eq(m.key, "REF-REJECT");
    const char *want[][2] = {{"error", "duplicate_referral"},
                             {"error_detail", "referral.id already has a case"},
                             {"source_topic", REFERRALS},
                             {"source_partition", "0"},
                             {"source_offset", "1"}};
    for (size_t i = 0; i < 5; i++) {
        const char *v = header(&m, want[i][0]);
        ck_assert_msg(v && strcmp(v, want[i][1]) == 0, "%s = %s", want[i][0], v ? v : "(none)");
    }
    ck_assert_ptr_null(header(&m, "truncated"));
    copied_free(&m);
    ck_assert_int_eq(committed(REFERRALS, 0), 2);
    event_base_free(base);
}
END_TEST

START_TEST(test_owned_properties_refused)
{
    char path[256], errs[4096];
    snprintf(path, sizeof path, "%s/bad.conf", tmpdir);
    FILE *f = fopen(path, "w");
    fprintf(f, "[kafka]\nbrokers = embedded\nrdkafka.enable.auto.offset.store = true\n"
               "rdkafka.no.such.property = 1\nrdkafka.security.protocol = plaintext\n");
    fclose(f);
    struct config *bad;
    ck_assert_int_eq(config_load(path, &bad, errs, sizeof errs), 0);
    ck_assert_int_eq(kafka_check_config(bad, errs, sizeof errs), 2);
    ck_assert_ptr_nonnull(strstr(errs, "bad.conf:3: kafka.rdkafka.enable.auto.offset.store"));
    ck_assert_ptr_nonnull(strstr(errs, "bad.conf:4: kafka.rdkafka.no.such.property"));
    struct event_base *base = event_base_new();
    struct holder h = {0};
    struct kafka_handlers hd = {.on_message = on_hold, .arg = &h};
    struct kafka *k;
    char err[512];
    ck_assert_int_eq(kafka_open(base, bad, NULL, &hd, &k, err, sizeof err), KAFKA_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "cannot be set"));
    config_free(bad);
    event_base_free(base);
}
END_TEST

/* ================================================================ TLS on the Kafka link */

static const struct {
    const char *brokers, *extra; /* extra: [kafka] lines */
    const char *problem;         /* a word of the reason, or NULL: protected */
} tls_cases[] = {
    {"embedded", "", NULL},
    {"127.0.0.1:9092", "", NULL},
    {"localhost:9092,[::1]:9093", "", NULL},
    {"127.3.2.1", "", NULL},
    {"127.example:9092", "", "not encrypted"},
    {"kafka1.example:9093", "", "not encrypted"},
    {"127.0.0.1:9092,kafka1.example:9093", "", "not encrypted"},
    {"kafka1.example:9093", "rdkafka.security.protocol = plaintext\n", "not encrypted"},
    {"kafka1.example:9093", "rdkafka.security.protocol = sasl_plaintext\n", "not encrypted"},
    {"kafka1.example:9093", "rdkafka.security.protocol = SSL\n", NULL},
    {"SASL_SSL://kafka1.example:9093", "rdkafka.security.protocol = sasl_ssl\n", NULL},
    {"kafka1.example:9093",
     "rdkafka.security.protocol = ssl\nrdkafka.enable.ssl.certificate.verification = false\n",
     "certificates"},
    {"kafka1.example:9093",
     "rdkafka.security.protocol = ssl\nrdkafka.ssl.endpoint.identification.algorithm = none\n",
     "host names"},
};

START_TEST(test_tls_problem)
{
    char dir[] = "/tmp/frontdoor-test-kafka-tls.XXXXXX", path[256], errs[4096];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/fd.conf", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "[kafka]\nbrokers = %s\n%s", tls_cases[_i].brokers, tls_cases[_i].extra);
    fclose(f);
    struct config *c;
    ck_assert_msg(config_load(path, &c, errs, sizeof errs) == 0, "%s", errs);
    const char *p = kafka_tls_problem(c);
    if (tls_cases[_i].problem == NULL)
        ck_assert_msg(p == NULL, "%s: %s", tls_cases[_i].brokers, p);
    else
        ck_assert_msg(p != NULL && strstr(p, tls_cases[_i].problem) != NULL, "%s %s: %s",
                      tls_cases[_i].brokers, tls_cases[_i].extra, p ? p : "(none)");
    config_free(c);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *kafka_suite(void)
{
    Suite *s = suite_create("kafka");
    TCase *tc = tcase_create("mock cluster");
    tcase_set_timeout(tc, 90);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_backpressure_and_out_of_order);
    tcase_add_test(tc, test_hold_pauses_new_assignments);
    tcase_add_test(tc, test_restart_resumes_from_committed);
    tcase_add_test(tc, test_revoked_partition_is_consumed_again);
    tcase_add_test(tc, test_sink_rejection_is_dead_lettered);
    tcase_add_test(tc, test_owned_properties_refused);
    suite_add_tcase(s, tc);
    TCase *tls = tcase_create("tls");
    tcase_add_loop_test(tls, test_tls_problem, 0, sizeof tls_cases / sizeof tls_cases[0]);
    suite_add_tcase(s, tls);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kafka_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
