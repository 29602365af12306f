/* provider_file: one file per message in a spool folder (see provider_file.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frontdoor/mailmsg.h"
#include "frontdoor/provider_file.h"

/* A finished send whose done callback is still to run (from the loop). */
struct pending {
    struct pending *next;
    provider_done_fn done;
    void *arg;
    struct provider_result res;
};

struct file_provider {
    enum template_channel ch;
    char *dir, *from;
    int dirfd;
    struct event *ev_deliver;
    struct pending *head, *tail;
};

const char *provider_outcome_name(enum provider_outcome o)
{
    static const char *const names[] = {"accepted", "permanent",    "transient",
                                        "auth",     "rate_limited", "daily_limit"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "unknown";
}

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct file_provider *fp = arg;
    struct pending *p = fp->head;
    fp->head = fp->tail = NULL;
    while (p) {
        struct pending *next = p->next;
        p->done(p->arg, &p->res);
        free(p);
        p = next;
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

static int file_send(void *impl, const struct provider_message *m, provider_done_fn done, void *arg)
{
    struct file_provider *fp = impl;
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -1;
    p->done = done;
    p->arg = arg;
    p->res.retry_after_ms = -1;
    p->res.outcome = PROVIDER_TRANSIENT;

    size_t len = 0;
    char *text = NULL;
    if (!id_ok(m->id)) {
        p->res.outcome = PROVIDER_PERMANENT;
        snprintf(p->res.error, sizeof p->res.error, "file: bad notification id");
    } else if (fp->ch == TEMPLATE_EMAIL) {
        struct mailmsg_fields f = {fp->from, m->recipient,     m->subject,         m->body,
                                   m->id,    m->template_name, (int64_t)time(NULL)};
        text = mailmsg_build(&f, &len);
        if (text == NULL) {
            p->res.outcome = PROVIDER_PERMANENT;
            snprintf(p->res.error, sizeof p->res.error, "file: not a valid message");
        }
    } else {
        text = sms_text(m, &len);
        if (text == NULL)
            snprintf(p->res.error, sizeof p->res.error, "file: out of memory");
    }
    if (text != NULL) {
        char tmp[128], name[128];
        snprintf(tmp, sizeof tmp, ".%s.tmp", m->id);
        snprintf(name, sizeof name, "%s.%s", m->id, fp->ch == TEMPLATE_EMAIL ? "eml" : "sms");
        int fd = openat(fp->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        int err = 0;
        if (fd < 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0)
            err = errno ? errno : EIO;
        if (fd >= 0 && close(fd) != 0 && err == 0)
            err = errno;
        if (err == 0 && renameat(fp->dirfd, tmp, fp->dirfd, name) != 0)
            err = errno;
        if (err == 0)
            fsync(fp->dirfd); /* the rename itself survives a crash */
        if (err != 0) {
            unlinkat(fp->dirfd, tmp, 0);
            snprintf(p->res.error, sizeof p->res.error, "file: %s", strerror(err));
        } else {
            p->res.outcome = PROVIDER_ACCEPTED;
            snprintf(p->res.ref, sizeof p->res.ref, "%s", name);
        }
        free(text);
    }
    if (fp->tail)
        fp->tail->next = p;
    else
        fp->head = p;
    fp->tail = p;
    event_active(fp->ev_deliver, 0, 0);
    return 0;
}

static void file_destroy(void *impl)
{
    struct file_provider *fp = impl;
    if (fp == NULL)
        return;
    while (fp->head) {
        struct pending *n = fp->head->next;
        free(fp->head);
        fp->head = n;
    }
    if (fp->ev_deliver)
        event_free(fp->ev_deliver);
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
    fp->ch = ch;
    fp->dir = strdup(spool_dir);
    fp->from = strdup(from ? from : "frontdoord@localhost");
    fp->ev_deliver = event_new(base, -1, 0, deliver_cb, fp);
    if (!fp->dir || !fp->from || !fp->ev_deliver) {
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
    out->ops = &file_ops;
    out->impl = fp;
    return 0;
}
