/* Unit tests of provider_file: one file per message in a spool folder, written by the
 * provider's writer thread and answered on the loop.
 *
 * Each test has its own spool folder under /tmp and its own event_base. A FIFO in place
 * of a message's temporary file stands for a disk that does not answer: opening it for
 * writing blocks until a reader comes, so the test can see whether the loop runs on
 * meanwhile.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "frontdoor/provider_file.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define ID1 "0b6a4c1e-7d2f-4e59-9a57-3c1d2e4f5a61"
#define ID2 "5f1e2d3c-4b5a-4678-9a0b-1c2d3e4f5a62"

static struct event_base *base;
static char spool[64];

/* Answers as they came: the order, the outcome, the ref and the error. */
struct answers {
    int n;
    int order[64];
    struct provider_result res[64];
};

struct call {
    struct answers *a;
    int seq;
    bool *in_send; /* true while send() runs: done must never be called then */
};

static void on_done(void *arg, const struct provider_result *res)
{
    struct call *c = arg;
    ck_assert_msg(!*c->in_send, "done called from inside send()");
    ck_assert_int_lt(c->a->n, 64);
    c->a->order[c->a->n] = c->seq;
    c->a->res[c->a->n] = *res;
    c->a->n++;
}

static void setup(void)
{
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    snprintf(spool, sizeof spool, "/tmp/fd-provider-file.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(spool));
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0)
            rmdir(p); /* the folder of test_write_fails */
    }
    closedir(d);
    rmdir(dir);
}

static void teardown(void)
{
    rm_tree(spool);
    event_base_free(base);
}

static struct provider open_provider(enum template_channel ch)
{
    struct provider p;
    char err[256];
    ck_assert_msg(
        provider_file_new(base, ch, spool, "frontdoor@council.example", &p, err, sizeof err) == 0,
        "%s", err);
    return p;
}

static void loop_for_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* Run the loop until `want` answers have come (at most 5 s). */
static void wait_answers(struct answers *a, int want)
{
    for (int i = 0; i < 500 && a->n < want; i++)
        loop_for_ms(10);
    ck_assert_int_eq(a->n, want);
}

static char *read_spool(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", spool, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_spool(void)
{
    DIR *d = opendir(spool);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static int send_one(struct provider *p, const struct provider_message *m, struct call *c)
{
    *c->in_send = true;
    int rc = p->ops->send(p->impl, m, on_done, c);
    *c->in_send = false;
    return rc;
}

/* The staff email and the family text most tests send: only the id differs. */
static struct provider_message staff_email(const char *id)
{
    return (struct provider_message){
        id,  "case_allocated", TEMPLATE_EMAIL, "en", "duty@council.example", "New case", "A case.",
        NULL};
}

static struct provider_message family_text(const char *id)
{
    return (struct provider_message){
        id, "appointment_booked", TEMPLATE_SMS, "en", "+447700900123", NULL, "Monday 10:00.", NULL};
}

/* ---------------------------------------------------------------- one message each */

static const struct {
    const char *name;
    enum template_channel ch;
    const char *id, *recipient;
    enum provider_outcome want;
    const char *file;     /* the file that must exist afterwards, or NULL for none */
    const char *contains; /* in that file, or in the error */
} one_cases[] = {
    {"email", TEMPLATE_EMAIL, ID1, "duty@council.example", PROVIDER_ACCEPTED, ID1 ".eml",
     "Message-ID: <" ID1 "@council.example>"},
    {"sms", TEMPLATE_SMS, ID2, "+447700900123", PROVIDER_ACCEPTED, ID2 ".sms",
     "To: +447700900123\nTemplate: appointment_booked\n"},
    {"id that is a path", TEMPLATE_EMAIL, "../../etc/passwd", "duty@council.example",
     PROVIDER_PERMANENT, NULL, "file: bad notification id"},
    {"empty id", TEMPLATE_SMS, "", "+447700900123", PROVIDER_PERMANENT, NULL,
     "file: bad notification id"},
    {"address with a line break", TEMPLATE_EMAIL, ID1, "duty@council.example\r\nBcc: x@y.example",
     PROVIDER_PERMANENT, NULL, "file: not a valid message"},
};

START_TEST(test_one)
{
    struct provider p = open_provider(one_cases[_i].ch);
    struct provider_message m = {
        one_cases[_i].id,        "appointment_booked", one_cases[_i].ch,     "en",
        one_cases[_i].recipient, "Your appointment",   "See you on Monday.", NULL};
    struct answers a = {0};
    bool in_send = false;
    struct call c = {&a, 1, &in_send};
    ck_assert_int_eq(send_one(&p, &m, &c), 0);
    wait_answers(&a, 1);
    const struct provider_result *r = &a.res[0];
    ck_assert_msg(r->outcome == one_cases[_i].want, "%s: outcome %s (%s)", one_cases[_i].name,
                  provider_outcome_name(r->outcome), r->error);
    if (one_cases[_i].file) {
        ck_assert_str_eq(r->ref, one_cases[_i].file);
        char *text = read_spool(one_cases[_i].file);
        ck_assert_msg(text != NULL, "%s: no %s", one_cases[_i].name, one_cases[_i].file);
        ck_assert_msg(strstr(text, one_cases[_i].contains) != NULL, "%s: %s", one_cases[_i].name,
                      text);
        free(text);
        ck_assert_int_eq(count_spool(), 1); /* no temporary file left behind */
    } else {
        ck_assert_msg(strstr(r->error, one_cases[_i].contains) != NULL, "%s: error %s",
                      one_cases[_i].name, r->error);
        ck_assert_int_eq(count_spool(), 0);
    }
    p.ops->destroy(p.impl);
}
END_TEST

/* ---------------------------------------------------------------- the rest */

/* A message whose temporary name is taken by a folder: a transient error, nothing left
 * but that folder (the file system refusing is not a verdict on the message). */
START_TEST(test_write_fails)
{
    char path[512];
    snprintf(path, sizeof path, "%s/." ID1 ".tmp", spool);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    struct provider p = open_provider(TEMPLATE_EMAIL);
    struct provider_message m = staff_email(ID1);
    struct answers a = {0};
    bool in_send = false;
    struct call c = {&a, 1, &in_send};
    ck_assert_int_eq(send_one(&p, &m, &c), 0);
    wait_answers(&a, 1);
    ck_assert_int_eq(a.res[0].outcome, PROVIDER_TRANSIENT);
    ck_assert_msg(strncmp(a.res[0].error, "file: ", 6) == 0, "%s", a.res[0].error);
    ck_assert_int_eq(count_spool(), 1);
    p.ops->destroy(p.impl);
}
END_TEST

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (*(int *)arg)++;
}

/* A disk that does not answer does not hold up the loop: while the writer is stuck on
 * the first message, a timer on the same loop keeps firing and no answer comes; once
 * the FIFO has a reader the writer goes on and every message is answered, in order. */
START_TEST(test_loop_not_blocked)
{
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/." ID1 ".tmp", spool);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    struct provider p = open_provider(TEMPLATE_SMS);
    struct answers a = {0};
    bool in_send = false;
    struct call c1 = {&a, 1, &in_send}, c2 = {&a, 2, &in_send};
    struct provider_message m1 = family_text(ID1), m2 = family_text(ID2);
    ck_assert_int_eq(send_one(&p, &m1, &c1), 0);
    ck_assert_int_eq(send_one(&p, &m2, &c2), 0);

    int ticks = 0;
    struct event *t = event_new(base, -1, EV_PERSIST, tick, &ticks);
    struct timeval ten_ms = {0, 10000};
    event_add(t, &ten_ms);
    loop_for_ms(300);
    ck_assert_int_ge(ticks, 10); /* the loop ran */
    ck_assert_int_eq(a.n, 0);    /* and the writer is still stuck on the first */

    int rd = open(fifo, O_RDONLY | O_NONBLOCK); /* the writer's open returns */
    ck_assert_int_ge(rd, 0);
    wait_answers(&a, 2);
    close(rd);
    event_free(t);
    ck_assert_int_eq(a.order[0], 1);
    ck_assert_int_eq(a.order[1], 2);
    /* a FIFO cannot be fsync'd: the first is a transient failure, its FIFO removed */
    ck_assert_int_eq(a.res[0].outcome, PROVIDER_TRANSIENT);
    ck_assert_int_eq(a.res[1].outcome, PROVIDER_ACCEPTED);
    ck_assert_int_eq(count_spool(), 1);
    char *text = read_spool(ID2 ".sms");
    ck_assert_ptr_nonnull(text);
    free(text);
    p.ops->destroy(p.impl);
}
END_TEST

/* Many at once: answered once each, in the order sent; the same id twice leaves one
 * file (a notification claimed again replaces its own). */
START_TEST(test_order_and_resend)
{
    struct provider p = open_provider(TEMPLATE_SMS);
    struct answers a = {0};
    bool in_send = false;
    struct call calls[40];
    char ids[20][40];
    for (int i = 0; i < 40; i++) {
        calls[i] = (struct call){&a, i, &in_send};
        if (i < 20)
            snprintf(ids[i], sizeof ids[i], "00000000-0000-4000-8000-0000000000%02d", i);
        struct provider_message m = family_text(ids[i % 20]);
        ck_assert_int_eq(send_one(&p, &m, &calls[i]), 0);
    }
    wait_answers(&a, 40);
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(a.order[i], i);
        ck_assert_int_eq(a.res[i].outcome, PROVIDER_ACCEPTED);
    }
    ck_assert_int_eq(count_spool(), 20);
    p.ops->destroy(p.impl);
}
END_TEST

/* destroy() with sends queued and none answered: no answer comes afterwards (the
 * dispatcher's rows stay `sending` and are claimed again), and nothing leaks (ASan). */
START_TEST(test_destroy_in_flight)
{
    struct provider p = open_provider(TEMPLATE_EMAIL);
    struct answers a = {0};
    bool in_send = false;
    struct call c = {&a, 1, &in_send};
    for (int i = 0; i < 30; i++) {
        struct provider_message m = staff_email(ID1);
        ck_assert_int_eq(send_one(&p, &m, &c), 0);
    }
    p.ops->destroy(p.impl);
    loop_for_ms(50);
    ck_assert_int_eq(a.n, 0);
    ck_assert_int_le(count_spool(), 1); /* at most the one file, never a temporary */
}
END_TEST

/* A spool folder that cannot be made: refused at start with the folder's name. */
START_TEST(test_bad_folder)
{
    struct provider p;
    char err[256], path[512];
    snprintf(path, sizeof path, "%s/file", spool);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/file/sub", spool);
    ck_assert_int_eq(provider_file_new(base, TEMPLATE_EMAIL, path, NULL, &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "spool folder") != NULL && strstr(err, path) != NULL, "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("provider_file");
    TCase *tc = tcase_create("provider_file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_one, 0, N(one_cases));
    tcase_add_test(tc, test_write_fails);
    tcase_add_test(tc, test_loop_not_blocked);
    tcase_add_test(tc, test_order_and_resend);
    tcase_add_test(tc, test_destroy_in_flight);
    tcase_add_test(tc, test_bad_folder);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
