/* Unit tests: http.listen parsing, and the listener's routing answered over loopback
 * (libevent's own HTTP client on the same loop). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "frontdoor/http.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct {
    const char *listen;
    const char *host; /* NULL: refused */
    int port;
} listen_cases[] = {
    {"127.0.0.1:9464", "127.0.0.1", 9464},
    {"[::1]:9464", "::1", 9464},
    {"localhost:0", "localhost", 0},
    {":9464", "", 9464},
    {"0.0.0.0:65535", "0.0.0.0", 65535},
    {"127.0.0.1:65536", NULL, 0},
    {"127.0.0.1:", NULL, 0},
    {"127.0.0.1:94x4", NULL, 0},
    {"127.0.0.1:-1", NULL, 0},
    {"9464", NULL, 0},
    {"::1:9464", NULL, 0},
    {"[::1]9464", NULL, 0},
    {"[::1:9464", NULL, 0},
    {"", NULL, 0},
    {"a b:80", NULL, 0},
};

START_TEST(test_parse_listen)
{
    char host[64], err[128];
    int port = -1;
    int rc = http_parse_listen(listen_cases[_i].listen, host, sizeof host, &port, err, sizeof err);
    if (listen_cases[_i].host == NULL) {
        ck_assert_msg(rc == -1, "%s accepted", listen_cases[_i].listen);
        ck_assert_ptr_nonnull(strstr(err, "http.listen"));
    } else {
        ck_assert_msg(rc == 0, "%s refused: %s", listen_cases[_i].listen, err);
        ck_assert_str_eq(host, listen_cases[_i].host);
        ck_assert_int_eq(port, listen_cases[_i].port);
    }
}
END_TEST

/* ---- a live listener */

static struct event_base *base;
static struct http *srv;
static int hits;

static void h_hello(struct evhttp_request *req, void *arg)
{
    hits++;
    const char *body = arg;
    http_reply(req, 200, "text/plain; charset=utf-8", body, strlen(body));
}

static void h_echo(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *copy = malloc(n + 1);
    evbuffer_copyout(in, copy, n);
    http_reply(req, 202, "application/octet-stream", copy, n);
    free(copy);
}

/* Answered later, from a timer: as a handler waiting for the database would. */
static void later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_reply(arg, 503, "text/plain", "later\n", 6);
}

static void h_deferred(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct timeval tv = {0, 50 * 1000};
    event_base_once(base, -1, EV_TIMEOUT, later, req, &tv);
}

struct answer {
    int status;
    char body[128];
    char allow[64];
    char ctype[96];
    bool done;
};

static void on_answer(struct evhttp_request *req, void *arg)
{
    struct answer *a = arg;
    a->done = true;
    event_base_loopbreak(base);
    if (req == NULL)
        return;
    a->status = evhttp_request_get_response_code(req);
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(b);
    if (n >= sizeof a->body)
        n = sizeof a->body - 1;
    evbuffer_copyout(b, a->body, n);
    a->body[n] = '\0';
    const char *al = evhttp_find_header(evhttp_request_get_input_headers(req), "Allow");
    snprintf(a->allow, sizeof a->allow, "%s", al ? al : "");
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    snprintf(a->ctype, sizeof a->ctype, "%s", ct ? ct : "");
}

static void request(enum evhttp_cmd_type cmd, const char *path, const char *body, size_t len,
                    struct answer *a)
{
    char host[64];
    int port;
    char err[128];
    memset(a, 0, sizeof *a);
    ck_assert_int_eq(
        http_parse_listen(http_address(srv), host, sizeof host, &port, err, sizeof err), 0);
    struct evhttp_connection *c =
        evhttp_connection_base_new(base, NULL, host, (unsigned short)port);
    ck_assert_ptr_nonnull(c);
    struct evhttp_request *req = evhttp_request_new(on_answer, a);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "localhost");
    if (body != NULL)
        evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    ck_assert_int_eq(evhttp_make_request(c, req, cmd, path), 0);
    struct timeval limit = {10, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    ck_assert_msg(a->done, "no answer for %s", path);
    evhttp_connection_free(c);
}

static void setup(void)
{
    char err[256];
    signal(SIGPIPE, SIG_IGN); /* as the daemon: a peer closing is an error, not a signal */
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    ck_assert_msg(http_open(base, "127.0.0.1:0", &srv, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(http_add_route(srv, HTTP_GET, "/hello", h_hello, "hello\n"), 0);
    ck_assert_int_eq(http_add_route(srv, HTTP_POST, "/echo", h_echo, NULL), 0);
    ck_assert_int_eq(http_add_route(srv, HTTP_GET | HTTP_POST, "/later", h_deferred, NULL), 0);
    hits = 0;
}

static void teardown(void)
{
    http_free(srv);
    event_base_free(base);
}

static const struct {
    enum evhttp_cmd_type cmd;
    const char *path;
    const char *body;
    int status;
    const char *answer; /* body, exactly */
    const char *allow;
} req_cases[] = {
    {EVHTTP_REQ_GET, "/hello", NULL, 200, "hello\n", ""},
    {EVHTTP_REQ_GET, "/hello?x=1", NULL, 200, "hello\n", ""}, /* the query is not the path */
    {EVHTTP_REQ_HEAD, "/hello", NULL, 200, "", ""},           /* HEAD: no body */
    {EVHTTP_REQ_POST, "/hello", "x", 405, "method not allowed\n", "GET, HEAD"},
    {EVHTTP_REQ_GET, "/echo", NULL, 405, "method not allowed\n", "POST"},
    {EVHTTP_REQ_POST, "/echo", "{\"id\":1}", 202, "{\"id\":1}", ""},
    {EVHTTP_REQ_GET, "/nope", NULL, 404, "not found\n", ""},
    {EVHTTP_REQ_GET, "/hello/", NULL, 404, "not found\n", ""},
    {EVHTTP_REQ_GET, "/", NULL, 404, "not found\n", ""},
    {EVHTTP_REQ_GET, "/later", NULL, 503, "later\n", ""},
    {EVHTTP_REQ_PUT, "/hello", "x", 501, "", ""}, /* a method no route takes (libevent) */
};

START_TEST(test_requests)
{
    struct answer a;
    const char *body = req_cases[_i].body;
    request(req_cases[_i].cmd, req_cases[_i].path, body, body ? strlen(body) : 0, &a);
    ck_assert_msg(a.status == req_cases[_i].status, "%s: status %d, want %d", req_cases[_i].path,
                  a.status, req_cases[_i].status);
    if (req_cases[_i].cmd != EVHTTP_REQ_PUT)
        ck_assert_str_eq(a.body, req_cases[_i].answer);
    ck_assert_str_eq(a.allow, req_cases[_i].allow);
}
END_TEST

START_TEST(test_content_type)
{
    struct answer a;
    request(EVHTTP_REQ_GET, "/hello", NULL, 0, &a);
    ck_assert_str_eq(a.ctype, "text/plain; charset=utf-8");
    ck_assert_int_eq(hits, 1);
}
END_TEST

/* A raw exchange: send `text`, serve the loop, return what came back (up to a blank
 * line), for requests libevent's client will not send. */
static void raw_exchange(const char *text, char *out, size_t outlen)
{
    char host[64], err[128];
    int port;
    ck_assert_int_eq(
        http_parse_listen(http_address(srv), host, sizeof host, &port, err, sizeof err), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(send(fd, text, strlen(text), 0), (ssize_t)strlen(text));
    size_t got = 0;
    out[0] = '\0';
    for (int i = 0; i < 500 && strstr(out, "\r\n\r\n") == NULL; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t n = recv(fd, out + got, outlen - 1 - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            out[got] = '\0';
        } else if (n == 0) {
            break;
        } else {
            usleep(10 * 1000);
        }
    }
    close(fd);
}

/* A body over HTTP_MAX_BODY_BYTES is refused before any handler sees it (the length is
 * announced; the body need not even be sent). */
START_TEST(test_body_limit)
{
    char req[256], resp[1024];
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n",
             HTTP_MAX_BODY_BYTES + 1);
    raw_exchange(req, resp, sizeof resp);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 413 ", 13) == 0, "answer: %s", resp);
    /* just within the limit is taken */
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nok");
    raw_exchange(req, resp, sizeof resp);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 202 ", 13) == 0, "answer: %s", resp);
}
END_TEST

/* Headers over HTTP_MAX_HEADERS_BYTES are refused. */
START_TEST(test_header_limit)
{
    size_t n = HTTP_MAX_HEADERS_BYTES + 200;
    char *req = malloc(n + 128);
    int k = snprintf(req, n + 128, "GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
    memset(req + k, 'a', n);
    strcpy(req + k + n, "\r\n\r\n");
    char resp[1024];
    raw_exchange(req, resp, sizeof resp);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) != 0, "answer: %s", resp);
    ck_assert_int_eq(hits, 0);
    free(req);
}
END_TEST

/* The address in use: a second listener on it is refused with a message. */
START_TEST(test_address_in_use)
{
    struct http *other = NULL;
    char err[256];
    ck_assert_int_eq(http_open(base, http_address(srv), &other, err, sizeof err), -1);
    ck_assert_ptr_null(other);
    ck_assert_msg(strstr(err, "cannot listen on") != NULL, "%s", err);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("listen");
    tcase_add_loop_test(tc, test_parse_listen, 0, N(listen_cases));
    suite_add_tcase(s, tc);
    tc = tcase_create("requests");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_requests, 0, N(req_cases));
    tcase_add_test(tc, test_content_type);
    tcase_add_test(tc, test_body_limit);
    tcase_add_test(tc, test_header_limit);
    tcase_add_test(tc, test_address_in_use);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
