/* mailmsg: RFC 5322 / MIME text of an email notification (see mailmsg.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontdoor/mailmsg.h"

struct buf {
    char *s;
    size_t n, cap;
    bool oom;
};

static void put(struct buf *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
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

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Printable ASCII with no space at either end: fits a header as it is. */
static bool header_safe(const char *s, bool allow_space)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p > 0x7e || (*p == ' ' && !allow_space))
            return false;
    return true;
}

char *mailmsg_message_id(const char *id, const char *from, char *out, size_t len)
{
    const char *at = from ? strrchr(from, '@') : NULL;
    snprintf(out, len, "<%s@%s>", id, at && at[1] ? at + 1 : "frontdoord.invalid");
    return out;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(struct buf *b, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {B64[v >> 18 & 63], B64[v >> 12 & 63], i + 1 < n ? B64[v >> 6 & 63] : '=',
                     i + 2 < n ? B64[v & 63] : '='};
        put(b, q, 4);
    }
}

/* Subject: as it is when printable ASCII, else RFC 2047 encoded-words of whole UTF-8
 * characters, at most 45 bytes (60 base64 characters) each, one per folded line. */
static void put_subject(struct buf *b, const char *subject)
{
    puts_(b, "Subject: ");
    if (header_safe(subject, true)) {
        puts_(b, subject);
        puts_(b, "\r\n");
        return;
    }
    const unsigned char *s = (const unsigned char *)subject;
    size_t n = strlen(subject), i = 0;
    bool first = true;
    while (i < n) {
        size_t end = i + 45 < n ? i + 45 : n;
        while (end > i + 1 && end < n && (s[end] & 0xC0) == 0x80)
            end--; /* never split a character */
        puts_(b, first ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?");
        put_base64(b, s + i, end - i);
        puts_(b, "?=");
        first = false;
        i = end;
    }
    puts_(b, "\r\n");
}

/* Quoted-printable (RFC 2045): lines of at most 76 characters, soft breaks `=`, a space
 * or tab before a line end and a dot at a line start encoded, so no transport rewrites
 * (or ends) the message. */
static void put_qp(struct buf *b, const char *body)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)body;
    size_t col = 0;
    for (; *p; p++) {
        if (*p == '\n') {
            puts_(b, "\r\n");
            col = 0;
            continue;
        }
        char enc[4];
        size_t len;
        bool at_eol = p[1] == '\n' || p[1] == '\0';
        if ((*p >= 33 && *p <= 126 && *p != '=' && !(*p == '.' && col == 0)) ||
            ((*p == ' ' || *p == '\t') && !at_eol)) {
            enc[0] = (char)*p;
            len = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 15];
            len = 3;
        }
        if (col + len > 75) {
            puts_(b, "=\r\n");
            col = 0;
            if (enc[0] == '.' && len == 1) { /* now at a line start */
                enc[0] = '=';
                enc[1] = '2';
                enc[2] = 'E';
                len = 3;
            }
        }
        put(b, enc, len);
        col += len;
    }
    puts_(b, "\r\n");
}

char *mailmsg_build(const struct mailmsg_fields *f, size_t *len)
{
    if (!f->from || !f->to || !f->id || !header_safe(f->from, false) ||
        !header_safe(f->to, false) || !header_safe(f->id, false) ||
        (f->template_name && !header_safe(f->template_name, false)))
        return NULL;
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)f->date_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[64], mid[320];
    snprintf(date, sizeof date, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    struct buf b = {0};
    const char *const head[] = {"From: ", f->from, "\r\nTo: ", f->to, "\r\n"};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        puts_(&b, head[i]);
    put_subject(&b, f->subject ? f->subject : "");
    const char *const tail[] = {"Date: ", date, "\r\nMessage-ID: ",
                                mailmsg_message_id(f->id, f->from, mid, sizeof mid), "\r\n"};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
        puts_(&b, tail[i]);
    puts_(&b, "MIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n"
              "Auto-Submitted: auto-generated\r\n");
    if (f->template_name) {
        puts_(&b, "X-Frontdoor-Template: ");
        puts_(&b, f->template_name);
        puts_(&b, "\r\n");
    }
    puts_(&b, "\r\n");
    put_qp(&b, f->body ? f->body : "");
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    if (len)
        *len = b.n;
    return b.s;
}
