/* policy: everything a SIGHUP reloads for routing and messages, loaded and validated
 * together: the rule file, the directory and the notification templates.
 *
 * A reload builds a new policy with policy_load() and swaps it in only when that
 * succeeds, so a bad file never replaces a good policy. A loaded policy is read-only and
 * may be shared between threads. Ownership: the caller owns the policy and frees it with
 * policy_free(); decisions made with it may point into it (see route.h).
 */
#ifndef FRONTDOOR_POLICY_H
#define FRONTDOOR_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "frontdoor/config.h"
#include "frontdoor/directory.h"
#include "frontdoor/event.h"
#include "frontdoor/rules.h"

struct templates; /* template.h */

struct policy {
    struct directory *directory; /* owned */
    struct rules *rules;         /* owned */
    struct templates *templates; /* owned; NULL from policy_load_files() */
    /* Working-day deadlines by local day, from route_build_due_table(): owned; NULL (a
     * policy built by hand) means routing works them out each time. */
    struct route_due_table *due_table;
};

/* Load cfg->routing.directory and cfg->routing.rules (checked against each other) and
 * the templates of cfg->routing.templates (template_load_set). Every problem is appended to errs as
 * a "file:line: message" line. Returns 0 and *out, or -1 (then *out is NULL). */
int policy_load(const struct config *cfg, struct policy **out, char *errs, size_t errs_len);

/* Rules and directory only, with explicit paths (tests, tools): no templates. */
int policy_load_files(const char *rules_path, const char *directory_path, struct policy **out,
                      char *errs, size_t errs_len);

void policy_free(struct policy *p);

/* Warnings that do not stop a load (for --check-config), as "file: warning: ..." lines:
 * bank holidays ending within 180 days of now_s (UTC seconds). Returns their count. */
int policy_check_warnings(const struct policy *p, int64_t now_s, char *buf, size_t len);

/* The part of tier-1 check 8 that needs the directory: the destination of a
 * case.triaged event must be a directory team id, school-<urn> of a directory school,
 * or `referrer`. Returns EVENT_OK, or EVENT_INVALID_FIELD with a detail naming the field.
 * Other events pass. Call it right after event_parse(), before the database checks. */
enum event_error policy_check_event(const struct policy *p, const struct event *ev, char *detail,
                                    size_t detail_len);

#endif
