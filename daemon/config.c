/* config: frontdoord.conf through libinih into struct config.
 *
 * inih is given our own line reader, so we know the line number of every key (the
 * packaged inih passes none) and can refuse an over-long line: inih would otherwise
 * silently drop its tail, turning e.g. a long conninfo into a different one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "frontdoor/config.h"
#include "frontdoor/http.h"
#include "frontdoor/log.h"
#include "frontdoor/template.h"

/* Error list: "file:line: message" lines in a caller's buffer. */
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

enum key_kind {
    K_STRING,   /* copied as is */
    K_PATH,     /* resolved against the file's folder */
    K_SECRET,   /* a *_file key: the named file's contents are stored */
    K_INT,      /* decimal, within [min, max] */
    K_SIZE,     /* bytes, with an optional KiB/MiB suffix */
    K_PROVIDER, /* file | smtp | notify */
    K_LOGLEVEL,
    K_LOGFORMAT,
    K_BOOL, /* true | false */
};

struct key_spec {
    const char *section;
    const char *name;
    enum key_kind kind;
    size_t offset;
    const char *def; /* default, or NULL */
    long min, max;   /* K_INT, K_SIZE */
};

#define OFF(field) offsetof(struct config, field)

/* Every key of the main file. The shipped config/frontdoord.conf explains each. */
static const struct key_spec keys[] = {
    {"kafka", "brokers", K_STRING, OFF(kafka.brokers), NULL, 0, 0},
    {"kafka", "group_id", K_STRING, OFF(kafka.group_id), "frontdoord", 0, 0},
    {"kafka", "referrals_topic", K_STRING, OFF(kafka.referrals_topic), "frontdoor.referrals", 0, 0},
    {"kafka", "case_events_topic", K_STRING, OFF(kafka.case_events_topic), "frontdoor.case-events",
     0, 0},
    {"kafka", "decisions_topic", K_STRING, OFF(kafka.decisions_topic), "frontdoor.decisions", 0, 0},
    {"kafka", "dlq_topic", K_STRING, OFF(kafka.dlq_topic), "frontdoor.dlq", 0, 0},
    {"kafka", "max_message_bytes", K_SIZE, OFF(kafka.max_message_bytes), "65536", 1024,
     16 * 1024 * 1024},
    {"kafka", "unknown_case_retry_seconds", K_INT, OFF(kafka.unknown_case_retry_s), "600", 0,
     7 * 86400},
    {"kafka", "embedded_partitions", K_INT, OFF(kafka.embedded_partitions), "4", 1, 256},
    {"kafka", "max_in_flight", K_INT, OFF(kafka.max_in_flight), "4000", 10, 1000000},
    {"kafka", "sasl_password_file", K_SECRET, OFF(kafka.sasl_password), NULL, 0, 0},
    {"database", "conninfo", K_STRING, OFF(database.conninfo), "", 0, 0},
    {"database", "password_file", K_SECRET, OFF(database.password), NULL, 0, 0},
    {"database", "batch_max", K_INT, OFF(database.batch_max), "500", 1, 100000},
    {"database", "connections", K_INT, OFF(database.connections), "3", 1, 16},
    {"database", "prepared_statements", K_BOOL, OFF(database.prepared_statements), "true", 0, 0},
    {"email", "provider", K_PROVIDER, OFF(email.provider), "file", 0, 0},
    {"email", "spool_dir", K_PATH, OFF(email.spool_dir), "spool/email", 0, 0},
    {"email", "notify_url", K_STRING, OFF(email.notify_url),
     "https://api.notifications.service.gov.uk", 0, 0},
    {"email", "notify_api_key_file", K_SECRET, OFF(email.notify_api_key), NULL, 0, 0},
    {"email", "rate_limit_per_minute", K_INT, OFF(email.rate_limit_per_minute), "3000", 1, 1000000},
    {"email", "timeout_seconds", K_INT, OFF(email.timeout_s), "30", 1, 600},
    {"email", "max_in_flight", K_INT, OFF(email.max_in_flight), "20", 1, 1000},
    {"email", "smtp_ca_file", K_PATH, OFF(email_smtp_ca_file), NULL, 0, 0},
    {"email", "smtp_url", K_STRING, OFF(email_smtp_url), "smtp://127.0.0.1:25", 0, 0},
    {"email", "from", K_STRING, OFF(email_from), "family-help@example.org", 0, 0},
    {"email", "smtp_username", K_STRING, OFF(email_smtp_username), NULL, 0, 0},
    {"email", "smtp_password_file", K_SECRET, OFF(email_smtp_password), NULL, 0, 0},
    {"sms", "provider", K_PROVIDER, OFF(sms.provider), "file", 0, 0},
    {"sms", "spool_dir", K_PATH, OFF(sms.spool_dir), "spool/sms", 0, 0},
    {"sms", "notify_url", K_STRING, OFF(sms.notify_url), "https://api.notifications.service.gov.uk",
     0, 0},
    {"sms", "notify_api_key_file", K_SECRET, OFF(sms.notify_api_key), NULL, 0, 0},
    {"sms", "rate_limit_per_minute", K_INT, OFF(sms.rate_limit_per_minute), "3000", 1, 1000000},
    {"sms", "timeout_seconds", K_INT, OFF(sms.timeout_s), "30", 1, 600},
    {"sms", "max_in_flight", K_INT, OFF(sms.max_in_flight), "20", 1, 1000},
    {"http", "listen", K_STRING, OFF(http.listen), "127.0.0.1:9464", 0, 0},
    {"http", "callback_token_file", K_SECRET, OFF(http.callback_token), NULL, 0, 0},
    {"routing", "rules", K_PATH, OFF(routing.rules), "frontdoor.rules", 0, 0},
    {"routing", "directory", K_PATH, OFF(routing.directory), "directory.json", 0, 0},
    {"routing", "templates", K_PATH, OFF(routing.templates), "templates", 0, 0},
    {"log", "level", K_LOGLEVEL, OFF(log.level), "info", 0, 0},
    {"log", "format", K_LOGFORMAT, OFF(log.format), "logfmt", 0, 0},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

struct parse_state {
    struct config *cfg;
    struct errlist *errs;
    const char *file;
    FILE *fp;
    int line;         /* line number of the line inih is looking at */
    int seen[N_KEYS]; /* line where each key was set, 0 = not set */
    char *linebuf;    /* getline buffer */
    size_t linecap;
};

char *config_resolve_path(const char *dir, const char *p)
{
    char *out = NULL;
    if (p[0] == '/' || dir == NULL)
        return strdup(p);
    if (asprintf(&out, "%s/%s", dir, p) < 0)
        return NULL;
    return out;
}

static void wipe_free(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

int config_read_secret(const char *name, const char *dir, char **out, char *err, size_t errlen)
{
    char *path = NULL;
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    *out = NULL;
    if (name[0] == '\0') {
        snprintf(err, errlen, "empty file name");
        return -1;
    }
    /* systemd LoadCredential=: a bare name is a credential when one by that name exists. */
    if (strchr(name, '/') == NULL && creds != NULL && creds[0] != '\0') {
        if (asprintf(&path, "%s/%s", creds, name) < 0)
            path = NULL;
        if (path != NULL && access(path, F_OK) != 0) {
            free(path);
            path = NULL;
        }
    }
    if (path == NULL)
        path = config_resolve_path(dir, name);
    if (path == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read secret file %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    char buf[8192];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf && (r = read(fd, buf + n, sizeof buf - n)) > 0)
        n += (size_t)r;
    close(fd);
    if (n == sizeof buf) {
        snprintf(err, errlen, "secret file %s is larger than %zu bytes", path, sizeof buf - 1);
        explicit_bzero(buf, sizeof buf);
        free(path);
        return -1;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0 || memchr(buf, '\0', n) != NULL || memchr(buf, '\n', n) != NULL) {
        snprintf(err, errlen, "secret file %s must hold one non-empty line", path);
        explicit_bzero(buf, sizeof buf);
        free(path);
        return -1;
    }
    *out = strndup(buf, n);
    explicit_bzero(buf, sizeof buf);
    free(path);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* inih's reader: one physical line per call, counted; an over-long line is reported
 * and handed to inih as an empty line. */
static char *reader(char *str, int num, void *stream)
{
    struct parse_state *st = stream;
    ssize_t n = getline(&st->linebuf, &st->linecap, st->fp);
    if (n < 0)
        return NULL;
    st->line++;
    size_t body = (size_t)n;
    while (body > 0 && (st->linebuf[body - 1] == '\n' || st->linebuf[body - 1] == '\r'))
        body--;
    if (body > CONFIG_MAX_LINE || body + 2 > (size_t)num) {
        err_add(st->errs, st->file, st->line, "line is longer than %d bytes", CONFIG_MAX_LINE);
        str[0] = '\n';
        str[1] = '\0';
        return str;
    }
    if (memchr(st->linebuf, '\0', body) != NULL) {
        err_add(st->errs, st->file, st->line, "line holds a NUL byte");
        str[0] = '\n';
        str[1] = '\0';
        return str;
    }
    memcpy(str, st->linebuf, body);
    str[body] = '\n';
    str[body + 1] = '\0';
    return str;
}

static int set_value(struct parse_state *st, const struct key_spec *k, const char *value)
{
    struct config *cfg = st->cfg;
    void *field = (char *)cfg + k->offset;
    char err[512];

    switch (k->kind) {
    case K_STRING:
    case K_PATH: {
        char *v = k->kind == K_PATH ? config_resolve_path(cfg->dir, value) : strdup(value);
        if (v == NULL)
            return -1;
        free(*(char **)field);
        *(char **)field = v;
        return 0;
    }
    case K_SECRET: {
        char *v;
        if (config_read_secret(value, cfg->dir, &v, err, sizeof err) != 0) {
            err_add(st->errs, st->file, st->line, "%s.%s: %s", k->section, k->name, err);
            return 0;
        }
        wipe_free(*(char **)field);
        *(char **)field = v;
        return 0;
    }
    case K_INT:
    case K_SIZE: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (k->kind == K_SIZE && end != value) {
            while (*end == ' ')
                end++;
            if (strcmp(end, "KiB") == 0 && v < LLONG_MAX / 1024)
                v *= 1024, end += 3;
            else if (strcmp(end, "MiB") == 0 && v < LLONG_MAX / (1024 * 1024))
                v *= 1024 * 1024, end += 3;
        }
        if (errno != 0 || end == value || *end != '\0' || v < k->min || v > k->max) {
            err_add(st->errs, st->file, st->line, "%s.%s must be a whole number from %ld to %ld%s",
                    k->section, k->name, k->min, k->max,
                    k->kind == K_SIZE ? " (or N KiB/MiB)" : "");
            return 0;
        }
        if (k->kind == K_SIZE)
            *(size_t *)field = (size_t)v;
        else
            *(int *)field = (int)v;
        return 0;
    }
    case K_PROVIDER: {
        enum provider_kind p;
        if (strcmp(value, "file") == 0)
            p = PROVIDER_FILE;
        else if (strcmp(value, "smtp") == 0 && strcmp(k->section, "email") == 0)
            p = PROVIDER_SMTP;
        else if (strcmp(value, "notify") == 0)
            p = PROVIDER_NOTIFY;
        else {
            err_add(st->errs, st->file, st->line, "%s.provider must be %s", k->section,
                    strcmp(k->section, "email") == 0 ? "file, smtp or notify" : "file or notify");
            return 0;
        }
        *(enum provider_kind *)field = p;
        return 0;
    }
    case K_LOGLEVEL: {
        int l = log_parse_level(value);
        if (l < 0) {
            err_add(st->errs, st->file, st->line, "log.level must be debug, info, warn or error");
            return 0;
        }
        *(int *)field = l;
        return 0;
    }
    case K_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0)
            *(bool *)field = value[0] == 't';
        else
            err_add(st->errs, st->file, st->line, "%s.%s must be true or false", k->section,
                    k->name);
        return 0;
    case K_LOGFORMAT:
        if (strcmp(value, "logfmt") == 0)
            *(enum log_format_kind *)field = LOG_FORMAT_LOGFMT;
        else if (strcmp(value, "json") == 0)
            *(enum log_format_kind *)field = LOG_FORMAT_JSON;
        else
            err_add(st->errs, st->file, st->line, "log.format must be logfmt or json");
        return 0;
    }
    return 0;
}

static int add_rdkafka(struct parse_state *st, const char *name, const char *value)
{
    struct config *cfg = st->cfg;
    const char *prop = name + strlen("rdkafka.");
    if (*prop == '\0') {
        err_add(st->errs, st->file, st->line, "kafka.rdkafka. needs a property name");
        return 0;
    }
    for (size_t i = 0; i < cfg->kafka.n_rdkafka; i++)
        if (strcmp(cfg->kafka.rdkafka[i].key, prop) == 0) {
            err_add(st->errs, st->file, st->line, "kafka.%s is already set on line %d", name,
                    cfg->kafka.rdkafka[i].line);
            return 0;
        }
    struct kv_pair *n =
        realloc(cfg->kafka.rdkafka, (cfg->kafka.n_rdkafka + 1) * sizeof *cfg->kafka.rdkafka);
    if (n == NULL)
        return -1;
    cfg->kafka.rdkafka = n;
    struct kv_pair *kv = &n[cfg->kafka.n_rdkafka];
    kv->key = strdup(prop);
    kv->value = strdup(value);
    kv->line = st->line;
    if (kv->key == NULL || kv->value == NULL) {
        free(kv->key);
        free(kv->value);
        return -1;
    }
    cfg->kafka.n_rdkafka++;
    return 0;
}

static bool is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* The 36 characters at s form a UUID (whatever follows). */
static bool is_uuid_n(const char *s)
{
    char buf[37];
    memcpy(buf, s, 36);
    buf[36] = '\0';
    return is_uuid(buf);
}

/* `notify_template.<template>[.<lang>] = <id>` in [email] or [sms]. */
static int add_notify_template(struct parse_state *st, const char *section, const char *name,
                               const char *value)
{
    struct config *cfg = st->cfg;
    bool email = strcmp(section, "email") == 0;
    struct channel_config *ch = email ? &cfg->email : &cfg->sms;
    const char *rest = name + strlen("notify_template.");
    const char *dot = strchr(rest, '.');
    size_t tlen = dot ? (size_t)(dot - rest) : strlen(rest);
    char tname[64];
    if (tlen == 0 || tlen >= sizeof tname) {
        err_add(st->errs, st->file, st->line, "%s.%s: unknown template", section, name);
        return 0;
    }
    memcpy(tname, rest, tlen);
    tname[tlen] = '\0';
    if (!template_catalogue_has(tname, email ? TEMPLATE_EMAIL : TEMPLATE_SMS)) {
        err_add(st->errs, st->file, st->line, "%s.%s: %s is not a template sent by %s", section,
                name, tname, section);
        return 0;
    }
    if (dot && !(strlen(dot + 1) == 2 && dot[1] >= 'a' && dot[1] <= 'z' && dot[2] >= 'a' &&
                 dot[2] <= 'z')) {
        err_add(st->errs, st->file, st->line,
                "%s.%s: the language must be a two-letter lower-case code", section, name);
        return 0;
    }
    if (!is_uuid(value)) {
        err_add(st->errs, st->file, st->line, "%s.%s must be a Notify template id (a UUID)",
                section, name);
        return 0;
    }
    /* stored as <template>.<lang>, so a missing language and `.en` are the same key */
    char key[80];
    snprintf(key, sizeof key, "%s.%s", tname, dot ? dot + 1 : "en");
    for (size_t i = 0; i < ch->n_notify_templates; i++)
        if (strcmp(ch->notify_templates[i].key, key) == 0) {
            err_add(st->errs, st->file, st->line, "%s.%s is already set on line %d", section, name,
                    ch->notify_templates[i].line);
            return 0;
        }
    struct kv_pair *n =
        realloc(ch->notify_templates, (ch->n_notify_templates + 1) * sizeof *ch->notify_templates);
    if (n == NULL)
        return -1;
    ch->notify_templates = n;
    struct kv_pair *kv = &n[ch->n_notify_templates];
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->line = st->line;
    if (kv->key == NULL || kv->value == NULL) {
        free(kv->key);
        free(kv->value);
        return -1;
    }
    ch->n_notify_templates++;
    return 0;
}

const char *config_notify_template_id(const struct channel_config *ch, const char *template_name,
                                      const char *lang)
{
    char want[80], en[80];
    snprintf(want, sizeof want, "%s.%.2s", template_name, lang && lang[0] ? lang : "en");
    snprintf(en, sizeof en, "%s.en", template_name);
    const char *fallback = NULL;
    for (size_t i = 0; i < ch->n_notify_templates; i++) {
        if (strcmp(ch->notify_templates[i].key, want) == 0)
            return ch->notify_templates[i].value;
        if (strcmp(ch->notify_templates[i].key, en) == 0)
            fallback = ch->notify_templates[i].value;
    }
    return fallback;
}

bool config_url_is_loopback(const char *url)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (p == NULL)
        return false;
    p += 3;
    const char *at = strpbrk(p, "@/");
    if (at && *at == '@') /* user:password@host */
        p = at + 1;
    if (strncmp(p, "[::1]", 5) == 0)
        return p[5] == '\0' || p[5] == ':' || p[5] == '/';
    size_t n = strcspn(p, ":/");
    if (n == 9 && strncasecmp(p, "localhost", 9) == 0)
        return true;
    /* 127.x.y.z, four numbers */
    if (n < 9 || strncmp(p, "127.", 4) != 0)
        return false;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.')
            dots++;
        else if (p[i] < '0' || p[i] > '9')
            return false;
    }
    return dots == 3;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (strcmp(section, "kafka") == 0 && strncmp(name, "rdkafka.", 8) == 0)
        return add_rdkafka(st, name, value) == 0;
    if ((strcmp(section, "email") == 0 || strcmp(section, "sms") == 0) &&
        strncmp(name, "notify_template.", 16) == 0)
        return add_notify_template(st, section, name, value) == 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].section, section) != 0 || strcmp(keys[i].name, name) != 0)
            continue;
        if (st->seen[i]) {
            err_add(st->errs, st->file, st->line, "%s.%s is already set on line %d", section, name,
                    st->seen[i]);
            return 1;
        }
        st->seen[i] = st->line;
        if (value[0] == '\0' && keys[i].kind != K_STRING) {
            err_add(st->errs, st->file, st->line, "%s.%s has no value", section, name);
            return 1;
        }
        return set_value(st, &keys[i], value) == 0;
    }
    if (section[0] == '\0')
        err_add(st->errs, st->file, st->line, "key %s is outside any [section]", name);
    else
        err_add(st->errs, st->file, st->line, "unknown key %s in [%s]", name, section);
    return 1;
}

/* The line where a key was set, 0 when it was not (a default). */
static int seen_line(const struct parse_state *st, const char *section, const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return st->seen[i];
    return 0;
}

/* Cross-key checks that need the whole file. */
static void validate(struct parse_state *st)
{
    struct config *cfg = st->cfg;
    struct errlist *e = st->errs;
    const char *f = st->file;
    if (cfg->kafka.brokers == NULL || cfg->kafka.brokers[0] == '\0')
        err_add(e, f, 0, "kafka.brokers is required (bootstrap servers, or embedded)");
    const char *topics[] = {cfg->kafka.referrals_topic, cfg->kafka.case_events_topic,
                            cfg->kafka.decisions_topic, cfg->kafka.dlq_topic};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            if (topics[i] && topics[j] && strcmp(topics[i], topics[j]) == 0)
                err_add(e, f, 0, "kafka topics must all differ (%s is used twice)", topics[i]);
    /* the SASL password comes from a file (or credential); two sources would be ambiguous */
    for (size_t i = 0; cfg->kafka.sasl_password != NULL && i < cfg->kafka.n_rdkafka; i++)
        if (strcmp(cfg->kafka.rdkafka[i].key, "sasl.password") == 0)
            err_add(e, f, cfg->kafka.rdkafka[i].line,
                    "kafka.rdkafka.sasl.password and kafka.sasl_password_file are both set");
    if (cfg->email.provider == PROVIDER_NOTIFY && cfg->email.notify_api_key == NULL)
        err_add(e, f, 0, "email.provider = notify needs email.notify_api_key_file");
    if (cfg->sms.provider == PROVIDER_NOTIFY && cfg->sms.notify_api_key == NULL)
        err_add(e, f, 0, "sms.provider = notify needs sms.notify_api_key_file");
    for (int c = 0; c < 2; c++) {
        const struct channel_config *ch = c ? &cfg->sms : &cfg->email;
        const char *key = ch->notify_api_key;
        /* key name - service id (36) - secret (36), as Notify issues them */
        size_t kl = key ? strlen(key) : 0;
        if (key != NULL && (kl < 74 || key[kl - 37] != '-' || key[kl - 74] != '-' ||
                            !is_uuid_n(key + kl - 73) || !is_uuid_n(key + kl - 36)))
            err_add(e, f, 0, "%s.notify_api_key_file does not hold a Notify API key",
                    c ? "sms" : "email");
    }
    if (cfg->email.provider == PROVIDER_SMTP && strncmp(cfg->email_smtp_url, "smtp://", 7) != 0 &&
        strncmp(cfg->email_smtp_url, "smtps://", 8) != 0)
        err_add(e, f, 0, "email.smtp_url must start with smtp:// or smtps://");
    for (int c = 0; c < 2; c++) {
        const struct channel_config *ch = c ? &cfg->sms : &cfg->email;
        const char *sec = c ? "sms" : "email";
        if (ch->provider != PROVIDER_NOTIFY)
            continue;
        /* The API key travels in every request: TLS, except to a local test server. */
        if (strncmp(ch->notify_url, "https://", 8) != 0 &&
            !(strncmp(ch->notify_url, "http://", 7) == 0 && config_url_is_loopback(ch->notify_url)))
            err_add(e, f, 0, "%s.notify_url must be https:// (http:// only to loopback)", sec);
        /* every template of the channel needs its Notify template, in English at least */
        for (size_t i = 0; template_catalogue_name(i) != NULL; i++) {
            const char *t = template_catalogue_name(i);
            if (template_catalogue_has(t, c ? TEMPLATE_SMS : TEMPLATE_EMAIL) &&
                config_notify_template_id(ch, t, "en") == NULL)
                err_add(e, f, 0, "%s.provider = notify needs %s.notify_template.%s", sec, sec, t);
        }
    }
    char host[256], why[128];
    int port;
    if (http_parse_listen(cfg->http.listen, host, sizeof host, &port, why, sizeof why) != 0)
        err_add(e, f, seen_line(st, "http", "listen"), "%s", why);
    /* A From header built from this must not be able to carry a second header. */
    if (strpbrk(cfg->email_from, "\r\n") != NULL || strchr(cfg->email_from, '@') == NULL)
        err_add(e, f, 0, "email.from must be one email address");
}

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

int config_diff(const struct config *a, const struct config *b,
                void (*fn)(void *arg, const char *name), void *arg)
{
    int n = 0;
    char name[96];
    for (size_t i = 0; i < N_KEYS; i++) {
        const void *fa = (const char *)a + keys[i].offset;
        const void *fb = (const char *)b + keys[i].offset;
        bool differs;
        switch (keys[i].kind) {
        case K_STRING:
        case K_PATH:
        case K_SECRET:
            differs = str_differs(*(char *const *)fa, *(char *const *)fb);
            break;
        case K_SIZE:
            differs = *(const size_t *)fa != *(const size_t *)fb;
            break;
        case K_PROVIDER:
            differs = *(const enum provider_kind *)fa != *(const enum provider_kind *)fb;
            break;
        case K_LOGFORMAT:
            differs = *(const enum log_format_kind *)fa != *(const enum log_format_kind *)fb;
            break;
        case K_BOOL:
            differs = *(const bool *)fa != *(const bool *)fb;
            break;
        case K_INT:
        case K_LOGLEVEL:
        default:
            differs = *(const int *)fa != *(const int *)fb;
            break;
        }
        if (!differs)
            continue;
        snprintf(name, sizeof name, "%s.%s", keys[i].section, keys[i].name);
        fn(arg, name);
        n++;
    }
    bool rd = a->kafka.n_rdkafka != b->kafka.n_rdkafka;
    for (size_t i = 0; !rd && i < a->kafka.n_rdkafka; i++)
        rd = str_differs(a->kafka.rdkafka[i].key, b->kafka.rdkafka[i].key) ||
             str_differs(a->kafka.rdkafka[i].value, b->kafka.rdkafka[i].value);
    if (rd) {
        fn(arg, "kafka.rdkafka.*");
        n++;
    }
    for (int c = 0; c < 2; c++) {
        const struct channel_config *ca = c ? &a->sms : &a->email, *cb = c ? &b->sms : &b->email;
        bool nd = ca->n_notify_templates != cb->n_notify_templates;
        for (size_t i = 0; !nd && i < ca->n_notify_templates; i++)
            nd = str_differs(ca->notify_templates[i].key, cb->notify_templates[i].key) ||
                 str_differs(ca->notify_templates[i].value, cb->notify_templates[i].value);
        if (nd) {
            fn(arg, c ? "sms.notify_template.*" : "email.notify_template.*");
            n++;
        }
    }
    return n;
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < N_KEYS; i++) {
        void *field = (char *)cfg + keys[i].offset;
        switch (keys[i].kind) {
        case K_STRING:
        case K_PATH:
            free(*(char **)field);
            break;
        case K_SECRET:
            wipe_free(*(char **)field);
            break;
        default:
            break;
        }
    }
    for (int c = 0; c < 2; c++) {
        struct channel_config *ch = c ? &cfg->sms : &cfg->email;
        for (size_t i = 0; i < ch->n_notify_templates; i++) {
            free(ch->notify_templates[i].key);
            free(ch->notify_templates[i].value);
        }
        free(ch->notify_templates);
    }
    for (size_t i = 0; i < cfg->kafka.n_rdkafka; i++) {
        free(cfg->kafka.rdkafka[i].key);
        wipe_free(cfg->kafka.rdkafka[i].value); /* may hold sasl.password */
    }
    free(cfg->kafka.rdkafka);
    free(cfg->path);
    free(cfg->dir);
    free(cfg);
}

int config_load(const char *path, struct config **out, char *errs, size_t errs_len)
{
    struct errlist e = {errs, errs_len, 0, 0};
    struct parse_state st = {0};
    struct config *cfg = NULL;
    FILE *fp = NULL;
    int rc = -1;

    *out = NULL;
    if (errs_len > 0)
        errs[0] = '\0';
    st.errs = &e;
    st.file = path;

    fp = fopen(path, "re");
    if (fp == NULL) {
        err_add(&e, path, 0, "cannot open: %s", strerror(errno));
        goto done;
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        err_add(&e, path, 0, "not a regular file");
        goto done;
    }
    /* Whoever can write the file can point the daemon anywhere: refuse shared writes. */
    if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
        err_add(&e, path, 0, "is group- or world-writable (mode %04o); run chmod go-w on it",
                (unsigned)(sb.st_mode & 07777));
        goto done;
    }

    cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        goto oom;
    cfg->path = realpath(path, NULL);
    if (cfg->path == NULL)
        goto oom;
    cfg->dir = strdup(cfg->path);
    if (cfg->dir == NULL)
        goto oom;
    *strrchr(cfg->dir, '/') = '\0';
    if (cfg->dir[0] == '\0') {
        free(cfg->dir);
        cfg->dir = strdup("/");
        if (cfg->dir == NULL)
            goto oom;
    }
    st.cfg = cfg;
    st.fp = fp;

    /* The packaged inih is configured at run time: values are kept verbatim (no inline
     * comments, since conninfo or tokens may hold ';'), no continuation lines, and the
     * line buffer is large enough that our reader, not inih, decides what is too long. */
    ini_allow_inline_comments = false;
    ini_allow_multiline = false;
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_max_line = CONFIG_MAX_LINE + 3;
    ini_initial_alloc = CONFIG_MAX_LINE + 3;
    ini_stop_on_first_error = false;

    int r = ini_parse_stream(reader, &st, handler, &st);
    if (r == -2)
        goto oom;
    if (r > 0) {
        /* inih names the first line it rejected: a syntax error, unless our handler has
         * already reported a problem on that line. */
        char prefix[PATH_MAX + 32];
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, r);
        if (errs == NULL || strstr(errs, prefix) == NULL)
            err_add(&e, path, r, "syntax error (expected [section], key = value or a # comment)");
    }

    /* Defaults for what the file did not set. */
    for (size_t i = 0; i < N_KEYS; i++) {
        if (st.seen[i] || keys[i].def == NULL)
            continue;
        int saved = st.line;
        st.line = 0;
        if (set_value(&st, &keys[i], keys[i].def) != 0)
            goto oom;
        st.line = saved;
    }
    validate(&st);
    if (e.count == 0) {
        *out = cfg;
        cfg = NULL;
        rc = 0;
    }
    goto done;

oom:
    err_add(&e, path, 0, "out of memory");
done:
    free(st.linebuf);
    if (fp != NULL)
        fclose(fp);
    config_free(cfg);
    return rc;
}
