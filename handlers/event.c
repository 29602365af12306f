/* event: tier-1 checks of events.md, in their order, on the raw bytes of one message.
 *
 * Reentrant (no state outside the call) and cheap after the JSON parse: a handful of
 * object lookups. Details name fields and limits only, never a value, since a value
 * may be personal data; jansson's own error text quotes the input, so it is not used. */
#include <stdio.h>
#include <string.h>

#include "frontdoor/caltime.h"
#include "frontdoor/event.h"
#include "frontdoor/route.h"
#include "frontdoor/rules.h"

static const char *const error_codes[] = {
    [EVENT_OK] = "ok",
    [EVENT_TOO_LARGE] = "too_large",
    [EVENT_INVALID_JSON] = "invalid_json",
    [EVENT_UNSUPPORTED_SCHEMA_VERSION] = "unsupported_schema_version",
    [EVENT_INVALID_EVENT_ID] = "invalid_event_id",
    [EVENT_UNKNOWN_TYPE] = "unknown_type",
    [EVENT_MISSING_FIELD] = "missing_field",
    [EVENT_INVALID_FIELD] = "invalid_field",
    [EVENT_ID_REUSED] = "event_id_reused",
    [EVENT_DUPLICATE_REFERRAL] = "duplicate_referral",
    [EVENT_UNKNOWN_CASE] = "unknown_case",
    [EVENT_INVALID_TRANSITION] = "invalid_transition",
};

const char *event_error_code(enum event_error e)
{
    return (unsigned)e < sizeof error_codes / sizeof error_codes[0] ? error_codes[e] : "unknown";
}

static const char *const type_names[] = {
    [EVENT_REFERRAL_RECEIVED] = "referral.received",
    [EVENT_CONSENT_GIVEN] = "consent.given",
    [EVENT_CASE_TRIAGED] = "case.triaged",
    [EVENT_CASE_STEPPED_UP] = "case.stepped_up",
    [EVENT_CASE_STEPPED_DOWN] = "case.stepped_down",
    [EVENT_CASE_NO_COORDINATOR] = "case.no_coordinator",
    [EVENT_APPOINTMENT_BOOKED] = "appointment.booked",
    [EVENT_APPOINTMENT_CANCELLED] = "appointment.cancelled",
    [EVENT_CASE_CLOSED] = "case.closed",
};
#define N_TYPES ((int)(sizeof type_names / sizeof type_names[0]))

const char *event_type_name(enum event_type t)
{
    return (unsigned)t < (unsigned)N_TYPES ? type_names[t] : "unknown";
}

static enum event_error fail(struct event *ev, enum event_error e, char *detail, size_t len,
                             const char *msg)
{
    if (detail && len)
        snprintf(detail, len, "%s", msg);
    json_decref(ev->root);
    memset(ev, 0, sizeof *ev);
    return e;
}

/* A member that is present and not null. */
static json_t *get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* A string without embedded NUL bytes (JSON allows \u0000; we never want one). */
static const char *clean_string(json_t *v, size_t *len)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (memchr(s, '\0', n))
        return NULL;
    if (len)
        *len = n;
    return s;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 8-4-4-4-12 hex digits, either case. */
static bool valid_uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

/* ^[A-Za-z0-9._/-]{1,64}$ */
static bool valid_referral_id(const char *s, size_t len)
{
    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '/' || c == '-'))
            return false;
    }
    return true;
}

static bool parse_time(json_t *v, int64_t *ms)
{
    size_t len;
    const char *s = clean_string(v, &len);
    return s && caltime_parse_datetime(s, ms);
}

/* An optional member: absent, null, or a string. */
static bool optional_string(json_t *obj, const char *key)
{
    json_t *v = get(obj, key);
    return !v || json_is_string(v);
}

/* Check 8: the fields of a case event. Returns a detail on failure, NULL when fine. */
static const char *check_case_fields(json_t *root, struct event *ev)
{
    json_t *obj;
    size_t len;
    switch (ev->type) {
    case EVENT_CONSENT_GIVEN:
        return NULL;
    case EVENT_CASE_TRIAGED: {
        obj = get(root, "triage");
        if (!json_is_object(obj))
            return "triage missing or not an object";
        const char *r = clean_string(get(obj, "route"), &len);
        enum route_kind rk;
        if (!r)
            return "triage.route missing or not a string";
        if (!rules_parse_route(r, len, &rk) || rk == ROUTE_MANUAL_TRIAGE)
            return "triage.route is not a route of the policy other than manual_triage";
        const char *d = clean_string(get(obj, "destination"), &len);
        if (!d || len == 0)
            return "triage.destination missing or not a non-empty string";
        ev->triage_route = r;
        ev->triage_destination = d;
        return NULL;
    }
    case EVENT_CASE_STEPPED_UP:
    case EVENT_CASE_STEPPED_DOWN:
    case EVENT_CASE_NO_COORDINATOR:
        return optional_string(root, "reason") ? NULL : "reason is not a string";
    case EVENT_CASE_CLOSED:
        return optional_string(root, "outcome") ? NULL : "outcome is not a string";
    case EVENT_APPOINTMENT_BOOKED:
    case EVENT_APPOINTMENT_CANCELLED: {
        obj = get(root, "appointment");
        if (!json_is_object(obj))
            return "appointment missing or not an object";
        const char *id = clean_string(get(obj, "id"), &len);
        if (!id || len == 0)
            return "appointment.id missing or not a non-empty string";
        ev->appointment_id = id;
        if (ev->type == EVENT_APPOINTMENT_CANCELLED)
            return NULL;
        if (!parse_time(get(obj, "starts_at"), &ev->appointment_starts_at_ms))
            return "appointment.starts_at missing or not an RFC 3339 date-time";
        if (!optional_string(obj, "location"))
            return "appointment.location is not a string";
        if (!optional_string(obj, "with"))
            return "appointment.with is not a string";
        return NULL;
    }
    case EVENT_REFERRAL_RECEIVED:
        break;
    }
    return NULL;
}

/* ---- referral.received: the fields routing reads, one walk over each object */

static bool key_is(const char *key, size_t klen, const char *lit, size_t llen)
{
    return klen == llen && memcmp(key, lit, llen) == 0;
}

#define KEY_IS(lit) key_is(key, klen, lit, sizeof lit - 1)

static const char *string_of(const json_t *v, size_t *len)
{
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

/* An id the case store can keep and compare: a string without an embedded NUL (JSON
 * allows \u0000, PostgreSQL text does not, and a C comparison would stop at it, so
 * "C-1\u0000x" would pass for child C-1). NULL otherwise. */
static const char *id_of(const json_t *v, size_t *len)
{
    const char *s = string_of(v, len);
    return s && memchr(s, '\0', *len) == NULL ? s : NULL;
}

/* A YYYY-MM-DD string (no embedded NUL) naming a real date. */
static bool date_of(const json_t *v, struct civil_date *d)
{
    size_t len;
    const char *s = string_of(v, &len);
    return s && len == 10 && strlen(s) == 10 && caltime_parse_date(s, d);
}

static void pick_child(json_t *child, struct event_referral *f)
{
    for (void *it = json_object_iter(child); it; it = json_object_iter_next(child, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        if (json_is_null(v))
            continue;
        switch (key[0]) {
        case 'i':
            if (KEY_IS("id")) {
                f->has_child_id = true;
                f->child_id = id_of(v, &f->child_id_len);
            }
            break;
        case 'd':
            if (KEY_IS("date_of_birth")) {
                f->has_dob = true;
                f->dob_valid = date_of(v, &f->dob);
            }
            break;
        case 'e':
            if (KEY_IS("expected_due_date")) {
                f->has_edd = true;
                f->edd_valid = date_of(v, &f->edd);
            }
            break;
        case 's':
            if (KEY_IS("send"))
                f->send = json_is_true(v);
            else if (KEY_IS("school_urn"))
                f->school_urn = string_of(v, &f->school_urn_len);
            break;
        case 'p':
            if (KEY_IS("postcode")) {
                size_t len;
                const char *pc = string_of(v, &len);
                if (!pc || !route_postcode_district(pc, len, f->district))
                    f->district[0] = '\0';
            }
            break;
        default:
            break;
        }
    }
}

static void pick_family(json_t *family, struct event_referral *f)
{
    for (void *it = json_object_iter(family); it; it = json_object_iter_next(family, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        if (json_is_null(v))
            continue;
        if (KEY_IS("id")) {
            f->family_id = id_of(v, &f->family_id_len);
        } else if (KEY_IS("consent") && json_is_object(v)) {
            json_t *early = json_object_get(v, "early_help");
            f->early_help = json_is_true(early);
        }
    }
}

/* The members of the referral object: returns referral.id (NULL when absent or null)
 * and fills *f with what routing reads. */
static json_t *pick_referral(json_t *ref, struct event_referral *f)
{
    json_t *id = NULL;
    for (void *it = json_object_iter(ref); it; it = json_object_iter_next(ref, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        if (json_is_null(v))
            continue;
        switch (key[0]) {
        case 'i':
            if (KEY_IS("id"))
                id = v;
            break;
        case 'c':
            if (KEY_IS("child") && json_is_object(v))
                pick_child(v, f);
            break;
        case 'f':
            if (KEY_IS("family") && json_is_object(v))
                pick_family(v, f);
            break;
        case 'l':
            if (KEY_IS("level_of_need")) {
                /* a JSON number with a whole value 1-4 ("2", true, 2.5 are not) */
                f->has_level = true;
                if (json_is_integer(v)) {
                    json_int_t n = json_integer_value(v);
                    if (n >= 1 && n <= 4)
                        f->level = (signed char)n;
                } else if (json_is_real(v)) {
                    double x = json_real_value(v);
                    if (x >= 1.0 && x <= 4.0 && x == (double)(int)x)
                        f->level = (signed char)x;
                }
            }
            break;
        case 'n':
            if (KEY_IS("needs"))
                f->needs = v;
            break;
        case 's':
            if (KEY_IS("safeguarding") && json_is_object(v))
                f->immediate_risk = json_is_true(json_object_get(v, "immediate_risk"));
            break;
        default:
            break;
        }
    }
    return id;
}

enum event_error event_parse(const char *bytes, size_t len, enum event_topic topic,
                             size_t max_bytes, struct event *ev, char *detail, size_t detail_len)
{
    char msg[160];
    memset(ev, 0, sizeof *ev);
    if (detail && detail_len)
        detail[0] = '\0';

    /* 1 */
    if (len > max_bytes) {
        snprintf(msg, sizeof msg, "message of %zu bytes is over the limit of %zu bytes", len,
                 max_bytes);
        return fail(ev, EVENT_TOO_LARGE, detail, detail_len, msg);
    }

    /* 2 */
    json_error_t jerr;
    ev->root = json_loadb(bytes, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!ev->root) {
        enum json_error_code code = json_error_code(&jerr);
        if (code == json_error_invalid_utf8)
            snprintf(msg, sizeof msg, "not valid UTF-8 (near byte %d)", jerr.position);
        else if (code == json_error_null_byte_in_key)
            snprintf(msg, sizeof msg, "an object key holds \\u0000 (line %d, column %d)", jerr.line,
                     jerr.column);
        else if (code == json_error_numeric_overflow)
            snprintf(msg, sizeof msg, "a number too large to read (line %d, column %d)", jerr.line,
                     jerr.column);
        else
            snprintf(msg, sizeof msg, "not JSON (line %d, column %d)", jerr.line, jerr.column);
        return fail(ev, EVENT_INVALID_JSON, detail, detail_len, msg);
    }
    json_t *root = ev->root;
    if (!json_is_object(root))
        return fail(ev, EVENT_INVALID_JSON, detail, detail_len, "not a JSON object");

    /* 3: the whole number 1 (1.0 is the same number) */
    json_t *sv = get(root, "schema_version");
    if (!sv)
        return fail(ev, EVENT_UNSUPPORTED_SCHEMA_VERSION, detail, detail_len,
                    "schema_version missing");
    if (!((json_is_integer(sv) && json_integer_value(sv) == 1) ||
          (json_is_real(sv) && json_real_value(sv) == 1.0)))
        return fail(ev, EVENT_UNSUPPORTED_SCHEMA_VERSION, detail, detail_len,
                    "schema_version is not 1");

    /* 4 */
    size_t n;
    const char *id = clean_string(get(root, "event_id"), &n);
    if (!id || !valid_uuid(id, n))
        return fail(ev, EVENT_INVALID_EVENT_ID, detail, detail_len,
                    id || get(root, "event_id") ? "event_id is not a UUID (8-4-4-4-12 hex digits)"
                                                : "event_id missing");
    for (size_t i = 0; i < 36; i++)
        ev->event_id[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] - 'A' + 'a') : id[i];
    ev->event_id[36] = '\0';

    /* 5 */
    const char *type = clean_string(get(root, "type"), &n);
    int t = -1;
    for (int i = 0; type && i < N_TYPES; i++)
        if (strlen(type_names[i]) == n && memcmp(type_names[i], type, n) == 0)
            t = i;
    if (t < 0)
        return fail(ev, EVENT_UNKNOWN_TYPE, detail, detail_len,
                    type ? "type is not a known event type" : "type missing or not a string");
    if ((t == EVENT_REFERRAL_RECEIVED) != (topic == EVENT_TOPIC_REFERRALS))
        return fail(ev, EVENT_UNKNOWN_TYPE, detail, detail_len,
                    topic == EVENT_TOPIC_REFERRALS
                        ? "type is not accepted on the referrals topic"
                        : "type is not accepted on the case-events topic");
    ev->type = (enum event_type)t;

    /* 6 */
    json_t *occ = get(root, "occurred_at");
    if (!occ)
        return fail(ev, EVENT_MISSING_FIELD, detail, detail_len, "occurred_at missing");
    if (!parse_time(occ, &ev->occurred_at_ms))
        return fail(ev, EVENT_INVALID_FIELD, detail, detail_len,
                    "occurred_at is not an RFC 3339 date-time");

    /* 7 */
    bool referral = ev->type == EVENT_REFERRAL_RECEIVED;
    const char *field = referral ? "referral.id" : "case.referral_id";
    json_t *rid;
    if (referral) {
        json_t *ref = json_object_get(root, "referral");
        rid = json_is_object(ref) ? pick_referral(ref, &ev->ref) : NULL;
    } else {
        rid = get(get(root, "case"), "referral_id");
    }
    if (!rid) {
        snprintf(msg, sizeof msg, "%s missing", field);
        return fail(ev, EVENT_MISSING_FIELD, detail, detail_len, msg);
    }
    const char *r = clean_string(rid, &n);
    if (!r || !valid_referral_id(r, n)) {
        snprintf(msg, sizeof msg, "%s does not match ^[A-Za-z0-9._/-]{1,64}$", field);
        return fail(ev, EVENT_INVALID_FIELD, detail, detail_len, msg);
    }
    ev->referral_id = r;

    /* 8 */
    if (!referral) {
        const char *bad = check_case_fields(root, ev);
        if (bad)
            return fail(ev, EVENT_INVALID_FIELD, detail, detail_len, bad);
    }
    return EVENT_OK;
}

void event_release(struct event *ev)
{
    if (!ev)
        return;
    json_decref(ev->root);
    memset(ev, 0, sizeof *ev);
}
