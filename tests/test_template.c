/* Unit tests of template: loading and validating the template folder, look-up with the
 * English fallback, rendering (no header injection), SMS fragment counting and the value
 * formats.
 *
 * Each negative case copies the shipped config/templates/ into a fresh folder, breaks one
 * file and expects one "file:line: message". Fragment sizes are counted by hand: GSM
 * 160 / 153 septets a fragment (extension-table characters 2), Unicode 70 / 67 UTF-16
 * units, so 3 fragments hold 459 septets or 201 units. Local dates and times were checked
 * with `TZ=Europe/London date -d`.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frontdoor/caltime.h"
#include "frontdoor/template.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define ERRS_LEN   16384

static char shipped[4096];  /* config/templates */
static char testdata[4096]; /* tests/data/templates */

static void find_dirs(void)
{
    const char *src = getenv("FRONTDOOR_SOURCE_DIR");
    ck_assert_msg(src != NULL, "FRONTDOOR_SOURCE_DIR not set");
    snprintf(shipped, sizeof shipped, "%s/config/templates", src);
    snprintf(testdata, sizeof testdata, "%s/tests/data/templates", src);
}

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Copy every regular file of `from` into `to`. */
static void copy_dir(const char *from, const char *to)
{
    DIR *d = opendir(from);
    ck_assert_msg(d != NULL, "cannot open %s", from);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", from, de->d_name);
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        static char buf[TEMPLATE_MAX_FILE_BYTES + 1];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        write_file(to, de->d_name, buf, n);
    }
    closedir(d);
}

/* A fresh folder holding the shipped templates (and the test language when asked). */
static char *make_dir(bool with_testdata)
{
    static char dir[64];
    strcpy(dir, "/tmp/fd-templates-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    copy_dir(shipped, dir);
    if (with_testdata)
        copy_dir(testdata, dir);
    return dir;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (remove(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(dir);
}

/* ------------------------------------------------------------------ the shipped set */

static const struct {
    const char *name;
    enum template_channel channel;
} required[] = {
    {"safeguarding_alert", TEMPLATE_EMAIL},
    {"safeguarding_alert", TEMPLATE_SMS},
    {"safeguarding_alert_failed", TEMPLATE_EMAIL},
    {"safeguarding_alert_failed", TEMPLATE_SMS},
    {"case_allocated", TEMPLATE_EMAIL},
    {"triage_needed", TEMPLATE_EMAIL},
    {"consent_needed", TEMPLATE_EMAIL},
    {"signposted", TEMPLATE_EMAIL},
    {"referral_acknowledged", TEMPLATE_EMAIL},
    {"case_closed", TEMPLATE_EMAIL},
    {"decision_overdue", TEMPLATE_EMAIL},
    {"unusable_event", TEMPLATE_EMAIL},
    {"appointment_booked", TEMPLATE_SMS},
    {"appointment_reminder", TEMPLATE_SMS},
    {"appointment_cancelled", TEMPLATE_SMS},
};

/* Every value any template may use, so each shipped template renders. */
static const struct template_value all_values[] = {
    {"referral_id", "REF-2026-000123"},
    {"route", "school"},
    {"destination", "school-900301"},
    {"priority", "green"},
    {"decision_due_at", "5pm on Thursday 26 November 2026"},
    {"rule", "school_attendance"},
    {"team_name", "Kendal Family Hub"},
    {"alert_id", "7f1c0d1e-0000-4000-8000-000000000001"},
    {"alert_template", "safeguarding_alert"},
    {"alert_channel", "sms"},
    {"topic", "frontdoor.referrals"},
    {"partition", "3"},
    {"offset", "1234"},
    {"error", "invalid_json"},
    {"appointment_date", "Tuesday 1 December 2026"},
    {"appointment_time", "10:30am"},
    {"appointment_location", "Kendal Family Hub, Sample Street"},
    {"appointment_with", "Family Help Worker"},
};

START_TEST(shipped_each_loads)
{
    find_dirs();
    struct templates *set = NULL;
    char errs[ERRS_LEN];
    ck_assert_msg(template_load_set(shipped, &set, errs, sizeof errs) == 0, "%s", errs);
    ck_assert_str_eq(errs, "");
    ck_assert_uint_eq(template_count(set), N_ELEMS(required));

    const struct template *t = template_find(set, required[_i].name, required[_i].channel, "en");
    ck_assert_msg(t != NULL, "%s", required[_i].name);
    ck_assert_str_eq(t->name, required[_i].name);
    ck_assert_str_eq(t->lang, "en");
    ck_assert_int_eq(t->channel, required[_i].channel);
    ck_assert(t->body[0] != '\0' && t->body[strlen(t->body) - 1] != '\n');
    if (t->channel == TEMPLATE_EMAIL) {
        ck_assert_ptr_nonnull(t->subject);
        ck_assert(t->subject[0] != '\0');
    } else {
        ck_assert_ptr_null(t->subject);
        ck_assert(!t->sms_unicode);
        ck_assert_int_ge(t->sms_fragments, 1);
        ck_assert_int_le(t->sms_fragments, TEMPLATE_MAX_SMS_FRAGMENTS);
    }

    struct template_message m;
    char err[256];
    ck_assert_msg(template_render(t, all_values, N_ELEMS(all_values), &m, err, sizeof err) == 0,
                  "%s: %s", t->path, err);
    ck_assert_ptr_null(strstr(m.body, "(("));
    ck_assert_ptr_null(strstr(m.body, "))"));
    if (m.subject != NULL)
        ck_assert_ptr_null(strpbrk(m.subject, "\r\n"));
    template_free_message(&m);
    template_free_set(set);
}
END_TEST

/* Staff messages carry the referral id, route, priority, deadline and rule. */
START_TEST(staff_emails_carry_the_decision)
{
    static const char *const staff[] = {"safeguarding_alert", "safeguarding_alert_failed",
                                        "case_allocated", "triage_needed", "decision_overdue"};
    find_dirs();
    struct templates *set = NULL;
    char errs[ERRS_LEN];
    ck_assert_msg(template_load_set(shipped, &set, errs, sizeof errs) == 0, "%s", errs);
    for (size_t i = 0; i < N_ELEMS(staff); i++) {
        const struct template *t = template_find(set, staff[i], TEMPLATE_EMAIL, "en");
        ck_assert_ptr_nonnull(t);
        static const char *const must[] = {"((referral_id))", "((route))", "((priority))",
                                           "((decision_due_at))", "((rule))"};
        for (size_t j = 0; j < N_ELEMS(must); j++)
            ck_assert_msg(strstr(t->body, must[j]) != NULL, "%s lacks %s", staff[i], must[j]);
    }
    template_free_set(set);
}
END_TEST

/* ------------------------------------------------------------------ refused folders */

static const struct {
    const char *file;
    const char *text; /* NULL: delete the file */
    const char *want; /* "<file>:<line>: <start of message>" */
} bad_cases[] = {
    {"case_allocated.en.email", NULL,
     "/case_allocated.en.email: missing: every template must exist in English"},
    {"safeguarding_alert.en.sms", NULL,
     "/safeguarding_alert.en.sms: missing: every template must exist in English"},
    {"appointment_cancelled.en.sms", NULL, "/appointment_cancelled.en.sms: missing"},
    /* placeholders */
    {"case_allocated.en.email", "Subject: New ((referral_id))\n\nLine one\n((referal_id)) typo\n",
     "/case_allocated.en.email:4: unknown placeholder ((referal_id)) for case_allocated"},
    {"case_allocated.en.email", "Subject: About ((child_name))\n\nHello\n",
     "/case_allocated.en.email:1: unknown placeholder ((child_name))"},
    {"case_allocated.en.email", "Subject: New\n\nAt ((appointment_location))\n",
     "/case_allocated.en.email:3: unknown placeholder ((appointment_location))"},
    {"triage_needed.en.email", "Subject: New\n\n((summary))\n",
     "/triage_needed.en.email:3: unknown placeholder ((summary))"},
    {"decision_overdue.en.email", "Subject: New\n\n((Referral_ID))\n",
     "/decision_overdue.en.email:3: unknown placeholder ((Referral_ID))"},
    {"decision_overdue.en.email", "Subject: New\n\n(( referral_id ))\n",
     "/decision_overdue.en.email:3: unknown placeholder (( referral_id ))"},
    {"signposted.en.email", "Subject: New\n\n((referral_id??yes))\n",
     "/signposted.en.email:3: unknown placeholder ((referral_id??yes))"},
    {"unusable_event.en.email", "Subject: Bad event\n\n((referral_id)) ((offset))\n",
     "/unusable_event.en.email:3: unknown placeholder ((referral_id)) for unusable_event"},
    {"appointment_booked.en.sms", "Case ((referral_id)) booked\n",
     "/appointment_booked.en.sms:1: unknown placeholder ((referral_id)) for appointment_booked"},
    {"appointment_booked.en.sms", "Hello (())\n",
     "/appointment_booked.en.sms:1: unknown placeholder (())"},
    /* brackets */
    {"appointment_booked.en.sms", "Your appointment ((appointment_date is soon\n",
     "/appointment_booked.en.sms:1: unbalanced '(('"},
    {"appointment_booked.en.sms", "Hello\nOn ((appointment_date\n)) at ((appointment_time))\n",
     "/appointment_booked.en.sms:2: unbalanced '(('"},
    {"appointment_booked.en.sms", "Hello\nOn ((appointment_date\n)) at ((appointment_time))\n",
     "/appointment_booked.en.sms:3: unbalanced '))'"},
    {"appointment_booked.en.sms", "Hello\n\nOn appointment_date)) at ((appointment_time))\n",
     "/appointment_booked.en.sms:3: unbalanced '))'"},
    {"case_closed.en.email", "Subject: Closed ((referral_id)\n\nHello\n",
     "/case_closed.en.email:1: unbalanced '(('"},
    {"appointment_booked.en.sms", "On ((appointment_date)))) then\n",
     "/appointment_booked.en.sms:1: unbalanced '))'"},
    /* the subject line */
    {"case_allocated.en.email", "Subject: Hello\r\n\nBody\n",
     "/case_allocated.en.email:1: a carriage return (CR) in the Subject line"},
    {"case_allocated.en.email", "Subject: Hello\rBcc: x@example.org\n\nBody\n",
     "/case_allocated.en.email:1: a carriage return (CR) in the Subject line"},
    {"case_allocated.en.email", "Subject: Hello\xe2\x80\xa8World\n\nBody\n",
     "/case_allocated.en.email:1: a control character in the Subject line (U+2028)"},
    {"case_allocated.en.email", "Subject: Hello\tWorld\n\nBody\n",
     "/case_allocated.en.email:1: a tab in the Subject line"},
    {"case_allocated.en.email", "Hello\n\nBody\n",
     "/case_allocated.en.email:1: an email template starts with a 'Subject: ...' line"},
    {"case_allocated.en.email", "subject: Hello\n\nBody\n",
     "/case_allocated.en.email:1: an email template starts with a 'Subject: ...' line"},
    {"case_allocated.en.email", "Subject:   \n\nBody\n",
     "/case_allocated.en.email:1: the Subject is empty"},
    {"case_allocated.en.email", "Subject: Hello\n\n\n",
     "/case_allocated.en.email:4: the template has no message text"},
    /* other text problems */
    {"case_allocated.en.email", "Subject: Hello\n\nLine\r\nTwo\n",
     "/case_allocated.en.email:3: a carriage return (CR) (U+000D)"},
    {"appointment_booked.en.sms", "",
     "/appointment_booked.en.sms:1: the template has no message text"},
    {"appointment_booked.en.sms", "Subject: Hello\nText\n",
     "/appointment_booked.en.sms:1: a text message has no subject"},
    {"appointment_booked.en.sms", "Hello\n\xff there\n",
     "/appointment_booked.en.sms:2: not UTF-8 text (byte 0xFF)"},
    {"appointment_booked.en.sms", "Hello \xc0\xaf\n", "/appointment_booked.en.sms:1: not UTF-8"},
    {"appointment_booked.en.sms", "\xef\xbb\xbfHello\n",
     "/appointment_booked.en.sms:1: a control character (U+FEFF)"},
    {"appointment_booked.en.sms", "Hello\tthere\n", "/appointment_booked.en.sms:1: a tab (U+0009)"},
    {"appointment_booked.en.sms", "Hello \x1b[1mthere\n",
     "/appointment_booked.en.sms:1: a control character (U+001B)"},
    /* file names */
    {"notes.txt", "hello\n", "/notes.txt: not a template file name"},
    {"appointment_booked.EN.sms", "hello\n",
     "/appointment_booked.EN.sms: not a template file name"},
    {"appointment_booked.eng.sms", "hello\n",
     "/appointment_booked.eng.sms: not a template file name"},
    {"appointment_booked.en.sms~", "hello\n",
     "/appointment_booked.en.sms~: not a template file name"},
    {"appointment_booked.en.txt", "hello\n",
     "/appointment_booked.en.txt: not a template file name"},
    {"appointment_booked", "hello\n", "/appointment_booked: not a template file name"},
    {"appointment_boked.en.sms", "hello\n",
     "/appointment_boked.en.sms: unknown template 'appointment_boked'"},
    {"case_allocated.en.sms", "hello\n",
     "/case_allocated.en.sms: case_allocated is not sent by sms"},
    {"appointment_booked.pl.email", "Subject: x\n\nhello\n",
     "/appointment_booked.pl.email: appointment_booked is not sent by email"},
    /* a translation is checked like English */
    {"appointment_booked.pl.sms", "Wizyta ((data_wizyty))\n",
     "/appointment_booked.pl.sms:1: unknown placeholder ((data_wizyty))"},
};

START_TEST(bad_table)
{
    find_dirs();
    char *dir = make_dir(false);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, bad_cases[_i].file);
    if (bad_cases[_i].text == NULL)
        ck_assert_int_eq(remove(path), 0);
    else
        write_file(dir, bad_cases[_i].file, bad_cases[_i].text, strlen(bad_cases[_i].text));

    struct templates *set = (struct templates *)1;
    char errs[ERRS_LEN];
    int rc = template_load_set(dir, &set, errs, sizeof errs);
    remove_dir(dir);
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_null(set);
    char want[512];
    snprintf(want, sizeof want, "%s%s", dir, bad_cases[_i].want);
    ck_assert_msg(strstr(errs, want) != NULL, "want '%s' in:\n%s", want, errs);
}
END_TEST

START_TEST(every_problem_reported)
{
    find_dirs();
    char *dir = make_dir(false);
    char path[8192];
    snprintf(path, sizeof path, "%s/triage_needed.en.email", dir);
    ck_assert_int_eq(remove(path), 0);
    write_file(dir, "case_closed.en.email", "Subject: x ((a))\n\nb ((c))\n", 26);
    write_file(dir, "appointment_booked.en.sms", "((d\n", 4);
    struct templates *set = NULL;
    char errs[ERRS_LEN];
    ck_assert_int_eq(template_load_set(dir, &set, errs, sizeof errs), -1);
    remove_dir(dir);
    int lines = 0;
    for (const char *p = errs; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    ck_assert_msg(lines == 4, "%s", errs);
    ck_assert_ptr_nonnull(strstr(errs, "/appointment_booked.en.sms:1: unbalanced"));
    ck_assert_ptr_nonnull(strstr(errs, "/case_closed.en.email:1: unknown placeholder ((a))"));
    ck_assert_ptr_nonnull(strstr(errs, "/case_closed.en.email:3: unknown placeholder ((c))"));
    ck_assert_ptr_nonnull(strstr(errs, "/triage_needed.en.email: missing"));
}
END_TEST

START_TEST(folder_problems)
{
    struct templates *set = NULL;
    char errs[ERRS_LEN];
    ck_assert_int_eq(template_load_set("/nonexistent/fd-templates", &set, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(
        strstr(errs, "/nonexistent/fd-templates: cannot open the template folder"));
    ck_assert_int_eq(template_load_set("", &set, errs, sizeof errs), -1);
    ck_assert_int_eq(template_load_set(NULL, &set, errs, sizeof errs), -1);
    ck_assert_int_eq(template_load_set("/nonexistent", &set, NULL, 0), -1);
    char tiny[8];
    ck_assert_int_eq(template_load_set("/nonexistent", &set, tiny, sizeof tiny), -1);
    ck_assert_uint_lt(strlen(tiny), sizeof tiny);

    /* an empty folder: every template missing */
    char dir[] = "/tmp/fd-templates-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(template_load_set(dir, &set, errs, sizeof errs), -1);
    int lines = 0;
    for (const char *p = errs; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    ck_assert_int_eq(lines, (int)N_ELEMS(required));

    /* a sub-folder and an over-long file are refused; README.md and dot files skipped */
    find_dirs();
    copy_dir(shipped, dir);
    write_file(dir, "README.md", "# notes ((not checked))\n", 24);
    write_file(dir, ".appointment_booked.en.sms.swp", "junk", 4);
    ck_assert_msg(template_load_set(dir, &set, errs, sizeof errs) == 0, "%s", errs);
    template_free_set(set);
    char sub[8192];
    snprintf(sub, sizeof sub, "%s/old", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(template_load_set(dir, &set, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(strstr(errs, "/old: not a regular file"));
    rmdir(sub);
    static char big[TEMPLATE_MAX_FILE_BYTES + 1];
    memset(big, 'a', sizeof big);
    write_file(dir, "case_closed.en.email", big, sizeof big);
    ck_assert_int_eq(template_load_set(dir, &set, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(strstr(errs, "/case_closed.en.email: larger than 65536 bytes"));
    remove_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------ the 3-fragment check */

static const struct {
    const char *prefix;
    const char *unit;
    int count;
    const char *suffix;
    int line; /* 0: accepted; else refused at this line */
    const char *what;
} size_cases[] = {
    {"", "a", 459, "", 0, "GSM 459: 3 fragments"},
    {"", "a", 460, "", 1, "GSM 460: 4 fragments"},
    {"", "a", 457, " ((appointment_date)) ((appointment_time))", 0,
     "457 + 2 spaces = 459 with placeholders (they do not count)"},
    {"", "a", 458, " ((appointment_date)) ((appointment_time))", 1,
     "458 + 2 spaces = 460 with placeholders"},
    {"", "a", 458, " ((appointment_date))", 0, "458 + a space around a placeholder"},
    {"", "a", 459, " ((appointment_date))", 1, "459 + a space"},
    {"", "\xe2\x82\xac", 229, "a", 0, "euro x229 + a = 459 septets"},
    {"", "\xe2\x82\xac", 230, "", 1, "euro x230 = 460 septets"},
    {"", "{", 230, "", 1, "{ x230 = 460 septets"},
    {"", "[]", 114, "ab", 0, "[] x114 + ab = 458 septets"},
    {"", "\xc5\xb5", 201, "", 0, "w-circumflex x201: Unicode 201"},
    {"", "\xc5\xb5", 202, "", 1, "w-circumflex x202: Unicode 202"},
    {"\xc5\xb5", "a", 200, "", 0, "1 Unicode char + 200: 201 units"},
    {"\xc5\xb5", "a", 201, "", 1, "1 Unicode char + 201: 202 units"},
    {"`", "a", 200, "", 0, "backtick is not GSM: 201 units"},
    {"", "\xf0\x9f\x98\x80", 100, "a", 0, "emoji x100 + a: 201 UTF-16 units"},
    {"", "\xf0\x9f\x98\x80", 101, "", 1, "emoji x101: 202 UTF-16 units"},
    {"", "\xc3\xa9", 459, "", 0, "e-acute is GSM: 459"},
    {"", "\xc3\xa9", 460, "", 1, "e-acute is GSM: 460"},
    {"", "aaaaaaaaa\n", 45, "aaaaaaaa", 0, "45 lines of 10 + 8 + LFs = 458"},
    {"", "aaaaaaaaa\n", 45, "aaaaaaaaa", 0, "45 lines of 10 + 9 = 459"},
    {"", "aaaaaaaaa\n", 46, "", 0, "trailing LF trimmed: 459"},
    {"", "aaaaaaaaa\n", 45, "aaaaaaaaaa", 46, "45 lines of 10 + 10: 460th septet on line 46"},
    {"", "aaaaaaaaa\n", 46, "a", 46, "46 lines of 10 + a: the 460th is line 46's LF"},
    {"", "aaaaaaaaa\n", 20, "\xc5\xb5", 0, "Unicode from line 21: 201 units"},
    {"", "aaaaaaaaa\n", 20, "a\xc5\xb5", 21, "Unicode from line 21: 202nd unit on line 21"},
};

START_TEST(size_table)
{
    find_dirs();
    char *dir = make_dir(false);
    size_t ul = strlen(size_cases[_i].unit);
    size_t len = strlen(size_cases[_i].prefix) + ul * (size_t)size_cases[_i].count +
                 strlen(size_cases[_i].suffix) + 2;
    char *text = malloc(len);
    ck_assert_ptr_nonnull(text);
    strcpy(text, size_cases[_i].prefix);
    for (int i = 0; i < size_cases[_i].count; i++)
        strcat(text, size_cases[_i].unit);
    strcat(text, size_cases[_i].suffix);
    strcat(text, "\n");
    write_file(dir, "appointment_booked.en.sms", text, strlen(text));
    free(text);

    struct templates *set = NULL;
    char errs[ERRS_LEN];
    int rc = template_load_set(dir, &set, errs, sizeof errs);
    char want[256];
    snprintf(want, sizeof want, "%s/appointment_booked.en.sms:%d: the text without placeholders is",
             dir, size_cases[_i].line);
    remove_dir(dir);
    if (size_cases[_i].line == 0) {
        ck_assert_msg(rc == 0, "%s: %s", size_cases[_i].what, errs);
        const struct template *t = template_find(set, "appointment_booked", TEMPLATE_SMS, "en");
        ck_assert_int_le(t->sms_fragments, 3);
        template_free_set(set);
    } else {
        ck_assert_msg(rc == -1, "%s: accepted", size_cases[_i].what);
        ck_assert_msg(strstr(errs, want) != NULL, "%s: want '%s' in:\n%s", size_cases[_i].what,
                      want, errs);
        ck_assert_ptr_nonnull(strstr(errs, "4 SMS fragments"));
    }
}
END_TEST

/* Email is not sent in fragments: a long email is fine. */
START_TEST(long_email_accepted)
{
    find_dirs();
    char *dir = make_dir(false);
    static char text[6000];
    strcpy(text, "Subject: A long one ((referral_id))\n\n");
    size_t n = strlen(text);
    memset(text + n, 'a', 5000);
    text[n + 5000] = '\n';
    write_file(dir, "case_closed.en.email", text, n + 5001);
    struct templates *set = NULL;
    char errs[ERRS_LEN];
    int rc = template_load_set(dir, &set, errs, sizeof errs);
    remove_dir(dir);
    ck_assert_msg(rc == 0, "%s", errs);
    const struct template *t = template_find(set, "case_closed", TEMPLATE_EMAIL, "en");
    ck_assert_uint_eq(strlen(t->body), 5000);
    ck_assert_int_eq(t->sms_fragments, 0);
    template_free_set(set);
}
END_TEST

static const struct {
    const char *text;
    int fragments;
    size_t units;
    bool unicode;
} fragment_cases[] = {
    {"", 0, 0, false},
    {"a", 1, 1, false},
    {"{", 1, 2, false},
    {"\xe2\x82\xac", 1, 2, false},
    {"\xc5\xb5", 1, 1, true},
    {"\xf0\x9f\x98\x80", 1, 2, true},
    {"\xff", 1, 1, true},
    {"@\xc2\xa3$\xc2\xa5\xc3\xa8\xc3\xa9\xc3\xb9\xc3\xac\xc3\xb2\xc3\x87\xc3\x98\xc3\xb8\xc3\x85"
     "\xc3\xa5\xce\x94_\xce\xa6\xce\x93\xce\x9b\xce\xa9\xce\xa0\xce\xa8\xce\xa3\xce\x98\xce\x9e"
     "\xc3\x86\xc3\xa6\xc3\x9f\xc3\x89 !\"#\xc2\xa4%&'()*+,-./:;<=>?\xc2\xa1\xc3\x84\xc3\x96"
     "\xc3\x91\xc3\x9c\xc2\xa7\xc2\xbf\xc3\xa4\xc3\xb6\xc3\xb1\xc3\xbc\xc3\xa0",
     1, 63, false}, /* the whole GSM basic table beyond letters, digits and LF, CR */
    {"^{}\\[~]|\xe2\x82\xac", 1, 18, false},
};

START_TEST(fragment_table)
{
    size_t units = 0;
    bool unicode = !fragment_cases[_i].unicode;
    ck_assert_int_eq(template_sms_fragments(fragment_cases[_i].text, &units, &unicode),
                     fragment_cases[_i].fragments);
    ck_assert_uint_eq(units, fragment_cases[_i].units);
    ck_assert(unicode == fragment_cases[_i].unicode);
}
END_TEST

/* Fragment boundaries: n copies of a unit. */
static const struct {
    const char *unit;
    int count;
    int fragments;
} boundary_cases[] = {
    {"a", 160, 1},
    {"a", 161, 2},
    {"a", 306, 2},
    {"a", 307, 3},
    {"a", 459, 3},
    {"a", 460, 4},
    {"\xe2\x82\xac", 80, 1},
    {"\xe2\x82\xac", 81, 2},
    {"\xc5\xb5", 70, 1},
    {"\xc5\xb5", 71, 2},
    {"\xc5\xb5", 134, 2},
    {"\xc5\xb5", 135, 3},
    {"\xc5\xb5", 201, 3},
    {"\xc5\xb5", 202, 4},
    {"\xf0\x9f\x98\x80", 35, 1},
    {"\xf0\x9f\x98\x80", 36, 2},
};

START_TEST(boundary_table)
{
    size_t ul = strlen(boundary_cases[_i].unit);
    char *text = malloc(ul * (size_t)boundary_cases[_i].count + 1);
    ck_assert_ptr_nonnull(text);
    text[0] = '\0';
    for (int i = 0; i < boundary_cases[_i].count; i++)
        strcat(text, boundary_cases[_i].unit);
    ck_assert_int_eq(template_sms_fragments(text, NULL, NULL), boundary_cases[_i].fragments);
    free(text);
    ck_assert_int_eq(template_sms_fragments(NULL, NULL, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------ language fallback */

static const struct {
    const char *name;
    enum template_channel channel;
    const char *lang;
    const char *found; /* the language found; NULL: no template */
} find_cases[] = {
    {"appointment_booked", TEMPLATE_SMS, "xx", "xx"},
    {"appointment_booked", TEMPLATE_SMS, "XX", "xx"},
    {"appointment_booked", TEMPLATE_SMS, "xx-GB", "xx"},
    {"appointment_booked", TEMPLATE_SMS, "xx_GB", "xx"},
    {"appointment_booked", TEMPLATE_SMS, "pl", "en"},
    {"appointment_booked", TEMPLATE_SMS, "en", "en"},
    {"appointment_booked", TEMPLATE_SMS, NULL, "en"},
    {"appointment_booked", TEMPLATE_SMS, "", "en"},
    {"appointment_booked", TEMPLATE_SMS, "x", "en"},
    {"appointment_booked", TEMPLATE_SMS, "xxx", "en"},
    {"appointment_reminder", TEMPLATE_SMS, "xx", "en"},
    {"case_allocated", TEMPLATE_EMAIL, "xx", "en"},
    {"safeguarding_alert", TEMPLATE_SMS, "cy", "en"},
    {"case_allocated", TEMPLATE_SMS, "en", NULL},
    {"appointment_booked", TEMPLATE_EMAIL, "xx", NULL},
    {"no_such_template", TEMPLATE_EMAIL, "en", NULL},
    {NULL, TEMPLATE_EMAIL, "en", NULL},
};

START_TEST(find_table)
{
    find_dirs();
    char *dir = make_dir(true);
    struct templates *set = NULL;
    char errs[ERRS_LEN];
    int rc = template_load_set(dir, &set, errs, sizeof errs);
    remove_dir(dir);
    ck_assert_msg(rc == 0, "%s", errs);
    ck_assert_uint_eq(template_count(set), N_ELEMS(required) + 1);
    const struct template *t =
        template_find(set, find_cases[_i].name, find_cases[_i].channel, find_cases[_i].lang);
    if (find_cases[_i].found == NULL) {
        ck_assert_ptr_null(t);
    } else {
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, find_cases[_i].name);
        ck_assert_str_eq(t->lang, find_cases[_i].found);
    }
    template_free_set(set);
    ck_assert_ptr_null(template_find(NULL, "case_allocated", TEMPLATE_EMAIL, "en"));
}
END_TEST

START_TEST(render_test_language)
{
    find_dirs();
    char *dir = make_dir(true);
    struct templates *set = NULL;
    char errs[ERRS_LEN];
    int rc = template_load_set(dir, &set, errs, sizeof errs);
    remove_dir(dir);
    ck_assert_msg(rc == 0, "%s", errs);
    const struct template *t = template_find(set, "appointment_booked", TEMPLATE_SMS, "xx");
    struct template_message m;
    char err[256];
    ck_assert_int_eq(template_render(t, all_values, N_ELEMS(all_values), &m, err, sizeof err), 0);
    ck_assert_ptr_null(m.subject);
    ck_assert_str_eq(m.body, "XX-TEST booked Tuesday 1 December 2026 10:30am Kendal Family Hub, "
                             "Sample Street");
    template_free_message(&m);
    template_free_set(set);
}
END_TEST

/* ------------------------------------------------------------------ rendering */

/* A set with one hand-written case_allocated, to render exact text. */
static struct templates *load_with(const char *file, const char *text)
{
    find_dirs();
    char *dir = make_dir(false);
    write_file(dir, file, text, strlen(text));
    struct templates *set = NULL;
    char errs[ERRS_LEN];
    int rc = template_load_set(dir, &set, errs, sizeof errs);
    remove_dir(dir);
    ck_assert_msg(rc == 0, "%s", errs);
    return set;
}

START_TEST(render_exact)
{
    struct templates *set =
        load_with("case_allocated.en.email", "Subject: New for ((team_name)): ((referral_id))\n"
                                             "\n\nReferral: ((referral_id))\n"
                                             "Due: ((decision_due_at)) (((rule)))\n\n");
    const struct template *t = template_find(set, "case_allocated", TEMPLATE_EMAIL, "en");
    ck_assert_int_eq(t->body_line, 4);
    struct template_value v[] = {
        {"referral_id", "REF-1"},
        {"team_name", "Kendal Family Hub"},
        {"decision_due_at", "5pm on Tuesday 1 December 2026"},
        {"rule", "school_attendance"},
        {"rule", "ignored: the first counts"},
        {"summary", "extra values are ignored"},
    };
    struct template_message m;
    char err[256];
    ck_assert_int_eq(template_render(t, v, N_ELEMS(v), &m, err, sizeof err), 0);
    ck_assert_str_eq(m.subject, "New for Kendal Family Hub: REF-1");
    ck_assert_str_eq(m.body,
                     "Referral: REF-1\nDue: 5pm on Tuesday 1 December 2026 (school_attendance)");
    template_free_message(&m);
    template_free_set(set);
}
END_TEST

static const struct {
    const char *team_name;
    const char *subject;
} injection_cases[] = {
    {"Hub\r\nBcc: victim@example.org", "New for Hub Bcc: victim@example.org: REF-1"},
    {"Hub\nBcc: victim@example.org", "New for Hub Bcc: victim@example.org: REF-1"},
    {"Hub\rBcc: victim@example.org", "New for Hub Bcc: victim@example.org: REF-1"},
    {"Hub\r\n\r\nbody text", "New for Hub body text: REF-1"},
    {"\r\nBcc: victim@example.org", "New for Bcc: victim@example.org: REF-1"},
    {"Hub\r\n", "New for Hub: REF-1"},
    {"Hub\xc2\x85"
     "Bcc: x",
     "New for Hub Bcc: x: REF-1"}, /* NEL */
    {"Hub\xe2\x80\xa8"
     "Bcc: x",
     "New for Hub Bcc: x: REF-1"}, /* LINE SEPARATOR */
    {"Hub\x0b\x0c"
     "Bcc: x",
     "New for Hub Bcc: x: REF-1"}, /* VT, FF */
    {"Hub\x1b[2J\x7f", "New for Hub [2J: REF-1"},
    {"Hub\xff\xfe", "New for Hub\xef\xbf\xbd\xef\xbf\xbd: REF-1"}, /* not UTF-8 */
    {"", "New for : REF-1"},
};

START_TEST(render_injection)
{
    struct templates *set =
        load_with("case_allocated.en.email", "Subject: New for ((team_name)): ((referral_id))\n\n"
                                             "Team: ((team_name))\nReferral: ((referral_id))\n");
    const struct template *t = template_find(set, "case_allocated", TEMPLATE_EMAIL, "en");
    struct template_value v[] = {{"referral_id", "REF-1"},
                                 {"team_name", injection_cases[_i].team_name}};
    struct template_message m;
    char err[256];
    ck_assert_int_eq(template_render(t, v, N_ELEMS(v), &m, err, sizeof err), 0);
    ck_assert_str_eq(m.subject, injection_cases[_i].subject);
    for (const unsigned char *p = (const unsigned char *)m.subject; *p; p++)
        ck_assert_msg(*p >= 0x20 && *p != 0x7f, "control 0x%02x in the subject", *p);
    /* the body keeps its own two lines and no value adds one */
    int lines = 1;
    for (const char *p = m.body; *p; p++) {
        ck_assert(*p != '\r');
        lines += *p == '\n';
    }
    ck_assert_int_eq(lines, 2);
    ck_assert(strncmp(m.body, "Team: ", 6) == 0);
    template_free_message(&m);
    template_free_set(set);
}
END_TEST

START_TEST(render_missing_value)
{
    struct templates *set =
        load_with("case_allocated.en.email", "Subject: New ((referral_id))\n\nRule ((rule))\n");
    const struct template *t = template_find(set, "case_allocated", TEMPLATE_EMAIL, "en");
    struct template_message m = {(char *)1, (char *)1};
    char err[256];
    struct template_value only_id[] = {{"referral_id", "REF-1"}};
    ck_assert_int_eq(template_render(t, only_id, 1, &m, err, sizeof err), -1);
    ck_assert_str_eq(err, "no value for placeholder ((rule))");
    ck_assert_ptr_null(m.subject);
    ck_assert_ptr_null(m.body);
    struct template_value null_id[] = {{"referral_id", NULL}, {"rule", "r"}};
    ck_assert_int_eq(template_render(t, null_id, 2, &m, err, sizeof err), -1);
    ck_assert_str_eq(err, "no value for placeholder ((referral_id))");
    ck_assert_int_eq(template_render(t, NULL, 0, &m, NULL, 0), -1);
    ck_assert_int_eq(template_render(NULL, NULL, 0, &m, err, sizeof err), -1);
    template_free_message(NULL);
    template_free_set(set);
    template_free_set(NULL);
    ck_assert_uint_eq(template_count(NULL), 0);
}
END_TEST

static const struct {
    const char *in;
    const char *out;
} clean_cases[] = {
    {"plain", "plain"},
    {"a\r\nb", "a b"},
    {"a\n\n\nb", "a b"},
    {"\r\nBcc: x", "Bcc: x"},
    {"a\tb", "a b"},
    {"  a  b  ", "a  b"},
    {"a\x7f", "a"},
    {"a\xc2\x85", "a"},
    {"a\xe2\x80\xa8"
     "b",
     "a b"},
    {"a\xe2\x80\xae"
     "b",
     "a b"},
    {"\xef\xbb\xbf"
     "a",
     "a"},
    {"\xff", "\xef\xbf\xbd"},
    {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
    {"caf\xc3\xa9 \xc5\xb5 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xc5\xb5 \xf0\x9f\x98\x80"},
    {"", ""},
    {NULL, ""},
};

START_TEST(clean_table)
{
    char *got = template_clean_value(clean_cases[_i].in);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, clean_cases[_i].out);
    free(got);
}
END_TEST

/* ------------------------------------------------------------------ value formats */

static const struct {
    const char *utc;
    const char *date, *time;
} format_cases[] = {
    {"2026-12-01T10:30:00Z", "Tuesday 1 December 2026", "10:30am"},
    {"2026-07-15T11:00:00Z", "Wednesday 15 July 2026", "midday"},
    {"2026-07-15T23:00:00Z", "Thursday 16 July 2026", "midnight"},
    {"2026-01-14T17:05:00Z", "Wednesday 14 January 2026", "5:05pm"},
    {"2026-01-14T00:30:00Z", "Wednesday 14 January 2026", "12:30am"},
    {"2026-01-14T12:45:00Z", "Wednesday 14 January 2026", "12:45pm"},
    {"2026-03-29T01:00:00Z", "Sunday 29 March 2026", "2am"},
    {"2026-10-25T01:30:00Z", "Sunday 25 October 2026", "1:30am"},
    {"2026-02-28T23:59:00Z", "Saturday 28 February 2026", "11:59pm"},
};

START_TEST(format_table)
{
    struct tzone *z = NULL;
    char err[256];
    ck_assert_msg(caltime_load_zone("Europe/London", &z, err, sizeof err) == 0, "%s", err);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    ck_assert_ptr_nonnull(strptime(format_cases[_i].utc, "%Y-%m-%dT%H:%M:%SZ", &tm));
    int64_t t = (int64_t)timegm(&tm);
    char buf[32];
    ck_assert_str_eq(template_format_date(z, t, buf, sizeof buf), format_cases[_i].date);
    ck_assert_str_eq(template_format_time(z, t, buf, sizeof buf), format_cases[_i].time);
    char small[5] = "xxxx";
    ck_assert_str_eq(template_format_date(z, t, small, sizeof small), "");
    caltime_free_zone(z);
}
END_TEST

static Suite *template_suite(void)
{
    Suite *s = suite_create("template");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, shipped_each_loads, 0, N_ELEMS(required));
    tcase_add_test(tc, staff_emails_carry_the_decision);
    tcase_add_loop_test(tc, bad_table, 0, N_ELEMS(bad_cases));
    tcase_add_test(tc, every_problem_reported);
    tcase_add_test(tc, folder_problems);
    suite_add_tcase(s, tc);

    tc = tcase_create("sms_size");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, size_table, 0, N_ELEMS(size_cases));
    tcase_add_test(tc, long_email_accepted);
    tcase_add_loop_test(tc, fragment_table, 0, N_ELEMS(fragment_cases));
    tcase_add_loop_test(tc, boundary_table, 0, N_ELEMS(boundary_cases));
    suite_add_tcase(s, tc);

    tc = tcase_create("find_render");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, find_table, 0, N_ELEMS(find_cases));
    tcase_add_test(tc, render_test_language);
    tcase_add_test(tc, render_exact);
    tcase_add_loop_test(tc, render_injection, 0, N_ELEMS(injection_cases));
    tcase_add_test(tc, render_missing_value);
    tcase_add_loop_test(tc, clean_table, 0, N_ELEMS(clean_cases));
    tcase_add_loop_test(tc, format_table, 0, N_ELEMS(format_cases));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(template_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
