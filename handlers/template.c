/* template: load, validate, look up and render notification templates.
 *
 * What a template may say is decided here, at load, by the placeholder sets below: a staff
 * template can only name ids, the route, priority, deadline and rule, so free text from a
 * referral can never reach a staff message, whoever edits the files. Values are cleaned
 * of control characters when rendered, so none can start a new (header) line.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "frontdoor/template.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ the catalogue */

/* Placeholders of a case: ids and the decision, nothing a referrer wrote. */
#define CASE_FIELDS                                                                                \
    "referral_id", "route", "destination", "priority", "decision_due_at", "rule", "team_name"

static const char *const case_fields[] = {CASE_FIELDS, NULL};
/* A red notification that was not sent in time: the case, and which message failed. */
static const char *const alert_failed_fields[] = {CASE_FIELDS, "alert_id", "alert_template",
                                                  "alert_channel", NULL};
/* events.md: the triage inbox gets where the event is and the error code only. */
static const char *const unusable_fields[] = {"topic", "partition", "offset", "error", NULL};
/* A family text: the appointment and the team, as the booking event gave them. */
static const char *const family_fields[] = {
    "appointment_date", "appointment_time", "appointment_location",
    "appointment_with", "team_name",        NULL};

#define CH_EMAIL (1u << TEMPLATE_EMAIL)
#define CH_SMS   (1u << TEMPLATE_SMS)

/* notifications.md, "Who is told what". */
static const struct known {
    const char *name;
    unsigned channels;
    const char *const *fields;
} catalogue[] = {
    {"safeguarding_alert", CH_EMAIL | CH_SMS, case_fields},
    {"safeguarding_alert_failed", CH_EMAIL | CH_SMS, alert_failed_fields},
    {"case_allocated", CH_EMAIL, case_fields},
    {"triage_needed", CH_EMAIL, case_fields},
    {"consent_needed", CH_EMAIL, case_fields},
    {"signposted", CH_EMAIL, case_fields},
    {"referral_acknowledged", CH_EMAIL, case_fields},
    {"case_closed", CH_EMAIL, case_fields},
    {"decision_overdue", CH_EMAIL, case_fields},
    {"unusable_event", CH_EMAIL, unusable_fields},
    {"appointment_booked", CH_SMS, family_fields},
    {"appointment_reminder", CH_SMS, family_fields},
    {"appointment_cancelled", CH_SMS, family_fields},
};

static const char *const channel_names[] = {[TEMPLATE_EMAIL] = "email", [TEMPLATE_SMS] = "sms"};

static const struct known *find_known(const char *name, size_t len)
{
    for (size_t i = 0; i < N_ELEMS(catalogue); i++)
        if (strlen(catalogue[i].name) == len && memcmp(catalogue[i].name, name, len) == 0)
            return &catalogue[i];
    return NULL;
}

static bool field_allowed(const struct known *k, const char *name, size_t len)
{
    for (const char *const *f = k->fields; *f != NULL; f++)
        if (strlen(*f) == len && memcmp(*f, name, len) == 0)
            return true;
    return false;
}

const char *template_catalogue_name(size_t i)
{
    return i < N_ELEMS(catalogue) ? catalogue[i].name : NULL;
}

bool template_catalogue_has(const char *name, enum template_channel ch)
{
    const struct known *k = name != NULL ? find_known(name, strlen(name)) : NULL;
    return k != NULL && (k->channels & (1u << ch)) != 0;
}

/* ------------------------------------------------------------------ errors */

/* Error list: "file:line: message" lines in a caller's buffer (as config.c). */
struct errlist {
    char *buf;
    size_t len;
    size_t used;
    int count;
};

static void err_add(struct errlist *e, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err_add(struct errlist *e, const char *file, int line, const char *fmt, ...)
{
    e->count++;
    if (e->buf == NULL || e->used + 1 >= e->len)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n = line > 0 ? snprintf(e->buf + e->used, e->len - e->used, "%s:%d: %s\n", file, line, msg)
                     : snprintf(e->buf + e->used, e->len - e->used, "%s: %s\n", file, msg);
    if (n > 0)
        e->used += (size_t)n < e->len - e->used ? (size_t)n : e->len - e->used - 1;
}

/* ------------------------------------------------------------------ UTF-8 */

/* Decode one UTF-8 character at s (n bytes left, n >= 1). Returns its length and *cp, or
 * 0 for a byte that does not start a valid, shortest-form, non-surrogate character. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Characters that must never reach a message from a value, and that a template may not
 * contain (LF aside): C0, DEL, C1, the Unicode line and paragraph separators, the byte
 * order mark and the bidirectional controls (they can disguise what a line says). */
static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0xFEFF || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/* ------------------------------------------------------------------ SMS size */

/* GSM 03.38 default alphabet, beyond the ASCII letters and digits handled in gsm_septets. */
static const uint32_t gsm_basic[] = {
    '\n', '\r', ' ',  '!',   '"',   '#',   '$',   '%',   '&',   '\'',  '(',   ')',   '*',
    '+',  ',',  '-',  '.',   '/',   ':',   ';',   '<',   '=',   '>',   '?',   '@',   '_',
    0xA1, 0xA3, 0xA4, 0xA5,  0xA7,  0xBF,  0xC4,  0xC5,  0xC6,  0xC7,  0xC9,  0xD1,  0xD6,
    0xD8, 0xDC, 0xDF, 0xE0,  0xE4,  0xE5,  0xE6,  0xE8,  0xE9,  0xEC,  0xF1,  0xF2,  0xF6,
    0xF8, 0xF9, 0xFC, 0x393, 0x394, 0x398, 0x39B, 0x39E, 0x3A0, 0x3A3, 0x3A6, 0x3A8, 0x3A9,
};
/* The extension table: an escape septet and the character, so 2 each. */
static const uint32_t gsm_extension[] = {'\f', '^', '{', '}', '\\', '[', ']', '~', '|', 0x20AC};

/* Septets of one character in the GSM alphabet, or 0 when it is not in it. */
static int gsm_septets(uint32_t cp)
{
    if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9'))
        return 1;
    for (size_t i = 0; i < N_ELEMS(gsm_basic); i++)
        if (gsm_basic[i] == cp)
            return 1;
    for (size_t i = 0; i < N_ELEMS(gsm_extension); i++)
        if (gsm_extension[i] == cp)
            return 2;
    return 0;
}

/* Size of one character in the given encoding: septets, or UTF-16 units. Bytes that are
 * not UTF-8 count one unit each (they can only be sent as Unicode anyway). */
static size_t char_units(const unsigned char *s, size_t n, bool unicode, size_t *adv)
{
    uint32_t cp;
    size_t len = utf8_decode(s, n, &cp);
    if (len == 0) {
        *adv = 1;
        return 1;
    }
    *adv = len;
    if (!unicode)
        return (size_t)gsm_septets(cp);
    return cp > 0xFFFF ? 2 : 1;
}

static bool needs_unicode(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_decode(s + i, n - i, &cp);
        if (len == 0 || gsm_septets(cp) == 0)
            return true;
        i += len;
    }
    return false;
}

static int fragments_for(size_t units, bool unicode)
{
    size_t single = unicode ? 70 : 160, multi = unicode ? 67 : 153;
    if (units == 0)
        return 0;
    if (units <= single)
        return 1;
    return (int)((units + multi - 1) / multi);
}

int template_sms_fragments(const char *text, size_t *units_out, bool *unicode_out)
{
    const unsigned char *s = (const unsigned char *)(text != NULL ? text : "");
    size_t n = strlen((const char *)s), units = 0, i = 0;
    bool unicode = needs_unicode(s, n);
    while (i < n) {
        size_t adv;
        units += char_units(s + i, n - i, unicode, &adv);
        i += adv;
    }
    if (units_out != NULL)
        *units_out = units;
    if (unicode_out != NULL)
        *unicode_out = unicode;
    return fragments_for(units, unicode);
}

/* ------------------------------------------------------------------ placeholders */

enum tok {
    TOK_END,
    TOK_CHAR,     /* one literal byte at *start */
    TOK_FIELD,    /* a placeholder name at *start, *len bytes */
    TOK_UNCLOSED, /* `((` with no `))` on its line; the `((` is skipped */
    TOK_STRAY,    /* `))` with no `((`; skipped */
};

/* The next token of template text s from *pos. `(((x)))` is `(`, ((x)), `)`, as Notify
 * reads it. A placeholder never spans lines. */
static enum tok next_tok(const char *s, size_t *pos, size_t *start, size_t *len)
{
    size_t i = *pos;
    if (s[i] == '\0')
        return TOK_END;
    if (s[i] == '(' && s[i + 1] == '(' && s[i + 2] != '(') {
        size_t j = i + 2;
        while (s[j] != '\0' && s[j] != '\n' && !(s[j] == ')' && s[j + 1] == ')'))
            j++;
        if (s[j] != ')') {
            *start = i;
            *pos = i + 2;
            return TOK_UNCLOSED;
        }
        *start = i + 2;
        *len = j - (i + 2);
        *pos = j + 2;
        return TOK_FIELD;
    }
    if (s[i] == ')' && s[i + 1] == ')') {
        *start = i;
        *pos = i + 2;
        return TOK_STRAY;
    }
    *start = i;
    *len = 1;
    *pos = i + 1;
    return TOK_CHAR;
}

/* Appendable string (malloc). */
struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = '\0';
}

/* ------------------------------------------------------------------ the set */

struct templates {
    struct template *items;
    size_t n;
};

static void free_template(struct template *t)
{
    free((void *)t->name);
    free((void *)t->lang);
    free((void *)t->path);
    free((void *)t->subject);
    free((void *)t->body);
}

void template_free_set(struct templates *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        free_template(&set->items[i]);
    free(set->items);
    free(set);
}

size_t template_count(const struct templates *set)
{
    return set != NULL ? set->n : 0;
}

/* Check the characters of a whole file: UTF-8, and no control character but LF (none at
 * all on the subject line of an email). Reports the first problem; returns false then. */
static bool check_chars(const char *path, const char *text, size_t n, bool email, struct errlist *e)
{
    int line = 1;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_decode((const unsigned char *)text + i, n - i, &cp);
        if (len == 0) {
            err_add(e, path, line, "not UTF-8 text (byte 0x%02X)", (unsigned char)text[i]);
            return false;
        }
        if (cp == '\n') {
            line++;
        } else if (is_control(cp)) {
            const char *what = cp == '\r'   ? "a carriage return (CR)"
                               : cp == '\t' ? "a tab"
                               : cp == 0    ? "a NUL byte"
                                            : "a control character";
            if (email && line == 1)
                err_add(e, path, line,
                        "%s in the Subject line (U+%04X): a subject is one plain line", what,
                        (unsigned)cp);
            else
                err_add(e, path, line, "%s (U+%04X): only plain text and LF line ends", what,
                        (unsigned)cp);
            return false;
        }
        i += len;
    }
    return true;
}

/* Check the placeholders of one part (subject or body) starting at file line `line`, and
 * append its fixed text to `fixed` with the line of each byte in `lines` (sms only; room
 * for strlen(part) entries). */
static void check_part(const char *path, const struct known *k, const char *part, int line,
                       struct sbuf *fixed, int *lines, struct errlist *e)
{
    size_t pos = 0, start = 0, len = 0;
    enum tok tk;
    while ((tk = next_tok(part, &pos, &start, &len)) != TOK_END) {
        switch (tk) {
        case TOK_CHAR:
            if (fixed != NULL) {
                sb_add(fixed, part + start, 1);
                if (!fixed->oom)
                    lines[fixed->n - 1] = line;
            }
            if (part[start] == '\n')
                line++;
            break;
        case TOK_FIELD:
            if (!field_allowed(k, part + start, len)) {
                char allowed[400] = "";
                size_t used = 0;
                for (const char *const *f = k->fields; *f != NULL && used < sizeof allowed; f++)
                    used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s",
                                             used ? ", " : "", *f);
                err_add(e, path, line, "unknown placeholder ((%.*s)) for %s; it may use: %s",
                        len > 40 ? 40 : (int)len, part + start, k->name, allowed);
            }
            break;
        case TOK_UNCLOSED:
            err_add(e, path, line, "unbalanced '((': no '))' closes it on this line");
            break;
        case TOK_STRAY:
            err_add(e, path, line, "unbalanced '))': no '((' opens it");
            break;
        case TOK_END:
            break;
        }
    }
}

/* SMS: the fixed text must fit TEMPLATE_MAX_SMS_FRAGMENTS; the error names the line where
 * it stops fitting. */
static void check_sms_size(const char *path, struct template *t, const struct sbuf *fixed,
                           const int *lines, struct errlist *e)
{
    const unsigned char *s = (const unsigned char *)(fixed->s != NULL ? fixed->s : "");
    size_t n = fixed->n, units = 0, i = 0;
    bool unicode = needs_unicode(s, n);
    size_t limit = (size_t)TEMPLATE_MAX_SMS_FRAGMENTS * (unicode ? 67 : 153);
    int over_line = 0;
    while (i < n) {
        size_t adv;
        units += char_units(s + i, n - i, unicode, &adv);
        if (units > limit && over_line == 0)
            over_line = lines[i];
        i += adv;
    }
    t->sms_units = units;
    t->sms_unicode = unicode;
    t->sms_fragments = fragments_for(units, unicode);
    if (t->sms_fragments > TEMPLATE_MAX_SMS_FRAGMENTS)
        err_add(e, path, over_line,
                "the text without placeholders is %zu %s, %d SMS fragments; at most %zu fit in "
                "%d (Notify bills per fragment)",
                units, unicode ? "UTF-16 units (it needs Unicode)" : "GSM septets",
                t->sms_fragments, limit, TEMPLATE_MAX_SMS_FRAGMENTS);
}

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Split and validate one template's text. Fills t->subject, body, body_line and the SMS
 * size. Returns false when out of memory (problems with the text go to e). */
static bool parse_template(const char *path, const struct known *k, struct template *t,
                           const char *text, size_t n, struct errlist *e)
{
    int before = e->count;
    bool email = t->channel == TEMPLATE_EMAIL;
    if (!check_chars(path, text, n, email, e))
        return true;

    const char *p = text, *end = text + n;
    int line = 1;
    if (email) {
        static const char tag[] = "Subject:";
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) < sizeof tag - 1 || memcmp(p, tag, sizeof tag - 1) != 0) {
            err_add(e, path, 1, "an email template starts with a 'Subject: ...' line");
            return true;
        }
        const char *s = p + sizeof tag - 1, *se = eol;
        while (s < se && *s == ' ')
            s++;
        while (se > s && se[-1] == ' ')
            se--;
        if (s == se)
            err_add(e, path, 1, "the Subject is empty");
        if ((t->subject = dup_range(s, (size_t)(se - s))) == NULL)
            return false;
        p = eol < end ? eol + 1 : end;
        line = 2;
    } else if ((size_t)(end - p) >= 8 && memcmp(p, "Subject:", 8) == 0) {
        err_add(e, path, 1, "a text message has no subject: remove the 'Subject:' line");
    }
    /* Blank lines before the text and white space after it are layout, not message. */
    while (p < end && *p == '\n')
        p++, line++;
    while (end > p && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (p == end)
        err_add(e, path, line, "the template has no message text");
    if ((t->body = dup_range(p, (size_t)(end - p))) == NULL)
        return false;
    t->body_line = line;

    struct sbuf fixed = {0};
    int *lines = email ? NULL : malloc((strlen(t->body) + 1) * sizeof *lines);
    if (!email && lines == NULL)
        return false;
    if (t->subject != NULL)
        check_part(path, k, t->subject, 1, NULL, NULL, e);
    check_part(path, k, t->body, t->body_line, email ? NULL : &fixed, lines, e);
    bool ok = !fixed.oom;
    if (ok && !email && e->count == before)
        check_sms_size(path, t, &fixed, lines, e);
    free(fixed.s);
    free(lines);
    return ok;
}

/* Is `fname` of the form <name>.<lang>.<channel>? Splits it when so. */
static bool split_name(const char *fname, size_t *name_len, const char **lang,
                       enum template_channel *ch)
{
    const char *d1 = strchr(fname, '.');
    if (d1 == NULL || d1 == fname)
        return false;
    const char *d2 = strchr(d1 + 1, '.');
    if (d2 == NULL || d2 - d1 != 3 || strchr(d2 + 1, '.') != NULL)
        return false;
    for (const char *c = d1 + 1; c < d2; c++)
        if (*c < 'a' || *c > 'z')
            return false;
    if (strcmp(d2 + 1, "email") == 0)
        *ch = TEMPLATE_EMAIL;
    else if (strcmp(d2 + 1, "sms") == 0)
        *ch = TEMPLATE_SMS;
    else
        return false;
    *name_len = (size_t)(d1 - fname);
    *lang = d1 + 1;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read a whole file (at most TEMPLATE_MAX_FILE_BYTES). Returns malloc'd text or NULL with
 * the problem reported. */
static char *read_file(const char *path, size_t *n, struct errlist *e)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        err_add(e, path, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    char *buf = malloc(TEMPLATE_MAX_FILE_BYTES + 2);
    if (buf == NULL) {
        fclose(f);
        err_add(e, path, 0, "out of memory");
        return NULL;
    }
    size_t got = fread(buf, 1, TEMPLATE_MAX_FILE_BYTES + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        err_add(e, path, 0, "cannot read");
        free(buf);
        return NULL;
    }
    if (got > TEMPLATE_MAX_FILE_BYTES) {
        err_add(e, path, 0, "larger than %d bytes", TEMPLATE_MAX_FILE_BYTES);
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    *n = got;
    return buf;
}

static bool has_template(const struct templates *set, const char *name, enum template_channel ch,
                         const char *lang)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->items[i].channel == ch && strcmp(set->items[i].name, name) == 0 &&
            strcmp(set->items[i].lang, lang) == 0)
            return true;
    return false;
}

/* Load one directory entry into the set (which has room for it). */
static bool load_entry(const char *dir, const char *fname, struct templates *set, struct errlist *e)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, fname) >= (int)sizeof path) {
        err_add(e, fname, 0, "path too long");
        return true;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        err_add(e, path, 0, "cannot stat: %s", strerror(errno));
        return true;
    }
    if (!S_ISREG(st.st_mode)) {
        err_add(e, path, 0, "not a regular file (only templates belong in this folder)");
        return true;
    }
    size_t name_len;
    const char *lang;
    enum template_channel ch;
    if (!split_name(fname, &name_len, &lang, &ch)) {
        err_add(e, path, 0,
                "not a template file name: expected <name>.<lang>.<email|sms> with a "
                "two-letter lower-case language");
        return true;
    }
    const struct known *k = find_known(fname, name_len);
    if (k == NULL) {
        err_add(e, path, 0, "unknown template '%.*s' (config/templates/README.md lists them)",
                (int)name_len, fname);
        return true;
    }
    if (!(k->channels & (1u << ch))) {
        err_add(e, path, 0, "%s is not sent by %s", k->name, channel_names[ch]);
        return true;
    }
    size_t n = 0;
    char *text = read_file(path, &n, e);
    if (text == NULL)
        return true;
    struct template *t = &set->items[set->n];
    memset(t, 0, sizeof *t);
    t->channel = ch;
    t->name = dup_range(k->name, strlen(k->name));
    t->lang = dup_range(lang, 2);
    t->path = dup_range(path, strlen(path));
    bool ok = t->name != NULL && t->lang != NULL && t->path != NULL &&
              parse_template(path, k, t, text, n, e);
    free(text);
    set->n++; /* even when bad: freed with the set */
    if (!ok)
        err_add(e, path, 0, "out of memory");
    return ok;
}

int template_load_set(const char *dir, struct templates **out, char *errs, size_t errs_len)
{
    struct errlist e = {errs, errs_len, 0, 0};
    if (errs != NULL && errs_len > 0)
        errs[0] = '\0';
    *out = NULL;
    if (dir == NULL || dir[0] == '\0') {
        err_add(&e, "templates", 0, "no template folder configured");
        return -1;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        err_add(&e, dir, 0, "cannot open the template folder: %s", strerror(errno));
        return -1;
    }
    /* Names first, sorted, so messages come in the same order on every machine. */
    char **names = NULL;
    size_t n_names = 0, cap = 0;
    bool oom = false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        if (nm[0] == '.' || (len > 3 && strcmp(nm + len - 3, ".md") == 0))
            continue; /* ".", "..", editor files, README.md */
        if (n_names == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof *names);
            if (nn == NULL) {
                oom = true;
                break;
            }
            names = nn;
        }
        if ((names[n_names] = strdup(nm)) == NULL) {
            oom = true;
            break;
        }
        n_names++;
    }
    closedir(d);
    struct templates *set = calloc(1, sizeof *set);
    if (set != NULL && n_names > 0 && (set->items = calloc(n_names, sizeof *set->items)) == NULL)
        oom = true;
    if (set == NULL || oom) {
        err_add(&e, dir, 0, "out of memory");
        oom = true;
    } else {
        if (n_names > 0)
            qsort(names, n_names, sizeof *names, cmp_str);
        for (size_t i = 0; i < n_names && !oom; i++)
            oom = !load_entry(dir, names[i], set, &e);
    }
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);

    /* Every template must exist in English for each of its channels. */
    for (size_t i = 0; i < N_ELEMS(catalogue) && !oom; i++) {
        for (int ch = TEMPLATE_EMAIL; ch <= TEMPLATE_SMS; ch++) {
            if (!(catalogue[i].channels & (1u << ch)) ||
                has_template(set, catalogue[i].name, (enum template_channel)ch,
                             TEMPLATE_DEFAULT_LANG))
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.%s.%s", dir, catalogue[i].name,
                     TEMPLATE_DEFAULT_LANG, channel_names[ch]);
            err_add(&e, path, 0, "missing: every template must exist in English");
        }
    }

    if (e.count > 0) {
        template_free_set(set);
        return -1;
    }
    *out = set;
    return 0;
}

/* ------------------------------------------------------------------ look-up */

/* "pl", "PL", "pl-PL" and "pl_PL" all name Polish. */
static bool lang_matches(const char *have, const char *want)
{
    return strncasecmp(have, want, 2) == 0 && (want[2] == '\0' || want[2] == '-' || want[2] == '_');
}

const struct template *template_find(const struct templates *set, const char *name,
                                     enum template_channel channel, const char *lang)
{
    if (set == NULL || name == NULL)
        return NULL;
    if (lang == NULL || lang[0] == '\0')
        lang = TEMPLATE_DEFAULT_LANG;
    const struct template *fallback = NULL;
    for (size_t i = 0; i < set->n; i++) {
        const struct template *t = &set->items[i];
        if (t->channel != channel || strcmp(t->name, name) != 0)
            continue;
        if (lang_matches(t->lang, lang))
            return t;
        if (strcmp(t->lang, TEMPLATE_DEFAULT_LANG) == 0)
            fallback = t;
    }
    return fallback;
}

/* ------------------------------------------------------------------ rendering */

char *template_clean_value(const char *value)
{
    const unsigned char *s = (const unsigned char *)(value != NULL ? value : "");
    size_t n = strlen((const char *)s), i = 0;
    /* U+FFFD is 3 bytes for 1 bad byte, so 3n + 1 always fits. */
    char *out = malloc(3 * n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    bool space = false; /* the last thing written was a space from controls */
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_decode(s + i, n - i, &cp);
        if (len == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
            space = false;
        } else if (is_control(cp)) {
            if (!space)
                out[o++] = ' ';
            space = true;
            i += len;
        } else {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
            space = false;
        }
    }
    size_t b = 0;
    while (b < o && out[b] == ' ')
        b++;
    while (o > b && out[o - 1] == ' ')
        o--;
    memmove(out, out + b, o - b);
    out[o - b] = '\0';
    return out;
}

static const char *find_value(const struct template_value *values, size_t n, const char *key,
                              size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (values[i].key != NULL && strlen(values[i].key) == len &&
            memcmp(values[i].key, key, len) == 0)
            return values[i].value;
    return NULL;
}

/* Fill one part. Returns 0, or -1 with err set (missing value, out of memory). */
static int render_part(const char *part, const struct template_value *values, size_t n_values,
                       char **out, char *err, size_t err_len)
{
    struct sbuf b = {0};
    sb_add(&b, "", 0);
    size_t pos = 0, start = 0, len = 0;
    enum tok tk;
    while ((tk = next_tok(part, &pos, &start, &len)) != TOK_END) {
        if (tk == TOK_FIELD) {
            const char *v = find_value(values, n_values, part + start, len);
            if (v == NULL) {
                snprintf(err, err_len, "no value for placeholder ((%.*s))",
                         len > 40 ? 40 : (int)len, part + start);
                free(b.s);
                return -1;
            }
            char *clean = template_clean_value(v);
            if (clean == NULL) {
                b.oom = true;
                break;
            }
            sb_add(&b, clean, strlen(clean));
            free(clean);
        } else {
            /* Literal text; a validated template has no unbalanced brackets, but should
             * one get here its brackets are just text. */
            sb_add(&b, part + start, tk == TOK_CHAR ? 1 : 2);
        }
    }
    if (b.oom) {
        snprintf(err, err_len, "out of memory");
        free(b.s);
        return -1;
    }
    *out = b.s;
    return 0;
}

int template_render(const struct template *t, const struct template_value *values, size_t n_values,
                    struct template_message *out, char *err, size_t err_len)
{
    out->subject = NULL;
    out->body = NULL;
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    char dummy[1];
    if (err == NULL || err_len == 0) {
        err = dummy;
        err_len = sizeof dummy;
    }
    if (t == NULL) {
        snprintf(err, err_len, "no template");
        return -1;
    }
    if (t->subject != NULL &&
        render_part(t->subject, values, n_values, &out->subject, err, err_len) != 0)
        return -1;
    if (render_part(t->body, values, n_values, &out->body, err, err_len) != 0) {
        template_free_message(out);
        return -1;
    }
    return 0;
}

void template_free_message(struct template_message *m)
{
    if (m == NULL)
        return;
    free(m->subject);
    free(m->body);
    m->subject = NULL;
    m->body = NULL;
}

/* ------------------------------------------------------------------ value formats */

char *template_format_date(const struct tzone *z, int64_t utc_s, char *buf, size_t len)
{
    static const char *const days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
    static const char *const months[] = {"January",   "February", "March",    "April",
                                         "May",       "June",     "July",     "August",
                                         "September", "October",  "November", "December"};
    int sod;
    struct civil_date d = caltime_local_date(z, utc_s, &sod);
    int wd = caltime_weekday(caltime_days_from_civil(d));
    if (len == 0)
        return buf;
    if (d.month < 1 || d.month > 12 || wd < 0 || wd > 6 ||
        snprintf(buf, len, "%s %d %s %d", days[wd], d.day, months[d.month - 1], d.year) >= (int)len)
        buf[0] = '\0';
    return buf;
}

char *template_format_time(const struct tzone *z, int64_t utc_s, char *buf, size_t len)
{
    int sod;
    (void)caltime_local_date(z, utc_s, &sod);
    int h = sod / 3600, m = sod / 60 % 60, n;
    if (len == 0)
        return buf;
    if (h == 0 && m == 0)
        n = snprintf(buf, len, "midnight");
    else if (h == 12 && m == 0)
        n = snprintf(buf, len, "midday");
    else if (m == 0)
        n = snprintf(buf, len, "%d%s", h % 12 == 0 ? 12 : h % 12, h < 12 ? "am" : "pm");
    else
        n = snprintf(buf, len, "%d:%02d%s", h % 12 == 0 ? 12 : h % 12, m, h < 12 ? "am" : "pm");
    if (n < 0 || n >= (int)len)
        buf[0] = '\0';
    return buf;
}
