/* callback_http: POST /notify/callback on evhttp (see callback_http.h). */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "frontdoor/callback_http.h"
#include "frontdoor/log.h"

/* A receipt is a few hundred bytes. */
#define MAX_BODY 65536

struct callback_http {
    struct evhttp *http;
    struct dispatch *d;
    struct pending *pending; /* requests waiting for the database */
};

/* One request whose reply waits for the dispatcher; req NULL once its connection
 * closed (the reply then goes nowhere). */
struct pending {
    struct pending *next, *prev;
    struct callback_http *h;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
};

static void pending_unlink(struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else if (p->h)
        p->h->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
}

static void conn_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct pending *p = arg;
    p->req = NULL;
}

static void reply_cb(void *arg, int status, const char *text)
{
    struct pending *p = arg;
    if (p->req != NULL) {
        evhttp_connection_set_closecb(p->conn, NULL, NULL);
        struct evbuffer *b = evbuffer_new();
        if (b)
            evbuffer_add_printf(b, "%s\n", text);
        evhttp_add_header(evhttp_request_get_output_headers(p->req), "Content-Type",
                          "text/plain; charset=utf-8");
        const char *reason = status == 200   ? "OK"
                             : status == 400 ? "Bad Request"
                             : status == 401 ? "Unauthorized"
                             : status == 404 ? "Not Found"
                             : status == 405 ? "Method Not Allowed"
                             : status == 503 ? "Service Unavailable"
                                             : "Internal Server Error";
        evhttp_send_reply(p->req, status, reason, b);
        if (b)
            evbuffer_free(b);
    }
    pending_unlink(p);
    free(p);
}

static void callback_cb(struct evhttp_request *req, void *arg)
{
    struct callback_http *h = arg;
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    p->h = h;
    p->req = req;
    p->conn = evhttp_request_get_connection(req);
    p->next = h->pending;
    if (h->pending)
        h->pending->prev = p;
    h->pending = p;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reply_cb(p, 405, "POST only");
        return;
    }
    evhttp_connection_set_closecb(p->conn, conn_closed, p);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    if (body == NULL) {
        reply_cb(p, 500, "out of memory");
        return;
    }
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    dispatch_handle_callback(h->d, auth, body, len, reply_cb, p);
    free(body);
}

int callback_http_open(struct event_base *base, const char *listen, struct dispatch *d,
                       struct callback_http **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *colon = strrchr(listen, ':');
    if (colon == NULL) {
        snprintf(err, errlen, "http.listen must be address:port");
        return -1;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    /* [::1]:9464 */
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    int port = atoi(colon + 1);
    struct callback_http *h = calloc(1, sizeof *h);
    if (h == NULL || (h->http = evhttp_new(base)) == NULL) {
        free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->d = d;
    evhttp_set_max_body_size(h->http, MAX_BODY);
    evhttp_set_timeout(h->http, 30);
    evhttp_set_cb(h->http, "/notify/callback", callback_cb, h);
    if (evhttp_bind_socket(h->http, host, (ev_uint16_t)port) != 0) {
        snprintf(err, errlen, "cannot listen on %s", listen);
        evhttp_free(h->http);
        free(h);
        return -1;
    }
    log_info("listening for delivery receipts", "listen", listen, "path", "/notify/callback");
    *out = h;
    return 0;
}

void callback_http_free(struct callback_http *h)
{
    if (h == NULL)
        return;
    /* replies still owed go nowhere: the dispatcher is freed after this, so mark them */
    for (struct pending *p = h->pending; p; p = p->next) {
        if (p->req)
            evhttp_connection_set_closecb(p->conn, NULL, NULL);
        p->req = NULL;
        p->h = NULL;
    }
    evhttp_free(h->http);
    free(h);
}
