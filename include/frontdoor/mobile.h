/* mobile: UK mobile numbers for family text messages (notifications.md).
 *
 * A family is texted only at a valid UK mobile number; anything else is recorded as
 * `skipped` with reason MOBILE_REASON_INVALID, so staff can see the family was not texted.
 * Pure: no I/O, no global state.
 */
#ifndef FRONTDOOR_MOBILE_H
#define FRONTDOOR_MOBILE_H

#include <stddef.h>

/* The reason code of a notification skipped for a number that is not a UK mobile. */
#define MOBILE_REASON_INVALID "invalid_mobile"
/* Room for an E.164 UK mobile, "+447700900123", and its NUL. */
#define MOBILE_E164_SIZE 14
/* Input longer than this (bytes) is refused without a closer look. */
#define MOBILE_MAX_INPUT 40

/* Normalise a UK mobile number as people write it to E.164 `+447xxxxxxxxx`:
 *   07700 900123, 07700900123, 07700-900-123, (07700) 900123,
 *   +44 7700 900123, +447700900123, +44 (0)7700 900123, 447700900123, 0044 7700 900123.
 * Spaces (and tabs) and hyphens may separate digits anywhere; one pair of brackets may
 * hold the leading group (`(07700)`) or, after +44 / 44 / 0044, the trunk prefix `(0)`.
 * Refused: NULL, "", letters or other characters, a '+' not at the start, wrong lengths,
 * landlines and other non-mobile UK numbers (01, 02, 03, 05, 08, 09; 070 personal numbers;
 * 076 pagers except 07624, the Isle of Man's mobiles), and every non-UK number.
 * Returns 0 with the number in out (len >= MOBILE_E164_SIZE), or -1 with *reason set to
 * MOBILE_REASON_INVALID (a static string; reason may be NULL) and out set to "" when
 * len > 0. Never logs or keeps the number. */
int mobile_normalise(const char *in, char *out, size_t len, const char **reason);

#endif
