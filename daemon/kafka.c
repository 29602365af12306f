/* kafka: consumer and producer on the libevent loop (see kafka.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "frontdoor/kafka.h"
#include "frontdoor/log.h"
#include "frontdoor/metrics.h"
#include "frontdoor/mono.h"
#include "frontdoor/offsets.h"

/* Messages taken from the consumer queue per wake-up before the loop gets a turn. */
#define POLL_BATCH 256
/* Produce retries back off from 1 s to this. */
#define RETRY_MAX_S 30
/* librdkafka's statistics (broker states, consumer lag) arrive this often. */
#define STATS_INTERVAL_MS "1000"

/* One partition this member has seen. Kept until kafka_free, so a message can point at
 * it; `epoch` moves on every assign, revoke and reset, which makes completions of
 * messages from an earlier epoch store nothing. */
struct kpart {
    char *topic;
    int32_t partition;
    bool assigned;
    bool broken; /* a message could not be tracked: nothing more is handed out */
    uint64_t epoch;
    struct partition_offsets offs;
};

struct kmsg {
    struct kafka_msg pub;
    struct kafka *k;
    rd_kafka_message_t *rkm;
    struct kpart *kp;
    uint64_t epoch;
    struct timespec consumed_at; /* CLOCK_MONOTONIC */
};

static double seconds_since(const struct timespec *t0, clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The latency metrics of a message whose effects are durable now. */
static void observe_latency(const struct kmsg *m)
{
    metrics_observe_event_commit(m->kp->topic, seconds_since(&m->consumed_at, CLOCK_MONOTONIC));
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m->rkm, &tt);
    if (ts > 0 && tt != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) {
        struct timespec t0 = {(time_t)(ts / 1000), (long)(ts % 1000) * 1000000L};
        metrics_observe_event_end_to_end(m->kp->topic, seconds_since(&t0, CLOCK_REALTIME));
    }
}

/* One production, kept until its delivery is reported (the value is not copied by
 * librdkafka: it points here) and, when it failed, until it is retried. */
struct pmsg {
    struct kafka *k;
    struct pmsg *prev, *next;
    char *topic;
    void *key;
    size_t key_len;
    void *value;
    size_t len;
    rd_kafka_headers_t *hdrs; /* the original; each attempt gets a copy */
    kafka_delivery_fn cb;
    void *arg;
    int attempts;
    bool waiting;    /* failed, waiting for its retry time */
    time_t retry_at; /* CLOCK_MONOTONIC seconds */
    bool failed;     /* refused for good at produce time: reported from the loop */
    rd_kafka_resp_err_t fail_err;
};

struct kafka {
    struct event_base *base;
    struct kafka_handlers h;
    struct kafka_limits lim;
    char *bootstrap;
    char *group_id;
    char *topics[2]; /* consumed: referrals, case events */

    rd_kafka_t *consumer, *producer;
    /* cq: the consumer's events (rebalances, errors, logs, commits), always served;
     * mq: the messages of every assigned partition (forwarded there at assignment),
     * taken only while there is room in flight; pq: the producer's main queue. */
    rd_kafka_queue_t *cq, *mq, *pq;
    int cpipe[2], mpipe[2], ppipe[2];
    struct event *cev, *mev, *pev, *more_ev, *tick_ev, *failed_ev;

    rd_kafka_t *mock_rk; /* embedded cluster */
    rd_kafka_mock_cluster_t *mock;

    struct kpart **parts;
    size_t n_parts;

    struct pmsg *pmsgs; /* every production not yet let go */
    size_t produce_pending;
    size_t max_msg_bytes;

    size_t in_flight, in_flight_bytes;
    uint64_t done_ticks; /* completions seen by the 1 s tick, to tell a stall */
    uint64_t done_total;
    bool hold; /* the owner's hold (kafka_hold) */
    bool paused, stopping, closing, closed, detached, fatal;
    bool cooperative;   /* the rebalance protocol in use, seen at the first rebalance */
    bool ever_assigned; /* an assignment has been received (see kafka_free) */
    uint64_t consumed, stored, pauses, rebalances;

    /* From the latest statistics of each client: some broker connected (UP). */
    bool stats_seen[2], broker_up[2]; /* [0] consumer, [1] producer */
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* librdkafka's messages may end in a newline: one line is one message */
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == '\r'))
        err[--n] = '\0';
}

static time_t now_s(void)
{
    return (time_t)(mono_now_us() / 1000000);
}

static const char *num(char *buf, size_t len, long long v)
{
    snprintf(buf, len, "%lld", v);
    return buf;
}

/* ---------------------------------------------------------------- configuration */

/* Properties the daemon sets itself: at-least-once and the producer's guarantees depend
 * on them, and the others have their own [kafka] keys. */
static const char *const owned_props[] = {
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.offset.store",
    "enable.auto.commit",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "log.queue",
    "auto.offset.reset",
    "enable.partition.eof",
    "statistics.interval.ms",
};

static bool prop_is_owned(const char *key)
{
    for (size_t i = 0; i < sizeof owned_props / sizeof owned_props[0]; i++)
        if (strcmp(owned_props[i], key) == 0)
            return true;
    return false;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                    size_t errlen)
{
    char e[512];
    if (rd_kafka_conf_set(conf, key, value, e, sizeof e) != RD_KAFKA_CONF_OK) {
        errf(err, errlen, "librdkafka refuses %s: %s", key, e);
        return -1;
    }
    return 0;
}

/* Whether a property is for consumers only ('C'), producers only ('P') or both ('*'),
 * from librdkafka's own property table, so a pass-through key goes only to the client
 * it is for (and neither client warns about the other's keys). */
static char prop_scope(const char *key)
{
    char *table = NULL, *line, *save = NULL;
    size_t len = 0;
    char scope = '*';
    FILE *m = open_memstream(&table, &len);
    if (m == NULL)
        return scope;
    rd_kafka_conf_properties_show(m);
    fclose(m);
    size_t klen = strlen(key);
    for (line = strtok_r(table, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        /* "name   |  C  | range ..." */
        if (strncmp(line, key, klen) != 0 || (line[klen] != ' ' && line[klen] != '|'))
            continue;
        const char *bar = strchr(line, '|');
        if (bar != NULL) {
            bar++;
            while (*bar == ' ')
                bar++;
            if (*bar == 'C' || *bar == 'P')
                scope = *bar;
        }
        break;
    }
    free(table);
    return scope;
}

static bool passthrough_sets(const struct config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->kafka.n_rdkafka; i++)
        if (strcmp(cfg->kafka.rdkafka[i].key, key) == 0)
            return true;
    return false;
}

/* The pass-through rdkafka.* keys, after our defaults and before our owned settings. */
static int apply_passthrough(const struct config *cfg, rd_kafka_conf_t *conf, bool consumer,
                             char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->kafka.n_rdkafka; i++) {
        const struct kv_pair *kv = &cfg->kafka.rdkafka[i];
        char e[512];
        if (prop_is_owned(kv->key)) {
            errf(err, errlen, "%s:%d: kafka.rdkafka.%s cannot be set: frontdoord sets it itself",
                 cfg->path, kv->line, kv->key);
            return -1;
        }
        char scope = prop_scope(kv->key);
        if ((scope == 'C' && !consumer) || (scope == 'P' && consumer))
            continue;
        if (rd_kafka_conf_set(conf, kv->key, kv->value, e, sizeof e) != RD_KAFKA_CONF_OK) {
            errf(err, errlen, "%s:%d: kafka.rdkafka.%s: %s", cfg->path, kv->line, kv->key, e);
            return -1;
        }
    }
    return 0;
}

static const char *passthrough_value(const struct config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->kafka.n_rdkafka; i++)
        if (strcmp(cfg->kafka.rdkafka[i].key, key) == 0)
            return cfg->kafka.rdkafka[i].value;
    return NULL;
}

/* A bootstrap list ("host:port,PROTO://host:port,[::1]:port") naming loopback hosts only. */
static bool brokers_loopback(const char *list)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        char one[256];
        snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one ? n : sizeof one - 1), p);
        char *h = one;
        char *scheme = strstr(h, "://");
        if (scheme != NULL)
            h = scheme + 3;
        while (*h == ' ')
            h++;
        /* host:port, [v6]:port or a bare host */
        char *end = h[0] == '[' ? strchr(h, ']') : strrchr(h, ':');
        if (h[0] == '[') {
            h++;
            if (end == NULL)
                return false;
        }
        if (end != NULL)
            *end = '\0';
        struct in_addr a4;
        struct in6_addr a6;
        bool loop = strcmp(h, "localhost") == 0 ||
                    (inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) ||
                    (inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6));
        if (!loop)
            return false;
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

const char *kafka_tls_problem(const struct config *cfg)
{
    if (strcmp(cfg->kafka.brokers, "embedded") == 0 || brokers_loopback(cfg->kafka.brokers))
        return NULL;
    const char *proto = passthrough_value(cfg, "security.protocol");
    if (proto == NULL || (strcasecmp(proto, "ssl") != 0 && strcasecmp(proto, "sasl_ssl") != 0))
        return "not encrypted (set rdkafka.security.protocol = ssl or sasl_ssl)";
    const char *verify = passthrough_value(cfg, "enable.ssl.certificate.verification");
    if (verify != NULL && strcasecmp(verify, "true") != 0)
        return "broker certificates are not verified (enable.ssl.certificate.verification)";
    const char *names = passthrough_value(cfg, "ssl.endpoint.identification.algorithm");
    if (names != NULL && strcasecmp(names, "https") != 0)
        return "broker host names are not verified (ssl.endpoint.identification.algorithm)";
    return NULL;
}

int kafka_check_config(const struct config *cfg, char *errs, size_t errs_len)
{
    int problems = 0;
    size_t used = 0;
    if (errs_len > 0)
        errs[0] = '\0';
    for (size_t i = 0; i < cfg->kafka.n_rdkafka; i++) {
        const struct kv_pair *kv = &cfg->kafka.rdkafka[i];
        char e[512], line[1024];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        line[0] = '\0';
        if (prop_is_owned(kv->key))
            snprintf(line, sizeof line,
                     "%s:%d: kafka.rdkafka.%s cannot be set: frontdoord sets it itself\n",
                     cfg->path, kv->line, kv->key);
        else if (rd_kafka_conf_set(conf, kv->key, kv->value, e, sizeof e) != RD_KAFKA_CONF_OK)
            snprintf(line, sizeof line, "%s:%d: kafka.rdkafka.%s: %s\n", cfg->path, kv->line,
                     kv->key, e);
        rd_kafka_conf_destroy(conf);
        if (line[0] == '\0')
            continue;
        problems++;
        size_t n = strlen(line);
        if (used + n < errs_len) {
            memcpy(errs + used, line, n + 1);
            used += n;
        }
    }
    return problems;
}

/* ---------------------------------------------------------------- librdkafka callbacks */

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* Connection failures come to on_error too: log them once. */
    if (strcmp(fac, "FAIL") == 0)
        return;
    enum log_level l = level <= 3   ? LOG_ERROR
                       : level == 4 ? LOG_WARN
                       : level <= 6 ? LOG_INFO
                                    : LOG_DEBUG;
    /* librdkafka's own lines name brokers, topics and error codes, never message contents. */
    log_write(l, "kafka client", "client", rd_kafka_name(rk), "facility", fac, "text", buf, NULL);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        log_error("kafka fatal error", "client", rd_kafka_name(rk), "error",
                  rd_kafka_err2name(orig), "reason", why);
        if (!k->fatal) {
            k->fatal = true;
            if (k->h.on_fatal != NULL && !k->detached)
                k->h.on_fatal(k->h.arg);
        }
        return;
    }
    log_warn("kafka error", "client", rd_kafka_name(rk), "error",
             rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    for (int i = 0; offsets != NULL && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &offsets->elems[i];
        char pb[16], ob[24];
        rd_kafka_resp_err_t e = err ? err : p->err;
        if (p->offset < 0)
            continue; /* nothing stored there */
        if (e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
            log_info("kafka offset commit deferred by a rebalance", "topic", p->topic, "partition",
                     num(pb, sizeof pb, p->partition), "offset", num(ob, sizeof ob, p->offset));
        else if (e)
            log_warn("kafka offset commit failed", "topic", p->topic, "partition",
                     num(pb, sizeof pb, p->partition), "offset", num(ob, sizeof ob, p->offset),
                     "error", rd_kafka_err2name(e));
        else
            log_debug("kafka offset committed", "topic", p->topic, "partition",
                      num(pb, sizeof pb, p->partition), "offset", num(ob, sizeof ob, p->offset));
    }
}

/* ---------------------------------------------------------------- statistics */

static struct kpart *kpart_find(struct kafka *k, const char *topic, int32_t partition);

/* librdkafka's statistics JSON (STATISTICS.md), every STATS_INTERVAL_MS, on the loop
 * thread (served with the client's queue): whether a broker is connected, for /readyz,
 * and the consumer lag of each assigned partition, for /metrics. */
static int on_stats(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    struct kafka *k = opaque;
    int c = rk == k->consumer ? 0 : 1;
    json_error_t jerr;
    json_t *root = json_loadb(json, json_len, 0, &jerr);
    if (root == NULL)
        return 0; /* librdkafka frees the text */
    bool up = false;
    const char *name;
    json_t *b;
    json_object_foreach(json_object_get(root, "brokers"), name, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));
        /* bootstrap entries (nodeid -1) count too: a connection is a connection */
        if (state != NULL && strcmp(state, "UP") == 0)
            up = true;
    }
    if (c == 0 && !up)
        log_debug("kafka statistics: no broker connected", "client", rd_kafka_name(rk));
    if (k->stats_seen[c] && k->broker_up[c] != up)
        log_info(up ? "kafka broker connection up" : "kafka broker connections down", "client",
                 c == 0 ? "consumer" : "producer");
    k->stats_seen[c] = true;
    k->broker_up[c] = up;

    if (c == 0) {
        metrics_clear_consumer_lag();
        const char *tname;
        json_t *t;
        json_object_foreach(json_object_get(root, "topics"), tname, t)
        {
            const char *pname;
            json_t *p;
            json_object_foreach(json_object_get(t, "partitions"), pname, p)
            {
                json_int_t part = json_integer_value(json_object_get(p, "partition"));
                json_t *lag = json_object_get(p, "consumer_lag");
                struct kpart *kp = kpart_find(k, tname, (int32_t)part);
                if (part >= 0 && kp != NULL && kp->assigned && json_is_integer(lag))
                    metrics_set_consumer_lag(tname, (int32_t)part, json_integer_value(lag));
            }
        }
    }
    json_decref(root);
    return 0;
}

bool kafka_connected(const struct kafka *k, char *why, size_t len)
{
    for (int c = 0; c < 2; c++) {
        const char *client = c == 0 ? "consumer" : "producer";
        if (!k->stats_seen[c]) {
            snprintf(why, len, "kafka %s: not connected yet", client);
            return false;
        }
        if (!k->broker_up[c]) {
            snprintf(why, len, "kafka %s: no broker connected (%s)", client, k->bootstrap);
            return false;
        }
    }
    if (len > 0)
        why[0] = '\0';
    return true;
}

/* ---------------------------------------------------------------- partitions */

static struct kpart *kpart_find(struct kafka *k, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < k->n_parts; i++)
        if (k->parts[i]->partition == partition && strcmp(k->parts[i]->topic, topic) == 0)
            return k->parts[i];
    return NULL;
}

static struct kpart *kpart_get(struct kafka *k, const char *topic, int32_t partition)
{
    struct kpart *kp = kpart_find(k, topic, partition);
    if (kp != NULL)
        return kp;
    struct kpart **n = realloc(k->parts, (k->n_parts + 1) * sizeof *n);
    if (n == NULL)
        return NULL;
    k->parts = n;
    kp = calloc(1, sizeof *kp);
    if (kp == NULL || (kp->topic = strdup(topic)) == NULL) {
        free(kp);
        return NULL;
    }
    kp->partition = partition;
    offsets_init(&kp->offs);
    k->parts[k->n_parts++] = kp;
    return kp;
}

/* A new epoch: in-flight messages of the old one store nothing when they finish. */
static void kpart_reset(struct kpart *kp)
{
    kp->epoch++;
    kp->broken = false;
    offsets_reset(&kp->offs);
}

/* The assigned partitions, as a list for pause/resume; NULL when none. */
static rd_kafka_topic_partition_list_t *assigned_list(struct kafka *k)
{
    size_t n = 0;
    for (size_t i = 0; i < k->n_parts; i++)
        n += k->parts[i]->assigned;
    if (n == 0)
        return NULL;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < k->n_parts; i++)
        if (k->parts[i]->assigned)
            rd_kafka_topic_partition_list_add(l, k->parts[i]->topic, k->parts[i]->partition);
    return l;
}

/* No room in flight: messages wait in librdkafka's bounded prefetch queue. */
static bool is_full(const struct kafka *k)
{
    return k->in_flight >= k->lim.pause_at_messages || k->in_flight_bytes >= k->lim.pause_at_bytes;
}

/* Pausing the partitions throws librdkafka's prefetched messages away and restarts
 * fetching late, so a busy but moving downstream is not paused: only a hold, a stop,
 * or a full window with no completion for a whole tick (see on_tick). */
static bool should_pause(const struct kafka *k)
{
    return k->stopping || k->hold;
}

static bool may_resume(const struct kafka *k)
{
    return !k->stopping && !k->hold && k->in_flight <= k->lim.resume_at_messages &&
           k->in_flight_bytes <= k->lim.pause_at_bytes / 2;
}

static void set_paused(struct kafka *k, bool pause)
{
    char a[24];
    if (k->closing || k->closed || k->consumer == NULL)
        return;
    rd_kafka_topic_partition_list_t *l = assigned_list(k);
    if (l != NULL) {
        rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(k->consumer, l)
                                      : rd_kafka_resume_partitions(k->consumer, l);
        if (e)
            log_warn(pause ? "kafka pause failed" : "kafka resume failed", "error",
                     rd_kafka_err2name(e));
        rd_kafka_topic_partition_list_destroy(l);
    }
    k->paused = pause;
    if (pause)
        k->pauses++;
    if (!k->stopping)
        log_info(pause ? "consumption paused" : "consumption resumed", "in_flight",
                 num(a, sizeof a, (long long)k->in_flight), "held", k->hold ? "true" : "false");
}

static void check_pause(struct kafka *k)
{
    if (!k->paused && should_pause(k))
        set_paused(k, true);
    else if (k->paused && may_resume(k)) {
        set_paused(k, false);
        event_active(k->more_ev, 0, 0);
    }
}

static void log_partitions(const char *msg, const rd_kafka_topic_partition_list_t *parts)
{
    char list[1024];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < parts->cnt && used + 1 < sizeof list; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s[%" PRId32 "]", i ? "," : "",
                         parts->elems[i].topic, parts->elems[i].partition);
        if (n < 0)
            break;
        used += (size_t)n < sizeof list - used ? (size_t)n : sizeof list - used - 1;
    }
    char cnt[16];
    log_info(msg, "count", num(cnt, sizeof cnt, parts->cnt), "partitions", list);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kafka *k = opaque;
    const char *proto = rd_kafka_rebalance_protocol(rk);
    k->cooperative = proto != NULL && strcmp(proto, "COOPERATIVE") == 0;
    k->rebalances++;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        k->ever_assigned = true;
        for (int i = 0; i < parts->cnt; i++) {
            struct kpart *kp = kpart_get(k, parts->elems[i].topic, parts->elems[i].partition);
            if (kp == NULL) {
                log_error("out of memory", "where", "kafka assign");
                continue; /* its messages are dropped unstored: consumed again later */
            }
            kpart_reset(kp);
            kp->assigned = true;
            /* its messages go to mq, before any is fetched */
            rd_kafka_queue_t *q =
                rd_kafka_queue_get_partition(rk, parts->elems[i].topic, parts->elems[i].partition);
            if (q != NULL) {
                rd_kafka_queue_forward(q, k->mq);
                rd_kafka_queue_destroy(q);
            }
        }
        rd_kafka_error_t *e = NULL;
        rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (k->cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            re = rd_kafka_assign(rk, parts);
        if (e != NULL) {
            log_error("kafka assign failed", "error", rd_kafka_error_name(e));
            rd_kafka_error_destroy(e);
        } else if (re) {
            log_error("kafka assign failed", "error", rd_kafka_err2name(re));
        }
        /* Paused members keep new partitions paused too. */
        if (k->paused && !k->closing)
            rd_kafka_pause_partitions(rk, parts);
        log_partitions("partitions assigned", parts);
        return;
    }

    /* Revoked or lost: forget what is in flight there; it is consumed again by the next
     * owner. librdkafka commits the stored (durable) offsets of revoked partitions as it
     * unassigns them, and never those of lost partitions. */
    bool lost = rd_kafka_assignment_lost(rk);
    for (int i = 0; i < parts->cnt; i++) {
        struct kpart *kp = kpart_find(k, parts->elems[i].topic, parts->elems[i].partition);
        if (kp != NULL) {
            kpart_reset(kp);
            kp->assigned = false;
        }
    }
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        log_error("kafka rebalance error", "error", rd_kafka_err2name(err));
    if (k->cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e != NULL) {
            log_error("kafka unassign failed", "error", rd_kafka_error_name(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_resp_err_t re = rd_kafka_assign(rk, NULL);
        if (re)
            log_error("kafka unassign failed", "error", rd_kafka_err2name(re));
    }
    log_partitions(lost ? "partitions lost" : "partitions revoked", parts);
}

/* ---------------------------------------------------------------- consuming */

static void kmsg_finish(struct kmsg *m)
{
    struct kafka *k = m->k;
    bool was_full = is_full(k);
    k->in_flight--;
    k->in_flight_bytes -= m->pub.len;
    k->done_total++;
    rd_kafka_message_destroy(m->rkm);
    free(m);
    check_pause(k);
    if (was_full && !is_full(k) && k->more_ev != NULL)
        event_active(k->more_ev, 0, 0);
}

void kafka_msg_done(struct kafka_msg *msg)
{
    struct kmsg *m = (struct kmsg *)msg;
    struct kafka *k = m->k;
    struct kpart *kp = m->kp;
    observe_latency(m);
    if (kp->assigned && kp->epoch == m->epoch && !k->closed) {
        int64_t next = offsets_complete(&kp->offs, m->pub.offset);
        if (next >= 0) {
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = next;
            rd_kafka_resp_err_t e = rd_kafka_offsets_store(k->consumer, l);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                e = l->elems[0].err;
            if (e) {
                char pb[16], ob[24];
                log_warn("kafka offset store failed", "topic", kp->topic, "partition",
                         num(pb, sizeof pb, kp->partition), "offset", num(ob, sizeof ob, next),
                         "error", rd_kafka_err2name(e));
            } else {
                k->stored++;
            }
            rd_kafka_topic_partition_list_destroy(l);
        }
    }
    kmsg_finish(m);
}

void kafka_msg_release(struct kafka_msg *msg)
{
    kmsg_finish((struct kmsg *)msg);
}

static void consume_error(struct kafka *k, rd_kafka_message_t *rkm)
{
    (void)k;
    char pb[16];
    const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
    log_warn("kafka consumer error", "error", rd_kafka_err2name(rkm->err), "topic", topic,
             "partition", num(pb, sizeof pb, rkm->partition), "reason", rd_kafka_err2str(rkm->err));
}

static void consume_one(struct kafka *k, rd_kafka_message_t *rkm)
{
    char pb[16], ob[24];
    if (rkm->err) {
        consume_error(k, rkm);
        rd_kafka_message_destroy(rkm);
        return;
    }
    /* Stopping or detached: not handed out and not tracked, so never stored. */
    if (k->stopping || k->detached) {
        rd_kafka_message_destroy(rkm);
        return;
    }
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    struct kpart *kp = kpart_find(k, topic, rkm->partition);
    if (kp == NULL || !kp->assigned || kp->broken) {
        rd_kafka_message_destroy(rkm); /* from a partition no longer ours */
        return;
    }
    enum offsets_begin_result r = offsets_begin(&kp->offs, rkm->offset);
    if (r == OFFSETS_BACKWARDS) {
        /* The log was rewound (truncated or recreated, auto.offset.reset): take the
         * messages again rather than skip any; what is in flight stores nothing. */
        log_warn("kafka partition went backwards", "topic", topic, "partition",
                 num(pb, sizeof pb, rkm->partition), "offset", num(ob, sizeof ob, rkm->offset));
        kpart_reset(kp);
        r = offsets_begin(&kp->offs, rkm->offset);
    }
    struct kmsg *m = r == OFFSETS_BEGUN ? calloc(1, sizeof *m) : NULL;
    if (m == NULL) {
        /* Untracked, this message must not be overtaken by stored later offsets. */
        log_error("out of memory", "where", "kafka consume", "topic", topic);
        kpart_reset(kp);
        kp->broken = true;
        rd_kafka_message_destroy(rkm);
        if (!k->fatal) {
            k->fatal = true;
            if (k->h.on_fatal != NULL)
                k->h.on_fatal(k->h.arg);
        }
        return;
    }
    m->k = k;
    m->rkm = rkm;
    m->kp = kp;
    clock_gettime(CLOCK_MONOTONIC, &m->consumed_at);
    m->epoch = kp->epoch;
    m->pub.topic = kp->topic;
    m->pub.partition = rkm->partition;
    m->pub.offset = rkm->offset;
    m->pub.key = rkm->key;
    m->pub.key_len = rkm->key ? rkm->key_len : 0;
    m->pub.payload = rkm->payload ? rkm->payload : "";
    m->pub.len = rkm->payload ? rkm->len : 0;
    k->in_flight++;
    k->in_flight_bytes += m->pub.len;
    k->consumed++;
    check_pause(k);
    k->h.on_message(k->h.arg, &m->pub);
}

static void drain_pipe(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* Serve the consumer's event queue: rebalances, errors, logs, commit results (and any
 * message that reached it before its partition's queue was forwarded). */
static void consumer_serve(struct kafka *k)
{
    if (k->consumer == NULL || k->closed)
        return;
    int n;
    for (n = 0; n < POLL_BATCH; n++) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(k->consumer, 0);
        if (rkm == NULL)
            break;
        consume_one(k, rkm);
    }
    /* The wake-up fd fires only when the queue turns non-empty: come back for the rest
     * after the loop has served everything else. */
    if (n == POLL_BATCH)
        event_active(k->more_ev, 0, 0);
    if (k->closing && !k->closed && rd_kafka_consumer_closed(k->consumer)) {
        k->closed = true;
        log_info("kafka consumer closed");
    }
}

/* Take messages while there is room in flight; the rest wait in librdkafka's queue,
 * whose size bounds fetching. Stopping: taken and dropped (never stored). */
static void messages_serve(struct kafka *k)
{
    if (k->consumer == NULL || k->closed || k->mq == NULL)
        return;
    int n;
    for (n = 0; n < POLL_BATCH; n++) {
        if (!k->stopping && (k->hold || is_full(k)))
            return; /* kmsg_finish or the hold's end comes back here */
        rd_kafka_message_t *rkm = rd_kafka_consume_queue(k->mq, 0);
        if (rkm == NULL)
            return;
        consume_one(k, rkm);
    }
    event_active(k->more_ev, 0, 0);
}

static void on_consumer_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    drain_pipe(fd);
    consumer_serve(arg);
}

static void on_messages_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    drain_pipe(fd);
    messages_serve(arg);
}

static void on_more(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    consumer_serve(arg);
    messages_serve(arg);
}

/* ---------------------------------------------------------------- producing */

bool kafka_err_is_too_large(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

static void pmsg_unlink_free(struct pmsg *p)
{
    struct kafka *k = p->k;
    if (p->prev)
        p->prev->next = p->next;
    else
        k->pmsgs = p->next;
    if (p->next)
        p->next->prev = p->prev;
    if (p->hdrs)
        rd_kafka_headers_destroy(p->hdrs);
    free(p->topic);
    free(p->key);
    free(p->value);
    free(p);
}

static void pmsg_report(struct pmsg *p, rd_kafka_resp_err_t err)
{
    struct kafka *k = p->k;
    k->produce_pending--;
    if (!k->detached && p->cb != NULL)
        p->cb(p->arg, err);
}

static void pmsg_wait(struct pmsg *p, rd_kafka_resp_err_t err)
{
    int backoff = 1 << (p->attempts < 5 ? p->attempts : 5);
    char ab[16];
    if (backoff > RETRY_MAX_S)
        backoff = RETRY_MAX_S;
    p->waiting = true;
    p->retry_at = now_s() + backoff;
    log_warn("kafka produce failed, will retry", "topic", p->topic, "error", rd_kafka_err2name(err),
             "attempt", num(ab, sizeof ab, p->attempts));
}

static void pmsg_send(struct pmsg *p)
{
    struct kafka *k = p->k;
    rd_kafka_headers_t *h = p->hdrs ? rd_kafka_headers_copy(p->hdrs) : NULL;
    p->attempts++;
    p->waiting = false;
    rd_kafka_resp_err_t err =
        rd_kafka_producev(k->producer, RD_KAFKA_V_TOPIC(p->topic),
                          RD_KAFKA_V_KEY(p->key, p->key_len), RD_KAFKA_V_VALUE(p->value, p->len),
                          RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return; /* the headers belong to librdkafka now */
    if (h)
        rd_kafka_headers_destroy(h);
    if (kafka_err_is_too_large(err) || err == RD_KAFKA_RESP_ERR__FATAL || k->fatal) {
        /* Reported from the loop, never from inside kafka_produce(). */
        p->failed = true;
        p->fail_err = k->fatal && !kafka_err_is_too_large(err) ? RD_KAFKA_RESP_ERR__FATAL : err;
        event_active(k->failed_ev, 0, 0);
        return;
    }
    pmsg_wait(p, err);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct pmsg *p = rkm->_private;
    if (p == NULL)
        return;
    if (p->k->detached) {
        pmsg_unlink_free(p);
        return;
    }
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR || kafka_err_is_too_large(rkm->err) ||
        rkm->err == RD_KAFKA_RESP_ERR__FATAL || p->k->fatal) {
        pmsg_report(p, rkm->err);
        pmsg_unlink_free(p);
        return;
    }
    if (rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        pmsg_unlink_free(p); /* only kafka_free purges */
        return;
    }
    pmsg_wait(p, rkm->err);
}

void kafka_produce(struct kafka *k, const char *topic, const void *key, size_t key_len,
                   const void *value, size_t len, rd_kafka_headers_t *hdrs, kafka_delivery_fn cb,
                   void *arg)
{
    struct pmsg *p = calloc(1, sizeof *p);
    if (p != NULL) {
        p->topic = strdup(topic);
        p->key = key ? malloc(key_len ? key_len : 1) : NULL;
        p->value = malloc(len ? len : 1);
    }
    if (p == NULL || p->topic == NULL || (key && p->key == NULL) || p->value == NULL) {
        /* Without memory nothing can be done here; the owner's message stays in flight
         * and is consumed again after the restart the fatal error leads to. */
        if (p) {
            free(p->topic);
            free(p->key);
            free(p->value);
            free(p);
        }
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        log_error("out of memory", "where", "kafka produce", "topic", topic);
        if (!k->fatal) {
            k->fatal = true;
            if (k->h.on_fatal != NULL && !k->detached)
                k->h.on_fatal(k->h.arg);
        }
        return;
    }
    p->k = k;
    if (key)
        memcpy(p->key, key, key_len);
    p->key_len = key ? key_len : 0;
    if (len)
        memcpy(p->value, value, len);
    p->len = len;
    p->hdrs = hdrs;
    p->cb = cb;
    p->arg = arg;
    p->next = k->pmsgs;
    if (k->pmsgs)
        k->pmsgs->prev = p;
    k->pmsgs = p;
    k->produce_pending++;
    pmsg_send(p);
}

size_t kafka_max_message_bytes(const struct kafka *k)
{
    return k->max_msg_bytes;
}

static void producer_serve(struct kafka *k)
{
    if (k->producer != NULL)
        rd_kafka_poll(k->producer, 0);
}

static void on_producer_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    drain_pipe(fd);
    producer_serve(arg);
}

/* Productions refused for good at produce time: reported to their owners. */
static void report_failed(struct kafka *k)
{
    struct pmsg *p = k->pmsgs, *next;
    for (; p != NULL; p = next) {
        next = p->next;
        if (p->failed) {
            pmsg_report(p, p->fail_err);
            pmsg_unlink_free(p);
        }
    }
}

static void on_failed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    report_failed(arg);
}

/* Retries that are due. */
static void retry_due(struct kafka *k)
{
    time_t now = now_s();
    for (struct pmsg *p = k->pmsgs; p != NULL; p = p->next)
        if (p->waiting && !p->failed && p->retry_at <= now && !k->detached)
            pmsg_send(p);
}

/* Every second: a safety poll of both queues, and produce retries. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct kafka *k = arg;
    consumer_serve(k);
    messages_serve(k);
    producer_serve(k);
    retry_due(k);
    if (log_enabled(LOG_DEBUG)) {
        char a[24], b[24], c[24];
        log_debug("kafka flow", "in_flight", num(a, sizeof a, (long long)k->in_flight), "queued",
                  num(b, sizeof b, k->mq ? (long long)rd_kafka_queue_length(k->mq) : 0), "consumed",
                  num(c, sizeof c, (long long)k->consumed));
    }
    /* Full for a whole tick with nothing done: the downstream is stalled, so stop
     * fetching at the brokers too (polling goes on) until the count falls. */
    if (!k->paused && is_full(k) && k->done_total == k->done_ticks)
        set_paused(k, true);
    k->done_ticks = k->done_total;
}

/* ---------------------------------------------------------------- open and close */

static void silent_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static int start_embedded(struct kafka *k, const struct config *cfg, char *err, size_t errlen)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The cluster's own handle logs from its threads: keep it quiet, our log is not
     * thread-safe. */
    rd_kafka_conf_set_log_cb(conf, silent_log);
    k->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (k->mock_rk == NULL) {
        rd_kafka_conf_destroy(conf);
        errf(err, errlen, "embedded kafka: %s", e);
        return -1;
    }
    k->mock = rd_kafka_mock_cluster_new(k->mock_rk, 1);
    if (k->mock == NULL) {
        errf(err, errlen, "embedded kafka: cannot create the mock cluster");
        return -1;
    }
    const char *topics[] = {cfg->kafka.referrals_topic, cfg->kafka.case_events_topic,
                            cfg->kafka.decisions_topic, cfg->kafka.dlq_topic};
    for (size_t i = 0; i < 4; i++) {
        rd_kafka_resp_err_t re =
            rd_kafka_mock_topic_create(k->mock, topics[i], cfg->kafka.embedded_partitions, 1);
        if (re) {
            errf(err, errlen, "embedded kafka: cannot create topic %s: %s", topics[i],
                 rd_kafka_err2str(re));
            return -1;
        }
    }
    k->bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(k->mock));
    if (k->bootstrap == NULL) {
        errf(err, errlen, "out of memory");
        return -1;
    }
    char pb[16];
    log_info("kafka embedded cluster started", "bootstrap", k->bootstrap, "partitions",
             num(pb, sizeof pb, cfg->kafka.embedded_partitions));
    return 0;
}

static int make_pipe(int p[2], char *err, size_t errlen)
{
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        errf(err, errlen, "pipe: %s", strerror(errno));
        p[0] = p[1] = -1;
        return -1;
    }
    return 0;
}

static rd_kafka_conf_t *common_conf(struct kafka *k, const struct config *cfg, bool consumer,
                                    char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = 0;
    bad |= conf_set(conf, "client.id", "frontdoord", err, errlen);
    if (consumer) {
        /* Bounded prefetch: at most ~8 MiB waits in librdkafka's queue. The message count
         * stays at librdkafka's default: a low one stops a partition's fetching whenever
         * the shared queue passes it, and the fetcher only looks again after a pause,
         * which held consumption to about a tenth of the raw rate. */
        bad |= conf_set(conf, "queued.max.messages.kbytes", "8192", err, errlen);
        bad |= conf_set(conf, "queued.min.messages", "100000", err, errlen);
        bad |= conf_set(conf, "fetch.max.bytes", "8388608", err, errlen);
        bad |= conf_set(conf, "auto.commit.interval.ms", "1000", err, errlen);
        bad |= conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", err, errlen);
    } else {
        bad |= conf_set(conf, "linger.ms", "5", err, errlen);
    }
    if (bad || apply_passthrough(cfg, conf, consumer, err, errlen) != 0)
        goto fail;
    /* kafka.sasl_password_file: the secret never sits in the main file */
    if (cfg->kafka.sasl_password != NULL)
        bad |= conf_set(conf, "sasl.password", cfg->kafka.sasl_password, err, errlen);
    if (consumer && !passthrough_sets(cfg, "fetch.max.bytes")) {
        /* librdkafka wants fetch.max.bytes >= message.max.bytes: follow a larger one. */
        char mmb[32];
        size_t n = sizeof mmb;
        if (rd_kafka_conf_get(conf, "message.max.bytes", mmb, &n) == RD_KAFKA_CONF_OK &&
            strtoul(mmb, NULL, 10) > 8388608)
            bad |= conf_set(conf, "fetch.max.bytes", mmb, err, errlen);
    }
    /* Owned settings last, so nothing overrides them. */
    bad |= conf_set(conf, "bootstrap.servers", k->bootstrap, err, errlen);
    bad |= conf_set(conf, "log.queue", "true", err, errlen);
    bad |= conf_set(conf, "statistics.interval.ms", STATS_INTERVAL_MS, err, errlen);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    if (consumer) {
        bad |= conf_set(conf, "group.id", k->group_id, err, errlen);
        bad |= conf_set(conf, "enable.auto.offset.store", "false", err, errlen);
        bad |= conf_set(conf, "enable.auto.commit", "true", err, errlen);
        /* A new group starts from the oldest event: none is skipped. */
        bad |= conf_set(conf, "auto.offset.reset", "earliest", err, errlen);
        bad |= conf_set(conf, "enable.partition.eof", "false", err, errlen);
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
        rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    } else {
        bad |= conf_set(conf, "enable.idempotence", "true", err, errlen);
        bad |= conf_set(conf, "acks", "all", err, errlen);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    }
    if (bad)
        goto fail;
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, k);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int watch_queue(struct kafka *k, rd_kafka_queue_t *q, int p[2], struct event **ev,
                       event_callback_fn cb, char *err, size_t errlen)
{
    if (make_pipe(p, err, errlen) != 0)
        return -1;
    *ev = event_new(k->base, p[0], EV_READ | EV_PERSIST, cb, k);
    if (*ev == NULL || event_add(*ev, NULL) != 0) {
        errf(err, errlen, "cannot watch a kafka queue");
        return -1;
    }
    rd_kafka_queue_io_event_enable(q, p[1], "1", 1);
    return 0;
}

int kafka_open(struct event_base *base, const struct config *cfg, const struct kafka_limits *limits,
               const struct kafka_handlers *h, struct kafka **out, char *err, size_t errlen)
{
    char e[512];
    int rc = -1;
    *out = NULL;
    struct kafka *k = calloc(1, sizeof *k);
    if (k == NULL) {
        errf(err, errlen, "out of memory");
        return -1;
    }
    k->base = base;
    k->h = *h;
    k->cpipe[0] = k->cpipe[1] = k->mpipe[0] = k->mpipe[1] = k->ppipe[0] = k->ppipe[1] = -1;
    k->lim.pause_at_messages = KAFKA_DEFAULT_PAUSE_AT;
    k->lim.resume_at_messages = KAFKA_DEFAULT_RESUME_AT;
    k->lim.pause_at_bytes = KAFKA_DEFAULT_PAUSE_BYTES;
    if (limits != NULL)
        k->lim = *limits;
    k->group_id = strdup(cfg->kafka.group_id);
    k->topics[0] = strdup(cfg->kafka.referrals_topic);
    k->topics[1] = strdup(cfg->kafka.case_events_topic);
    if (k->group_id == NULL || k->topics[0] == NULL || k->topics[1] == NULL) {
        errf(err, errlen, "out of memory");
        goto fail;
    }
    const char *tls = kafka_tls_problem(cfg);
    if (tls != NULL)
        log_warn("kafka connection is not protected by verified TLS", "problem", tls);
    if (strcmp(cfg->kafka.brokers, "embedded") == 0) {
        if (start_embedded(k, cfg, err, errlen) != 0)
            goto fail;
    } else if ((k->bootstrap = strdup(cfg->kafka.brokers)) == NULL) {
        errf(err, errlen, "out of memory");
        goto fail;
    }

    rc = KAFKA_ERR_CONFIG; /* until both clients exist, a failure is the configuration's */
    rd_kafka_conf_t *pconf = common_conf(k, cfg, false, err, errlen);
    if (pconf == NULL)
        goto fail;
    char mmb[32];
    size_t mmb_len = sizeof mmb;
    if (rd_kafka_conf_get(pconf, "message.max.bytes", mmb, &mmb_len) == RD_KAFKA_CONF_OK)
        k->max_msg_bytes = strtoul(mmb, NULL, 10);
    if (k->max_msg_bytes == 0)
        k->max_msg_bytes = 1000000;
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, e, sizeof e);
    if (k->producer == NULL) {
        rd_kafka_conf_destroy(pconf);
        errf(err, errlen, "kafka producer: %s", e);
        goto fail;
    }
    rd_kafka_set_log_queue(k->producer, NULL); /* logs to the main queue, served in the loop */
    k->pq = rd_kafka_queue_get_main(k->producer);

    rd_kafka_conf_t *cconf = common_conf(k, cfg, true, err, errlen);
    if (cconf == NULL)
        goto fail;
    k->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, e, sizeof e);
    if (k->consumer == NULL) {
        rd_kafka_conf_destroy(cconf);
        errf(err, errlen, "kafka consumer: %s", e);
        goto fail;
    }
    rc = -1;
    rd_kafka_set_log_queue(k->consumer, NULL);
    rd_kafka_poll_set_consumer(k->consumer); /* main queue (logs, errors) -> consumer queue */
    k->cq = rd_kafka_queue_get_consumer(k->consumer);
    k->mq = rd_kafka_queue_new(k->consumer);

    if (k->mq == NULL ||
        watch_queue(k, k->cq, k->cpipe, &k->cev, on_consumer_wake, err, errlen) != 0 ||
        watch_queue(k, k->mq, k->mpipe, &k->mev, on_messages_wake, err, errlen) != 0 ||
        watch_queue(k, k->pq, k->ppipe, &k->pev, on_producer_wake, err, errlen) != 0)
        goto fail;
    k->more_ev = event_new(base, -1, 0, on_more, k);
    k->failed_ev = event_new(base, -1, 0, on_failed, k);
    k->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, k);
    struct timeval second = {1, 0};
    if (k->more_ev == NULL || k->failed_ev == NULL || k->tick_ev == NULL ||
        event_add(k->tick_ev, &second) != 0) {
        errf(err, errlen, "cannot create kafka timers");
        goto fail;
    }
    *out = k;
    return 0;
fail:
    kafka_free(k);
    return rc;
}

int kafka_subscribe(struct kafka *k, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, k->topics[0], RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(l, k->topics[1], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(k->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        errf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(e));
        return -1;
    }
    log_info("kafka consumer subscribed", "group", k->group_id, "topics", k->topics[0], "topics2",
             k->topics[1], "bootstrap", k->bootstrap);
    return 0;
}

const char *kafka_bootstrap(const struct kafka *k)
{
    return k->bootstrap;
}

void kafka_hold(struct kafka *k, bool hold)
{
    k->hold = hold;
    check_pause(k);
}

void kafka_get_stats(const struct kafka *k, struct kafka_stats *st)
{
    memset(st, 0, sizeof *st);
    st->in_flight = k->in_flight;
    st->in_flight_bytes = k->in_flight_bytes;
    st->produce_pending = k->produce_pending;
    for (size_t i = 0; i < k->n_parts; i++)
        st->assigned += k->parts[i]->assigned;
    st->paused = k->paused;
    st->consumed = k->consumed;
    st->stored = k->stored;
    st->pauses = k->pauses;
    st->rebalances = k->rebalances;
}

void kafka_stop_fetching(struct kafka *k)
{
    if (k->stopping)
        return;
    check_pause(k); /* settle the counting state first */
    k->stopping = true;
    if (!k->paused)
        set_paused(k, true);
}

void kafka_close_consumer(struct kafka *k)
{
    if (k->closing || k->consumer == NULL)
        return;
    k->stopping = true;
    k->closing = true;
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(k->consumer, k->cq);
    if (e != NULL) {
        log_error("kafka consumer close failed", "error", rd_kafka_error_name(e));
        rd_kafka_error_destroy(e);
        k->closed = true;
        return;
    }
    /* Rebalance and close events arrive on the consumer queue: serve it now. */
    event_active(k->more_ev, 0, 0);
}

bool kafka_consumer_closed(const struct kafka *k)
{
    return k->consumer == NULL || k->closed;
}

void kafka_detach(struct kafka *k)
{
    k->detached = true;
}

static void unwatch(rd_kafka_queue_t *q, struct event **ev, int p[2])
{
    if (q != NULL)
        rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
    if (*ev != NULL)
        event_free(*ev);
    *ev = NULL;
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0)
            close(p[i]);
    p[0] = p[1] = -1;
}

/* A consumer kafka_free leaves to the process's exit (see there), still referenced. */
static rd_kafka_t *left_to_exit;

void kafka_free(struct kafka *k)
{
    if (k == NULL)
        return;
    k->detached = true;
    if (k->tick_ev)
        event_free(k->tick_ev);
    if (k->more_ev)
        event_free(k->more_ev);
    if (k->failed_ev)
        event_free(k->failed_ev);
    unwatch(k->cq, &k->cev, k->cpipe);
    unwatch(k->mq, &k->mev, k->mpipe);
    unwatch(k->pq, &k->pev, k->ppipe);
    if (k->consumer != NULL) {
        if (k->cq)
            rd_kafka_queue_destroy(k->cq);
        if (k->mq)
            rd_kafka_queue_destroy(k->mq);
        /* librdkafka before 2.3.0 (Debian has 2.0.2) asserts when a cooperative-sticky
         * consumer is destroyed after its group chose the assignor and before the first
         * assignment arrived (librdkafka issue 4312): a daemon stopped while joining
         * aborted after "stopped". Such a consumer holds no partition and no offset, so
         * it is left to the process's exit, still referenced. */
        if (!k->ever_assigned) {
            log_debug("kafka consumer left to the process exit (stopped before its first "
                      "assignment)");
            left_to_exit = k->consumer;
        } else
            /* Closed already when stopping gracefully; otherwise do not block on the
             * group: what was not committed is consumed again. */
            rd_kafka_destroy_flags(k->consumer,
                                   k->closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    if (k->producer != NULL) {
        if (k->pq)
            rd_kafka_queue_destroy(k->pq);
        rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(k->producer, 0); /* delivery reports free their productions */
        rd_kafka_destroy(k->producer);
    }
    while (k->pmsgs != NULL)
        pmsg_unlink_free(k->pmsgs);
    if (k->mock != NULL)
        rd_kafka_mock_cluster_destroy(k->mock);
    if (k->mock_rk != NULL)
        rd_kafka_destroy(k->mock_rk);
    for (size_t i = 0; i < k->n_parts; i++) {
        offsets_free(&k->parts[i]->offs);
        free(k->parts[i]->topic);
        free(k->parts[i]);
    }
    free(k->parts);
    free(k->bootstrap);
    free(k->group_id);
    free(k->topics[0]);
    free(k->topics[1]);
    free(k);
}
