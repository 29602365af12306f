/* Unit tests: the metrics registry and its Prometheus text exposition. */
#include <check.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/metrics.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Every line of the text is a # HELP / # TYPE comment or `name{labels} value`, with a
 * valid metric name, label names, quoted and escaped label values and a number, and
 * every sample follows the TYPE line of its family. Returns NULL or what is wrong. */
static const char *format_problem(const char *text, char *why, size_t len)
{
    char family[128] = "";
    const char *p = text;
    if (*text == '\0' || text[strlen(text) - 1] != '\n')
        return "text does not end with a newline";
    while (*p) {
        const char *nl = strchr(p, '\n');
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(nl - p), p);
        p = nl + 1;
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128], type[32];
            if (sscanf(line + 7, "%127s %31s", name, type) != 2 ||
                (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram"))) {
                snprintf(why, len, "bad TYPE line: %s", line);
                return why;
            }
            snprintf(family, sizeof family, "%s", name);
            continue;
        }
        const char *q = line;
        if (!isalpha((unsigned char)*q) && *q != '_' && *q != ':') {
            snprintf(why, len, "bad metric name: %s", line);
            return why;
        }
        while (isalnum((unsigned char)*q) || *q == '_' || *q == ':')
            q++;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(q - line), line);
        bool ours = family[0] != '\0' && strcmp(name, family) == 0;
        static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
        for (int i = 0; i < 3 && !ours && family[0] != '\0'; i++)
            ours = strlen(name) == strlen(family) + strlen(suffixes[i]) &&
                   strncmp(name, family, strlen(family)) == 0 &&
                   strcmp(name + strlen(family), suffixes[i]) == 0;
        if (!ours) {
            snprintf(why, len, "sample outside its family %s: %s", family, line);
            return why;
        }
        if (*q == '{') {
            q++;
            while (*q != '}') {
                if (!isalpha((unsigned char)*q) && *q != '_') {
                    snprintf(why, len, "bad label name: %s", line);
                    return why;
                }
                while (isalnum((unsigned char)*q) || *q == '_')
                    q++;
                if (q[0] != '=' || q[1] != '"') {
                    snprintf(why, len, "label without =\"value\": %s", line);
                    return why;
                }
                q += 2;
                while (*q != '"') {
                    if (*q == '\0') {
                        snprintf(why, len, "unterminated label value: %s", line);
                        return why;
                    }
                    if (*q == '\\') {
                        if (q[1] != '\\' && q[1] != '"' && q[1] != 'n') {
                            snprintf(why, len, "bad escape: %s", line);
                            return why;
                        }
                        q++;
                    }
                    q++;
                }
                q++;
                if (*q == ',')
                    q++;
                else if (*q != '}') {
                    snprintf(why, len, "labels not separated by ',': %s", line);
                    return why;
                }
            }
            q++;
        }
        if (*q != ' ') {
            snprintf(why, len, "no space before the value: %s", line);
            return why;
        }
        q++;
        char *end;
        if (strcmp(q, "+Inf") != 0 && strcmp(q, "-Inf") != 0 && strcmp(q, "NaN") != 0) {
            strtod(q, &end);
            if (end == q || *end != '\0') {
                snprintf(why, len, "bad value: %s", line);
                return why;
            }
        }
    }
    return NULL;
}

static char *render(void)
{
    size_t len = 0;
    char *text = metrics_render(&len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, strlen(text));
    char why[1200];
    const char *problem = format_problem(text, why, sizeof why);
    ck_assert_msg(problem == NULL, "%s\n--- text:\n%s", problem, text);
    return text;
}

/* Whether `line` is one whole line of text. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

/* ---- table: what modules report, and the lines a scrape must then hold (or lack) */

static void s_events(void)
{
    metrics_count_event("frontdoor.referrals", "routed");
    metrics_count_event("frontdoor.referrals", "routed");
    metrics_count_event("frontdoor.referrals", "routed");
    metrics_count_event("frontdoor.case-events", "held");
    metrics_count_event("frontdoor.referrals", "unusable");
    metrics_count_dead_letter("frontdoor.referrals", "invalid_json");
}

static void s_decisions(void)
{
    metrics_count_decision("school", "school");
    metrics_count_decision("school", "school");
    metrics_count_decision("manual_triage", "incomplete");
}

static void s_escaping(void)
{
    metrics_count_event("odd\"topic\\with\nnewline", "routed");
}

static void s_histogram(void)
{
    /* values exact in binary, so the sum is too */
    metrics_observe_db_rtt("casestore", 0.000244140625); /* <= 0.0005 */
    metrics_observe_db_rtt("casestore", 0.25);           /* on a bound: in that bucket */
    metrics_observe_db_rtt("casestore", 0.5);
    metrics_observe_db_rtt("casestore", 64); /* beyond every bound: +Inf only */
    metrics_observe_db_rtt("outbox", -1);    /* clock step: counted as 0 */
}

static void s_gauges(void)
{
    metrics_set_outbox_depth(7);
    metrics_set_deadlines_overdue(2);
    metrics_clear_notifications();
    metrics_set_notifications("email", "sent", 4);
    metrics_set_notifications("sms", "queued", 1);
    metrics_clear_notifications(); /* a newer query replaces the old rows */
    metrics_set_notifications("email", "delivered", 4);
    metrics_set_up("database", true);
    metrics_set_up("kafka", false);
    metrics_set_ready(false);
}

static void s_unknown(void)
{
    metrics_set_outbox_depth(3);
    metrics_set_outbox_depth(-1); /* connection lost: unknown again */
    metrics_set_deadlines_overdue(-1);
    metrics_set_consumer_lag("frontdoor.referrals", 0, -1); /* librdkafka does not know yet */
}

static void s_lag(void)
{
    metrics_set_consumer_lag("frontdoor.referrals", 3, 12);
    metrics_set_consumer_lag("frontdoor.referrals", 1, 0);
    metrics_clear_consumer_lag(); /* revoked: the next statistics name only what is ours */
    metrics_set_consumer_lag("frontdoor.case-events", 0, 5);
    metrics_set_consumer_lag("frontdoor.referrals", 2, 0);
}

static void s_floats(void)
{
    metrics_set_notifications("email", "queued", 0.1);
    metrics_set_notifications("email", "sent", 1e20);
}

#define MAXL 16
static const struct {
    const char *name;
    void (*setup)(void);
    const char *present[MAXL];
    const char *absent[MAXL];
} cases[] = {
    {"events",
     s_events,
     {"# TYPE frontdoord_events_consumed_total counter",
      "frontdoord_events_consumed_total{topic=\"frontdoor.case-events\",outcome=\"held\"} 1",
      "frontdoord_events_consumed_total{topic=\"frontdoor.referrals\",outcome=\"routed\"} 3",
      "frontdoord_events_consumed_total{topic=\"frontdoor.referrals\",outcome=\"unusable\"} 1",
      "frontdoord_events_dead_lettered_total{topic=\"frontdoor.referrals\",error=\"invalid_json\"}"
      " 1"},
     {"frontdoord_metrics_dropped_total 1"}},
    {"decisions",
     s_decisions,
     {"# TYPE frontdoord_decisions_total counter",
      "frontdoord_decisions_total{route=\"manual_triage\",rule=\"incomplete\"} 1",
      "frontdoord_decisions_total{route=\"school\",rule=\"school\"} 2"},
     {NULL}},
    {"label escaping",
     s_escaping,
     {"frontdoord_events_consumed_total{topic=\"odd\\\"topic\\\\with\\nnewline\","
      "outcome=\"routed\"} 1"},
     {NULL}},
    {"histogram",
     s_histogram,
     {"# TYPE frontdoord_database_round_trip_seconds histogram",
      "frontdoord_database_round_trip_seconds_bucket{db=\"casestore\",le=\"0.0005\"} 1",
      "frontdoord_database_round_trip_seconds_bucket{db=\"casestore\",le=\"0.1\"} 1",
      "frontdoord_database_round_trip_seconds_bucket{db=\"casestore\",le=\"0.25\"} 2",
      "frontdoord_database_round_trip_seconds_bucket{db=\"casestore\",le=\"0.5\"} 3",
      "frontdoord_database_round_trip_seconds_bucket{db=\"casestore\",le=\"10\"} 3",
      "frontdoord_database_round_trip_seconds_bucket{db=\"casestore\",le=\"+Inf\"} 4",
      "frontdoord_database_round_trip_seconds_sum{db=\"casestore\"} 64.750244140625",
      "frontdoord_database_round_trip_seconds_count{db=\"casestore\"} 4",
      "frontdoord_database_round_trip_seconds_bucket{db=\"outbox\",le=\"0.0005\"} 1",
      "frontdoord_database_round_trip_seconds_sum{db=\"outbox\"} 0"},
     {NULL}},
    {"gauges",
     s_gauges,
     {"# TYPE frontdoord_outbox_depth gauge", "frontdoord_outbox_depth 7",
      "frontdoord_decision_deadlines_overdue 2",
      "frontdoord_notifications{channel=\"email\",state=\"delivered\"} 4",
      "frontdoord_up{component=\"database\"} 1", "frontdoord_up{component=\"kafka\"} 0",
      "frontdoord_ready 0"},
     {"frontdoord_notifications{channel=\"email\",state=\"sent\"} 4",
      "frontdoord_notifications{channel=\"sms\",state=\"queued\"} 1"}},
    {"unknown values are left out",
     s_unknown,
     {"# TYPE frontdoord_outbox_depth gauge", "# TYPE frontdoord_kafka_consumer_lag gauge"},
     {"frontdoord_outbox_depth 3", "frontdoord_outbox_depth -1",
      "frontdoord_decision_deadlines_overdue -1",
      "frontdoord_kafka_consumer_lag{topic=\"frontdoor.referrals\",partition=\"0\"} -1"}},
    {"consumer lag",
     s_lag,
     {"frontdoord_kafka_consumer_lag{topic=\"frontdoor.case-events\",partition=\"0\"} 5",
      "frontdoord_kafka_consumer_lag{topic=\"frontdoor.referrals\",partition=\"2\"} 0"},
     {"frontdoord_kafka_consumer_lag{topic=\"frontdoor.referrals\",partition=\"3\"} 12",
      "frontdoord_kafka_consumer_lag{topic=\"frontdoor.referrals\",partition=\"1\"} 0"}},
    {"float values",
     s_floats,
     {"frontdoord_notifications{channel=\"email\",state=\"queued\"} 0.1",
      "frontdoord_notifications{channel=\"email\",state=\"sent\"} 1e+20"},
     {NULL}},
};

START_TEST(test_scrape)
{
    metrics_reset();
    cases[_i].setup();
    char *text = render();
    for (int k = 0; k < MAXL && cases[_i].present[k]; k++)
        ck_assert_msg(has_line(text, cases[_i].present[k]), "%s: missing line\n%s\n--- text:\n%s",
                      cases[_i].name, cases[_i].present[k], text);
    for (int k = 0; k < MAXL && cases[_i].absent[k]; k++)
        ck_assert_msg(!has_line(text, cases[_i].absent[k]),
                      "%s: unexpected line\n%s\n--- text:\n%s", cases[_i].name, cases[_i].absent[k],
                      text);
    free(text);
    metrics_reset();
}
END_TEST

/* Every family is announced (HELP and TYPE) even before anything happened, in the
 * documented order, so a scraper sees the same families on every daemon. */
START_TEST(test_families_always_listed)
{
    static const char *const order[] = {
        "frontdoord_events_consumed_total",
        "frontdoord_events_dead_lettered_total",
        "frontdoord_decisions_total",
        "frontdoord_notifications",
        "frontdoord_outbox_depth",
        "frontdoord_kafka_consumer_lag",
        "frontdoord_database_round_trip_seconds",
        "frontdoord_decision_deadlines_overdue",
        "frontdoord_up",
        "frontdoord_ready",
        "frontdoord_metrics_dropped_total",
    };
    metrics_reset();
    char *text = render();
    const char *at = text;
    for (int i = 0; i < N(order); i++) {
        char help[160], type[160];
        snprintf(help, sizeof help, "# HELP %s ", order[i]);
        snprintf(type, sizeof type, "# TYPE %s ", order[i]);
        const char *h = strstr(at, help);
        ck_assert_msg(h != NULL, "%s missing or out of order:\n%s", order[i], text);
        ck_assert_ptr_nonnull(strstr(h, type));
        at = h;
    }
    /* nothing but comments before anything is observed */
    for (const char *p = text; *p; p = strchr(p, '\n') + 1)
        ck_assert_msg(*p == '#', "a sample before anything happened:\n%s", text);
    free(text);
}
END_TEST

/* Label sets are sorted, whatever the order they were first seen in. */
START_TEST(test_sorted)
{
    metrics_reset();
    metrics_count_decision("youth_support", "youth");
    metrics_count_decision("family_hub", "early_years");
    metrics_count_decision("family_hub", "family_hub");
    char *text = render();
    const char *a = strstr(text, "route=\"family_hub\",rule=\"early_years\"");
    const char *b = strstr(text, "route=\"family_hub\",rule=\"family_hub\"");
    const char *c = strstr(text, "route=\"youth_support\"");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert(a < b && b < c);
    free(text);
    metrics_reset();
}
END_TEST

/* Past METRICS_MAX_SERIES label sets a family takes no more: the rest are counted as
 * dropped and the existing series keep counting. */
START_TEST(test_series_cap)
{
    metrics_reset();
    char rule[32];
    for (int i = 0; i < METRICS_MAX_SERIES + 5; i++) {
        snprintf(rule, sizeof rule, "r%05d", i);
        metrics_count_decision("school", rule);
    }
    metrics_count_decision("school", "r00000");
    char *text = render();
    ck_assert(has_line(text, "frontdoord_metrics_dropped_total 5"));
    ck_assert(has_line(text, "frontdoord_decisions_total{route=\"school\",rule=\"r00000\"} 2"));
    snprintf(rule, sizeof rule, "rule=\"r%05d\"", METRICS_MAX_SERIES);
    ck_assert_ptr_null(strstr(text, rule));
    free(text);
    metrics_reset();
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("text");
    tcase_add_loop_test(tc, test_scrape, 0, N(cases));
    tcase_add_test(tc, test_families_always_listed);
    tcase_add_test(tc, test_sorted);
    tcase_add_test(tc, test_series_cap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
