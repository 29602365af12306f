/* log: logfmt or JSON lines on standard error. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/log.h"

static enum log_level log_min = LOG_INFO;
static enum log_format_kind log_fmt = LOG_FORMAT_LOGFMT;
static FILE *log_stream;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_setup(enum log_level level, enum log_format_kind format, FILE *stream)
{
    log_min = level;
    log_fmt = format;
    log_stream = stream;
}

int log_parse_level(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "warning") == 0)
        return LOG_WARN;
    for (int i = LOG_DEBUG; i <= LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return level >= LOG_DEBUG && level <= LOG_OFF ? level_names[level] : "unknown";
}

bool log_enabled(enum log_level level)
{
    return level >= log_min && level < LOG_OFF;
}

/* A logfmt value needs quotes when it is empty or holds a space, quote, '=' or a
 * control character; inside quotes, '"' and '\' are escaped and controls written as
 * \n, \t or \u00XX, so one event is always one line. */
static void put_logfmt_value(FILE *f, const char *v)
{
    bool quote = *v == '\0';
    for (const unsigned char *p = (const unsigned char *)v; *p && !quote; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            quote = true;
    if (!quote) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < ' ' || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void put_json_string(FILE *f, const char *v)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < ' ' || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* Keys come from code, but are still checked so a bad one cannot break the format. */
static bool key_ok(const char *k)
{
    if (k == NULL || *k == '\0')
        return false;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '.' && *k != '-')
            return false;
    return true;
}

void log_write(enum log_level level, const char *msg, ...)
{
    if (!log_enabled(level))
        return;
    FILE *f = log_stream ? log_stream : stderr;
    va_list ap;
    va_start(ap, msg);
    /* Build the line in memory and write it with one call, so lines never interleave. */
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (m == NULL) {
        va_end(ap);
        return;
    }
    if (log_fmt == LOG_FORMAT_JSON) {
        fprintf(m, "{\"level\":\"%s\",\"msg\":", level_names[level]);
        put_json_string(m, msg);
    } else {
        fprintf(m, "level=%s msg=", level_names[level]);
        put_logfmt_value(m, msg);
    }
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        if (v == NULL)
            v = "";
        if (!key_ok(k))
            k = "invalid_key";
        if (log_fmt == LOG_FORMAT_JSON) {
            fputc(',', m);
            put_json_string(m, k);
            fputc(':', m);
            put_json_string(m, v);
        } else {
            fprintf(m, " %s=", k);
            put_logfmt_value(m, v);
        }
    }
    va_end(ap);
    fputs(log_fmt == LOG_FORMAT_JSON ? "}\n" : "\n", m);
    fclose(m);
    fwrite(buf, 1, len, f);
    fflush(f);
    free(buf);
}

char *log_mask_phone(const char *phone, char *out, size_t outlen)
{
    char digits[32];
    size_t n = 0;
    if (outlen == 0)
        return out;
    for (const char *p = phone; p && *p; p++) {
        if (isdigit((unsigned char)*p)) {
            if (n == sizeof digits) {
                n = 0; /* absurdly long: no shape worth showing */
                break;
            }
            digits[n++] = *p;
        }
    }
    if (n < 6 || outlen < n + 1) {
        snprintf(out, outlen, "***");
        return out;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (i < 2 || i >= n - 2) ? digits[i] : '*';
    out[n] = '\0';
    return out;
}

char *log_mask_email(const char *email, char *out, size_t outlen)
{
    const char *at = email ? strrchr(email, '@') : NULL;
    if (outlen == 0)
        return out;
    if (at == NULL || at == email || at[1] == '\0' || strlen(at) + 5 > outlen ||
        strpbrk(email, " \r\n\t\"") != NULL) {
        snprintf(out, outlen, "***");
        return out;
    }
    /* Only an ASCII first letter is shown, so a mask never splits a UTF-8 sequence. */
    char first = (unsigned char)email[0] < 0x80 ? email[0] : '*';
    snprintf(out, outlen, "%c***%s", first, at);
    return out;
}

void fatal(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("frontdoord: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}
