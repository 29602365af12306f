/* provider_smtp: email through an SMTP relay with libcurl on the loop (curlev.h).
 *
 * email.smtp_url names the relay (smtp:// with STARTTLS, smtps:// with TLS from the
 * start). STARTTLS is required (CURLUSESSL_ALL: a relay that does not offer it gets
 * nothing) except to loopback (localhost, 127.0.0.0/8, ::1), where it is used when
 * offered. The relay's certificate is verified, against email.smtp_ca_file when set.
 * AUTH when email.smtp_username is set, with the password from email.smtp_password_file
 * (or a systemd credential). The message is mailmsg.h's, its Message-ID from the
 * notification id, which is also recorded as provider_ref.
 *
 * Replies, as notifications.md's table says: 250 -> accepted; an SMTP 5xx reply to any
 * command -> permanent (`failed`); a 4xx reply, a timeout, a connection or TLS error ->
 * transient (retried). Error texts carry the reply code or the curl error class, never
 * the server's words (they may echo an address).
 */
#ifndef FRONTDOOR_PROVIDER_SMTP_H
#define FRONTDOOR_PROVIDER_SMTP_H

#include <stddef.h>

#include <event2/event.h>

#include "frontdoor/config.h"
#include "frontdoor/provider.h"

/* cfg is read now (URL, sender, credentials, CA file, timeout) and copied. Returns 0 and
 * *out, or -1 with err set. */
int provider_smtp_new(struct event_base *base, const struct config *cfg, struct provider *out,
                      char *err, size_t errlen);

/* What an SMTP transfer's end means. Pure (tests): result is libcurl's code, reply the
 * last SMTP reply code (CURLINFO_RESPONSE_CODE, 0 when none). */
void provider_smtp_classify(int result, long reply, struct provider_result *out);

#endif
