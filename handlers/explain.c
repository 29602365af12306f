/* explain: the routing dry run, `frontdoord --explain FILE` (events.md).
 *
 * The same event_parse() and route_decide_referral() the daemon uses, with no history
 * (rules 5 and 6 never match) and no Kafka or database. Output keys are written in the
 * order events.md lists them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "frontdoor/event.h"
#include "frontdoor/explain.h"
#include "frontdoor/policy.h"
#include "frontdoor/route.h"

#define ERRS_LEN 16384

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* Print one JSON object as a line; false when the output cannot be written. */
static bool print_line(FILE *out, json_t *obj)
{
    char *s = json_dumps(obj, JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!s)
        return false;
    bool ok = fputs(s, out) >= 0 && fputc('\n', out) != EOF;
    free(s);
    return ok;
}

static json_t *routed_line(const struct event *ev, const struct decision *d)
{
    char due[32];
    json_t *o = json_object();
    /* cause_event_id is the input's event_id as written */
    json_t *raw_id = json_object_get(ev->root, "event_id");
    json_object_set_new(o, "referral_id", json_string(ev->referral_id));
    json_object_set_new(o, "cause_event_id",
                        json_string(raw_id ? json_string_value(raw_id) : ev->event_id));
    json_object_set_new(o, "route", json_string(rules_route_name(d->route)));
    json_object_set_new(o, "destination", json_string(d->destination));
    json_object_set_new(o, "priority", json_string(rules_priority_name(d->priority)));
    json_object_set_new(o, "rule", json_string(d->rule));
    const char *when = route_format_due(d, due);
    json_object_set_new(o, "decision_due_at", when ? json_string(when) : json_null());
    json_t *reasons = json_array();
    for (size_t i = 0; i < d->n_reasons; i++)
        json_array_append_new(reasons, json_string(d->reasons[i]));
    json_object_set_new(o, "reasons", reasons);
    return o;
}

static json_t *unusable_line(long line, enum event_error e, const char *detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "line", json_integer(line));
    json_object_set_new(o, "error", json_string(event_error_code(e)));
    json_object_set_new(o, "error_detail", json_string(detail));
    return o;
}

int explain_run(const struct config *cfg, const char *path, FILE *out, FILE *err)
{
    if (!cfg || !path || !*path) {
        fprintf(err, "frontdoord: --explain needs a FILE (or - for standard input)\n");
        return EX_USAGE;
    }
    char *errs = malloc(ERRS_LEN);
    if (!errs)
        return EX_OSERR;
    struct policy *policy = NULL;
    if (policy_load(cfg, &policy, errs, ERRS_LEN) != 0) {
        fputs(errs, err);
        free(errs);
        return EX_CONFIG;
    }
    free(errs);

    bool from_stdin = strcmp(path, "-") == 0;
    FILE *in = from_stdin ? stdin : fopen(path, "r");
    if (!in) {
        fprintf(err, "frontdoord: cannot read %s: %s\n", path, strerror(errno));
        policy_free(policy);
        return EX_NOINPUT;
    }

    int rc = EX_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n')
            len--;
        if (len && line[len - 1] == '\r')
            len--;
        if (blank(line, len))
            continue; /* skipped, but counted in line numbers */
        struct event ev;
        char detail[256];
        enum event_error e = event_parse(line, len, EVENT_TOPIC_REFERRALS,
                                         cfg->kafka.max_message_bytes, &ev, detail, sizeof detail);
        json_t *o;
        if (e != EVENT_OK) {
            o = unusable_line(lineno, e, detail);
            rc = EX_DATAERR;
        } else {
            struct decision d;
            route_decide_referral(policy, &ev, NULL, &d);
            o = routed_line(&ev, &d);
            event_release(&ev);
        }
        if (!print_line(out, o)) {
            fprintf(err, "frontdoord: cannot write the output: %s\n", strerror(errno));
            rc = EX_IOERR;
            break;
        }
    }
    if (rc != EX_IOERR && ferror(in)) {
        fprintf(err, "frontdoord: cannot read %s: %s\n", path, strerror(errno));
        rc = EX_NOINPUT;
    }
    free(line);
    if (!from_stdin)
        fclose(in);
    policy_free(policy);
    if (rc != EX_IOERR && fflush(out) != 0) {
        fprintf(err, "frontdoord: cannot write the output: %s\n", strerror(errno));
        rc = EX_IOERR;
    }
    return rc;
}
