/* kafka: the daemon's Kafka clients, joined to the one libevent loop.
 *
 * A high-level consumer (group kafka.group_id) on the referrals and case-events topics,
 * and an idempotent producer (acks=all) for decisions and the dead-letter topic. Both
 * wake the loop through librdkafka's queue IO events (a pipe per client) plus a 1 s
 * timer; every callback (messages, delivery reports, rebalances, errors, logs) runs on
 * the loop thread and nothing blocks or sleeps there.
 *
 * At-least-once: enable.auto.offset.store is off. Every consumed message is handed to the
 * owner as a struct kafka_msg and stays in flight until the owner says its effects are
 * durable (kafka_msg_done); an offset is stored only when it and every earlier consumed
 * offset of its partition are done (offsets.h), and librdkafka commits stored offsets
 * every second, on revoke and on close, never for lost partitions. A revoked or lost
 * partition forgets its in-flight messages: their later completions store nothing, and
 * the next owner consumes them again.
 *
 * Backpressure: the messages of every assigned partition are forwarded to a queue of
 * their own, taken only while fewer than a bound are in flight; the consumer's event
 * queue (rebalances, errors, commits) is always served. At the bound, messages wait in
 * librdkafka's bounded prefetch (queued.min.messages, queued.max.messages.kbytes), which
 * also stops fetching. When nothing completes for a whole second at the bound (the
 * downstream is stalled), or the owner holds (the database is down), every assigned
 * partition is paused as well; polling goes on and consumption resumes by itself when
 * the count falls to half. Pausing is kept for real stalls because it throws librdkafka's
 * prefetched messages away and fetching restarts only after a delay.
 *
 * kafka.brokers = embedded starts librdkafka's mock cluster in-process, with the four
 * topics created. [kafka] rdkafka.* keys pass through to both clients.
 *
 * Ownership: the caller owns struct kafka (kafka_free). A struct kafka_msg is owned by
 * whoever it was handed to until kafka_msg_done() or kafka_msg_release().
 */
#ifndef FRONTDOOR_KAFKA_H
#define FRONTDOOR_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "frontdoor/config.h"

struct event_base;
struct kafka;

/* One consumed message. The bytes stay valid until the message is done or released. */
struct kafka_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key; /* NULL when the message has none */
    size_t key_len;
    const void *payload; /* never NULL ("" for an empty or null value) */
    size_t len;
};

struct kafka_handlers {
    /* A consumed message; ownership passes to the handler, which must end it with
     * kafka_msg_done() or kafka_msg_release(), now or later. */
    void (*on_message)(void *arg, struct kafka_msg *msg);
    /* librdkafka raised a fatal error (e.g. the idempotent producer was fenced): the
     * clients cannot go on and the daemon must stop. Optional. */
    void (*on_fatal)(void *arg);
    void *arg;
};

/* Bounds on what is in flight (consumed, not yet done or released). */
struct kafka_limits {
    size_t pause_at_messages; /* pause every partition at this many in flight */
    size_t resume_at_messages;
    size_t pause_at_bytes; /* or at this many payload bytes (resume at half) */
};

#define KAFKA_DEFAULT_PAUSE_AT    1000
#define KAFKA_DEFAULT_RESUME_AT   500
#define KAFKA_DEFAULT_PAUSE_BYTES (32u * 1024 * 1024)

/* Create both clients (and the embedded cluster) from cfg, on `base`. limits NULL means
 * the defaults above. Nothing is consumed before kafka_subscribe(). Returns 0 and *out;
 * KAFKA_ERR_CONFIG with a message in err when librdkafka refuses the configuration (a
 * bad rdkafka.* key names its line); -1 for anything else. */
#define KAFKA_ERR_CONFIG (-2)
int kafka_open(struct event_base *base, const struct config *cfg, const struct kafka_limits *limits,
               const struct kafka_handlers *h, struct kafka **out, char *err, size_t errlen);

/* Check that the rdkafka.* pass-through keys are accepted by librdkafka, without creating
 * any client (--check-config). Problems are appended to errs as "file:line: ..." lines.
 * Returns the number of problems. */
int kafka_check_config(const struct config *cfg, char *errs, size_t errs_len);

/* Whether the configured Kafka link protects what crosses it (README, security): NULL
 * when it does (the embedded cluster, brokers on loopback only, or
 * rdkafka.security.protocol ssl / sasl_ssl with certificate and host name verification
 * left on), else a short fixed reason. Pure. */
const char *kafka_tls_problem(const struct config *cfg);

/* Join the group on the referrals and case-events topics. */
int kafka_subscribe(struct kafka *k, char *err, size_t errlen);

/* The bootstrap servers in use: kafka.brokers, or the embedded cluster's address. */
const char *kafka_bootstrap(const struct kafka *k);

/* ---------------------------------------------------------------- consumed messages */

/* The message's effects are durable: its offset may be stored (once every earlier one of
 * its partition is done too). Frees the message. */
void kafka_msg_done(struct kafka_msg *msg);

/* Give the message up without storing its offset: it is consumed again after a restart
 * or a rebalance. It also blocks storing any later offset of its partition until then,
 * so use it only when stopping or on a fatal error. Frees the message. */
void kafka_msg_release(struct kafka_msg *msg);

/* Owner-side backpressure: from kafka_hold(k, true) until kafka_hold(k, false) every
 * partition stays paused, e.g. while the database is down (casestore on_ready). Not
 * counted: the last call decides. */
void kafka_hold(struct kafka *k, bool hold);

/* ---------------------------------------------------------------- producing */

/* Delivery of a produced message: err 0 once the cluster has it (acks=all). */
typedef void (*kafka_delivery_fn)(void *arg, rd_kafka_resp_err_t err);

/* Produce one message; key and value are copied, hdrs (may be NULL) is taken over.
 * Transient failures are retried here (backing off up to 30 s) for as long as it takes;
 * cb gets an error only when retrying cannot help: the message is too large
 * (kafka_err_is_too_large) or the producer failed fatally. cb is never called from
 * within kafka_produce, and never after kafka_detach(). */
void kafka_produce(struct kafka *k, const char *topic, const void *key, size_t key_len,
                   const void *value, size_t len, rd_kafka_headers_t *hdrs, kafka_delivery_fn cb,
                   void *arg);

bool kafka_err_is_too_large(rd_kafka_resp_err_t err);

/* The producer's message.max.bytes: key, value and headers of one message must fit. */
size_t kafka_max_message_bytes(const struct kafka *k);

/* ---------------------------------------------------------------- state and stopping */

struct kafka_stats {
    size_t in_flight;       /* consumed messages not yet done or released */
    size_t in_flight_bytes; /* their payload bytes */
    size_t produce_pending; /* produced, delivery not yet reported */
    size_t assigned;        /* partitions assigned to this member */
    bool paused;
    uint64_t consumed, stored, pauses, rebalances;
};

void kafka_get_stats(const struct kafka *k, struct kafka_stats *st);

/* Whether both clients have a broker connection, from librdkafka's statistics (every
 * second; they also set the frontdoord_kafka_consumer_lag gauge). When not, why says
 * which client and why, in one line. */
bool kafka_connected(const struct kafka *k, char *why, size_t len);

/* Graceful stop, 1: stop fetching; messages consumed from now on are left for the next
 * run (not handed out, not stored). In-flight messages still complete. */
void kafka_stop_fetching(struct kafka *k);

/* Graceful stop, 2: leave the group without blocking: stored offsets are committed and
 * the partitions revoked while the loop keeps running; see kafka_consumer_closed(). */
void kafka_close_consumer(struct kafka *k);
bool kafka_consumer_closed(const struct kafka *k);

/* From now on no callback reaches the owners (kafka_delivery_fn, on_message): call it
 * before the owners free what those callbacks would touch. */
void kafka_detach(struct kafka *k);

/* Release everything. A consumer not yet closed is destroyed without leaving the group
 * (what was not committed is consumed again); unreported productions are purged. */
void kafka_free(struct kafka *k);

#endif
