/* provider: how a notification leaves the daemon (notifications.md, "Delivery").
 *
 * The dispatcher (dispatch.h) claims a due row, renders it (when the provider wants text)
 * and hands it to its channel's provider; the provider answers once with one of the
 * outcomes below, which the dispatcher turns into the row's next state by the spec's
 * table: accepted -> `sent`; permanent -> `failed`; the rest -> retried with backoff (or
 * the channel paused), `failed` 24 hours after the notification became due.
 *
 * Providers: file (provider_file.c), smtp and notify (libcurl on the loop,
 * provider_smtp.c, provider_notify.c).
 *
 * Contract:
 *   - send() returns 0 and later calls done exactly once, from the loop, never from
 *     inside send(); or returns -1 (nothing started, done never called).
 *   - the message and its strings are the caller's and valid during send() only: a
 *     provider copies what it keeps.
 *   - destroy() abandons every send in flight without calling done (the dispatcher's rows
 *     stay `sending` and are claimed again when their lease runs out).
 *   - errors are short and hold no personal data: a code, a status, an error class.
 */
#ifndef FRONTDOOR_PROVIDER_H
#define FRONTDOOR_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "frontdoor/template.h"

enum provider_outcome {
    PROVIDER_ACCEPTED,     /* 2xx / 250: `sent` */
    PROVIDER_PERMANENT,    /* 400, SMTP 5xx: `failed`, never retried */
    PROVIDER_TRANSIENT,    /* 5xx, timeout, connection error, SMTP 4xx: retried */
    PROVIDER_AUTH,         /* 403 (bad key or clock): retried, an error in the log each time */
    PROVIDER_RATE_LIMITED, /* 429 RateLimitError: retried after Retry-After, or backoff */
    PROVIDER_DAILY_LIMIT,  /* 429 TooManyRequestsError: the channel pauses until midnight */
};

const char *provider_outcome_name(enum provider_outcome o);

struct provider_result {
    enum provider_outcome outcome;
    char ref[320];          /* ACCEPTED: the provider's id for it ("" when none) */
    int64_t retry_after_ms; /* a Retry-After the provider gave, or -1 */
    char error[160];        /* what went wrong, e.g. "notify 400 BadRequestError" */
};

struct provider_message {
    const char *id; /* notification id: Notify's reference, the Message-ID, the file name */
    const char *template_name;
    enum template_channel channel;
    const char *language;
    const char *recipient;         /* email address, or E.164 mobile */
    const char *subject;           /* rendered (email, when the provider renders) */
    const char *body;              /* rendered (when the provider renders) */
    const json_t *personalisation; /* the placeholder values (Notify renders itself) */
};

typedef void (*provider_done_fn)(void *arg, const struct provider_result *res);

struct provider_ops {
    const char *name; /* "file", "smtp", "notify" */
    bool renders;     /* wants subject and body rendered from our templates */
    int (*send)(void *impl, const struct provider_message *m, provider_done_fn done, void *arg);
    void (*destroy)(void *impl);
};

struct provider {
    const struct provider_ops *ops;
    void *impl;
};

#endif
