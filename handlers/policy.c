/* policy: the rule file and the directory, loaded and checked against each other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/policy.h"
#include "frontdoor/route.h"
#include "frontdoor/template.h"

int policy_load_files(const char *rules_path, const char *directory_path, struct policy **out,
                      char *errs, size_t errs_len)
{
    *out = NULL;
    if (errs && errs_len)
        errs[0] = '\0';
    struct directory *dir = NULL;
    struct rules *rules = NULL;
    int drc = directory_load(directory_path, &dir, errs, errs_len);
    /* The rules are read even when the directory is bad, so one run shows every problem;
     * without a directory their destinations cannot be checked. */
    size_t used = errs ? strlen(errs) : 0;
    int rrc = rules_load(rules_path, dir, &rules, errs ? errs + used : NULL,
                         errs_len > used ? errs_len - used : 0);
    if (drc != 0 || rrc != 0) {
        directory_free(dir);
        rules_free(rules);
        return -1;
    }
    struct policy *p = calloc(1, sizeof *p);
    if (!p) {
        directory_free(dir);
        rules_free(rules);
        if (errs && errs_len)
            snprintf(errs, errs_len, "out of memory\n");
        return -1;
    }
    p->directory = dir;
    p->rules = rules;
    if (route_build_due_table(p) != 0) {
        policy_free(p);
        if (errs && errs_len)
            snprintf(errs, errs_len, "out of memory\n");
        return -1;
    }
    *out = p;
    return 0;
}

int policy_load(const struct config *cfg, struct policy **out, char *errs, size_t errs_len)
{
    if (!cfg->routing.rules || !cfg->routing.directory) {
        *out = NULL;
        if (errs && errs_len)
            snprintf(errs, errs_len, "%s:0: [routing] needs `rules` and `directory`\n",
                     cfg->path ? cfg->path : "configuration");
        return -1;
    }
    if (policy_load_files(cfg->routing.rules, cfg->routing.directory, out, errs, errs_len) != 0) {
        /* Still read the templates, so one run (--check-config, a refused reload) shows
         * every problem. */
        if (cfg->routing.templates != NULL) {
            size_t used = errs ? strlen(errs) : 0;
            struct templates *t = NULL;
            template_load_set(cfg->routing.templates, &t, errs ? errs + used : NULL,
                              errs_len > used ? errs_len - used : 0);
            template_free_set(t);
        }
        return -1;
    }
    /* NULL only in tests that build a struct config by hand: config_load always sets it. */
    if (cfg->routing.templates == NULL)
        return 0;
    size_t used = errs ? strlen(errs) : 0;
    if (template_load_set(cfg->routing.templates, &(*out)->templates, errs ? errs + used : NULL,
                          errs_len > used ? errs_len - used : 0) != 0) {
        policy_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

void policy_free(struct policy *p)
{
    if (!p)
        return;
    directory_free(p->directory);
    rules_free(p->rules);
    template_free_set(p->templates);
    route_free_due_table(p->due_table);
    free(p);
}

int policy_check_warnings(const struct policy *p, int64_t now_s, char *buf, size_t len)
{
    return directory_check_warnings(p->directory, now_s, buf, len);
}

enum event_error policy_check_event(const struct policy *p, const struct event *ev, char *detail,
                                    size_t detail_len)
{
    if (ev->type != EVENT_CASE_TRIAGED)
        return EVENT_OK;
    const char *d = ev->triage_destination;
    if (!d || !directory_has_destination(p->directory, d, strlen(d))) {
        if (detail && detail_len)
            snprintf(detail, detail_len,
                     "triage.destination is not a team, school-<urn> or referrer of the directory");
        return EVENT_INVALID_FIELD;
    }
    return EVENT_OK;
}
