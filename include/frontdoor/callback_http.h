/* callback_http: a minimal evhttp listener for POST /notify/callback (GOV.UK Notify
 * delivery receipts, dispatch_handle_callback()).
 *
 * Interim: the daemon's HTTP listener (daemon/http.c: /healthz, /readyz, /metrics) is
 * being written on another branch; when the two meet, this route moves there and this
 * file goes. Until then it listens on http.listen, and only when http.callback_token_file
 * is set (a receipt cannot be checked without the token), so daemons that do not take
 * receipts bind nothing.
 *
 * Ownership: the caller owns the listener; dispatch is borrowed and must outlive it.
 */
#ifndef FRONTDOOR_CALLBACK_HTTP_H
#define FRONTDOOR_CALLBACK_HTTP_H

#include <stddef.h>

#include <event2/event.h>

#include "frontdoor/dispatch.h"

struct callback_http;

/* listen: "address:port". Returns 0 and *out, or -1 with err set (cannot bind). */
int callback_http_open(struct event_base *base, const char *listen, struct dispatch *d,
                       struct callback_http **out, char *err, size_t errlen);
void callback_http_free(struct callback_http *h);

#endif
