/* http: evhttp on the daemon's loop, with a route table (see http.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "frontdoor/http.h"
#include "frontdoor/log.h"

struct route {
    char *path;
    unsigned methods;
    http_handler_fn fn;
    void *arg;
};

struct http {
    struct evhttp *evh;
    struct route *routes;
    size_t n_routes;
    char address[96];
};

int http_parse_listen(const char *listen, char *host, size_t host_len, int *port, char *err,
                      size_t errlen)
{
    const char *colon, *h = listen;
    size_t hlen;
    if (listen == NULL || listen[0] == '\0') {
        snprintf(err, errlen, "http.listen is empty (want address:port)");
        return -1;
    }
    if (listen[0] == '[') { /* [IPv6]:port */
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':') {
            snprintf(err, errlen, "http.listen must be [IPv6 address]:port");
            return -1;
        }
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL || memchr(listen, ':', (size_t)(colon - listen)) != NULL) {
            snprintf(err, errlen, "http.listen must be address:port (IPv6 in brackets)");
            return -1;
        }
        hlen = (size_t)(colon - listen);
    }
    const char *p = colon + 1;
    long v = 0;
    if (*p == '\0')
        v = -1;
    for (; *p && v >= 0; p++)
        v = (*p >= '0' && *p <= '9' && v <= 65535) ? v * 10 + (*p - '0') : -1;
    if (v < 0 || v > 65535) {
        snprintf(err, errlen, "http.listen port must be a number from 0 to 65535");
        return -1;
    }
    if (hlen >= host_len) {
        snprintf(err, errlen, "http.listen address is too long");
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (strpbrk(host, " \t[]/") != NULL) {
        snprintf(err, errlen, "http.listen address is not a host name or IP address");
        return -1;
    }
    *port = (int)v;
    return 0;
}

/* ---------------------------------------------------------------- requests */

void http_reply(struct evhttp_request *req, int status, const char *content_type, const char *body,
                size_t len)
{
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    if (content_type != NULL)
        evhttp_add_header(hdr, "Content-Type", content_type);
    evhttp_add_header(hdr, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && body != NULL && len > 0 && evbuffer_add(b, body, len) != 0) {
        evbuffer_free(b);
        b = NULL;
    }
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    const char *reason = status == 200   ? "OK"
                         : status == 202 ? "Accepted"
                         : status == 204 ? "No Content"
                         : status == 400 ? "Bad Request"
                         : status == 401 ? "Unauthorized"
                         : status == 403 ? "Forbidden"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 413 ? "Payload Too Large"
                         : status == 503 ? "Service Unavailable"
                                         : NULL;
    evhttp_send_reply(req, status, reason, b);
    evbuffer_free(b);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
    struct http *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || path[0] == '\0')
        path = "/";
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    unsigned want = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD ? HTTP_GET
                    : cmd == EVHTTP_REQ_POST                        ? HTTP_POST
                                                                    : 0;
    const struct route *r = NULL;
    for (size_t i = h->n_routes; i-- > 0;)
        if (strcmp(h->routes[i].path, path) == 0) {
            r = &h->routes[i];
            break;
        }
    if (r == NULL) {
        static const char nf[] = "not found\n";
        http_reply(req, 404, "text/plain; charset=utf-8", nf, sizeof nf - 1);
        return;
    }
    if ((r->methods & want) == 0) {
        char allow[32];
        snprintf(allow, sizeof allow, "%s%s%s", r->methods & HTTP_GET ? "GET, HEAD" : "",
                 (r->methods & HTTP_GET) && (r->methods & HTTP_POST) ? ", " : "",
                 r->methods & HTTP_POST ? "POST" : "");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        static const char na[] = "method not allowed\n";
        http_reply(req, 405, "text/plain; charset=utf-8", na, sizeof na - 1);
        return;
    }
    r->fn(req, r->arg);
}

int http_add_route(struct http *h, unsigned methods, const char *path, http_handler_fn fn,
                   void *arg)
{
    struct route *n = realloc(h->routes, (h->n_routes + 1) * sizeof *n);
    if (n == NULL)
        return -1;
    h->routes = n;
    struct route *r = &n[h->n_routes];
    if ((r->path = strdup(path)) == NULL)
        return -1;
    r->methods = methods;
    r->fn = fn;
    r->arg = arg;
    h->n_routes++;
    return 0;
}

/* ---------------------------------------------------------------- listening */

/* A non-blocking listening socket on the first address of `host` that binds. */
static evutil_socket_t bind_listener(const char *host, int port, char *addr, size_t addrlen,
                                     char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%d", port);
    int g = getaddrinfo(host[0] ? host : NULL, ps, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "http.listen: cannot resolve %s: %s", host, gai_strerror(g));
        return -1;
    }
    evutil_socket_t fd = -1;
    int saved = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "http.listen: cannot listen on %s:%d: %s", host, port,
                 strerror(saved ? saved : EADDRNOTAVAIL));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char hb[64] = "?";
    int bound = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            evutil_inet_ntop(AF_INET6, &s6->sin6_addr, hb, sizeof hb);
            bound = ntohs(s6->sin6_port);
            snprintf(addr, addrlen, "[%s]:%d", hb, bound);
            return fd;
        }
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        evutil_inet_ntop(AF_INET, &s4->sin_addr, hb, sizeof hb);
        bound = ntohs(s4->sin_port);
    }
    snprintf(addr, addrlen, "%s:%d", hb, bound);
    return fd;
}

int http_open(struct event_base *base, const char *listen, struct http **out, char *err,
              size_t errlen)
{
    *out = NULL;
    char host[256];
    int port;
    if (http_parse_listen(listen, host, sizeof host, &port, err, errlen) != 0)
        return -1;
    struct http *h = calloc(1, sizeof *h);
    if (h == NULL || (h->evh = evhttp_new(base)) == NULL) {
        free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    evutil_socket_t fd = bind_listener(host, port, h->address, sizeof h->address, err, errlen);
    if (fd < 0 || evhttp_accept_socket_with_handle(h->evh, fd) == NULL) {
        if (fd >= 0) {
            close(fd);
            snprintf(err, errlen, "http.listen: cannot accept on %s", listen);
        }
        http_free(h);
        return -1;
    }
    evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_max_headers_size(h->evh, HTTP_MAX_HEADERS_BYTES);
    evhttp_set_max_body_size(h->evh, HTTP_MAX_BODY_BYTES);
    evhttp_set_timeout(h->evh, HTTP_TIMEOUT_S);
    evhttp_set_gencb(h->evh, dispatch, h);
    *out = h;
    return 0;
}

const char *http_address(const struct http *h)
{
    return h->address;
}

void http_free(struct http *h)
{
    if (h == NULL)
        return;
    if (h->evh != NULL)
        evhttp_free(h->evh); /* closes the listener (evhttp owns it) and the connections */
    for (size_t i = 0; i < h->n_routes; i++)
        free(h->routes[i].path);
    free(h->routes);
    free(h);
}
