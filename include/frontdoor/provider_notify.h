/* provider_notify: the GOV.UK Notify REST API with libcurl on the loop (curlev.h).
 *
 *   POST <notify_url>/v2/notifications/email  {"template_id", "email_address",
 *   POST <notify_url>/v2/notifications/sms     "phone_number", "personalisation",
 *                                              "reference": the notification id}
 *   Authorization: Bearer <JWT>, HS256 (OpenSSL's HMAC), claims iss = the service id and
 *   iat = now. The API key is `<key name>-<service id (36)>-<secret (36)>`.
 *
 * template_id comes from the channel's `notify_template.<template>[.<lang>]` keys, in the
 * family's language when mapped, else English. Personalisation is the row's placeholder
 * values, cleaned of control characters (template_clean_value()).
 *
 * Answers, as notifications.md's table says: 2xx accepted (provider_ref = Notify's id);
 * 400 permanent; 403 auth (retried, an error in the log); 429 RateLimitError rate
 * limited (Retry-After honoured); 429 TooManyRequestsError daily limit; 5xx, a timeout, a
 * dropped or refused connection transient. Error texts carry the status and Notify's
 * error class only (`notify 400 BadRequestError`), never its message (it may quote the
 * recipient).
 *
 * iat comes from the real clock, not the injected one: Notify checks it against its own
 * clock (30 seconds either way).
 */
#ifndef FRONTDOOR_PROVIDER_NOTIFY_H
#define FRONTDOOR_PROVIDER_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "frontdoor/config.h"
#include "frontdoor/provider.h"

/* ch is read now (URL, key, template ids, timeout) and copied. Returns 0 and *out, or -1
 * with err set (e.g. an API key of the wrong shape). */
int provider_notify_new(struct event_base *base, enum template_channel channel,
                        const struct channel_config *ch, struct provider *out, char *err,
                        size_t errlen);

/* ---------------------------------------------------------------- pure helpers (tests) */

/* Split an API key into service id and secret (37 bytes each with the NUL). Returns 0, or
 * -1 when the key does not end with `-<uuid>-<uuid>`. */
int provider_notify_parse_key(const char *key, char service_id[37], char secret[37]);

/* The JWT for a service id, secret and iat (UTC seconds). Returns a malloc'd string, or
 * NULL when out of memory. */
char *provider_notify_jwt(const char *service_id, const char *secret, int64_t iat);

/* What an answer means: result is libcurl's code, status the HTTP status (0 when none),
 * body the response (may be NULL), retry_after_s a Retry-After in seconds (< 0: none). */
void provider_notify_classify(int result, long status, const char *body, size_t len,
                              int64_t retry_after_s, struct provider_result *out);

#endif
