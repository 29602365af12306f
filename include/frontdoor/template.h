/* template: the notification message templates (config/templates/, notifications.md).
 *
 * One file per template, language and channel: `<name>.<lang>.<channel>`, e.g.
 * `appointment_booked.en.sms` or `case_allocated.en.email`, with `((placeholder))` fields
 * as GOV.UK Notify writes them. An email template's first line is `Subject: ...`.
 * config/templates/README.md lists every template and the placeholders it may use.
 *
 * template_load_set() reads and validates a whole folder at configuration time (the only
 * I/O here); everything after that is pure. A loaded set is read-only and may be shared
 * between threads. Problems are reported as "file:line: message" lines, all of them in one
 * run, like the rest of the configuration.
 */
#ifndef FRONTDOOR_TEMPLATE_H
#define FRONTDOOR_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frontdoor/caltime.h"

/* A template file larger than this is refused (no real message comes near it). */
#define TEMPLATE_MAX_FILE_BYTES 65536
/* Fragments an SMS template's fixed text may need at most (Notify bills per fragment). */
#define TEMPLATE_MAX_SMS_FRAGMENTS 3
/* The language every template must exist in, and the fallback for every other. */
#define TEMPLATE_DEFAULT_LANG "en"

enum template_channel { TEMPLATE_EMAIL, TEMPLATE_SMS };

/* One loaded template. Ownership: the set owns every template and every string in it. */
struct template
{
    const char *name; /* e.g. "appointment_booked" */
    const char *lang; /* ISO 639-1, lower case, e.g. "en" */
    enum template_channel channel;
    const char *path;    /* the file, for messages */
    const char *subject; /* email: the text after "Subject: ", one line; sms: NULL */
    const char *body;    /* LF line ends, no trailing newline */
    int body_line;       /* line of the file where body starts */
    /* sms: the fixed text's size (placeholders removed) in GSM septets, or in UTF-16
     * units when unicode, and the fragments it needs; email: 0, false, 0. */
    size_t sms_units;
    bool sms_unicode;
    int sms_fragments;
};

/* A loaded, validated folder of templates. Opaque. */
struct templates;

/* One placeholder value for rendering. Neither string is copied or freed. */
struct template_value {
    const char *key;   /* placeholder name, e.g. "referral_id" */
    const char *value; /* UTF-8 text; NULL counts as missing */
};

/* A rendered message. Ownership: the caller owns both strings (malloc) and frees them with
 * template_free_message(). */
struct template_message {
    char *subject; /* email: one line, no control characters at all; sms: NULL */
    char *body;    /* LF line ends */
};

/* Load every template of folder `dir` and validate the set:
 * - file names are `<name>.<lang>.<email|sms>`, the name one of notifications.md's
 *   templates and the channel one it is sent on (files starting with '.' and `*.md` files
 *   are skipped, anything else is refused);
 * - every template exists in English for each of its channels;
 * - text is UTF-8 without control characters other than LF (and TAB in a body); an email
 *   template starts with a one-line, non-empty `Subject: `;
 * - each `((placeholder))` is one the template may use, and every `((` is closed on its
 *   line (a stray `))` is refused too);
 * - an SMS template's fixed text fits TEMPLATE_MAX_SMS_FRAGMENTS fragments.
 * Every problem is appended to errs as a "file:line: message" line (errs always
 * NUL-terminated). Returns 0 and *out (owned by the caller, free with template_free_set()),
 * or -1 and *out = NULL. */
int template_load_set(const char *dir, struct templates **out, char *errs, size_t errs_len);

void template_free_set(struct templates *set);

/* The catalogue of notifications.md ("Who is told what"): the name of template i, or NULL
 * past the end; and whether a template of that name is sent on channel ch. */
const char *template_catalogue_name(size_t i);
bool template_catalogue_has(const char *name, enum template_channel ch);

/* Number of templates in a set (all languages and channels). */
size_t template_count(const struct templates *set);

/* The template for (name, channel) in `lang`, else in English; NULL when the set has
 * neither (an unknown name or channel). `lang` is matched without regard to case; NULL or
 * "" means English. The result lives as long as the set. */
const struct template *template_find(const struct templates *set, const char *name,
                                     enum template_channel channel, const char *lang);

/* Fill template t with values. Every placeholder t uses must have a value (extra values
 * are ignored; for a key given twice the first counts). Values are cleaned as by
 * template_clean_value(), so no value can start a new line, let alone a new header line.
 * Returns 0 and *out, or -1 with a message in err (naming the placeholder, never a value)
 * and *out zeroed. */
int template_render(const struct template *t, const struct template_value *values, size_t n_values,
                    struct template_message *out, char *err, size_t err_len);

void template_free_message(struct template_message *m);

/* A placeholder value made safe for any message part, email headers included: each run of
 * control characters (C0, DEL, C1, U+2028, U+2029, so CR and LF too) becomes one space,
 * bytes that are not UTF-8 become U+FFFD, and leading and trailing spaces go. For the
 * `notify` provider's personalisation, which Notify renders itself. Returns a malloc'd
 * string owned by the caller, or NULL when out of memory (NULL in gives ""). */
char *template_clean_value(const char *value);

/* SMS size of UTF-8 text as GSM 03.38 counts it: septets (an extension-table character
 * such as `{`, `}`, `[`, `]`, `~`, `\`, `^`, `|` or `€` counts 2) when every character is in
 * the GSM alphabet, else UTF-16 units (*unicode = true). Returns the fragments needed:
 * 0 for "", 1 up to 160 septets / 70 units, else 153 / 67 per fragment. *units and
 * *unicode may be NULL. Text that is not UTF-8 counts as Unicode, a unit per byte. */
int template_sms_fragments(const char *text, size_t *units, bool *unicode);

/* Values in the form the shipped templates expect, in zone z (Europe/London), for the
 * date and time placeholders (README.md): "Tuesday 1 December 2026", and "10:30am",
 * "10am", "midday" or "midnight". Return buf ("" when len is too small). A buffer of
 * 32 bytes is always enough. */
char *template_format_date(const struct tzone *z, int64_t utc_s, char *buf, size_t len);
char *template_format_time(const struct tzone *z, int64_t utc_s, char *buf, size_t len);

#endif
