/* curlev: libcurl's multi_socket interface joined to the libevent loop, as curl's
 * hiperfifo example does it: libcurl says which sockets to watch (CURLMOPT_SOCKETFUNCTION)
 * and when to wake it (CURLMOPT_TIMERFUNCTION); libevent events call
 * curl_multi_socket_action() back. Many transfers run at once, none blocks the loop.
 *
 * libcurl must resolve names without blocking: curlev_new() refuses a libcurl built
 * without an asynchronous resolver (threaded or c-ares, CURL_VERSION_ASYNCHDNS).
 *
 * Ownership: the caller owns struct curlev and its easy handles. An easy handle added
 * with curlev_add() belongs to curlev until its done callback (called once, from the
 * loop, after it left the multi handle) or curlev_remove(); the caller then cleans it
 * up. curlev_free() removes whatever is left without calling anything back.
 */
#ifndef FRONTDOOR_CURLEV_H
#define FRONTDOOR_CURLEV_H

#include <stddef.h>

#include <curl/curl.h>
#include <event2/event.h>

struct curlev;

typedef void (*curlev_done_fn)(void *arg, CURL *easy, CURLcode result);

/* Returns 0 and *out, or -1 with err set (no asynchronous resolver, out of memory). */
int curlev_new(struct event_base *base, struct curlev **out, char *err, size_t errlen);
void curlev_free(struct curlev *cv);

/* Start a transfer. Uses the handle's CURLOPT_PRIVATE. Returns 0, or -1 (not started,
 * done will not be called). */
int curlev_add(struct curlev *cv, CURL *easy, curlev_done_fn done, void *arg);

/* Abandon a transfer: done is not called. */
void curlev_remove(struct curlev *cv, CURL *easy);

/* Transfers running. */
int curlev_running(const struct curlev *cv);

#endif
