/* caltime: civil dates, RFC 3339 times, time zones and the working calendar.
 *
 * Pure functions, no global state: time zones are read from the system's TZif
 * database (TZDIR, default /usr/share/zoneinfo) into a struct tzone, so nothing
 * here touches TZ, tzset() or localtime(), which other code may rely on.
 */
#ifndef FRONTDOOR_CALTIME_H
#define FRONTDOOR_CALTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A proleptic Gregorian calendar date. */
struct civil_date {
    int year;  /* e.g. 2026 */
    int month; /* 1-12 */
    int day;   /* 1-31 */
};

/* Days since 1970-01-01 of a civil date, and back (any year 0001-9999). */
int64_t caltime_days_from_civil(struct civil_date d);
struct civil_date caltime_civil_from_days(int64_t days);

/* Day of the week of a day number: 0 = Monday ... 6 = Sunday. */
int caltime_weekday(int64_t days);

/* Strict `YYYY-MM-DD` naming a real date (2026-02-29 is refused). */
bool caltime_parse_date(const char *s, struct civil_date *out);

/* RFC 3339 date-time, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`; `t`, `z` and a
 * space for `T` are accepted as RFC 3339 allows. Leap second 60 is refused. Result is
 * UTC milliseconds since the epoch (fraction truncated to milliseconds). */
bool caltime_parse_datetime(const char *s, int64_t *utc_ms);

/* `YYYY-MM-DDTHH:MM:SSZ` (buf of at least 21 bytes) and `YYYY-MM-DDTHH:MM:SS.mmmZ`
 * (at least 25 bytes). Return buf. */
char *caltime_format_utc(int64_t utc_s, char *buf);
char *caltime_format_utc_ms(int64_t utc_ms, char *buf);

/* Completed years from birth to on (a birthday counts from the day itself; a
 * 29 February birthday counts from 1 March in common years). Negative when on < birth. */
int caltime_age_years(struct civil_date birth, struct civil_date on);

/* A time zone loaded from TZif data. Ownership: the caller owns the zone and frees it
 * with caltime_free_zone(). */
struct tzone;

/* Load zone `name` (e.g. "Europe/London") from $TZDIR or /usr/share/zoneinfo. Returns 0,
 * or -1 with a message in err. */
int caltime_load_zone(const char *name, struct tzone **out, char *err, size_t errlen);
void caltime_free_zone(struct tzone *z);

/* Offset from UTC in seconds (east positive) in force at utc_s. */
int32_t caltime_utc_offset(const struct tzone *z, int64_t utc_s);

/* The local day number (days since 1970-01-01) of a UTC instant: caltime_local_date()
 * without the civil date, for code that only counts or compares days. */
int64_t caltime_local_day(const struct tzone *z, int64_t utc_s);

/* The local date and the local second of the day (0-86399) at utc_s. */
struct civil_date caltime_local_date(const struct tzone *z, int64_t utc_s, int *sec_of_day);

/* The UTC instant of a local wall-clock time. A time skipped by a spring-forward gap
 * maps as if the earlier offset still applied (02:30 -> 03:30 summer time, like mktime
 * with tm_isdst = -1 does on glibc); an ambiguous autumn time takes the earlier instant.
 * (glibc's mktime agrees only for ordinary summer-time gaps: where a zone changes its
 * standard offset, e.g. Pacific/Kiritimati in 1995, it goes the other way; this function
 * applies the earlier offset in every gap.) sec_of_day outside 0-86399 counts from the
 * date's midnight. */
int64_t caltime_local_to_utc(const struct tzone *z, struct civil_date d, int sec_of_day);

/* The working calendar of the directory. Ownership: the calendar owns holidays and zone. */
struct work_calendar {
    struct tzone *zone;
    unsigned working_days; /* bit 0 = Monday ... bit 6 = Sunday */
    int64_t *holidays;     /* day numbers, sorted ascending, no duplicates */
    size_t n_holidays;
};

bool caltime_is_working_day(const struct work_calendar *cal, int64_t days);

/* The day number of the n-th working day strictly after `days` (n >= 1). Returns -1 when
 * the calendar has no working day at all. */
int64_t caltime_nth_working_day_after(const struct work_calendar *cal, int64_t days, int n);

#endif
