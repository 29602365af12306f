/* provider_file: one file per message in a spool folder (see provider_file.h).
 *
 * The file system work (write, fsync, rename, fsync of the folder) blocks for as long
 * as the disk takes, so it runs on a writer thread of this provider: the loop builds the
 * text and queues a job; the writer does the I/O and queues the answer; an eventfd
 * wakes the loop, which calls done. Ownership: a job belongs to the loop until it is on
 * `todo`, to the writer from there until it is on `done`, then to the loop again; the
 * lists and `stop` are guarded by `mu`. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frontdoor/mailmsg.h"
#include "frontdoor/provider_file.h"

struct job {
    struct job *next;
    provider_done_fn done;
    void *arg;
    char *text; /* what to write; NULL: answered as res already says, nothing written */
    size_t len;
    char tmp[80], name[80];
    struct provider_result res;
};

struct job_list {
    struct job *head, *tail;
};

struct file_provider {
    enum template_channel ch;
    char *dir, *from;
    int dirfd;
    int wake_fd; /* eventfd: the writer has put answers on `done` */
    struct event *ev_wake;
    pthread_t writer;
    bool writer_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job_list todo, done; /* under mu */
    bool stop;                  /* under mu */
};

const char *provider_outcome_name(enum provider_outcome o)
{
    static const char *const names[] = {"accepted", "permanent",    "transient",
                                        "auth",     "rate_limited", "daily_limit"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "unknown";
}

static void list_push(struct job_list *l, struct job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static void job_free(struct job *j)
{
    free(j->text);
    free(j);
}

static void list_free(struct job_list *l)
{
    while (l->head) {
        struct job *n = l->head->next;
        job_free(l->head);
        l->head = n;
    }
    l->tail = NULL;
}

/* On the loop: answer every job the writer has finished, in order. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct file_provider *fp = arg;
    uint64_t n;
    while (read(fd, &n, sizeof n) < 0 && errno == EINTR)
        ; /* EAGAIN: a wake already read; the list is what counts */
    pthread_mutex_lock(&fp->mu);
    struct job *j = fp->done.head;
    fp->done.head = fp->done.tail = NULL;
    pthread_mutex_unlock(&fp->mu);
    while (j) {
        struct job *next = j->next;
        j->done(j->arg, &j->res);
        job_free(j);
        j = next;
    }
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char *p = strdup(path);
    if (p == NULL)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0750) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The id names files: only a UUID's characters may. */
static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return 0;
    return strspn(id, "0123456789abcdefABCDEF-") == n;
}

static char *sms_text(const struct provider_message *m, size_t *len)
{
    char *s = NULL;
    int n =
        asprintf(&s, "To: %s\nTemplate: %s\nLanguage: %s\nReference: %s\n\n%s\n", m->recipient,
                 m->template_name, m->language ? m->language : "en", m->id, m->body ? m->body : "");
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return s;
}

/* On the writer: the message to `.<id>.tmp`, fsync'd, renamed to its name, and the
 * folder fsync'd so the rename survives a crash. */
static void write_job(int dirfd, struct job *j)
{
    int fd = openat(dirfd, j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    int err = 0;
    if (fd < 0 || write_all(fd, j->text, j->len) != 0 || fsync(fd) != 0)
        err = errno ? errno : EIO;
    if (fd >= 0 && close(fd) != 0 && err == 0)
        err = errno;
    if (err == 0 && renameat(dirfd, j->tmp, dirfd, j->name) != 0)
        err = errno;
    if (err == 0)
        fsync(dirfd);
    if (err != 0) {
        unlinkat(dirfd, j->tmp, 0);
        snprintf(j->res.error, sizeof j->res.error, "file: %s", strerror(err));
    } else {
        j->res.outcome = PROVIDER_ACCEPTED;
        snprintf(j->res.ref, sizeof j->res.ref, "%s", j->name);
    }
}

static void *writer_main(void *arg)
{
    struct file_provider *fp = arg;
    pthread_mutex_lock(&fp->mu);
    for (;;) {
        while (!fp->todo.head && !fp->stop)
            pthread_cond_wait(&fp->cv, &fp->mu);
        if (fp->stop)
            break; /* jobs left on todo are abandoned (provider.h: destroy) */
        struct job *j = fp->todo.head;
        fp->todo.head = j->next;
        if (!fp->todo.head)
            fp->todo.tail = NULL;
        pthread_mutex_unlock(&fp->mu);
        if (j->text)
            write_job(fp->dirfd, j);
        pthread_mutex_lock(&fp->mu);
        list_push(&fp->done, j);
        uint64_t one = 1;
        while (write(fp->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
            ; /* EAGAIN: the counter is full of wakes the loop has yet to read */
    }
    pthread_mutex_unlock(&fp->mu);
    return NULL;
}

static int file_send(void *impl, const struct provider_message *m, provider_done_fn done, void *arg)
{
    struct file_provider *fp = impl;
    struct job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return -1;
    j->done = done;
    j->arg = arg;
    j->res.retry_after_ms = -1;
    j->res.outcome = PROVIDER_TRANSIENT;
    if (!id_ok(m->id)) {
        j->res.outcome = PROVIDER_PERMANENT;
        snprintf(j->res.error, sizeof j->res.error, "file: bad notification id");
    } else if (fp->ch == TEMPLATE_EMAIL) {
        struct mailmsg_fields f = {fp->from, m->recipient,     m->subject,         m->body,
                                   m->id,    m->template_name, (int64_t)time(NULL)};
        j->text = mailmsg_build(&f, &j->len);
        if (j->text == NULL) {
            j->res.outcome = PROVIDER_PERMANENT;
            snprintf(j->res.error, sizeof j->res.error, "file: not a valid message");
        }
    } else {
        j->text = sms_text(m, &j->len);
        if (j->text == NULL)
            snprintf(j->res.error, sizeof j->res.error, "file: out of memory");
    }
    if (j->text != NULL) {
        snprintf(j->tmp, sizeof j->tmp, ".%s.tmp", m->id);
        snprintf(j->name, sizeof j->name, "%s.%s", m->id, fp->ch == TEMPLATE_EMAIL ? "eml" : "sms");
    }
    /* through the writer even when there is nothing to write: answers keep their order
     * and done is never called from inside send() */
    pthread_mutex_lock(&fp->mu);
    list_push(&fp->todo, j);
    pthread_cond_signal(&fp->cv);
    pthread_mutex_unlock(&fp->mu);
    return 0;
}

static void file_destroy(void *impl)
{
    struct file_provider *fp = impl;
    if (fp == NULL)
        return;
    if (fp->writer_started) {
        /* the writer finishes the file in hand (at most one) and stops */
        pthread_mutex_lock(&fp->mu);
        fp->stop = true;
        pthread_cond_signal(&fp->cv);
        pthread_mutex_unlock(&fp->mu);
        pthread_join(fp->writer, NULL);
        pthread_cond_destroy(&fp->cv);
        pthread_mutex_destroy(&fp->mu);
    }
    list_free(&fp->todo);
    list_free(&fp->done);
    if (fp->ev_wake)
        event_free(fp->ev_wake);
    if (fp->wake_fd >= 0)
        close(fp->wake_fd);
    if (fp->dirfd >= 0)
        close(fp->dirfd);
    free(fp->dir);
    free(fp->from);
    free(fp);
}

static const struct provider_ops file_ops = {
    .name = "file",
    .renders = true,
    .send = file_send,
    .destroy = file_destroy,
};

int provider_file_new(struct event_base *base, enum template_channel ch, const char *spool_dir,
                      const char *from, struct provider *out, char *err, size_t errlen)
{
    struct file_provider *fp = calloc(1, sizeof *fp);
    if (fp == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fp->dirfd = -1;
    fp->wake_fd = -1;
    fp->ch = ch;
    fp->dir = strdup(spool_dir);
    fp->from = strdup(from ? from : "frontdoord@localhost");
    fp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fp->wake_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        file_destroy(fp);
        return -1;
    }
    fp->ev_wake = event_new(base, fp->wake_fd, EV_READ | EV_PERSIST, wake_cb, fp);
    if (!fp->dir || !fp->from || !fp->ev_wake || event_add(fp->ev_wake, NULL) != 0) {
        snprintf(err, errlen, "out of memory");
        file_destroy(fp);
        return -1;
    }
    if (make_dirs(spool_dir) != 0 ||
        (fp->dirfd = open(spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        faccessat(fp->dirfd, ".", W_OK, AT_EACCESS) != 0) {
        snprintf(err, errlen, "spool folder %s: %s", spool_dir, strerror(errno));
        file_destroy(fp);
        return -1;
    }
    pthread_mutex_init(&fp->mu, NULL);
    pthread_cond_init(&fp->cv, NULL);
    /* signals stay with the loop's thread (libevent turns them into events) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&fp->writer, NULL, writer_main, fp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&fp->cv);
        pthread_mutex_destroy(&fp->mu);
        snprintf(err, errlen, "writer thread: %s", strerror(rc));
        file_destroy(fp);
        return -1;
    }
    fp->writer_started = true;
    out->ops = &file_ops;
    out->impl = fp;
    return 0;
}
