/* directory: directory.json loaded into lookup tables and validated, every problem
 * reported as "file:line: message" (jansson keeps no positions, so a small scanner finds
 * the line of a value by its path). Messages name ids and fields, never an officer's
 * name or contact details. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "frontdoor/directory.h"

/* ---------------------------------------------------------------- error list */

struct errlist {
    char *buf;
    size_t len;
    size_t used;
    int count;
};

static void errlist_init(struct errlist *e, char *buf, size_t len)
{
    e->buf = buf;
    e->len = len;
    e->used = 0;
    e->count = 0;
    if (buf && len)
        buf[0] = '\0';
}

__attribute__((format(printf, 2, 3))) static void errlist_add(struct errlist *e, const char *fmt,
                                                              ...)
{
    e->count++;
    if (!e->buf || e->used + 1 >= e->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->buf + e->used, e->len - e->used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= e->len - e->used - 1) {
        /* cut: keep the buffer terminated, stop adding */
        e->used = e->len - 1;
        e->buf[e->used] = '\0';
        return;
    }
    e->used += (size_t)n;
    e->buf[e->used++] = '\n';
    e->buf[e->used] = '\0';
}

/* ---------------------------------------------------------------- line finder */

/* Walks already-validated JSON text following a path such as "schools/3/urn". */
struct scan {
    const char *p, *end;
    int line;
};

static void scan_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) {
        if (*s->p == '\n')
            s->line++;
        s->p++;
    }
}

/* At '"': moves past the string; key points at its raw contents. */
static void scan_string(struct scan *s, const char **key, size_t *keylen)
{
    s->p++;
    const char *start = s->p;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\' && s->p + 1 < s->end)
            s->p++;
        s->p++;
    }
    if (key) {
        *key = start;
        *keylen = (size_t)(s->p - start);
    }
    if (s->p < s->end)
        s->p++;
}

static void scan_value(struct scan *s)
{
    scan_ws(s);
    if (s->p >= s->end)
        return;
    if (*s->p == '"') {
        scan_string(s, NULL, NULL);
        return;
    }
    if (*s->p == '{' || *s->p == '[') {
        char close = *s->p == '{' ? '}' : ']';
        s->p++;
        for (;;) {
            scan_ws(s);
            if (s->p >= s->end)
                return;
            if (*s->p == close) {
                s->p++;
                return;
            }
            if (*s->p == ',') {
                s->p++;
                continue;
            }
            if (close == '}') {
                scan_string(s, NULL, NULL);
                scan_ws(s);
                if (s->p < s->end && *s->p == ':')
                    s->p++;
            }
            scan_value(s);
        }
    }
    while (s->p < s->end && !strchr(",]} \t\r\n", *s->p))
        s->p++;
}

/* The line of the value at `path`, or of the deepest part of it that exists. */
static int scan_find(struct scan *s, const char *path)
{
    scan_ws(s);
    int here = s->line;
    if (*path == '\0' || s->p >= s->end)
        return here;
    const char *slash = strchr(path, '/');
    size_t clen = slash ? (size_t)(slash - path) : strlen(path);
    const char *rest = slash ? slash + 1 : path + clen;
    if (*s->p == '{') {
        s->p++;
        for (;;) {
            scan_ws(s);
            if (s->p >= s->end || *s->p != '"')
                return here;
            const char *key;
            size_t klen;
            scan_string(s, &key, &klen);
            scan_ws(s);
            if (s->p < s->end && *s->p == ':')
                s->p++;
            if (klen == clen && memcmp(key, path, clen) == 0)
                return scan_find(s, rest);
            scan_value(s);
            scan_ws(s);
            if (s->p < s->end && *s->p == ',')
                s->p++;
        }
    }
    if (*s->p == '[') {
        long want = strtol(path, NULL, 10);
        s->p++;
        for (long i = 0;; i++) {
            scan_ws(s);
            if (s->p >= s->end || *s->p == ']')
                return here;
            if (i == want)
                return scan_find(s, rest);
            scan_value(s);
            scan_ws(s);
            if (s->p < s->end && *s->p == ',')
                s->p++;
        }
    }
    return here;
}

/* ---------------------------------------------------------------- loading context */

struct loader {
    const char *text;
    size_t len;
    const char *path;
    struct errlist *errs;
};

__attribute__((format(printf, 3, 4))) static int
line_of(const struct loader *ld, char *pathbuf /* 128 bytes */, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pathbuf, 128, fmt, ap);
    va_end(ap);
    struct scan s = {ld->text, ld->text + ld->len, 1};
    return scan_find(&s, pathbuf);
}

/* Report a problem at a JSON path: "file:line: what (at path)". */
#define DIR_ERR(ld, msg, ...)                                                                      \
    do {                                                                                           \
        char pb_[128];                                                                             \
        int ln_ = line_of((ld), pb_, __VA_ARGS__);                                                 \
        errlist_add((ld)->errs, "%s:%d: %s: %s", (ld)->path, ln_, pb_, (msg));                     \
    } while (0)

static bool valid_id(const char *s, size_t len)
{
    if (len == 0 || len > DIRECTORY_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* 1-2 letters, a digit, optionally a letter or digit: an upper-case outward code. */
static bool valid_district(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && i < 2 && s[i] >= 'A' && s[i] <= 'Z')
        i++;
    if (i == 0 || i >= len || !isdigit((unsigned char)s[i]))
        return false;
    i++;
    if (i < len && (isdigit((unsigned char)s[i]) || (s[i] >= 'A' && s[i] <= 'Z')))
        i++;
    return i == len;
}

/* A required string member; NULL (and an error) when missing or not a non-empty string. */
static char *req_string(const struct loader *ld, json_t *obj, const char *key, const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        DIR_ERR(ld, v ? "must be a non-empty string" : "missing", "%s/%s", where, key);
        return NULL;
    }
    return strdup(json_string_value(v));
}

static char *opt_string(const struct loader *ld, json_t *obj, const char *key, const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return NULL;
    return req_string(ld, obj, key, where);
}

static char *req_id(const struct loader *ld, json_t *obj, const char *key, const char *where)
{
    char *s = req_string(ld, obj, key, where);
    if (s && !valid_id(s, strlen(s))) {
        DIR_ERR(ld, "must be 1-64 characters of A-Z a-z 0-9 . _ -", "%s/%s", where, key);
        free(s);
        return NULL;
    }
    return s;
}

/* "HH:MM" to seconds of the day; -1 when malformed. */
static int parse_hhmm(const char *s)
{
    if (!s || strlen(s) != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
        s[2] != ':' || !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0))
        return -1;
    return h * 3600 + m * 60;
}

static int cmp_district(const void *a, const void *b)
{
    return strcmp(((const struct dir_district *)a)->code, ((const struct dir_district *)b)->code);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A district code as a number that sorts as strcmp() does: its bytes, NUL padded (a
 * code is stored with zeros after it), big end first. Every referral looks one up. */
static uint64_t district_key(const char code[DIRECTORY_DISTRICT_MAX + 1])
{
    uint64_t k = 0;
    for (int i = 0; i <= DIRECTORY_DISTRICT_MAX; i++)
        k = k << 8 | (unsigned char)code[i];
    return k;
}

/* Add (or complete) a district entry; the same district twice for localities, or twice
 * for hubs, is ambiguous and refused. */
static void add_district(struct loader *ld, struct directory *dir, size_t *cap, const char *code,
                         const struct dir_locality *loc, const struct dir_team *hub,
                         const char *pathfmt, size_t i, size_t j)
{
    for (size_t k = 0; k < dir->n_districts; k++) {
        struct dir_district *d = &dir->districts[k];
        if (strcmp(d->code, code) != 0)
            continue;
        if ((loc && d->locality) || (hub && d->hub)) {
            char msg[96];
            snprintf(msg, sizeof msg, "district %s is listed twice", code);
            DIR_ERR(ld, msg, pathfmt, i, j);
            return;
        }
        if (loc)
            d->locality = loc;
        if (hub)
            d->hub = hub;
        return;
    }
    if (dir->n_districts == *cap) {
        *cap = *cap ? *cap * 2 : 32;
        dir->districts = realloc(dir->districts, *cap * sizeof *dir->districts);
        if (!dir->districts)
            abort(); /* out of memory at load: nothing sensible to do */
    }
    struct dir_district *d = &dir->districts[dir->n_districts++];
    memset(d, 0, sizeof *d);
    strcpy(d->code, code);
    d->key = district_key(d->code);
    d->locality = loc;
    d->hub = hub;
}

static void load_districts(struct loader *ld, struct directory *dir, size_t *cap, json_t *arr,
                           const struct dir_locality *loc, const struct dir_team *hub,
                           const char *what, size_t i)
{
    char pathfmt[64];
    snprintf(pathfmt, sizeof pathfmt, "%s/%%zu/postcode_districts/%%zu", what);
    if (!json_is_array(arr)) {
        char pb[128];
        int ln = line_of(ld, pb, "%s/%zu/postcode_districts", what, i);
        errlist_add(ld->errs, "%s:%d: %s: must be an array of postcode districts", ld->path, ln,
                    pb);
        return;
    }
    size_t j;
    json_t *v;
    json_array_foreach(arr, j, v)
    {
        const char *s = json_string_value(v);
        if (!s || !valid_district(s, json_string_length(v))) {
            DIR_ERR(ld, "not an upper-case postcode district such as LA9 or CA11", pathfmt, i, j);
            continue;
        }
        add_district(ld, dir, cap, s, loc, hub, pathfmt, i, j);
    }
}

static void load_officer(struct loader *ld, json_t *obj, struct dir_officer *o, const char *where)
{
    if (!json_is_object(obj)) {
        DIR_ERR(ld, "must be an object with name and email", "%s", where);
        return;
    }
    o->name = req_string(ld, obj, "name", where);
    o->email = req_string(ld, obj, "email", where);
    o->phone = opt_string(ld, obj, "phone", where);
}

static void free_officer(struct dir_officer *o)
{
    free(o->name);
    free(o->email);
    free(o->phone);
}

static void load_calendar(struct loader *ld, struct directory *dir, json_t *cal)
{
    if (!json_is_object(cal)) {
        DIR_ERR(ld, cal ? "must be an object" : "missing", "calendar");
        return;
    }
    char msg[300];
    json_t *tz = json_object_get(cal, "timezone");
    if (!json_is_string(tz)) {
        DIR_ERR(ld, tz ? "must be a string" : "missing", "calendar/timezone");
    } else {
        char err[200];
        if (caltime_load_zone(json_string_value(tz), &dir->calendar.zone, err, sizeof err) != 0) {
            snprintf(msg, sizeof msg, "cannot load time zone: %s", err);
            DIR_ERR(ld, msg, "calendar/timezone");
        }
    }

    static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    json_t *wd = json_object_get(cal, "working_days");
    if (!json_is_array(wd) || json_array_size(wd) == 0) {
        DIR_ERR(ld, "must be a non-empty array of day names (Mon ... Sun)",
                "calendar/working_days");
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(wd, i, v)
        {
            const char *s = json_string_value(v);
            int d = -1;
            for (int k = 0; s && k < 7; k++)
                if (strcmp(s, days[k]) == 0)
                    d = k;
            if (d < 0) {
                DIR_ERR(ld, "not a day name (Mon, Tue, Wed, Thu, Fri, Sat, Sun)",
                        "calendar/working_days/%zu", i);
                continue;
            }
            if (dir->calendar.working_days & (1u << d))
                DIR_ERR(ld, "day listed twice", "calendar/working_days/%zu", i);
            dir->calendar.working_days |= 1u << d;
        }
    }

    json_t *bh = json_object_get(cal, "bank_holidays");
    if (!json_is_array(bh)) {
        DIR_ERR(ld, bh ? "must be an array of YYYY-MM-DD dates" : "missing",
                "calendar/bank_holidays");
    } else {
        size_t n = json_array_size(bh);
        dir->calendar.holidays = calloc(n ? n : 1, sizeof(int64_t));
        if (!dir->calendar.holidays)
            abort();
        size_t i;
        json_t *v;
        json_array_foreach(bh, i, v)
        {
            struct civil_date d;
            const char *s = json_string_value(v);
            if (!s || !caltime_parse_date(s, &d)) {
                DIR_ERR(ld, "not a YYYY-MM-DD date", "calendar/bank_holidays/%zu", i);
                continue;
            }
            int64_t day = caltime_days_from_civil(d);
            bool dup = false;
            for (size_t k = 0; k < dir->calendar.n_holidays; k++)
                dup |= dir->calendar.holidays[k] == day;
            if (dup) {
                DIR_ERR(ld, "date listed twice", "calendar/bank_holidays/%zu", i);
                continue;
            }
            dir->calendar.holidays[dir->calendar.n_holidays++] = day;
        }
        qsort(dir->calendar.holidays, dir->calendar.n_holidays, sizeof(int64_t), cmp_i64);
    }

    static const char *const windows[] = {"working_hours", "family_sms_window"};
    int *starts[] = {&dir->working_start_s, &dir->sms_window_start_s};
    int *ends[] = {&dir->working_end_s, &dir->sms_window_end_s};
    for (int k = 0; k < 2; k++) {
        json_t *w = json_object_get(cal, windows[k]);
        int a = parse_hhmm(json_string_value(json_object_get(w, "start")));
        int b = parse_hhmm(json_string_value(json_object_get(w, "end")));
        if (a < 0 || b < 0 || a >= b) {
            DIR_ERR(ld, "must be {\"start\": \"HH:MM\", \"end\": \"HH:MM\"} with start before end",
                    "calendar/%s", windows[k]);
            continue;
        }
        *starts[k] = a;
        *ends[k] = b;
    }
}

static void load_localities(struct loader *ld, struct directory *dir, json_t *arr)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        DIR_ERR(ld, "must be a non-empty array", "localities");
        return;
    }
    dir->localities = calloc(json_array_size(arr), sizeof *dir->localities);
    if (!dir->localities)
        abort();
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char where[48];
        snprintf(where, sizeof where, "localities/%zu", i);
        if (!json_is_object(v)) {
            DIR_ERR(ld, "must be an object", "%s", where);
            continue;
        }
        struct dir_locality *l = &dir->localities[dir->n_localities++];
        char pb[128];
        l->line = line_of(ld, pb, "%s", where);
        l->id = req_id(ld, v, "id", where);
        l->id_len = l->id ? strlen(l->id) : 0;
        l->name = req_string(ld, v, "name", where);
        l->targeted_team_id = req_id(ld, v, "targeted_team", where);
        for (size_t k = 0; l->id && k + 1 < dir->n_localities; k++)
            if (dir->localities[k].id && strcmp(dir->localities[k].id, l->id) == 0)
                DIR_ERR(ld, "locality id listed twice", "%s/id", where);
    }
}

static void load_teams(struct loader *ld, struct directory *dir, json_t *arr)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        DIR_ERR(ld, "must be a non-empty array", "teams");
        return;
    }
    dir->teams = calloc(json_array_size(arr), sizeof *dir->teams);
    if (!dir->teams)
        abort();
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char where[48];
        snprintf(where, sizeof where, "teams/%zu", i);
        if (!json_is_object(v)) {
            DIR_ERR(ld, "must be an object", "%s", where);
            continue;
        }
        struct dir_team *t = &dir->teams[dir->n_teams++];
        char pb[128];
        t->line = line_of(ld, pb, "%s", where);
        t->id = req_id(ld, v, "id", where);
        t->id_len = t->id ? strlen(t->id) : 0;
        t->kind = req_string(ld, v, "kind", where);
        t->name = req_string(ld, v, "name", where);
        t->email = req_string(ld, v, "email", where);
        t->phone = opt_string(ld, v, "phone", where);
        if (t->id && (strcmp(t->id, "referrer") == 0 || strncmp(t->id, "school-", 7) == 0))
            DIR_ERR(ld, "team id must not be `referrer` or start with `school-` (reserved)",
                    "%s/id", where);
        for (size_t k = 0; t->id && k + 1 < dir->n_teams; k++)
            if (dir->teams[k].id && strcmp(dir->teams[k].id, t->id) == 0)
                DIR_ERR(ld, "team id listed twice", "%s/id", where);
    }
}

static void load_schools(struct loader *ld, struct directory *dir, json_t *arr)
{
    if (!arr)
        return; /* a directory without schools routes nothing to schools */
    if (!json_is_array(arr)) {
        DIR_ERR(ld, "must be an array", "schools");
        return;
    }
    dir->schools = calloc(json_array_size(arr) + 1, sizeof *dir->schools);
    if (!dir->schools)
        abort();
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char where[48], w2[80];
        snprintf(where, sizeof where, "schools/%zu", i);
        if (!json_is_object(v)) {
            DIR_ERR(ld, "must be an object", "%s", where);
            continue;
        }
        struct dir_school *s = &dir->schools[dir->n_schools++];
        char pb[128];
        s->line = line_of(ld, pb, "%s", where);
        s->urn = req_id(ld, v, "urn", where);
        s->urn_len = s->urn ? strlen(s->urn) : 0;
        s->name = req_string(ld, v, "name", where);
        if (s->urn) {
            size_t n = strlen(s->urn) + 8;
            s->destination = malloc(n);
            if (!s->destination)
                abort();
            snprintf(s->destination, n, "school-%s", s->urn);
            for (size_t k = 0; k + 1 < dir->n_schools; k++)
                if (dir->schools[k].urn && strcmp(dir->schools[k].urn, s->urn) == 0)
                    DIR_ERR(ld, "school urn listed twice", "%s/urn", where);
        }
        json_t *loc = json_object_get(v, "locality");
        if (loc && !json_is_null(loc)) {
            const char *id = json_string_value(loc);
            s->locality = id ? directory_find_locality(dir, id, strlen(id)) : NULL;
            if (!s->locality)
                DIR_ERR(ld, "not a locality id of this directory", "%s/locality", where);
        }
        snprintf(w2, sizeof w2, "%s/early_help_officer", where);
        load_officer(ld, json_object_get(v, "early_help_officer"), &s->officer, w2);
        json_t *cover = json_object_get(v, "cover_officer");
        if (cover && !json_is_null(cover)) {
            snprintf(w2, sizeof w2, "%s/cover_officer", where);
            load_officer(ld, cover, &s->cover, w2);
            s->has_cover = true;
        }
        json_t *abs = json_object_get(v, "officer_absent");
        if (abs && !json_is_null(abs)) {
            struct civil_date a, b;
            const char *fa = json_string_value(json_object_get(abs, "from"));
            const char *fb = json_string_value(json_object_get(abs, "until"));
            if (!fa || !fb || !caltime_parse_date(fa, &a) || !caltime_parse_date(fb, &b)) {
                DIR_ERR(ld, "must be {\"from\": \"YYYY-MM-DD\", \"until\": \"YYYY-MM-DD\"}",
                        "%s/officer_absent", where);
            } else if (caltime_days_from_civil(a) > caltime_days_from_civil(b)) {
                DIR_ERR(ld, "from is after until", "%s/officer_absent", where);
            } else if (!s->has_cover) {
                DIR_ERR(ld, "an absent officer needs a cover_officer", "%s/officer_absent", where);
            } else {
                s->has_absence = true;
                s->absent_from = caltime_days_from_civil(a);
                s->absent_until = caltime_days_from_civil(b);
            }
        }
    }
}

/* Second pass: references between localities, teams and districts. */
static void link_directory(struct loader *ld, struct directory *dir, json_t *root)
{
    size_t cap = 0;
    json_t *locs = json_object_get(root, "localities");
    for (size_t i = 0; i < dir->n_localities; i++) {
        struct dir_locality *l = &dir->localities[i];
        json_t *lv = json_array_get(locs, i);
        if (l->targeted_team_id) {
            l->targeted_team =
                directory_find_team(dir, l->targeted_team_id, strlen(l->targeted_team_id));
            if (!l->targeted_team)
                DIR_ERR(ld, "not a team id of this directory", "localities/%zu/targeted_team", i);
        }
        load_districts(ld, dir, &cap, json_object_get(lv, "postcode_districts"), l, NULL,
                       "localities", i);
    }
    json_t *teams = json_object_get(root, "teams");
    for (size_t i = 0; i < dir->n_teams; i++) {
        struct dir_team *t = &dir->teams[i];
        json_t *tv = json_array_get(teams, i);
        json_t *loc = json_object_get(tv, "locality");
        if (loc && !json_is_null(loc)) {
            const char *id = json_string_value(loc);
            t->locality = id ? directory_find_locality(dir, id, strlen(id)) : NULL;
            if (!t->locality)
                DIR_ERR(ld, "not a locality id of this directory", "teams/%zu/locality", i);
        }
        json_t *pd = json_object_get(tv, "postcode_districts");
        bool hub = t->kind && strcmp(t->kind, "family_hub") == 0;
        if (pd && !json_is_null(pd)) {
            if (!hub)
                DIR_ERR(ld, "only family_hub teams cover postcode districts",
                        "teams/%zu/postcode_districts", i);
            else
                load_districts(ld, dir, &cap, pd, NULL, t, "teams", i);
        }
    }
    for (size_t i = 0; i < dir->n_schools; i++) {
        const struct dir_school *s = &dir->schools[i];
        if (s->destination && directory_find_team(dir, s->destination, strlen(s->destination)))
            DIR_ERR(ld, "school destination collides with a team id", "schools/%zu/urn", i);
    }
    if (dir->n_districts)
        qsort(dir->districts, dir->n_districts, sizeof *dir->districts, cmp_district);
}

int directory_parse(const char *text, size_t len, const char *path, struct directory **out,
                    char *errs, size_t errs_len)
{
    struct errlist el;
    errlist_init(&el, errs, errs_len);
    *out = NULL;
    struct loader ld = {text, len, path, &el};

    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        errlist_add(&el, "%s:%d: not valid JSON: %s", path, jerr.line > 0 ? jerr.line : 1,
                    jerr.text);
        return -1;
    }
    struct directory *dir = calloc(1, sizeof *dir);
    if (!dir)
        abort();
    dir->path = strdup(path);
    if (!json_is_object(root)) {
        errlist_add(&el, "%s:1: the directory must be a JSON object", path);
        goto done;
    }
    json_t *ver = json_object_get(root, "version");
    if (ver && !(json_is_integer(ver) && json_integer_value(ver) == 1))
        DIR_ERR(&ld, "must be 1", "version");

    load_localities(&ld, dir, json_object_get(root, "localities"));
    load_teams(&ld, dir, json_object_get(root, "teams"));
    load_schools(&ld, dir, json_object_get(root, "schools"));
    load_calendar(&ld, dir, json_object_get(root, "calendar"));
    link_directory(&ld, dir, root);
    if (dir->calendar.working_days == 0 && el.count == 0)
        DIR_ERR(&ld, "no working day", "calendar/working_days");

done:
    json_decref(root);
    if (el.count) {
        directory_free(dir);
        return -1;
    }
    *out = dir;
    return 0;
}

int directory_load(const char *path, struct directory **out, char *errs, size_t errs_len)
{
    struct errlist el;
    errlist_init(&el, errs, errs_len);
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        errlist_add(&el, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                errlist_add(&el, "%s:0: out of memory", path);
                return -1;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errlist_add(&el, "%s:0: read error", path);
        return -1;
    }
    int rc = directory_parse(buf, len, path, out, errs, errs_len);
    free(buf);
    return rc;
}

void directory_free(struct directory *dir)
{
    if (!dir)
        return;
    for (size_t i = 0; i < dir->n_localities; i++) {
        free(dir->localities[i].id);
        free(dir->localities[i].name);
        free(dir->localities[i].targeted_team_id);
    }
    for (size_t i = 0; i < dir->n_teams; i++) {
        struct dir_team *t = &dir->teams[i];
        free(t->id);
        free(t->kind);
        free(t->name);
        free(t->email);
        free(t->phone);
    }
    for (size_t i = 0; i < dir->n_schools; i++) {
        struct dir_school *s = &dir->schools[i];
        free(s->urn);
        free(s->name);
        free(s->destination);
        free_officer(&s->officer);
        free_officer(&s->cover);
    }
    free(dir->localities);
    free(dir->teams);
    free(dir->schools);
    free(dir->districts);
    free(dir->calendar.holidays);
    caltime_free_zone(dir->calendar.zone);
    free(dir->path);
    free(dir);
}

/* Lengths are kept at load, so a lookup is a length compare and, rarely, a memcmp. */
/* Inline, last byte first: ids and URNs of a directory share their first bytes, and a
 * library call cost more than the comparison (every referral looks up its school). */
static bool eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (!a || alen != blen)
        return false;
    for (size_t i = blen; i > 0; i--)
        if (a[i - 1] != b[i - 1])
            return false;
    return true;
}

const struct dir_team *directory_find_team(const struct directory *dir, const char *id, size_t len)
{
    for (size_t i = 0; i < dir->n_teams; i++)
        if (eq(dir->teams[i].id, dir->teams[i].id_len, id, len))
            return &dir->teams[i];
    return NULL;
}

const struct dir_school *directory_find_school(const struct directory *dir, const char *urn,
                                               size_t len)
{
    for (size_t i = 0; i < dir->n_schools; i++)
        if (eq(dir->schools[i].urn, dir->schools[i].urn_len, urn, len))
            return &dir->schools[i];
    return NULL;
}

const struct dir_locality *directory_find_locality(const struct directory *dir, const char *id,
                                                   size_t len)
{
    for (size_t i = 0; i < dir->n_localities; i++)
        if (eq(dir->localities[i].id, dir->localities[i].id_len, id, len))
            return &dir->localities[i];
    return NULL;
}

const struct dir_district *directory_find_district(const struct directory *dir, const char *code,
                                                   size_t len)
{
    size_t lo = 0, hi = dir->n_districts;
    if (len > DIRECTORY_DISTRICT_MAX)
        return NULL;
    char key[DIRECTORY_DISTRICT_MAX + 1] = {0};
    memcpy(key, code, len);
    uint64_t k = district_key(key);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t c = dir->districts[mid].key;
        if (c == k)
            return &dir->districts[mid];
        if (c < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool directory_has_destination(const struct directory *dir, const char *dest, size_t len)
{
    if (len == 8 && memcmp(dest, "referrer", 8) == 0)
        return true;
    if (len > 7 && memcmp(dest, "school-", 7) == 0)
        return directory_find_school(dir, dest + 7, len - 7) != NULL;
    return directory_find_team(dir, dest, len) != NULL;
}

const struct dir_officer *directory_school_officer(const struct dir_school *school, int64_t day,
                                                   bool *is_cover)
{
    bool cover = school->has_absence && school->has_cover && school->absent_from <= day &&
                 day <= school->absent_until;
    if (is_cover)
        *is_cover = cover;
    return cover ? &school->cover : &school->officer;
}

int directory_check_warnings(const struct directory *dir, int64_t now_s, char *buf, size_t len)
{
    struct errlist el;
    el.buf = buf;
    el.len = len;
    el.used = buf && len ? strlen(buf) : 0; /* append */
    el.count = 0;
    int64_t today = now_s >= 0 ? now_s / 86400 : -((-now_s + 86399) / 86400);
    if (dir->calendar.zone) {
        struct civil_date d = caltime_local_date(dir->calendar.zone, now_s, NULL);
        today = caltime_days_from_civil(d);
    }
    if (dir->calendar.n_holidays == 0) {
        errlist_add(&el, "%s: warning: calendar.bank_holidays is empty", dir->path);
        return el.count;
    }
    int64_t last = dir->calendar.holidays[dir->calendar.n_holidays - 1];
    if (last < today + 180) {
        struct civil_date d = caltime_civil_from_days(last);
        errlist_add(&el,
                    "%s: warning: calendar.bank_holidays end on %04d-%02d-%02d, within 180 days; "
                    "add the coming year's bank holidays",
                    dir->path, d.year, d.month, d.day);
    }
    return el.count;
}
