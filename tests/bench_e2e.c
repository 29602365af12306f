/* frontdoor-bench: the Kafka side of scripts/bench (a benchmark driver, not a test).
 *
 *   frontdoor-bench produce  BOOTSTRAP TOPIC N REFERRALS_JSONL
 *       N referral events, the sample referrals in turn with unique referral, child,
 *       family and event ids (a realistic mix of the policy's routes), keyed by referral
 *       id, as fast as the cluster takes them; prints "produced N in S s".
 *   frontdoor-bench consume  BOOTSTRAP TOPIC N
 *       the raw consume rate: a fresh consumer group reads N messages and does nothing
 *       else with them; prints "consumed N in S s".
 *   frontdoor-bench latency  BOOTSTRAP REFERRALS DECISIONS N RATE REFERRALS_JSONL
 *       offers N referrals at RATE a second while reading the decisions topic, and
 *       prints the latency from each produce call to its decision message (matched by
 *       cause_event_id): "latency n N p50 MS p99 MS max MS".
 *   frontdoor-bench kafkalat BOOTSTRAP TOPIC N RATE
 *       the cluster's own latency: N small messages at RATE read back from the topic,
 *       and the time to each delivery report.
 *   frontdoor-bench committed BOOTSTRAP GROUP TOPIC
 *       prints "committed C of H": the group's committed offsets and the topic's high
 *       watermarks, summed over its partitions.
 *   frontdoor-bench notifyload BASE_URL KEY_FILE N CONCURRENCY
 *       the Notify-compatible server's own capacity: N email requests as the daemon
 *       sends them (a fresh JWT each), CONCURRENCY at a time over keep-alive connections
 *       (libcurl multi); prints "notify load n N accepted A in S s rate R/s p50 MS p99 MS".
 * BENCH_CONF="key=value,..." adds librdkafka properties to every client (experiments).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "frontdoor/provider_notify.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "frontdoor-bench: %s: %s\n", what, why);
    exit(1);
}

static double *dr_sent, *dr_lat;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    uintptr_t i = (uintptr_t)m->_private;
    if (dr_sent && !m->err)
        dr_lat[i] = (mono_s() - dr_sent[i]) * 1000.0 + 1e-6;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap, const char *group,
                          const char *reset)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_conf_set(c, "log_level", "3", NULL, 0);
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(c, "linger.ms", "5", NULL, 0);
        rd_kafka_conf_set(c, "queue.buffering.max.messages", "1000000", NULL, 0);
        rd_kafka_conf_set(c, "acks", getenv("BENCH_ACKS") ? getenv("BENCH_ACKS") : "all", NULL, 0);
        rd_kafka_conf_set_dr_msg_cb(c, on_dr);
    } else {
        rd_kafka_conf_set(c, "group.id", group, NULL, 0);
        rd_kafka_conf_set(c, "auto.offset.reset", reset, NULL, 0);
        rd_kafka_conf_set(c, "enable.auto.commit", "false", NULL, 0);
        rd_kafka_conf_set(c, "enable.partition.eof", "false", NULL, 0);
        /* The mock cluster holds an empty fetch for the whole wait and does not answer
         * when data arrives (a real broker does): keep the wait short, so the figure is
         * the daemon's latency, not the mock's. */
        rd_kafka_conf_set(c, "fetch.wait.max.ms", "5", NULL, 0);
        rd_kafka_conf_set(c, "fetch.error.backoff.ms", "5", NULL, 0);
    }
    /* BENCH_CONF="key=value,key=value": extra client properties, for experiments */
    const char *extra = getenv("BENCH_CONF");
    if (extra != NULL) {
        char *dup = strdup(extra), *save = NULL;
        for (char *kv = strtok_r(dup, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (eq) {
                *eq = '\0';
                rd_kafka_conf_set(c, kv, eq + 1, NULL, 0);
            }
        }
        free(dup);
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (rk == NULL)
        die("kafka client", err);
    if (type == RD_KAFKA_CONSUMER)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void subscribe(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        die("subscribe", rd_kafka_err2str(e));
}

/* ---------------------------------------------------------------- referral events */

static json_t **samples;
static size_t n_samples;
static char now_rfc3339[32]; /* every referral of a run is made "now" (see referral()) */

static void load_samples(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die(path, "cannot open");
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        if (j == NULL)
            continue;
        samples = realloc(samples, (n_samples + 1) * sizeof *samples);
        samples[n_samples++] = j;
    }
    free(line);
    fclose(f);
    if (n_samples == 0)
        die(path, "no referrals");
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now_rfc3339, sizeof now_rfc3339, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Referral i of a run tagged `tag` (one hex digit, so runs never share ids): sample i mod
 * n, with ids of its own. Returns the JSON text (free it); writes the referral id. */
static char *referral(char tag, uint64_t i, char rid[64])
{
    json_t *ev = json_deep_copy(samples[i % n_samples]);
    json_t *ref = json_object_get(ev, "referral");
    char eid[40];
    snprintf(rid, 64, "REF-BENCH%c-%09" PRIu64, tag, i);
    snprintf(eid, sizeof eid, "00000000-0000-4000-a00%c-%012" PRIu64, tag, i);
    char id[64];
    json_object_set_new(ev, "event_id", json_string(eid));
    /* made now, as a live referral is: the samples' dates lie in the past, and their
     * deadlines would have every undecided case alerted as overdue at once */
    json_object_set_new(ev, "occurred_at", json_string(now_rfc3339));
    json_object_set_new(ref, "id", json_string(rid));
    json_t *child = json_object_get(ref, "child");
    if (json_is_object(child) && json_object_get(child, "id")) {
        snprintf(id, sizeof id, "C-BENCH%c-%09" PRIu64, tag, i);
        json_object_set_new(child, "id", json_string(id));
    }
    json_t *fam = json_object_get(ref, "family");
    if (json_is_object(fam) && json_object_get(fam, "id")) {
        snprintf(id, sizeof id, "F-BENCH%c-%09" PRIu64, tag, i);
        json_object_set_new(fam, "id", json_string(id));
    }
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return s;
}

static void produce_one(rd_kafka_t *p, const char *topic, char tag, uint64_t i)
{
    char rid[64];
    char *v = referral(tag, i, rid);
    for (;;) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(rid, strlen(rid)),
                              RD_KAFKA_V_VALUE(v, strlen(v)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            die("produce", rd_kafka_err2str(e));
        rd_kafka_poll(p, 10);
    }
}

static int cmd_produce(char **a)
{
    uint64_t n = strtoull(a[2], NULL, 10);
    load_samples(a[3]);
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, a[0], NULL, NULL);
    double t0 = mono_s();
    for (uint64_t i = 0; i < n; i++) {
        produce_one(p, a[1], '0', i);
        rd_kafka_poll(p, 0);
    }
    if (rd_kafka_flush(p, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("flush", "timed out");
    printf("produced %" PRIu64 " in %.3f s\n", n, mono_s() - t0);
    rd_kafka_destroy(p);
    return 0;
}

/* ---------------------------------------------------------------- raw consume */

static int cmd_consume(char **a)
{
    uint64_t n = strtoull(a[2], NULL, 10), got = 0;
    char group[64];
    snprintf(group, sizeof group, "bench-raw-%ld", (long)time(NULL));
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, a[0], group, "earliest");
    subscribe(c, a[1]);
    double t0 = 0, deadline = mono_s() + 300;
    while (got < n && mono_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        if (!m->err) {
            if (got++ == 0)
                t0 = mono_s(); /* from the first message: the group join is not consuming */
        }
        rd_kafka_message_destroy(m);
    }
    printf("consumed %" PRIu64 " in %.3f s\n", got, mono_s() - t0);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return got == n ? 0 : 1;
}

/* A fresh producer learns the topic's partitions and leaders before its first message
 * can leave: without this, the first second of a timed stream waits for that (about
 * 1 s, which a p99 of 1,000 messages a second would report as the steady state). */
/* The consumer, reading from the end, must know where the end is (a fetch position on
 * every assigned partition) before the first timed message, or it starts after it. */
static void consumer_wait_position(rd_kafka_t *c)
{
    for (double w = mono_s() + 30; mono_s() < w;) {
        rd_kafka_topic_partition_list_t *asg = NULL;
        bool ready = false;
        if (rd_kafka_assignment(c, &asg) == 0 && asg->cnt > 0 &&
            rd_kafka_position(c, asg) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ready = true;
            for (int i = 0; i < asg->cnt; i++)
                ready = ready && asg->elems[i].offset >= 0;
        }
        if (asg)
            rd_kafka_topic_partition_list_destroy(asg);
        if (ready)
            return;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 50);
        if (m)
            rd_kafka_message_destroy(m);
    }
}

static void producer_warm(rd_kafka_t *p, const char *topic)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(p, topic, NULL);
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(p, 0, t, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
}

/* ---------------------------------------------------------------- latency */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_latency(char **a)
{
    uint64_t n = strtoull(a[3], NULL, 10);
    double rate = strtod(a[4], NULL);
    load_samples(a[5]);
    double *sent = calloc(n, sizeof *sent), *lat = calloc(n, sizeof *lat);
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, a[0], NULL, NULL);
    char group[64];
    snprintf(group, sizeof group, "bench-latency-%ld", (long)time(NULL));
    /* only decisions made from now on: a new group reading from the end */
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, a[0], group, "latest");
    subscribe(c, a[2]);
    /* the decisions consumer has its partitions and their ends: nothing is missed */
    producer_warm(p, a[1]);
    consumer_wait_position(c);
    uint64_t produced = 0, matched = 0;
    double t0 = mono_s(), deadline = t0 + (double)n / rate + 60;
    while (matched < n && mono_s() < deadline) {
        double now = mono_s();
        while (produced < n && t0 + (double)produced / rate <= now) {
            sent[produced] = mono_s();
            produce_one(p, a[1], '1', produced);
            produced++;
        }
        rd_kafka_poll(p, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 1);
        if (m == NULL)
            continue;
        if (!m->err && m->payload) {
            double at = mono_s();
            json_t *d = json_loadb(m->payload, m->len, 0, NULL);
            const char *cause = json_string_value(json_object_get(d, "cause_event_id"));
            uint64_t i;
            if (cause && strlen(cause) == 36 && strncmp(cause + 19, "a001", 4) == 0 &&
                sscanf(cause + 24, "%12" SCNu64, &i) == 1 && i < produced && lat[i] == 0) {
                lat[i] = (at - sent[i]) * 1000.0;
                if (lat[i] <= 0)
                    lat[i] = 1e-6;
                matched++;
            }
            json_decref(d);
        }
        rd_kafka_message_destroy(m);
    }
    double *v = malloc(matched * sizeof *v);
    size_t k = 0;
    for (uint64_t i = 0; i < n; i++)
        if (lat[i] > 0)
            v[k++] = lat[i];
    qsort(v, k, sizeof *v, cmp_double);
    if (k == 0)
        die("latency", "no decision seen");
    printf("latency n %zu of %" PRIu64 " offered %.0f/s p50 %.1f p99 %.1f max %.1f ms\n", k, n,
           rate, v[k / 2], v[(size_t)((double)(k - 1) * 0.99)], v[k - 1]);
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    free(v);
    free(sent);
    free(lat);
    return k == n ? 0 : 1;
}

/* The cluster's own latency: N small messages at RATE, read back from the same topic. */
static int cmd_kafkalat(char **a)
{
    uint64_t n = strtoull(a[2], NULL, 10), got = 0;
    double rate = strtod(a[3], NULL);
    double *sent = calloc(n, sizeof *sent), *lat = calloc(n, sizeof *lat);
    dr_sent = sent;
    dr_lat = calloc(n, sizeof *dr_lat);
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, a[0], NULL, NULL);
    char group[64];
    snprintf(group, sizeof group, "bench-kafkalat-%ld", (long)time(NULL));
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, a[0], group, "latest");
    subscribe(c, a[1]);
    producer_warm(p, a[1]);
    consumer_wait_position(c);
    uint64_t produced = 0;
    double t0 = mono_s(), deadline = t0 + (double)n / rate + 30;
    while (got < n && mono_s() < deadline) {
        while (produced < n && t0 + (double)produced / rate <= mono_s()) {
            char v[32];
            int len = snprintf(v, sizeof v, "%" PRIu64, produced);
            sent[produced++] = mono_s();
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(a[1]), RD_KAFKA_V_VALUE(v, (size_t)len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(produced - 1)), RD_KAFKA_V_END);
        }
        rd_kafka_poll(p, 0);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 1);
        if (m && !m->err && m->len < 30) {
            char v[32];
            memcpy(v, m->payload, m->len);
            v[m->len] = 0;
            uint64_t i = strtoull(v, NULL, 10);
            if (i < produced && lat[i] == 0) {
                lat[i] = (mono_s() - sent[i]) * 1000.0 + 1e-6;
                got++;
            }
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_flush(p, 5000);
    qsort(dr_lat, n, sizeof *dr_lat, cmp_double);
    qsort(lat, n, sizeof *lat, cmp_double);
    size_t k = (size_t)(n - got);
    /* the delivery reports show which half of the trip a delay is on */
    printf("kafka latency n %" PRIu64 " p50 %.1f p99 %.1f max %.1f ms (to the delivery report: "
           "p50 %.1f p99 %.1f max %.1f ms)\n",
           got, lat[k + got / 2], lat[k + (size_t)((double)(got - 1) * 0.99)], lat[n - 1],
           dr_lat[n / 2], dr_lat[(size_t)((double)(n - 1) * 0.99)], dr_lat[n - 1]);
    free(dr_lat);
    dr_sent = dr_lat = NULL;
    rd_kafka_destroy(p);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return 0;
}

/* ---------------------------------------------------------------- committed offsets */

static int cmd_committed(char **a)
{
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, a[0], a[1], "earliest");
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *t = rd_kafka_topic_new(c, a[2], NULL);
    if (rd_kafka_metadata(c, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1)
        die("metadata", a[2]);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int i = 0; i < parts; i++)
        rd_kafka_topic_partition_list_add(l, a[2], i);
    if (rd_kafka_committed(c, l, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("committed", a[1]);
    int64_t committed = 0, high = 0;
    for (int i = 0; i < parts; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(c, a[2], i, &lo, &hi, 10000) == 0)
            high += hi;
        if (l->elems[i].offset >= 0)
            committed += l->elems[i].offset;
    }
    printf("committed %" PRId64 " of %" PRId64 "\n", committed, high);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
    return 0;
}

/* ---------------------------------------------------------------- Notify server capacity */

struct load_req {
    CURL *easy;
    struct curl_slist *headers;
    char body[512];
    double started;
};

static size_t discard(char *p, size_t size, size_t nmemb, void *arg)
{
    (void)p;
    (void)arg;
    return size * nmemb;
}

static void load_start(CURLM *m, struct load_req *q, const char *url, const char *sid,
                       const char *secret, long i)
{
    char *jwt = provider_notify_jwt(sid, secret, (int64_t)time(NULL));
    char auth[512];
    if (jwt == NULL)
        die("jwt", "out of memory");
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", jwt);
    free(jwt);
    snprintf(q->body, sizeof q->body,
             "{\"template_id\":\"11111111-2222-4333-8444-555555555555\","
             "\"email_address\":\"team%ld@example.org\",\"personalisation\":{\"referral_id\":"
             "\"REF-2026-%06ld\",\"route\":\"early_help\",\"priority\":\"amber\"},"
             "\"reference\":\"00000000-0000-4000-8000-%012ld\"}",
             i % 50, i, i);
    q->headers = curl_slist_append(NULL, "Content-Type: application/json");
    q->headers = curl_slist_append(q->headers, auth);
    q->easy = curl_easy_init();
    if (q->headers == NULL || q->easy == NULL)
        die("curl", "out of memory");
    curl_easy_setopt(q->easy, CURLOPT_URL, url);
    curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, q->body);
    curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->headers);
    curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q);
    q->started = mono_s();
    curl_multi_add_handle(m, q->easy);
}

static int cmd_notifyload(char **a)
{
    char url[512], key[256] = "", sid[37], secret[37];
    snprintf(url, sizeof url, "%s/v2/notifications/email", a[0]);
    FILE *f = fopen(a[1], "r");
    if (f == NULL || fgets(key, sizeof key, f) == NULL)
        die("key file", a[1]);
    fclose(f);
    key[strcspn(key, "\r\n")] = '\0';
    if (provider_notify_parse_key(key, sid, secret) != 0)
        die("key file", "not <name>-<service id>-<secret>");
    long n = atol(a[2]), conc = atol(a[3]);
    if (n <= 0 || conc <= 0)
        die("notifyload", "N and CONCURRENCY must be positive");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    struct load_req *reqs = calloc((size_t)conc, sizeof *reqs);
    double *lat = calloc((size_t)n, sizeof *lat);
    if (m == NULL || reqs == NULL || lat == NULL)
        die("notifyload", "out of memory");
    long started = 0, done = 0, accepted = 0;
    double t0 = mono_s();
    for (long i = 0; i < conc && started < n; i++)
        load_start(m, &reqs[i], url, sid, secret, started++);
    while (done < n) {
        int running, left;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct load_req *q;
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (msg->data.result == CURLE_OK && status == 201)
                accepted++;
            lat[done++] = (mono_s() - q->started) * 1000.0;
            curl_multi_remove_handle(m, q->easy);
            curl_easy_cleanup(q->easy);
            curl_slist_free_all(q->headers);
            if (started < n)
                load_start(m, q, url, sid, secret, started++);
        }
        if (done < n)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double s = mono_s() - t0;
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    printf("notify load n %ld accepted %ld in %.3f s rate %.0f/s p50 %.1f ms p99 %.1f ms\n", n,
           accepted, s, (double)n / s, lat[n / 2], lat[(size_t)((double)n * 0.99)]);
    free(lat);
    free(reqs);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return accepted == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int nargs;
        int (*fn)(char **);
    } cmds[] = {{"produce", 4, cmd_produce},   {"consume", 3, cmd_consume},
                {"latency", 6, cmd_latency},   {"committed", 3, cmd_committed},
                {"kafkalat", 4, cmd_kafkalat}, {"notifyload", 4, cmd_notifyload}};
    for (size_t i = 0; argc >= 2 && i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0 && argc - 2 == cmds[i].nargs)
            return cmds[i].fn(argv + 2);
    fprintf(stderr, "usage: see the top of tests/bench_e2e.c\n");
    return 64;
}
