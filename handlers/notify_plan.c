/* notify_plan: the trigger table of notifications.md as pure functions (see
 * notify_plan.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "frontdoor/caltime.h"
#include "frontdoor/mobile.h"
#include "frontdoor/notify_plan.h"

/* What a family text says when the booking event left a field out. */
#define DEFAULT_LOCATION "the place in your invitation"
#define DEFAULT_WITH     "your Family Help worker"

const char *notify_state_name(enum notify_state s)
{
    static const char *const names[] = {"queued",  "sending", "sent",     "delivered",
                                        "skipped", "failed",  "cancelled"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static struct sms_window window_of(const struct directory *dir)
{
    return (struct sms_window){dir->calendar.zone, dir->sms_window_start_s, dir->sms_window_end_s};
}

/* ------------------------------------------------------------------ addresses */

static bool atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

bool notify_valid_email(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n < 3 || n > 254 || at == NULL || strchr(at + 1, '@') != NULL)
        return false;
    size_t local = (size_t)(at - s);
    if (local == 0 || local > 64 || s[0] == '.' || at[-1] == '.')
        return false;
    for (const char *p = s; p < at; p++)
        if (!(atext((unsigned char)*p) || (*p == '.' && p[1] != '.')))
            return false;
    /* domain: dot-separated labels of letters, digits and inner hyphens, two at least */
    const char *d = at + 1;
    int labels = 0;
    while (*d) {
        const char *e = d;
        while ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9') ||
               *e == '-')
            e++;
        if (e == d || e - d > 63 || *d == '-' || e[-1] == '-' || (*e != '.' && *e != '\0'))
            return false;
        labels++;
        d = *e == '.' ? e + 1 : e;
        if (*e == '.' && *d == '\0')
            return false;
    }
    return labels >= 2;
}

/* ------------------------------------------------------------------ values */

const char *notify_team_name(const struct directory *dir, const char *destination)
{
    if (destination == NULL)
        return "none";
    if (strcmp(destination, "referrer") == 0)
        return "the referrer";
    const struct dir_team *t = directory_find_team(dir, destination, strlen(destination));
    if (t != NULL)
        return t->name;
    if (strncmp(destination, "school-", 7) == 0) {
        const struct dir_school *s =
            directory_find_school(dir, destination + 7, strlen(destination + 7));
        if (s != NULL)
            return s->name;
    }
    return destination;
}

static int set_str(json_t *o, const char *key, const char *value)
{
    return json_object_set_new(o, key, json_string(value ? value : ""));
}

json_t *notify_case_values(const struct policy *p, const char *referral_id,
                           const struct casestore_case *c)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    char due[80] = "none";
    if (c != NULL && c->has_due) {
        char t[32], d[32];
        const struct tzone *z = p->directory->calendar.zone;
        snprintf(due, sizeof due, "%s on %s", template_format_time(z, c->due_at_s, t, sizeof t),
                 template_format_date(z, c->due_at_s, d, sizeof d));
    }
    int rc = 0;
    rc |= set_str(o, "referral_id", c ? referral_id : "none");
    rc |= set_str(o, "route", c ? rules_route_name(c->route) : "none");
    rc |= set_str(o, "destination", c ? c->destination : "none");
    rc |= set_str(o, "priority", c ? rules_priority_name(c->priority) : "none");
    rc |= set_str(o, "decision_due_at", due);
    rc |= set_str(o, "rule", c ? c->rule : "none");
    rc |= set_str(o, "team_name", c ? notify_team_name(p->directory, c->destination) : "none");
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------ rows */

void notify_plan_release(struct notify_plan *p)
{
    for (size_t i = 0; i < p->n_rows; i++)
        json_decref(p->rows[i].personalisation);
    p->n_rows = 0;
}

static void plan_init(struct notify_plan *p)
{
    memset(p, 0, sizeof *p);
}

/* A new row due as the timing rules say; NULL when out of memory or full. */
static struct notify_row *add_row(const struct notify_ctx *ctx, struct notify_plan *p,
                                  const char *template_name, enum template_channel ch, int64_t now)
{
    if (p->n_rows == NOTIFY_MAX_ROWS)
        return NULL;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    struct notify_row *r = &p->rows[p->n_rows++];
    memset(r, 0, sizeof *r);
    struct sms_window w = window_of(ctx->policy->directory);
    r->template_name = template_name;
    r->channel = ch;
    snprintf(r->language, sizeof r->language, "%s", TEMPLATE_DEFAULT_LANG);
    r->state = NOTIFY_QUEUED;
    r->created_ms = now;
    r->red = sendtime_is_red(template_name);
    r->not_before_ms = sendtime_not_before(&w, template_name, now);
    r->due_from_ms = r->not_before_ms > now ? r->not_before_ms : now;
    r->personalisation = o;
    return r;
}

static void skip(struct notify_row *r, const char *reason)
{
    r->state = NOTIFY_SKIPPED;
    r->skip_reason = reason;
    r->recipient[0] = '\0';
}

static void to_email(struct notify_row *r, const char *addr, const char *missing_reason)
{
    if (addr == NULL || addr[0] == '\0')
        skip(r, missing_reason);
    else if (!notify_valid_email(addr))
        skip(r, NOTIFY_SKIP_INVALID_EMAIL);
    else
        snprintf(r->recipient, sizeof r->recipient, "%s", addr);
}

static void to_phone(struct notify_row *r, const char *raw)
{
    const char *reason = NULL;
    if (raw == NULL || raw[0] == '\0') {
        skip(r, NOTIFY_SKIP_NO_RECIPIENT);
        return;
    }
    if (mobile_normalise(raw, r->recipient, sizeof r->recipient, &reason) != 0)
        skip(r, NOTIFY_SKIP_INVALID_MOBILE);
}

/* A staff team by id (email or phone); a team the directory lacks is no_recipient. */
static void to_team(const struct notify_ctx *ctx, struct notify_row *r, const char *team_id)
{
    const struct dir_team *t =
        team_id ? directory_find_team(ctx->policy->directory, team_id, strlen(team_id)) : NULL;
    if (t == NULL) {
        skip(r, NOTIFY_SKIP_NO_RECIPIENT);
        return;
    }
    if (r->channel == TEMPLATE_EMAIL)
        to_email(r, t->email, NOTIFY_SKIP_NO_RECIPIENT);
    else
        to_phone(r, t->phone);
}

/* A member of nested objects (NULL-terminated names), or NULL. */
static const json_t *jpath(const json_t *root, ...)
{
    va_list ap;
    va_start(ap, root);
    const char *name;
    while (root != NULL && (name = va_arg(ap, const char *)) != NULL)
        root = json_object_get(root, name);
    va_end(ap);
    return root;
}

/* A string value, or NULL (JSON null and "" count as missing). */
static const char *str_or_null(const json_t *j)
{
    const char *s = json_string_value(j);
    return s && *s ? s : NULL;
}

static const char *referrer_email(const struct event *referral)
{
    return referral ? str_or_null(jpath(referral->root, "referral", "referrer", "email", NULL))
                    : NULL;
}

/* The local day number of an instant in the directory's zone. */
static int64_t local_day(const struct directory *dir, int64_t t_ms)
{
    int sod;
    return caltime_days_from_civil(
        caltime_local_date(dir->calendar.zone, floor_div(t_ms, 1000), &sod));
}

/* A school case: the named Early Help Officer, or the cover officer while the directory
 * marks the officer absent on the day the notification is created. */
static void to_school(const struct notify_ctx *ctx, struct notify_row *r, const char *destination,
                      int64_t now)
{
    const struct directory *dir = ctx->policy->directory;
    const struct dir_school *s = NULL;
    if (destination && strncmp(destination, "school-", 7) == 0)
        s = directory_find_school(dir, destination + 7, strlen(destination + 7));
    if (s == NULL) {
        skip(r, NOTIFY_SKIP_NO_RECIPIENT);
        return;
    }
    bool cover;
    const struct dir_officer *o = directory_school_officer(s, local_day(dir, now), &cover);
    to_email(r, o->email, NOTIFY_SKIP_NO_RECIPIENT);
}

static int case_row(const struct notify_ctx *ctx, struct notify_plan *p, const char *template_name,
                    enum template_channel ch, int64_t now, const char *referral_id,
                    const struct casestore_case *c, struct notify_row **out)
{
    struct notify_row *r = add_row(ctx, p, template_name, ch, now);
    if (r == NULL)
        return -1;
    json_decref(r->personalisation);
    r->personalisation = notify_case_values(ctx->policy, referral_id, c);
    *out = r;
    return r->personalisation ? 0 : -1;
}

/* The rows of a decision (a new referral or a re-route). */
static int plan_decision(const struct notify_ctx *ctx, const struct casestore_change *ch,
                         const struct casestore_case *c, int64_t now, struct notify_plan *p)
{
    const char *rid = ch->referral_id;
    struct notify_row *r;
    switch (c->route) {
    case ROUTE_SOCIAL_CARE: {
        /* the duty team: its email and its phone */
        const char *team =
            directory_find_team(ctx->policy->directory, c->destination, strlen(c->destination))
                ? c->destination
                : NOTIFY_TEAM_DUTY;
        if (case_row(ctx, p, "safeguarding_alert", TEMPLATE_EMAIL, now, rid, c, &r) != 0)
            return -1;
        to_team(ctx, r, team);
        if (case_row(ctx, p, "safeguarding_alert", TEMPLATE_SMS, now, rid, c, &r) != 0)
            return -1;
        to_team(ctx, r, team);
        break;
    }
    case ROUTE_TARGETED_FAMILY_HELP:
    case ROUTE_FAMILY_HUB:
    case ROUTE_YOUTH_SUPPORT:
    case ROUTE_FAMILY_HELP_PANEL:
        if (case_row(ctx, p, "case_allocated", TEMPLATE_EMAIL, now, rid, c, &r) != 0)
            return -1;
        to_team(ctx, r, c->destination);
        break;
    case ROUTE_SCHOOL:
        if (case_row(ctx, p, "case_allocated", TEMPLATE_EMAIL, now, rid, c, &r) != 0)
            return -1;
        to_school(ctx, r, c->destination, now);
        break;
    case ROUTE_MANUAL_TRIAGE:
        if (case_row(ctx, p, "triage_needed", TEMPLATE_EMAIL, now, rid, c, &r) != 0)
            return -1;
        to_team(ctx, r, NOTIFY_TEAM_TRIAGE);
        break;
    case ROUTE_CONSENT_REQUIRED:
        if (case_row(ctx, p, "consent_needed", TEMPLATE_EMAIL, now, rid, c, &r) != 0)
            return -1;
        to_email(r, referrer_email(ch->referral), NOTIFY_SKIP_NO_EMAIL);
        break;
    case ROUTE_SIGNPOST:
        if (case_row(ctx, p, "signposted", TEMPLATE_EMAIL, now, rid, c, &r) != 0)
            return -1;
        to_email(r, referrer_email(ch->referral), NOTIFY_SKIP_NO_EMAIL);
        break;
    case ROUTE_COUNT:
    default:
        break;
    }
    /* every decision on a new referral except consent_required and signpost */
    if (ch->outcome == CASESTORE_ROUTED && c->route != ROUTE_CONSENT_REQUIRED &&
        c->route != ROUTE_SIGNPOST) {
        if (case_row(ctx, p, "referral_acknowledged", TEMPLATE_EMAIL, now, rid, c, &r) != 0)
            return -1;
        to_email(r, referrer_email(ch->referral), NOTIFY_SKIP_NO_EMAIL);
    }
    return 0;
}

/* The family's language: contact.language when it looks like an ISO 639-1 code (a
 * template in it is looked up at sending, with English as the fallback). */
static void family_language(const struct event *referral, char out[8])
{
    const char *lang =
        referral
            ? str_or_null(jpath(referral->root, "referral", "family", "contact", "language", NULL))
            : NULL;
    snprintf(out, 8, "%s", TEMPLATE_DEFAULT_LANG);
    if (lang == NULL)
        return;
    char a = lang[0] | 0x20, b = lang[0] ? lang[1] | 0x20 : 0;
    if (a >= 'a' && a <= 'z' && b >= 'a' && b <= 'z' &&
        (lang[2] == '\0' || lang[2] == '-' || lang[2] == '_')) {
        out[0] = a;
        out[1] = b;
        out[2] = '\0';
    }
}

/* A family text: consent first, then the number. */
static void to_family(struct notify_row *r, const struct event *referral)
{
    const json_t *family = referral ? jpath(referral->root, "referral", "family", NULL) : NULL;
    family_language(referral, r->language);
    if (!json_is_true(jpath(family, "consent", "sms", NULL))) {
        skip(r, NOTIFY_SKIP_NO_SMS_CONSENT);
        return;
    }
    const char *mobile = json_string_value(jpath(family, "contact", "mobile", NULL));
    const char *reason = NULL;
    if (mobile_normalise(mobile, r->recipient, sizeof r->recipient, &reason) != 0)
        skip(r, NOTIFY_SKIP_INVALID_MOBILE);
}

/* The family set of an appointment booking. */
static int appointment_values(const struct notify_ctx *ctx, const struct event *ev,
                              const struct casestore_case *c, json_t *o)
{
    const struct tzone *z = ctx->policy->directory->calendar.zone;
    const json_t *a = json_object_get(ev->root, "appointment");
    const char *loc = str_or_null(json_object_get(a, "location"));
    const char *with = str_or_null(json_object_get(a, "with"));
    int64_t starts_s = floor_div(ev->appointment_starts_at_ms, 1000);
    char date[32], time[32];
    int rc = 0;
    rc |= set_str(o, "appointment_date", template_format_date(z, starts_s, date, sizeof date));
    rc |= set_str(o, "appointment_time", template_format_time(z, starts_s, time, sizeof time));
    rc |= set_str(o, "appointment_location", loc ? loc : DEFAULT_LOCATION);
    rc |= set_str(o, "appointment_with", with ? with : DEFAULT_WITH);
    rc |= set_str(o, "team_name",
                  notify_team_name(ctx->policy->directory, c ? c->destination : NULL));
    return rc;
}

static int plan_booked(const struct notify_ctx *ctx, const struct casestore_change *ch, int64_t now,
                       struct notify_plan *p)
{
    const struct event *ev = ch->event;
    /* booking the same appointment again reschedules it: the pending reminder goes */
    p->cancel_appointment_id = ev->appointment_id;
    p->cancel_reminder_reason = "rescheduled";
    struct notify_row *r = add_row(ctx, p, "appointment_booked", TEMPLATE_SMS, now);
    if (r == NULL)
        return -1;
    r->appointment_id = ev->appointment_id;
    to_family(r, ch->referral);
    if (appointment_values(ctx, ev, ch->case_after, r->personalisation) != 0)
        return -1;

    struct sms_window w = window_of(ctx->policy->directory);
    int64_t due;
    if (!sendtime_reminder_due(&w, ev->occurred_at_ms, ev->appointment_starts_at_ms, &due))
        return 0;
    r = add_row(ctx, p, "appointment_reminder", TEMPLATE_SMS, now);
    if (r == NULL)
        return -1;
    /* Processed late (a replay, a backlog), a reminder still waits for the window. */
    r->not_before_ms = sendtime_window_next(&w, due > now ? due : now);
    r->due_from_ms = r->not_before_ms > now ? r->not_before_ms : now;
    r->appointment_id = ev->appointment_id;
    to_family(r, ch->referral);
    return appointment_values(ctx, ev, ch->case_after, r->personalisation);
}

static int plan_cancelled(const struct notify_ctx *ctx, const struct casestore_change *ch,
                          int64_t now, struct notify_plan *p)
{
    const struct event *ev = ch->event;
    p->cancel_appointment_id = ev->appointment_id;
    p->cancel_reminder_reason = "appointment_cancelled";
    struct notify_row *r = add_row(ctx, p, "appointment_cancelled", TEMPLATE_SMS, now);
    if (r == NULL)
        return -1;
    r->appointment_id = ev->appointment_id;
    r->from_booking = true;
    to_family(r, ch->referral);
    return set_str(r->personalisation, "team_name",
                   notify_team_name(ctx->policy->directory,
                                    ch->case_after ? ch->case_after->destination : NULL));
}

static int plan_closed(const struct notify_ctx *ctx, const struct casestore_change *ch, int64_t now,
                       struct notify_plan *p)
{
    p->cancel_family_texts = true;
    struct notify_row *r;
    if (case_row(ctx, p, "case_closed", TEMPLATE_EMAIL, now, ch->referral_id, ch->case_after, &r) !=
        0)
        return -1;
    to_email(r, referrer_email(ch->referral), NOTIFY_SKIP_NO_EMAIL);
    return 0;
}

static void unusable_key(const char *topic, int32_t partition, int64_t offset,
                         char out[NOTIFY_KEY_MAX])
{
    snprintf(out, NOTIFY_KEY_MAX, "unusable_event:%s:%d:%lld", topic, (int)partition,
             (long long)offset);
}

static int unusable_row(const struct notify_ctx *ctx, struct notify_plan *p, const char *topic,
                        int32_t partition, int64_t offset, const char *error_code, int64_t now)
{
    struct notify_row *r = add_row(ctx, p, "unusable_event", TEMPLATE_EMAIL, now);
    if (r == NULL)
        return -1;
    char part[16], off[24];
    snprintf(part, sizeof part, "%d", (int)partition);
    snprintf(off, sizeof off, "%lld", (long long)offset);
    unusable_key(topic, partition, offset, r->dedupe_key);
    to_team(ctx, r, NOTIFY_TEAM_TRIAGE);
    return set_str(r->personalisation, "topic", topic) |
           set_str(r->personalisation, "partition", part) |
           set_str(r->personalisation, "offset", off) |
           set_str(r->personalisation, "error", error_code);
}

int notify_plan_change(const struct notify_ctx *ctx, const struct casestore_change *ch,
                       struct notify_plan *out)
{
    plan_init(out);
    out->referral_id = ch->referral_id && ch->referral_id[0] ? ch->referral_id : NULL;
    out->cause_event_id = ch->event ? ch->event->event_id : NULL;
    int64_t now = sendtime_now_ms(ctx->clock);
    out->now_ms = now;
    int rc = 0;
    switch (ch->outcome) {
    case CASESTORE_ROUTED:
    case CASESTORE_REROUTED:
        if (ch->case_after != NULL)
            rc = plan_decision(ctx, ch, ch->case_after, now, out);
        break;
    case CASESTORE_CLOSED:
        rc = plan_closed(ctx, ch, now, out);
        break;
    case CASESTORE_APPLIED:
        if (ch->event && ch->event->type == EVENT_APPOINTMENT_BOOKED)
            rc = plan_booked(ctx, ch, now, out);
        else if (ch->event && ch->event->type == EVENT_APPOINTMENT_CANCELLED)
            rc = plan_cancelled(ctx, ch, now, out);
        break;
    case CASESTORE_REJECTED:
        /* Every unusable event on the referrals topic may be a child at risk. */
        if (ch->source && ch->source->kind == EVENT_TOPIC_REFERRALS) {
            /* no case, and the event id may be another event's (event_id_reused): the
             * event's coordinates key the alert */
            out->referral_id = NULL;
            out->cause_event_id = NULL;
            rc = unusable_row(ctx, out, ch->source->topic, ch->source->partition,
                              ch->source->offset, event_error_code(ch->error), now);
        }
        break;
    default:
        break;
    }
    if (rc != 0) {
        notify_plan_release(out);
        return -1;
    }
    return 0;
}

int notify_plan_unusable(const struct notify_ctx *ctx, const char *topic, int32_t partition,
                         int64_t offset, const char *error_code, struct notify_plan *out)
{
    plan_init(out);
    out->now_ms = sendtime_now_ms(ctx->clock);
    if (unusable_row(ctx, out, topic, partition, offset, error_code, out->now_ms) != 0) {
        notify_plan_release(out);
        return -1;
    }
    return 0;
}

void notify_overdue_key(const char *referral_id, int64_t due_at_s, char out[NOTIFY_KEY_MAX])
{
    snprintf(out, NOTIFY_KEY_MAX, "decision_overdue:%s:%lld", referral_id, (long long)due_at_s);
}

int notify_plan_overdue(const struct notify_ctx *ctx, const char *referral_id,
                        const struct casestore_case *c, struct notify_plan *out)
{
    plan_init(out);
    out->referral_id = referral_id;
    out->now_ms = sendtime_now_ms(ctx->clock);
    struct notify_row *r;
    if (case_row(ctx, out, "decision_overdue", TEMPLATE_EMAIL, out->now_ms, referral_id, c, &r) !=
        0) {
        notify_plan_release(out);
        return -1;
    }
    notify_overdue_key(referral_id, c->due_at_s, r->dedupe_key);
    to_team(ctx, r, NOTIFY_TEAM_MANAGER);
    return 0;
}
