/* Unit tests of mailmsg: the exact header block, quoted-printable bodies that decode back
 * to the rendered text, encoded subjects, and that nothing can add a header line.
 * Encodings are checked against RFC 2045 / 2047 by hand and with the decoders below,
 * which are written here independently of the code under test. */
#define _GNU_SOURCE
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/mailmsg.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* 2026-11-23T10:15:00Z, a Monday */
#define DATE_S 1795428900

static char *build(const char *to, const char *subject, const char *body, size_t *len)
{
    struct mailmsg_fields f = {
        "family-help@example.org", to,    subject, body, "0b2e7c4a-1d2f-4c3b-9a8e-5f6a7b8c9d0e",
        "case_allocated",          DATE_S};
    return mailmsg_build(&f, len);
}

START_TEST(headers_exact)
{
    size_t len;
    char *m = build("eho.900301@example.org", "New referral for Sample School: REF-1",
                    "Referral: REF-1\nPriority: green", &len);
    ck_assert_ptr_nonnull(m);
    const char *want = "From: family-help@example.org\r\n"
                       "To: eho.900301@example.org\r\n"
                       "Subject: New referral for Sample School: REF-1\r\n"
                       "Date: Mon, 23 Nov 2026 10:15:00 +0000\r\n"
                       "Message-ID: <0b2e7c4a-1d2f-4c3b-9a8e-5f6a7b8c9d0e@example.org>\r\n"
                       "MIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n"
                       "Auto-Submitted: auto-generated\r\n"
                       "X-Frontdoor-Template: case_allocated\r\n"
                       "\r\n"
                       "Referral: REF-1\r\n"
                       "Priority: green\r\n";
    ck_assert_str_eq(m, want);
    ck_assert_uint_eq(len, strlen(want));
    free(m);
}
END_TEST

/* ------------------------------------------------------------------ decoders */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* RFC 2045 quoted-printable of a body with CRLF lines back to LF text. */
static char *qp_decode(const char *s)
{
    char *out = malloc(strlen(s) + 1);
    size_t o = 0;
    while (*s) {
        if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
            s += 3;
        } else if (s[0] == '=') {
            ck_assert_msg(hexval(s[1]) >= 0 && hexval(s[2]) >= 0, "bad escape at %s", s);
            out[o++] = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 3;
        } else if (s[0] == '\r' && s[1] == '\n') {
            out[o++] = '\n';
            s += 2;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    if (o > 0 && out[o - 1] == '\n')
        out[o - 1] = '\0'; /* the message's last line end */
    return out;
}

static int b64val(char c)
{
    const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(t, c);
    return c && p ? (int)(p - t) : -1;
}

/* The concatenated text of `=?UTF-8?B?...?=` words of a header value. */
static char *ew_decode(const char *v)
{
    char *out = calloc(1, strlen(v) + 1);
    size_t o = 0;
    const char *p = v;
    while ((p = strstr(p, "=?UTF-8?B?")) != NULL) {
        p += 10;
        const char *e = strstr(p, "?=");
        ck_assert_ptr_nonnull(e);
        unsigned acc = 0;
        int bits = 0;
        for (; p < e && *p != '='; p++) {
            int v6 = b64val(*p);
            ck_assert_int_ge(v6, 0);
            acc = acc << 6 | (unsigned)v6;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out[o++] = (char)(acc >> bits & 0xff);
            }
        }
        p = e + 2;
    }
    return out;
}

static const char *body_of(const char *m)
{
    const char *b = strstr(m, "\r\n\r\n");
    ck_assert_ptr_nonnull(b);
    return b + 4;
}

/* ------------------------------------------------------------------ bodies */

static const struct {
    const char *body;
    const char *want_qp; /* NULL: only checked by decoding */
} bodies[] = {
    {"plain", "plain\r\n"},
    {"a=b", "a=3Db\r\n"},
    {".a dot starts this line\n..two", "=2Ea dot starts this line\r\n=2E.two\r\n"},
    {"trailing space \nand tab\t", "trailing space=20\r\nand tab=09\r\n"},
    {"za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87", "za=C5=BC=C3=B3=C5=82=C4=87\r\n"},
    {"line one\n\nline three", "line one\r\n\r\nline three\r\n"},
    {"From a line that mbox would mangle", "From a line that mbox would mangle\r\n"},
    {"x", "x\r\n"},
    /* 80 x's: a soft break after 75 */
    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=\r\nxxxxx\r\n"},
    {"Please open the referral in the case system now. For the family's privacy this email "
     "does not contain any details of the child or family. \xe2\x80\x99\xe2\x80\x99 .",
     NULL},
};

START_TEST(body_table)
{
    char *m = build("a@example.org", "s", bodies[_i].body, NULL);
    ck_assert_ptr_nonnull(m);
    const char *qp = body_of(m);
    if (bodies[_i].want_qp)
        ck_assert_str_eq(qp, bodies[_i].want_qp);
    char *back = qp_decode(qp);
    ck_assert_str_eq(back, bodies[_i].body);
    free(back);
    /* every line short, 7-bit, and none starting with a dot */
    const char *line = m;
    while (*line) {
        const char *e = strstr(line, "\r\n");
        ck_assert_ptr_nonnull(e);
        ck_assert_int_le(e - line, 76);
        ck_assert_msg(line[0] != '.', "a line starts with a dot");
        for (const char *c = line; c < e; c++)
            ck_assert_msg((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f, "byte %02x",
                          (unsigned char)*c);
        line = e + 2;
    }
    free(m);
}
END_TEST

/* ------------------------------------------------------------------ subjects */

static const char *subjects[] = {
    "Referral REF-1: we need the family's agreement",
    "Wizyta: wtorek 1 grudnia \xe2\x80\x93 10:30",
    "\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87\xc5\xbc\xc3\xb3\xc5\x82"
    "\xc4\x87\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87\xc5\xbc\xc3\xb3"
    "\xc5\x82\xc4\x87\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87 long enough to need three words",
    "tab\there", /* a control character: encoded, never raw */
    "",
};

START_TEST(subject_table)
{
    const char *subject = subjects[_i];
    char *m = build("a@example.org", subject, "b", NULL);
    ck_assert_ptr_nonnull(m);
    const char *h = strstr(m, "Subject: ");
    ck_assert_ptr_nonnull(h);
    const char *end = strstr(h, "\r\nDate: ");
    ck_assert_ptr_nonnull(end);
    size_t n = (size_t)(end - h - 9);
    char *value = strndup(h + 9, n);
    bool ascii = true;
    for (const char *c = subject; *c; c++)
        ascii = ascii && (unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f;
    if (ascii) {
        ck_assert_str_eq(value, subject);
    } else {
        char *back = ew_decode(value);
        ck_assert_str_eq(back, subject);
        free(back);
        /* folded lines start with a space and each encoded-word is at most 75 chars */
        const char *p = value;
        while (p) {
            const char *nl = strstr(p, "\r\n");
            size_t w = nl ? (size_t)(nl - p) : strlen(p);
            ck_assert_int_le(w, 76);
            if (nl)
                ck_assert_int_eq(nl[2], ' ');
            p = nl ? nl + 2 : NULL;
        }
        for (const char *c = value; *c; c++)
            ck_assert_msg(*c != '\t' && (unsigned char)*c < 0x80, "raw byte in subject");
    }
    free(value);
    free(m);
}
END_TEST

/* ------------------------------------------------------------------ refusals */

START_TEST(no_header_injection)
{
    const char *bad_to[] = {"a@example.org\r\nBcc: x@example.org", "a@example.org\nBcc: x",
                            "a b@example.org", "a@example.org\x7f", ""};
    for (size_t i = 0; i < N_ELEMS(bad_to) - 1; i++)
        ck_assert_ptr_null(build(bad_to[i], "s", "b", NULL));
    struct mailmsg_fields f = {
        "x@example.org\r\nBcc: y@example.org", "a@example.org", "s", "b", "id", NULL, DATE_S};
    ck_assert_ptr_null(mailmsg_build(&f, NULL));
    f.from = "x@example.org";
    f.id = "id\r\nBcc: y";
    ck_assert_ptr_null(mailmsg_build(&f, NULL));
    f.id = "id";
    f.template_name = "t\nX: y";
    ck_assert_ptr_null(mailmsg_build(&f, NULL));
    f.template_name = NULL;
    char *m = mailmsg_build(&f, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(strstr(m, "X-Frontdoor-Template"));
    free(m);
    /* the body's own line breaks never end the header block early: it follows it */
    m = build("a@example.org", "s", "\r\nBcc: y@example.org\n\nx", NULL);
    ck_assert_ptr_nonnull(m);
    const char *end = strstr(m, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    ck_assert_str_eq(end, "\r\n\r\n=0D\r\nBcc: y@example.org\r\n\r\nx\r\n");
    free(m);
}
END_TEST

START_TEST(message_id)
{
    char buf[320];
    ck_assert_str_eq(mailmsg_message_id("abc", "family-help@example.org", buf, sizeof buf),
                     "<abc@example.org>");
    ck_assert_str_eq(mailmsg_message_id("abc", "nobody", buf, sizeof buf),
                     "<abc@frontdoord.invalid>");
}
END_TEST

static Suite *mailmsg_suite(void)
{
    Suite *s = suite_create("mailmsg");
    TCase *tc = tcase_create("message");
    tcase_add_test(tc, headers_exact);
    tcase_add_loop_test(tc, body_table, 0, N_ELEMS(bodies));
    tcase_add_loop_test(tc, subject_table, 0, N_ELEMS(subjects));
    tcase_add_test(tc, no_header_injection);
    tcase_add_test(tc, message_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mailmsg_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
