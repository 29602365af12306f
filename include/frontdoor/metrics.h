/* metrics: the daemon's counters, gauges and histogram, served as GET /metrics in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * The series (operations.md, "HTTP"):
 *   frontdoord_events_consumed_total{topic,outcome}       counter
 *       every consumed event once its effects are durable: routed, rerouted, closed,
 *       applied, duplicate, held, rejected (step 9, dead-lettered by the case store) or
 *       unusable (checks 1-8, dead-lettered by intake)
 *   frontdoord_events_dead_lettered_total{topic,error}    counter (error code, events.md)
 *   frontdoord_decisions_total{route,rule}                counter (committed decisions)
 *   frontdoord_notifications{channel,state}               gauge (rows of the notifications table)
 *   frontdoord_outbox_depth                               gauge (unpublished outbox rows)
 *   frontdoord_kafka_consumer_lag{topic,partition}        gauge (high watermark - committed)
 *   frontdoord_database_round_trip_seconds{db}            histogram (one pipeline round)
 *   frontdoord_event_commit_seconds{topic}                histogram (consumed -> committed)
 *   frontdoord_event_end_to_end_seconds{topic}            histogram (Kafka timestamp ->
 *                                                         committed)
 *   frontdoord_decision_deadlines_overdue                 gauge (cases still in triage or
 *                                                         awaiting consent past decision_due_at)
 *   frontdoord_up{component}                              gauge (database, kafka: 1 connected)
 *   frontdoord_ready                                      gauge (1 when /readyz answers 200)
 *
 * One registry per process, used from the event loop thread only (no locking): other
 * modules call the functions below where the thing happens; the daemon renders the text
 * for /metrics. Label values are copied. Nothing here fails its caller: when memory runs
 * out, or a family already holds METRICS_MAX_SERIES label sets, the observation is
 * dropped and counted in frontdoord_metrics_dropped_total.
 */
#ifndef FRONTDOOR_METRICS_H
#define FRONTDOOR_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Label sets kept per family at most (each label comes from configuration, the rule
 * file or a fixed vocabulary, so real deployments stay far below). */
#define METRICS_MAX_SERIES 4096

/* ---------------------------------------------------------------- counters */

void metrics_count_event(const char *topic, const char *outcome);
void metrics_count_dead_letter(const char *topic, const char *error);
void metrics_count_decision(const char *route, const char *rule);

/* One database round of connection `db` (e.g. "frontdoord-casestore") took `seconds`. */
void metrics_observe_db_rtt(const char *db, double seconds);
/* An event of `topic` had its effects committed `seconds` after it was consumed, and
 * `seconds` after its Kafka timestamp (end to end; the producer's clock). */
void metrics_observe_event_commit(const char *topic, double seconds);
void metrics_observe_event_end_to_end(const char *topic, double seconds);

/* ---------------------------------------------------------------- gauges */

/* Replace the notifications gauge with the rows of one query: clear, then set each. */
void metrics_clear_notifications(void);
void metrics_set_notifications(const char *channel, const char *state, double count);

/* A negative depth or count means unknown (not looked at yet): the series is left out. */
void metrics_set_outbox_depth(long depth);
void metrics_set_deadlines_overdue(long count);

/* Replace the lag gauge: clear, then one series per assigned partition; a negative lag
 * (librdkafka does not know it yet) is left out. */
void metrics_clear_consumer_lag(void);
void metrics_set_consumer_lag(const char *topic, int32_t partition, int64_t lag);

void metrics_set_up(const char *component, bool up);
void metrics_set_ready(bool ready);

/* ---------------------------------------------------------------- output */

/* The whole registry as Prometheus text: families in the order above, series sorted by
 * label values. Returns a malloc'd NUL-terminated string (length in *len when len is not
 * NULL), or NULL when out of memory. */
char *metrics_render(size_t *len);

/* The Content-Type of metrics_render()'s text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Forget every series (at exit, so nothing is left allocated; and between tests). */
void metrics_reset(void);

/* Upper bounds (seconds) of every histogram's buckets, ascending; +Inf follows. */
extern const double metrics_db_rtt_buckets[];
extern const size_t metrics_db_rtt_nbuckets;

#endif
