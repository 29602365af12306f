/* libFuzzer target: the message templates, loaded and rendered.
 *
 * Input: one selector byte, then the text of one template file, then optionally the
 * bytes FF FE and a placeholder value. A private copy of the shipped template folder gets
 * the text under the selected name (a shipped file, another language, or a name that is
 * no template), and template_load_set() loads the whole folder. A folder it accepts is
 * rendered in every template and language with the value in every placeholder.
 * Invariants: errors are reported, a rendered subject is one line of UTF-8 with no
 * control character, a value never adds a line to a body, and template_clean_value()
 * gives UTF-8 without controls or outer spaces. */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontdoor/template.h"
#include "fuzz_common.h"

#define MAX_FILES 64

static char dir[4096];
static char *names[MAX_FILES + 8];
static char *originals[MAX_FILES];
static size_t original_len[MAX_FILES];
static size_t n_shipped, n_names;

/* Names that are not in the shipped folder: other languages, and files no template has. */
static const char *const extra_names[] = {
    "appointment_booked.cy.sms",
    "case_allocated.pl.email",
    "triage_needed.en.sms",
    "appointment_booked.EN.sms",
    "notes.txt",
    ".hidden",
    "extra.md",
};

static void write_file(const char *name, const void *data, size_t len)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            perror(path);
            exit(1);
        }
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

static void remove_dir(void)
{
    for (size_t i = 0; i < n_names; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/frontdoor-fuzz-template.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(remove_dir);
    const char *src = fuzz_source_path("config/templates");
    char srcdir[4096];
    snprintf(srcdir, sizeof srcdir, "%s", src);
    DIR *d = opendir(srcdir);
    if (d == NULL) {
        perror(srcdir);
        exit(1);
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n_shipped < MAX_FILES) {
        if (e->d_name[0] == '.' || strstr(e->d_name, ".md") != NULL)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", srcdir, e->d_name);
        names[n_shipped] = strdup(e->d_name);
        originals[n_shipped] = fuzz_read_file(path, &original_len[n_shipped]);
        write_file(e->d_name, originals[n_shipped], original_len[n_shipped]);
        n_shipped++;
    }
    closedir(d);
    /* readdir's order differs between file systems: sort, so a selector byte always
     * names the same file */
    for (size_t i = 1; i < n_shipped; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *tn = names[j];
            names[j] = names[j - 1];
            names[j - 1] = tn;
            char *to = originals[j];
            originals[j] = originals[j - 1];
            originals[j - 1] = to;
            size_t tl = original_len[j];
            original_len[j] = original_len[j - 1];
            original_len[j - 1] = tl;
        }
    n_names = n_shipped;
    for (size_t i = 0; i < sizeof extra_names / sizeof extra_names[0]; i++)
        names[n_names++] = strdup(extra_names[i]);
    return 0;
}

/* Valid UTF-8, and no control character but those `allowed` (a string of ASCII bytes). */
static bool clean_text(const char *s, const char *allowed)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        size_t len;
        if (*p < 0x80) {
            cp = *p, len = 1;
        } else if (*p >= 0xC2 && *p <= 0xDF) {
            cp = *p & 0x1F, len = 2;
        } else if (*p >= 0xE0 && *p <= 0xEF) {
            cp = *p & 0x0F, len = 3;
        } else if (*p >= 0xF0 && *p <= 0xF4) {
            cp = *p & 0x07, len = 4;
        } else {
            return false;
        }
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        bool control = cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029;
        if (control && !(cp < 0x80 && strchr(allowed, (int)cp) != NULL))
            return false;
        p += len;
    }
    return true;
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static const char *const template_names[] = {
    "safeguarding_alert",    "safeguarding_alert_failed",
    "case_allocated",        "triage_needed",
    "consent_needed",        "signposted",
    "referral_acknowledged", "case_closed",
    "decision_overdue",      "unusable_event",
    "appointment_booked",    "appointment_reminder",
    "appointment_cancelled",
};
static const char *const placeholders[] = {
    "referral_id",
    "route",
    "destination",
    "priority",
    "decision_due_at",
    "rule",
    "team_name",
    "alert_id",
    "alert_template",
    "alert_channel",
    "topic",
    "partition",
    "offset",
    "error",
    "appointment_date",
    "appointment_time",
    "appointment_location",
    "appointment_with",
};
#define N_PLACEHOLDERS (sizeof placeholders / sizeof placeholders[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t which = data[0] % n_names;
    const uint8_t *text = data + 1;
    size_t text_len = size - 1;
    const char *value = "Sam\r\nBcc: x@example.net";
    char *value_buf = NULL;
    const uint8_t *sep = memmem(text, text_len, "\xff\xfe", 2);
    if (sep != NULL) {
        size_t vlen = text_len - (size_t)(sep - text) - 2;
        value_buf = malloc(vlen + 1);
        if (value_buf == NULL)
            return 0;
        memcpy(value_buf, sep + 2, vlen);
        value_buf[vlen] = '\0';
        value = value_buf;
        text_len = (size_t)(sep - text);
    }

    write_file(names[which], text, text_len);
    struct templates *set = NULL;
    static char errs[16384];
    memset(errs, 'x', sizeof errs);
    int rc = template_load_set(dir, &set, errs, sizeof errs);
    fuzz_assert_terminated(errs, sizeof errs);
    /* put the folder back as shipped for the next input */
    if (which < n_shipped) {
        write_file(names[which], originals[which], original_len[which]);
    } else {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[which]);
        unlink(path);
    }
    if (rc != 0) {
        FUZZ_ASSERT(set == NULL && errs[0] != '\0');
        free(value_buf);
        return 0;
    }
    FUZZ_ASSERT(set != NULL && template_count(set) > 0);

    struct template_value values[N_PLACEHOLDERS];
    for (size_t i = 0; i < N_PLACEHOLDERS; i++)
        values[i] = (struct template_value){placeholders[i], value};
    static const char *const langs[] = {NULL, "cy", "pl-PL"}; /* English, and two others */
    for (size_t n = 0; n < sizeof template_names / sizeof template_names[0]; n++)
        for (int ch = TEMPLATE_EMAIL; ch <= TEMPLATE_SMS; ch++)
            for (size_t l = 0; l < sizeof langs / sizeof langs[0]; l++) {
                const struct template *t =
                    template_find(set, template_names[n], (enum template_channel)ch, langs[l]);
                if (t == NULL)
                    continue;
                struct template_message m;
                char err[256];
                if (template_render(t, values, N_PLACEHOLDERS, &m, err, sizeof err) != 0)
                    continue;
                if (t->subject != NULL) {
                    FUZZ_ASSERT(m.subject != NULL && clean_text(m.subject, ""));
                }
                FUZZ_ASSERT(m.body != NULL && clean_text(m.body, "\n\t"));
                FUZZ_ASSERT(count_char(m.body, '\n') == count_char(t->body, '\n'));
                template_free_message(&m);
            }
    template_free_set(set);

    char *clean = template_clean_value(value);
    FUZZ_ASSERT(clean != NULL && clean_text(clean, ""));
    size_t cl = strlen(clean);
    FUZZ_ASSERT(cl == 0 || (clean[0] != ' ' && clean[cl - 1] != ' '));
    size_t units;
    bool unicode;
    template_sms_fragments(clean, &units, &unicode);
    template_sms_fragments(value, &units, &unicode);
    free(clean);
    free(value_buf);
    return 0;
}
