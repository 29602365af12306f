/* log: one line per thing that happened, to standard error, as logfmt or JSON.
 *
 * Messages are fixed strings; everything variable goes in key/value fields, so a
 * reviewer can see from the call what can reach a log line. No personal data is ever
 * passed here: ids, codes and counts only; phone numbers and email addresses only
 * through log_mask_phone() and log_mask_email().
 */
#ifndef FRONTDOOR_LOG_H
#define FRONTDOOR_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "frontdoor/config.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Set the level and format; `stream` NULL means stderr. Not thread-safe: call from
 * the event loop (the only thread that logs). */
void log_setup(enum log_level level, enum log_format_kind format, FILE *stream);

/* Parse "debug", "info", "warn"/"warning", "error". Returns -1 when unknown. */
int log_parse_level(const char *s);
const char *log_level_name(enum log_level level);
bool log_enabled(enum log_level level);

/* Log `msg` with key/value string pairs, terminated by NULL:
 *   log_write(LOG_INFO, "referral routed", "referral", id, "route", "school", NULL);
 * A NULL value is written as an empty string. */
void log_write(enum log_level level, const char *msg, ...) __attribute__((sentinel));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__, NULL)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__, NULL)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__, NULL)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__, NULL)

/* "07700 900123" -> "07*******23": the first and last two digits, the others starred,
 * separators dropped. Fewer than 6 digits, or NULL: "***". Returns out. */
char *log_mask_phone(const char *phone, char *out, size_t outlen);

/* "alex@example.org" -> "a***@example.org"; without a usable '@': "***". Returns out. */
char *log_mask_email(const char *email, char *out, size_t outlen);

/* Print a start-up failure and exit with `code` (sysexits.h). Only main() calls it. */
void fatal(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#endif
