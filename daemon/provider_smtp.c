/* provider_smtp: SMTP through libcurl's multi interface (see provider_smtp.h). */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "frontdoor/curlev.h"
#include "frontdoor/log.h"
#include "frontdoor/mailmsg.h"
#include "frontdoor/provider_smtp.h"

struct smtp_provider {
    struct curlev *cv;
    char *url, *from, *username, *password, *ca_file;
    long timeout_ms;
    bool loopback;
    struct transfer *transfers;
};

struct transfer {
    struct transfer *next, *prev;
    struct smtp_provider *sp;
    CURL *easy;
    struct curl_slist *rcpt;
    char *msg;
    size_t len, pos;
    char message_id[320];
    provider_done_fn done;
    void *arg;
};

static void transfer_free(struct transfer *t)
{
    struct smtp_provider *sp = t->sp;
    if (t->prev)
        t->prev->next = t->next;
    else
        sp->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->rcpt);
    free(t->msg);
    free(t);
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    struct transfer *t = arg;
    size_t room = size * nitems, left = t->len - t->pos;
    size_t n = left < room ? left : room;
    memcpy(buf, t->msg + t->pos, n);
    t->pos += n;
    return n;
}

void provider_smtp_classify(int result, long reply, struct provider_result *out)
{
    memset(out, 0, sizeof *out);
    out->retry_after_ms = -1;
    if (result == CURLE_OK) {
        out->outcome = PROVIDER_ACCEPTED;
        return;
    }
    if (reply >= 500 && reply < 600) {
        out->outcome = PROVIDER_PERMANENT;
        snprintf(out->error, sizeof out->error, "smtp %ld", reply);
        return;
    }
    out->outcome = PROVIDER_TRANSIENT;
    if (reply >= 400 && reply < 500) {
        snprintf(out->error, sizeof out->error, "smtp %ld", reply);
        return;
    }
    switch (result) {
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(out->error, sizeof out->error, "smtp: timeout");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        snprintf(out->error, sizeof out->error, "smtp: connection error");
        break;
    case CURLE_USE_SSL_FAILED:
        snprintf(out->error, sizeof out->error, "smtp: the relay does not offer STARTTLS");
        break;
    default:
        snprintf(out->error, sizeof out->error, "smtp: %s", curl_easy_strerror(result));
        break;
    }
}

static void done_cb(void *arg, CURL *easy, CURLcode result)
{
    struct transfer *t = arg;
    long reply = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &reply);
    struct provider_result res;
    provider_smtp_classify(result, reply, &res);
    if (res.outcome == PROVIDER_ACCEPTED)
        snprintf(res.ref, sizeof res.ref, "%s", t->message_id);
    if (result == CURLE_USE_SSL_FAILED)
        log_error("SMTP relay refused: it does not offer STARTTLS and is not on loopback");
    provider_done_fn done = t->done;
    void *darg = t->arg;
    transfer_free(t);
    done(darg, &res);
}

static int smtp_send(void *impl, const struct provider_message *m, provider_done_fn done, void *arg)
{
    struct smtp_provider *sp = impl;
    struct transfer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -1;
    t->sp = sp;
    t->done = done;
    t->arg = arg;
    t->next = sp->transfers;
    if (sp->transfers)
        sp->transfers->prev = t;
    sp->transfers = t;

    struct mailmsg_fields f = {sp->from, m->recipient,     m->subject,         m->body,
                               m->id,    m->template_name, (int64_t)time(NULL)};
    t->msg = mailmsg_build(&f, &t->len);
    mailmsg_message_id(m->id, sp->from, t->message_id, sizeof t->message_id);
    char from[300], to[300];
    snprintf(from, sizeof from, "<%s>", sp->from);
    snprintf(to, sizeof to, "<%s>", m->recipient ? m->recipient : "");
    t->rcpt = curl_slist_append(NULL, to);
    t->easy = curl_easy_init();
    if (t->msg == NULL || t->rcpt == NULL || t->easy == NULL) {
        transfer_free(t);
        return -1;
    }
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, sp->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, t->rcpt);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(e, CURLOPT_READDATA, t);
    curl_easy_setopt(e, CURLOPT_INFILESIZE, (long)t->len);
    curl_easy_setopt(e, CURLOPT_USE_SSL,
                     sp->loopback ? (long)CURLUSESSL_TRY : (long)CURLUSESSL_ALL);
    if (sp->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, sp->ca_file);
    if (sp->username) {
        curl_easy_setopt(e, CURLOPT_USERNAME, sp->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, sp->password ? sp->password : "");
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, sp->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     sp->timeout_ms < 10000 ? sp->timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (curlev_add(sp->cv, e, done_cb, t) != 0) {
        transfer_free(t);
        return -1;
    }
    return 0;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void smtp_destroy(void *impl)
{
    struct smtp_provider *sp = impl;
    if (sp == NULL)
        return;
    while (sp->transfers) {
        struct transfer *t = sp->transfers;
        curlev_remove(sp->cv, t->easy);
        transfer_free(t);
    }
    curlev_free(sp->cv);
    free(sp->url);
    free(sp->from);
    free(sp->username);
    wipe_free(sp->password);
    free(sp->ca_file);
    free(sp);
}

static const struct provider_ops smtp_ops = {
    .name = "smtp",
    .renders = true,
    .send = smtp_send,
    .destroy = smtp_destroy,
};

static char *dup_opt(const char *s, bool *oom)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

int provider_smtp_new(struct event_base *base, const struct config *cfg, struct provider *out,
                      char *err, size_t errlen)
{
    struct smtp_provider *sp = calloc(1, sizeof *sp);
    if (sp == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (curlev_new(base, &sp->cv, err, errlen) != 0) {
        free(sp);
        return -1;
    }
    bool oom = false;
    sp->url = dup_opt(cfg->email_smtp_url, &oom);
    sp->from = dup_opt(cfg->email_from, &oom);
    sp->username = dup_opt(cfg->email_smtp_username, &oom);
    sp->password = dup_opt(cfg->email_smtp_password, &oom);
    sp->ca_file = dup_opt(cfg->email_smtp_ca_file, &oom);
    sp->timeout_ms = (long)(cfg->email.timeout_s > 0 ? cfg->email.timeout_s : 30) * 1000L;
    sp->loopback = config_url_is_loopback(cfg->email_smtp_url);
    if (oom || sp->url == NULL || sp->from == NULL) {
        snprintf(err, errlen, "out of memory");
        smtp_destroy(sp);
        return -1;
    }
    out->ops = &smtp_ops;
    out->impl = sp;
    return 0;
}
