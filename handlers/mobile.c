/* mobile: UK mobile number normalisation.
 *
 * Ofcom's plan: after the trunk 0 a UK mobile is 7 and nine more digits; 071-075 and
 * 077-079 are mobiles, 07624 is the Isle of Man's, 070 are personal numbers (forwarded
 * anywhere, often to a landline) and the rest of 076 pagers, neither of which can be
 * relied on to receive a text.
 */
#include <stdbool.h>
#include <string.h>

#include "frontdoor/mobile.h"

static bool is_mobile_range(const char *nsn)
{
    /* nsn: the 10 national significant digits, starting with 7 */
    if (nsn[0] != '7')
        return false;
    switch (nsn[1]) {
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '7':
    case '8':
    case '9':
        return true;
    case '6':
        return nsn[2] == '2' && nsn[3] == '4';
    default:
        return false;
    }
}

int mobile_normalise(const char *in, char *out, size_t len, const char **reason)
{
    if (reason != NULL)
        *reason = NULL;
    if (out != NULL && len > 0)
        out[0] = '\0';
    if (in == NULL || out == NULL || len < MOBILE_E164_SIZE)
        goto invalid;
    size_t n = strlen(in);
    if (n == 0 || n > MOBILE_MAX_INPUT)
        goto invalid;

    /* One pass: keep the digits, note a leading '+', and where a bracket pair sits. */
    char digits[MOBILE_MAX_INPUT + 1];
    size_t nd = 0;
    bool plus = false, seen_digit = false;
    int open_at = -1, close_at = -1; /* digit counts at '(' and ')' */
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c >= '0' && c <= '9') {
            digits[nd++] = c;
            seen_digit = true;
        } else if (c == ' ' || c == '\t' || c == '-') {
            continue;
        } else if (c == '+' && !plus && !seen_digit && open_at < 0) {
            plus = true;
        } else if (c == '(' && open_at < 0) {
            open_at = (int)nd;
        } else if (c == ')' && open_at >= 0 && close_at < 0 && (int)nd > open_at) {
            close_at = (int)nd;
        } else {
            goto invalid; /* letters, dots, a second '+' or bracket pair, ... */
        }
    }
    if (open_at >= 0 && close_at < 0)
        goto invalid;
    digits[nd] = '\0';

    /* Find the 10 national digits after the country code or the trunk 0. */
    const char *nsn;
    size_t cc; /* digits before the national number: 2 (44), 4 (0044), or 1 (0) */
    if (plus)
        cc = strncmp(digits, "44", 2) == 0 ? 2 : 0;
    else if (strncmp(digits, "0044", 4) == 0)
        cc = 4;
    else if (strncmp(digits, "44", 2) == 0)
        cc = 2;
    else if (digits[0] == '0')
        cc = 1;
    else
        cc = 0;
    if (cc == 0)
        goto invalid; /* +33..., or digits with neither 0 nor 44 in front */
    if (open_at >= 0) {
        if (cc == 1) {
            /* (07700) 900123: the brackets hold the leading group. */
            if (open_at != 0)
                goto invalid;
        } else {
            /* +44 (0)7700 900123: the brackets hold the trunk 0 right after 44. */
            if (open_at != (int)cc || close_at != (int)cc + 1 || digits[cc] != '0')
                goto invalid;
            cc++;
        }
    }
    nsn = digits + cc;
    if (strlen(nsn) != 10 || !is_mobile_range(nsn))
        goto invalid;
    memcpy(out, "+44", 3);
    memcpy(out + 3, nsn, 11); /* 10 digits and the NUL */
    return 0;

invalid:
    if (reason != NULL)
        *reason = MOBILE_REASON_INVALID;
    return -1;
}
