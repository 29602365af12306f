/* curlev: libcurl multi_socket on libevent (see curlev.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/curlev.h"

struct curlev {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    int running;
    int transfers; /* added and not yet done or removed */
};

/* What libcurl's socket callback tells us about one socket. */
struct sock {
    struct curlev *cv;
    curl_socket_t fd;
    struct event *ev;
};

/* One transfer's callback, kept in the easy handle's CURLOPT_PRIVATE. */
struct xfer {
    curlev_done_fn done;
    void *arg;
};

static void check_done(struct curlev *cv)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(cv->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(cv->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        cv->transfers--;
        if (x != NULL) {
            curlev_done_fn done = x->done;
            void *arg = x->arg;
            free(x);
            done(arg, easy, result); /* may add or free handles: msg is not used after */
        }
    }
}

static void event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct curlev *cv = arg;
    int action = (kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(cv->multi, fd, action, &cv->running);
    check_done(cv);
    if (cv->running <= 0 && evtimer_pending(cv->timer, NULL))
        evtimer_del(cv->timer);
}

static void timer_cb(evutil_socket_t fd, short kind, void *arg)
{
    (void)fd;
    (void)kind;
    struct curlev *cv = arg;
    curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &cv->running);
    check_done(cv);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, 0 means as soon as possible (from the loop,
 * never from inside this callback). */
static int multi_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    (void)multi;
    struct curlev *cv = arg;
    if (timeout_ms < 0) {
        evtimer_del(cv->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(cv->timer, &tv);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION */
static int sock_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    (void)easy;
    struct curlev *cv = arg;
    struct sock *sk = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            event_free(sk->ev);
            free(sk);
        }
        curl_multi_assign(cv->multi, s, NULL);
        return 0;
    }
    if (sk == NULL) {
        sk = calloc(1, sizeof *sk);
        if (sk == NULL)
            return -1;
        sk->cv = cv;
        sk->fd = s;
        curl_multi_assign(cv->multi, s, sk);
    } else if (sk->ev) {
        event_free(sk->ev);
        sk->ev = NULL;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    sk->ev = event_new(cv->base, s, kind, event_cb, cv);
    if (sk->ev == NULL || event_add(sk->ev, NULL) != 0)
        return -1;
    return 0;
}

int curlev_new(struct event_base *base, struct curlev **out, char *err, size_t errlen)
{
    static bool global_done;
    *out = NULL;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "libcurl initialisation failed");
            return -1;
        }
        global_done = true;
    }
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    if (!(vi->features & CURL_VERSION_ASYNCHDNS)) {
        snprintf(err, errlen,
                 "libcurl %s resolves names blocking (no threaded or c-ares resolver); "
                 "the event loop cannot use it",
                 vi->version);
        return -1;
    }
    struct curlev *cv = calloc(1, sizeof *cv);
    if (cv == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cv->base = base;
    cv->multi = curl_multi_init();
    cv->timer = evtimer_new(base, timer_cb, cv);
    if (cv->multi == NULL || cv->timer == NULL) {
        snprintf(err, errlen, "out of memory");
        curlev_free(cv);
        return -1;
    }
    curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv);
    curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
    curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv);
    *out = cv;
    return 0;
}

int curlev_add(struct curlev *cv, CURL *easy, curlev_done_fn done, void *arg)
{
    struct xfer *x = calloc(1, sizeof *x);
    if (x == NULL)
        return -1;
    x->done = done;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(cv->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -1;
    }
    cv->transfers++;
    return 0;
}

void curlev_remove(struct curlev *cv, CURL *easy)
{
    struct xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (x == NULL)
        return; /* not ours (any more) */
    curl_multi_remove_handle(cv->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(x);
    cv->transfers--;
}

int curlev_running(const struct curlev *cv)
{
    return cv->transfers;
}

void curlev_free(struct curlev *cv)
{
    if (cv == NULL)
        return;
    /* owners remove their handles first; a multi handle with none left cleans up alone */
    if (cv->multi)
        curl_multi_cleanup(cv->multi);
    if (cv->timer)
        event_free(cv->timer);
    free(cv);
}
