/* http: the daemon's small HTTP listener (http.listen, default 127.0.0.1:9464), libevent's
 * evhttp on the daemon's one event_base.
 *
 * Modules register their paths with http_add_route(): the daemon serves GET /healthz,
 * /readyz and /metrics (daemon.c), the notifications module POST /notify/callback. A
 * request for an unknown path gets 404, a known path with another method 405 with an
 * Allow header, a method other than GET, HEAD and POST 501; HEAD is answered as GET without a body.
 * Requests are bounded (headers 8 KiB, body 64 KiB: larger gets 413) and a connection idle for 10 s
 * is closed.
 *
 * A handler runs on the loop and must not block. It answers with http_reply(), then or
 * later: a handler that needs the database may keep the request and reply from the
 * round's callback (libevent keeps a request the client gave up on until it is
 * answered, and then drops the answer). Every request must be answered exactly once.
 *
 * Ownership: the caller owns struct http (http_free); handler arguments are borrowed.
 */
#ifndef FRONTDOOR_HTTP_H
#define FRONTDOOR_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>

#define HTTP_MAX_HEADERS_BYTES 8192
#define HTTP_MAX_BODY_BYTES    65536
#define HTTP_TIMEOUT_S         10

/* Methods a route answers (a bit set). */
enum http_method {
    HTTP_GET = 1u << 0, /* and HEAD */
    HTTP_POST = 1u << 1,
};

typedef void (*http_handler_fn)(struct evhttp_request *req, void *arg);

struct http;

/* Split "host:port" ("127.0.0.1:9464", "[::1]:9464", "localhost:9464"; an empty host
 * means every address) into its parts. The port is 0-65535 (0: any free port, for tests).
 * Returns 0, or -1 with a message in err. Pure. */
int http_parse_listen(const char *listen, char *host, size_t host_len, int *port, char *err,
                      size_t errlen);

/* Listen on `listen` (see http_parse_listen; a name is resolved now, at start-up).
 * Returns 0 and *out, or -1 with err set (e.g. the address is in use). */
int http_open(struct event_base *base, const char *listen, struct http **out, char *err,
              size_t errlen);

/* Answer `methods` requests for exactly `path` (no query string) with fn. A path added
 * twice: the later route wins. Returns 0, or -1 when out of memory. */
int http_add_route(struct http *h, unsigned methods, const char *path, http_handler_fn fn,
                   void *arg);

/* The address actually listened on, e.g. "127.0.0.1:9464" (the port chosen when 0). */
const char *http_address(const struct http *h);

/* Answer a request: status code, Content-Type and body (copied; may be NULL for none). */
void http_reply(struct evhttp_request *req, int status, const char *content_type, const char *body,
                size_t len);

/* Stop listening and close every connection; requests not yet answered are dropped.
 * NULL is fine. */
void http_free(struct http *h);

#endif
