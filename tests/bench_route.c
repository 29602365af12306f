/* bench_route: decisions per second on one core (a micro-benchmark, not a test).
 *
 *   bench_route [referrals.jsonl [frontdoor.rules directory.json]]
 *
 * Prints three rates over the same referral bytes (the spec's sample referrals by
 * default): a bare jansson parse (json_loadb + json_decref), the limit for the next
 * figure; parse + validate + route (event_parse, route_decide_referral, event_release);
 * route alone on events parsed beforehand; and the rules alone on facts derived
 * beforehand (what is left once the JSON lookups are done). Times are the thread's CPU
 * time, so a busy machine skews them less. Targets: the second within 1.5x of the
 * first, the third at least 2,000,000 a second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "frontdoor/event.h"
#include "frontdoor/policy.h"
#include "frontdoor/route.h"

#ifndef BENCH_SOURCE_DIR
#define BENCH_SOURCE_DIR "."
#endif

#define MAX_LINES 1024

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: fair on a busy machine */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *lines[MAX_LINES];
static size_t lens[MAX_LINES];
static size_t n_lines;

static void read_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0 && n_lines < MAX_LINES) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        lines[n_lines] = malloc((size_t)n);
        memcpy(lines[n_lines], line, (size_t)n);
        lens[n_lines++] = (size_t)n;
    }
    free(line);
    fclose(f);
}

/* Run `fn` in rounds over all lines until at least `min_s` seconds have passed. */
typedef unsigned long (*round_fn)(void);

static double rate(round_fn fn, double min_s, unsigned long *sink)
{
    (*sink) += fn(); /* warm up */
    double start = now_s(), t;
    unsigned long rounds = 0;
    do {
        for (int i = 0; i < 50; i++)
            *sink += fn();
        rounds += 50;
        t = now_s() - start;
    } while (t < min_s);
    return (double)(rounds * n_lines) / t;
}

static struct policy *P;
static struct event events[MAX_LINES];
static struct route_facts facts[MAX_LINES];

static unsigned long bare_parse(void)
{
    unsigned long s = 0;
    for (size_t i = 0; i < n_lines; i++) {
        json_error_t e;
        json_t *root = json_loadb(lines[i], lens[i], 0, &e);
        s += root != NULL;
        json_decref(root);
    }
    return s;
}

static unsigned long parse_route(void)
{
    unsigned long s = 0;
    for (size_t i = 0; i < n_lines; i++) {
        struct event ev;
        struct decision d;
        char detail[128];
        if (event_parse(lines[i], lens[i], EVENT_TOPIC_REFERRALS, 65536, &ev, detail,
                        sizeof detail) != EVENT_OK)
            continue;
        route_decide_referral(P, &ev, NULL, &d);
        s += (unsigned long)d.route + d.n_reasons;
        event_release(&ev);
    }
    return s;
}

static unsigned long route_only(void)
{
    unsigned long s = 0;
    for (size_t i = 0; i < n_lines; i++) {
        struct decision d;
        route_decide_referral(P, &events[i], NULL, &d);
        s += (unsigned long)d.route + d.n_reasons;
    }
    return s;
}

static unsigned long rules_only(void)
{
    unsigned long s = 0;
    for (size_t i = 0; i < n_lines; i++) {
        struct decision d;
        route_decide_facts(P, &facts[i], events[i].referral_id, NULL, &d);
        s += (unsigned long)d.route + d.n_reasons;
    }
    return s;
}

int main(int argc, char **argv)
{
    const char *input =
        argc > 1 ? argv[1] : BENCH_SOURCE_DIR "/../shared/spec/examples/referrals.jsonl";
    const char *rules = argc > 3 ? argv[2] : BENCH_SOURCE_DIR "/config/frontdoor.rules";
    const char *dir = argc > 3 ? argv[3] : BENCH_SOURCE_DIR "/config/directory.json";
    char errs[8192];
    if (policy_load_files(rules, dir, &P, errs, sizeof errs) != 0) {
        fputs(errs, stderr);
        return 78;
    }
    read_lines(input);
    size_t bytes = 0;
    for (size_t i = 0; i < n_lines; i++) {
        char detail[128];
        if (event_parse(lines[i], lens[i], EVENT_TOPIC_REFERRALS, 65536, &events[i], detail,
                        sizeof detail) != EVENT_OK) {
            fprintf(stderr, "line %zu is not a usable referral: %s\n", i + 1, detail);
            return 65;
        }
        route_derive_facts(P, &events[i], false, &facts[i]);
        bytes += lens[i];
    }
    if (n_lines == 0) {
        fprintf(stderr, "%s: no referrals\n", input);
        return 65;
    }
    unsigned long sink = 0;
    double min_s = 1.0;
    double bare = rate(bare_parse, min_s, &sink);
    double full = rate(parse_route, min_s, &sink);
    double alone = rate(route_only, min_s, &sink);
    double rules_alone = rate(rules_only, min_s, &sink);
    printf("bench_route: %zu referrals, %zu bytes on average, one core\n", n_lines,
           bytes / n_lines);
    printf("  bare jansson parse          %12.0f /s\n", bare);
    printf("  parse + validate + route    %12.0f /s   (%.2fx the bare parse's time; target "
           "<= 1.5x)\n",
           full, bare / full);
    printf("  route alone                 %12.0f /s   (target >= 2,000,000): facts from the parsed "
           "event, rules, deadline, reasons\n",
           alone);
    printf("  rules alone                 %12.0f /s   from facts derived beforehand\n",
           rules_alone);
    printf("  (checksum %lu)\n", sink);
    for (size_t i = 0; i < n_lines; i++) {
        event_release(&events[i]);
        free(lines[i]);
    }
    policy_free(P);
    return 0;
}
