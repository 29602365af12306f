/* Unit tests of caltime: dates, RFC 3339, TZif zones and POSIX TZ footers, ages and the
 * working calendar.
 *
 * Every expected value below was worked out independently of the code under test: epoch
 * seconds with `date -u -d ... +%s`, London offsets with `TZ=Europe/London date -d @...`,
 * footer rules with glibc reading the same POSIX TZ string (`TZ='AEST-10AEDT,...' date`),
 * day numbers and weekdays with Python's datetime, the gap time with glibc mktime
 * (tm_isdst = -1). The ambiguous autumn time is the header's rule (the earlier instant),
 * where glibc's mktime happens to take the later one.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frontdoor/caltime.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A day number from a literal date; caltime_days_from_civil has its own table below. */
static int64_t day_of(const char *ymd)
{
    struct civil_date d = {0, 0, 0};
    ck_assert_int_eq(sscanf(ymd, "%d-%d-%d", &d.year, &d.month, &d.day), 3);
    return caltime_days_from_civil(d);
}

static struct tzone *load_zone_or_fail(const char *name)
{
    struct tzone *z = NULL;
    char err[256] = "";
    ck_assert_msg(caltime_load_zone(name, &z, err, sizeof err) == 0, "%s: %s", name, err);
    ck_assert_ptr_nonnull(z);
    return z;
}

/* ------------------------------------------------------------------ civil dates */

static const struct {
    struct civil_date date;
    int64_t days;
    int weekday; /* 0 = Monday */
} civil_cases[] = {
    {{1970, 1, 1}, 0, 3},         {{1969, 12, 31}, -1, 2},   {{2000, 3, 1}, 11017, 2},
    {{2024, 2, 29}, 19782, 3},    {{2026, 3, 29}, 20541, 6}, {{2026, 12, 25}, 20812, 4},
    {{1600, 2, 29}, -135081, 1},  {{1900, 3, 1}, -25508, 3}, {{1, 1, 1}, -719162, 0},
    {{9999, 12, 31}, 2932896, 4},
};

START_TEST(civil_table)
{
    struct civil_date d = civil_cases[_i].date;
    ck_assert_int_eq(caltime_days_from_civil(d), civil_cases[_i].days);
    struct civil_date back = caltime_civil_from_days(civil_cases[_i].days);
    ck_assert_int_eq(back.year, d.year);
    ck_assert_int_eq(back.month, d.month);
    ck_assert_int_eq(back.day, d.day);
    ck_assert_int_eq(caltime_weekday(civil_cases[_i].days), civil_cases[_i].weekday);
}
END_TEST

/* Every day of 0001-9999: consecutive day numbers are consecutive dates, round trip. */
START_TEST(civil_every_day)
{
    static const int mdays[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    struct civil_date d = {1, 1, 1};
    for (int64_t n = -719162; n <= 2932896; n++) {
        struct civil_date got = caltime_civil_from_days(n);
        if (got.year != d.year || got.month != d.month || got.day != d.day)
            ck_abort_msg("day %lld: got %d-%d-%d, want %d-%d-%d", (long long)n, got.year, got.month,
                         got.day, d.year, d.month, d.day);
        if (caltime_days_from_civil(d) != n)
            ck_abort_msg("%d-%d-%d: not day %lld", d.year, d.month, d.day, (long long)n);
        bool leap = d.year % 4 == 0 && (d.year % 100 != 0 || d.year % 400 == 0);
        int dim = d.month == 2 && leap ? 29 : mdays[d.month];
        if (++d.day > dim) {
            d.day = 1;
            if (++d.month > 12) {
                d.month = 1;
                d.year++;
            }
        }
    }
    ck_assert_int_eq(d.year, 10000);
}
END_TEST

/* ------------------------------------------------------------------ parse_date */

static const struct {
    const char *s;
    bool ok;
    struct civil_date want;
} date_cases[] = {
    {"2024-02-29", true, {2024, 2, 29}}, /* leap year */
    {"2000-02-29", true, {2000, 2, 29}}, /* divisible by 400: leap */
    {"2026-02-28", true, {2026, 2, 28}}, {"2026-12-31", true, {2026, 12, 31}},
    {"0001-01-01", true, {1, 1, 1}},     {"9999-12-31", true, {9999, 12, 31}},
    {"2026-02-29", false, {0, 0, 0}}, /* common year */
    {"1900-02-29", false, {0, 0, 0}}, /* divisible by 100, not 400 */
    {"2100-02-29", false, {0, 0, 0}},    {"2026-04-31", false, {0, 0, 0}},
    {"2026-13-01", false, {0, 0, 0}},    {"2026-00-10", false, {0, 0, 0}},
    {"2026-01-00", false, {0, 0, 0}},    {"2026-01-32", false, {0, 0, 0}},
    {"0000-01-01", false, {0, 0, 0}}, /* outside 0001-9999 */
    {"2026-1-01", false, {0, 0, 0}},     {"2026-01-1", false, {0, 0, 0}},
    {"26-01-01", false, {0, 0, 0}},      {"20260101", false, {0, 0, 0}},
    {"2026/01/01", false, {0, 0, 0}},    {"2026-01-01 ", false, {0, 0, 0}},
    {" 2026-01-01", false, {0, 0, 0}},   {"2026-01-01T00:00:00Z", false, {0, 0, 0}},
    {"2026-01-0a", false, {0, 0, 0}},    {"+026-01-01", false, {0, 0, 0}},
    {"2026-+1-01", false, {0, 0, 0}},    {"", false, {0, 0, 0}},
    {"2026", false, {0, 0, 0}},
};

START_TEST(parse_date_table)
{
    struct civil_date got = {-1, -1, -1};
    bool ok = caltime_parse_date(date_cases[_i].s, &got);
    ck_assert_msg(ok == date_cases[_i].ok, "\"%s\": got %d", date_cases[_i].s, ok);
    if (ok) {
        ck_assert_int_eq(got.year, date_cases[_i].want.year);
        ck_assert_int_eq(got.month, date_cases[_i].want.month);
        ck_assert_int_eq(got.day, date_cases[_i].want.day);
    }
}
END_TEST

START_TEST(parse_date_null)
{
    struct civil_date d;
    ck_assert(!caltime_parse_date(NULL, &d));
    ck_assert(caltime_parse_date("2026-03-29", NULL));
}
END_TEST

/* ------------------------------------------------------------------ parse_datetime */

static const struct {
    const char *s;
    bool ok;
    int64_t ms;
} datetime_cases[] = {
    {"2026-03-29T01:00:00Z", true, 1774746000000},
    {"2026-03-29t01:00:00z", true, 1774746000000},
    {"2026-03-29 01:00:00Z", true, 1774746000000},
    {"2026-03-29T02:00:00+01:00", true, 1774746000000},
    {"2026-03-28T20:00:00-05:00", true, 1774746000000},
    {"2026-03-29T01:00:00+00:00", true, 1774746000000},
    {"2026-03-29T01:00:00-00:00", true, 1774746000000}, /* RFC 3339 "unknown offset" */
    {"2026-03-29T06:30:00+05:30", true, 1774746000000},
    {"2026-03-30T00:59:00+23:59", true, 1774746000000},
    {"2026-03-28T01:01:00-23:59", true, 1774746000000},
    {"2026-03-29T01:00:00.7Z", true, 1774746000700},
    {"2026-03-29T01:00:00.07Z", true, 1774746000070},
    {"2026-03-29T01:00:00.123Z", true, 1774746000123},
    {"2026-03-29T01:00:00.123456789Z", true, 1774746000123}, /* truncated, not rounded */
    {"2026-03-29T01:00:00.9999Z", true, 1774746000999},
    {"2026-03-29T02:00:00.5+01:00", true, 1774746000500},
    {"1970-01-01T00:00:00Z", true, 0},
    {"1969-12-31T23:59:59.999Z", true, -1},
    {"2024-02-29T23:59:59Z", true, 1709251199000},
    {"2026-07-15T23:30:00Z", true, 1784158200000},
    {"9999-12-31T23:59:59.999Z", true, 253402300799999},
    {"0001-01-01T00:00:00Z", true, -62135596800000},
    {"2026-03-29T01:00:00", false, 0}, /* no offset */
    {"2026-03-29T24:00:00Z", false, 0},
    {"2026-03-29T23:60:00Z", false, 0},
    {"2026-03-29T23:59:60Z", false, 0}, /* leap second */
    {"2026-03-29T01:00:00+24:00", false, 0},
    {"2026-03-29T01:00:00+01:60", false, 0},
    {"2026-03-29T01:00:00+0100", false, 0},
    {"2026-03-29T01:00:00+01", false, 0},
    {"2026-03-29T01:00:00+1:00", false, 0},
    {"2026-03-29T01:00:00Z ", false, 0},
    {"2026-03-29T01:00:00Zjunk", false, 0},
    {"2026-03-29T01:00:00+01:00x", false, 0},
    {"2026-03-29T01:00:00UTC", false, 0},
    {"2026-02-29T00:00:00Z", false, 0},
    {"2026-04-31T00:00:00Z", false, 0},
    {"2026-13-01T00:00:00Z", false, 0},
    {"2026-03-29T1:00:00Z", false, 0},
    {"2026-03-29T01:00Z", false, 0},
    {"2026-03-29T01:00:00.Z", false, 0},
    {"2026-03-29T01:00:00,5Z", false, 0},
    {"2026-03-29X01:00:00Z", false, 0},
    {"2026-03-29", false, 0},
    {"", false, 0},
    {"0001-01-01T00:00:00+01:00", false, 0}, /* before 0001-01-01T00:00:00Z */
    {"9999-12-31T23:59:59-01:00", false, 0}, /* after 9999-12-31T23:59:59Z */
};

START_TEST(parse_datetime_table)
{
    int64_t got = 42;
    bool ok = caltime_parse_datetime(datetime_cases[_i].s, &got);
    ck_assert_msg(ok == datetime_cases[_i].ok, "\"%s\": got %d", datetime_cases[_i].s, ok);
    if (ok)
        ck_assert_msg(got == datetime_cases[_i].ms, "\"%s\": got %lld", datetime_cases[_i].s,
                      (long long)got);
    else
        ck_assert_int_eq(got, 42); /* untouched on failure */
}
END_TEST

/* ------------------------------------------------------------------ formatting */

static const struct {
    int64_t s;
    const char *want;
} format_cases[] = {
    {0, "1970-01-01T00:00:00Z"},
    {-1, "1969-12-31T23:59:59Z"},
    {1774746000, "2026-03-29T01:00:00Z"},
    {1784131200, "2026-07-15T16:00:00Z"},
    {1709251199, "2024-02-29T23:59:59Z"},
    {253402300799, "9999-12-31T23:59:59Z"},
    {-62135596800, "0001-01-01T00:00:00Z"},
    {INT64_MAX, "9999-12-31T23:59:59Z"}, /* clamped */
    {INT64_MIN, "0001-01-01T00:00:00Z"},
};

static const struct {
    int64_t ms;
    const char *want;
} format_ms_cases[] = {
    {0, "1970-01-01T00:00:00.000Z"},
    {5, "1970-01-01T00:00:00.005Z"},
    {1000, "1970-01-01T00:00:01.000Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {-1000, "1969-12-31T23:59:59.000Z"},
    {-1001, "1969-12-31T23:59:58.999Z"},
    {1774746000123, "2026-03-29T01:00:00.123Z"},
    {1784158200050, "2026-07-15T23:30:00.050Z"},
    {253402300799999, "9999-12-31T23:59:59.999Z"},
    {INT64_MAX, "9999-12-31T23:59:59.999Z"}, /* clamped */
    {INT64_MIN, "0001-01-01T00:00:00.000Z"},
};

START_TEST(format_utc_table)
{
    char buf[32];
    memset(buf, 'x', sizeof buf);
    ck_assert_ptr_eq(caltime_format_utc(format_cases[_i].s, buf), buf);
    ck_assert_str_eq(buf, format_cases[_i].want);
    for (size_t i = 21; i < sizeof buf; i++) /* the documented 21 bytes, no more */
        ck_assert_int_eq(buf[i], 'x');
}
END_TEST

START_TEST(format_utc_ms_table)
{
    char buf[32];
    memset(buf, 'x', sizeof buf);
    ck_assert_ptr_eq(caltime_format_utc_ms(format_ms_cases[_i].ms, buf), buf);
    ck_assert_str_eq(buf, format_ms_cases[_i].want);
    for (size_t i = 25; i < sizeof buf; i++)
        ck_assert_int_eq(buf[i], 'x');
}
END_TEST

/* ------------------------------------------------------------------ ages */

static const struct {
    struct civil_date birth, on;
    int age;
} age_cases[] = {
    {{2010, 5, 10}, {2026, 5, 9}, 15},
    {{2010, 5, 10}, {2026, 5, 10}, 16}, /* the birthday itself counts */
    {{2010, 5, 10}, {2026, 5, 11}, 16},
    {{2010, 5, 10}, {2026, 4, 30}, 15},
    {{2010, 5, 10}, {2010, 5, 10}, 0},
    {{2007, 12, 31}, {2025, 12, 30}, 17},
    {{2007, 12, 31}, {2025, 12, 31}, 18},
    {{2008, 1, 1}, {2025, 12, 31}, 17},
    /* 29 February born: in common years the birthday counts from 1 March. */
    {{2008, 2, 29}, {2026, 2, 28}, 17},
    {{2008, 2, 29}, {2026, 3, 1}, 18},
    {{2008, 2, 29}, {2027, 2, 28}, 18},
    {{2008, 2, 29}, {2027, 3, 1}, 19},
    {{2008, 2, 29}, {2028, 2, 28}, 19}, /* leap year: 28 Feb is the day before */
    {{2008, 2, 29}, {2028, 2, 29}, 20},
    {{2008, 2, 29}, {2028, 3, 1}, 20},
    {{2000, 2, 29}, {2100, 2, 28}, 99}, /* 2100 is a common year */
    {{2000, 2, 29}, {2100, 3, 1}, 100},
    /* Born 1 March: a 29 February in a leap year is still the day before. */
    {{2007, 3, 1}, {2024, 2, 29}, 16},
    {{2007, 3, 1}, {2024, 3, 1}, 17},
    /* on before birth: negative. */
    {{2026, 5, 10}, {2026, 5, 9}, -1},
    {{2026, 1, 1}, {2025, 12, 31}, -1},
};

START_TEST(age_table)
{
    ck_assert_int_eq(caltime_age_years(age_cases[_i].birth, age_cases[_i].on), age_cases[_i].age);
}
END_TEST

/* ------------------------------------------------------------------ Europe/London */

static const struct {
    const char *when; /* for the failure message */
    int64_t utc_s;
    int32_t offset;
} london_cases[] = {
    {"2026-03-29T00:59:59Z", 1774745999, 0},
    {"2026-03-29T01:00:00Z", 1774746000, 3600}, /* BST starts */
    {"2026-10-25T00:59:59Z", 1792889999, 3600},
    {"2026-10-25T01:00:00Z", 1792890000, 0}, /* BST ends */
    {"2027-03-28T00:59:59Z", 1806195599, 0},
    {"2027-03-28T01:00:00Z", 1806195600, 3600},
    {"2027-10-31T00:59:59Z", 1824944399, 3600},
    {"2027-10-31T01:00:00Z", 1824944400, 0},
    {"2026-01-15T12:00:00Z", 1768478400, 0},
    {"2026-07-01T12:00:00Z", 1782907200, 3600},
    {"1970-01-01T00:00:00Z", 0, 3600}, /* British Standard Time, 1968-1971 */
    {"1900-06-01T00:00:00Z", -2195942400, 0},
    {"1800-01-01T00:00:00Z", -5364662400, -75}, /* local mean time */
    /* Far beyond the table (the packaged file lists transitions to 2037): the footer. */
    {"2090-01-15T12:00:00Z", 3788164800, 0},
    {"2090-03-26T00:59:59Z", 3794173199, 0},
    {"2090-03-26T01:00:00Z", 3794173200, 3600},
    {"2090-07-01T12:00:00Z", 3802593600, 3600},
    {"2090-10-29T00:59:59Z", 3812921999, 3600},
    {"2090-10-29T01:00:00Z", 3812922000, 0},
    {"2100-07-01T12:00:00Z", 4118126400, 3600},
};

START_TEST(london_offset_table)
{
    struct tzone *z = load_zone_or_fail("Europe/London");
    ck_assert_msg(caltime_utc_offset(z, london_cases[_i].utc_s) == london_cases[_i].offset,
                  "%s: got %d, want %d", london_cases[_i].when,
                  (int)caltime_utc_offset(z, london_cases[_i].utc_s), (int)london_cases[_i].offset);
    caltime_free_zone(z);
}
END_TEST

static const struct {
    const char *when;
    int64_t utc_s;
    struct civil_date date;
    int sec_of_day;
} local_date_cases[] = {
    {"2026-07-15T23:30:00Z", 1784158200, {2026, 7, 16}, 1800}, /* 00:30 BST, next day */
    {"2026-01-15T23:30:00Z", 1768519800, {2026, 1, 15}, 84600},
    {"2026-03-29T01:00:00Z", 1774746000, {2026, 3, 29}, 7200},
    {"2026-10-25T00:59:59Z", 1792889999, {2026, 10, 25}, 7199},
    {"2026-10-25T01:00:00Z", 1792890000, {2026, 10, 25}, 3600},
    {"1969-12-31T23:30:00Z", -1800, {1970, 1, 1}, 1800},
    {"2090-07-15T16:00:00Z", 3803817600, {2090, 7, 15}, 61200},
};

START_TEST(london_local_date_table)
{
    struct tzone *z = load_zone_or_fail("Europe/London");
    int sod = -1;
    struct civil_date d = caltime_local_date(z, local_date_cases[_i].utc_s, &sod);
    ck_assert_msg(d.year == local_date_cases[_i].date.year &&
                      d.month == local_date_cases[_i].date.month &&
                      d.day == local_date_cases[_i].date.day,
                  "%s: got %d-%d-%d", local_date_cases[_i].when, d.year, d.month, d.day);
    ck_assert_int_eq(sod, local_date_cases[_i].sec_of_day);
    /* the day number alone: the same day */
    ck_assert_int_eq(caltime_local_day(z, local_date_cases[_i].utc_s),
                     caltime_days_from_civil(local_date_cases[_i].date));
    caltime_free_zone(z);
}
END_TEST

static const struct {
    const char *zone;
    struct civil_date date;
    int sec_of_day;
    int64_t utc_s;
    const char *want; /* for the failure message */
} local_to_utc_cases[] = {
    {"Europe/London", {2026, 1, 15}, 17 * 3600, 1768496400, "2026-01-15T17:00:00Z"},
    {"Europe/London", {2026, 7, 15}, 17 * 3600, 1784131200, "2026-07-15T16:00:00Z"},
    {"Europe/London", {2090, 7, 15}, 17 * 3600, 3803817600, "2090-07-15T16:00:00Z"},
    /* The gap: 01:30 does not exist on 2026-03-29; GMT still applies -> 02:30 BST. */
    {"Europe/London", {2026, 3, 29}, 5400, 1774747800, "2026-03-29T01:30:00Z"},
    {"Europe/London", {2026, 3, 29}, 3599, 1774745999, "2026-03-29T00:59:59Z"},
    {"Europe/London", {2026, 3, 29}, 7200, 1774746000, "2026-03-29T01:00:00Z"},
    /* The overlap: 01:30 happens twice on 2026-10-25; the earlier is 01:30 BST. */
    {"Europe/London", {2026, 10, 25}, 5400, 1792888200, "2026-10-25T00:30:00Z"},
    {"Europe/London", {2026, 10, 25}, 3540, 1792886340, "2026-10-24T23:59:00Z"},
    {"Europe/London", {2026, 10, 25}, 7200, 1792893600, "2026-10-25T02:00:00Z"},
    {"Europe/London", {2090, 3, 26}, 5400, 3794175000, "2090-03-26T01:30:00Z"},
    {"Europe/London", {2090, 10, 29}, 5400, 3812920200, "2090-10-29T00:30:00Z"},
    {"Europe/London", {1970, 1, 1}, 1800, -1800, "1969-12-31T23:30:00Z"},
    /* Southern hemisphere: the gap is in October, the overlap in April. */
    {"Australia/Sydney", {2026, 10, 4}, 9000, 1791045000, "2026-10-03T16:30:00Z"},
    {"Australia/Sydney", {2026, 4, 5}, 9000, 1775316600, "2026-04-04T15:30:00Z"},
    {"Australia/Sydney", {2026, 7, 1}, 17 * 3600, 1782889200, "2026-07-01T07:00:00Z"},
    {"America/New_York", {2026, 3, 8}, 9000, 1772955000, "2026-03-08T07:30:00Z"},
    {"America/New_York", {2026, 11, 1}, 5400, 1793511000, "2026-11-01T05:30:00Z"},
    {"UTC", {2026, 3, 29}, 5400, 1774747800, "2026-03-29T01:30:00Z"},
};

START_TEST(local_to_utc_table)
{
    struct tzone *z = load_zone_or_fail(local_to_utc_cases[_i].zone);
    int64_t got =
        caltime_local_to_utc(z, local_to_utc_cases[_i].date, local_to_utc_cases[_i].sec_of_day);
    ck_assert_msg(got == local_to_utc_cases[_i].utc_s, "%s: got %lld, want %lld (%s)",
                  local_to_utc_cases[_i].zone, (long long)got,
                  (long long)local_to_utc_cases[_i].utc_s, local_to_utc_cases[_i].want);
    caltime_free_zone(z);
}
END_TEST

/* ------------------------------------------------------------------ zone names and files */

static const char *const bad_zone_names[] = {
    "Nowhere/Atlantis", /* valid name, no such file */
    "Europe/Londres",
    "Europe", /* a directory */
    "../../etc/passwd",
    "Europe/../Europe/London",
    "/usr/share/zoneinfo/Europe/London",
    "Europe/London/",
    "Europe//London",
    "Europe/London ",
    "Europe/Lon\ndon",
    "Europe\\London",
    "Europe/London.tab",
    "",
    "zone.tab", /* '.' refused */
};

START_TEST(bad_zone_table)
{
    struct tzone *z = (struct tzone *)&z; /* must come back NULL */
    char err[256] = "";
    ck_assert_int_eq(caltime_load_zone(bad_zone_names[_i], &z, err, sizeof err), -1);
    ck_assert_ptr_null(z);
    ck_assert_msg(err[0] != '\0', "no message for \"%s\"", bad_zone_names[_i]);
}
END_TEST

START_TEST(bad_zone_small_err)
{
    struct tzone *z = NULL;
    char err[8];
    memset(err, 'x', sizeof err);
    ck_assert_int_eq(caltime_load_zone("Nowhere/Atlantis", &z, err, 4), -1);
    ck_assert_uint_eq(strlen(err), 3); /* truncated, terminated, within errlen */
    ck_assert_int_eq(err[4], 'x');
    ck_assert_int_eq(caltime_load_zone("Nowhere/Atlantis", &z, NULL, 0), -1);
    ck_assert_int_eq(caltime_load_zone(NULL, &z, err, sizeof err), -1);
    caltime_free_zone(NULL);
}
END_TEST

/* ---- hand-made TZif files in a private TZDIR */

struct tzif_spec {
    char version; /* 0, '2', '3' */
    size_t n_trans;
    int64_t trans[4];
    unsigned char idx[4];
    size_t n_types;
    int32_t utoff[3];
    const char *footer; /* version 2+ only */
};

static unsigned char *put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

static unsigned char *put_tzif_part(unsigned char *p, const struct tzif_spec *t, char version,
                                    int time_size)
{
    memcpy(p, "TZif", 4);
    p[4] = (unsigned char)version;
    memset(p + 5, 0, 15);
    p += 20;
    p = put_be32(p, 0);                    /* isutcnt */
    p = put_be32(p, 0);                    /* isstdcnt */
    p = put_be32(p, 0);                    /* leapcnt */
    p = put_be32(p, (uint32_t)t->n_trans); /* timecnt */
    p = put_be32(p, (uint32_t)t->n_types); /* typecnt */
    p = put_be32(p, 4);                    /* charcnt */
    for (size_t i = 0; i < t->n_trans; i++) {
        if (time_size == 8)
            p = put_be32(p, (uint32_t)((uint64_t)t->trans[i] >> 32));
        p = put_be32(p, (uint32_t)t->trans[i]);
    }
    for (size_t i = 0; i < t->n_trans; i++)
        *p++ = t->idx[i];
    for (size_t i = 0; i < t->n_types; i++) {
        p = put_be32(p, (uint32_t)t->utoff[i]);
        *p++ = 0; /* isdst */
        *p++ = 0; /* desigidx */
    }
    memcpy(p, "ABC", 4);
    return p + 4;
}

static size_t build_tzif(const struct tzif_spec *t, unsigned char *buf)
{
    unsigned char *p = put_tzif_part(buf, t, t->version, 4);
    if (t->version != 0) {
        p = put_tzif_part(p, t, t->version, 8);
        size_t n = strlen(t->footer);
        *p++ = '\n';
        memcpy(p, t->footer, n);
        p += n;
        *p++ = '\n';
    }
    return (size_t)(p - buf);
}

struct tzdir {
    char root[64];
    char file[128];
    char *saved; /* the caller's TZDIR */
};

/* Writes bytes as <tmpdir>/Test/Zone and points TZDIR at <tmpdir>. */
static void tzdir_open(struct tzdir *d, const void *bytes, size_t len)
{
    strcpy(d->root, "/tmp/test_caltime.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(d->root));
    char sub[96];
    snprintf(sub, sizeof sub, "%s/Test", d->root);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(d->file, sizeof d->file, "%s/Zone", sub);
    FILE *f = fopen(d->file, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    const char *old = getenv("TZDIR");
    d->saved = old ? strdup(old) : NULL;
    ck_assert_int_eq(setenv("TZDIR", d->root, 1), 0);
}

static void tzdir_close(struct tzdir *d)
{
    if (d->saved) {
        setenv("TZDIR", d->saved, 1);
        free(d->saved);
    } else {
        unsetenv("TZDIR");
    }
    unlink(d->file);
    char sub[96];
    snprintf(sub, sizeof sub, "%s/Test", d->root);
    rmdir(sub);
    rmdir(d->root);
}

/* Loads bytes as a zone; returns the zone or NULL, with the message in err. */
static struct tzone *load_bytes(const void *bytes, size_t len, char *err, size_t errlen)
{
    struct tzdir d;
    struct tzone *z = NULL;
    tzdir_open(&d, bytes, len);
    err[0] = '\0';
    if (caltime_load_zone("Test/Zone", &z, err, errlen) != 0)
        z = NULL;
    tzdir_close(&d);
    return z;
}

/* "Slim" files: no transitions at all, so every instant goes through the POSIX TZ footer.
 * Expected offsets: glibc evaluating the same string as $TZ. */
static const struct {
    const char *footer;
    const char *when;
    int64_t utc_s;
    int32_t offset;
} footer_cases[] = {
    {"GMT0BST,M3.5.0/1,M10.5.0", "2026-03-29T00:59:59Z", 1774745999, 0},
    {"GMT0BST,M3.5.0/1,M10.5.0", "2026-03-29T01:00:00Z", 1774746000, 3600},
    {"GMT0BST,M3.5.0/1,M10.5.0", "2026-10-25T00:59:59Z", 1792889999, 3600},
    {"GMT0BST,M3.5.0/1,M10.5.0", "2026-10-25T01:00:00Z", 1792890000, 0},
    {"GMT0BST,M3.5.0/1,M10.5.0", "2027-03-28T01:00:00Z", 1806195600, 3600},
    {"GMT0BST,M3.5.0/1,M10.5.0", "2027-10-31T01:00:00Z", 1824944400, 0},
    {"GMT0BST,M3.5.0/1,M10.5.0", "2090-03-26T01:00:00Z", 3794173200, 3600},
    {"GMT0BST,M3.5.0/1,M10.5.0", "2090-10-29T00:59:59Z", 3812921999, 3600},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2026-04-04T15:59:59Z", 1775318399, 39600},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2026-04-04T16:00:00Z", 1775318400, 36000},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2026-10-03T15:59:59Z", 1791043199, 36000},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2026-10-03T16:00:00Z", 1791043200, 39600},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2026-12-31T13:30:00Z", 1798723800, 39600},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2027-07-01T00:00:00Z", 1814400000, 36000},
    {"EST5EDT,M3.2.0,M11.1.0", "2026-03-08T06:59:59Z", 1772953199, -18000},
    {"EST5EDT,M3.2.0,M11.1.0", "2026-03-08T07:00:00Z", 1772953200, -14400},
    {"EST5EDT,M3.2.0,M11.1.0", "2026-11-01T05:59:59Z", 1793512799, -14400},
    {"EST5EDT,M3.2.0,M11.1.0", "2026-11-01T06:00:00Z", 1793512800, -18000},
    /* Version 3: negative rule times (America/Nuuk). */
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-03-29T00:59:59Z", 1774745999, -7200},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-03-29T01:00:00Z", 1774746000, -3600},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-10-25T00:59:59Z", 1792889999, -3600},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2026-10-25T01:00:00Z", 1792890000, -7200},
    /* Minutes in offsets and rule times (Pacific/Chatham). */
    {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", "2026-04-04T13:59:59Z", 1775311199, 49500},
    {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", "2026-04-04T14:00:00Z", 1775311200, 45900},
    {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", "2026-09-26T13:59:59Z", 1790431199, 45900},
    {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", "2026-09-26T14:00:00Z", 1790431200, 49500},
    /* Jn: 29 February never counted (J60 is 1 March, leap year or not). */
    {"AAA-1BBB,J60/2,J300/3", "2028-02-29T12:00:00Z", 1835438400, 3600},
    {"AAA-1BBB,J60/2,J300/3", "2028-03-01T00:59:59Z", 1835485199, 3600},
    {"AAA-1BBB,J60/2,J300/3", "2028-03-01T01:00:00Z", 1835485200, 7200},
    {"AAA-1BBB,J60/2,J300/3", "2027-03-01T00:59:59Z", 1803862799, 3600},
    {"AAA-1BBB,J60/2,J300/3", "2027-03-01T01:00:00Z", 1803862800, 7200},
    {"AAA-1BBB,J60/2,J300/3", "2028-10-27T00:59:59Z", 1856221199, 7200},
    {"AAA-1BBB,J60/2,J300/3", "2028-10-27T01:00:00Z", 1856221200, 3600},
    /* n: zero-based, 29 February counted (59 is 29 Feb in a leap year, 1 March otherwise). */
    {"AAA3BBB,59/0,299/0", "2028-02-29T02:59:59Z", 1835405999, -10800},
    {"AAA3BBB,59/0,299/0", "2028-02-29T03:00:00Z", 1835406000, -7200},
    {"AAA3BBB,59/0,299/0", "2027-03-01T02:59:59Z", 1803869999, -10800},
    {"AAA3BBB,59/0,299/0", "2027-03-01T03:00:00Z", 1803870000, -7200},
    {"AAA3BBB,59/0,299/0", "2028-10-26T01:59:59Z", 1856138399, -7200},
    {"AAA3BBB,59/0,299/0", "2028-10-26T02:00:00Z", 1856138400, -10800},
    {"AAA3BBB,59/0,299/0", "2027-10-27T02:00:00Z", 1824602400, -10800},
    /* Summer time all year (the RFC 8536 example). */
    {"EST5EDT,0/0,J365/25", "2026-01-01T05:00:00Z", 1767243600, -14400},
    {"EST5EDT,0/0,J365/25", "2026-07-01T00:00:00Z", 1782864000, -14400},
    {"EST5EDT,0/0,J365/25", "2026-12-31T23:59:59Z", 1798761599, -14400},
    {"EST5EDT,0/0,J365/25", "2027-01-01T05:00:00Z", 1798779600, -14400},
    /* No summer time. */
    {"<+0330>-3:30", "2026-07-01T00:00:00Z", 1782864000, 12600},
    {"UTC0", "2026-07-01T00:00:00Z", 1782864000, 0},
};

START_TEST(footer_table)
{
    struct tzif_spec t = {
        .version = '3', .n_types = 1, .utoff = {999}, .footer = footer_cases[_i].footer};
    unsigned char buf[512];
    char err[256];
    struct tzone *z = load_bytes(buf, build_tzif(&t, buf), err, sizeof err);
    ck_assert_msg(z != NULL, "%s: %s", footer_cases[_i].footer, err);
    int32_t got = caltime_utc_offset(z, footer_cases[_i].utc_s);
    ck_assert_msg(got == footer_cases[_i].offset, "%s at %s: got %d, want %d",
                  footer_cases[_i].footer, footer_cases[_i].when, (int)got,
                  (int)footer_cases[_i].offset);
    caltime_free_zone(z);
}
END_TEST

/* Transition tables: version 1 (32-bit, no footer), version 2 with a footer after the table,
 * and version 2 with an empty footer (the last type holds forever). */
static const struct {
    const char *what;
    struct tzif_spec spec;
    int64_t utc_s;
    int32_t offset;
} table_cases[] = {
#define V1                                                                                         \
    {                                                                                              \
        0, 2, {1000, 2000}, {1, 0}, 2, {-60, 3600}, ""                                             \
    }
    {"v1 before the first transition: type 0", V1, 999, -60},
    {"v1 at the first transition", V1, 1000, 3600},
    {"v1 before the second", V1, 1999, 3600},
    {"v1 at the second", V1, 2000, -60},
    {"v1 long after: the last type", V1, 4000000000, -60},
    {"v1 long before", V1, -4000000000, -60},
#define V2                                                                                         \
    {                                                                                              \
        '2', 3, {-5000000000, 1000, 2000}, {1, 2, 1}, 3, {-75, 0, 3600},                           \
            "GMT0BST,M3.5.0/1,M10.5.0"                                                             \
    }
    {"v2 64-bit first transition", V2, -5000000001, -75},
    {"v2 64-bit first transition", V2, -5000000000, 0},
    {"v2 between", V2, 1500, 3600},
    {"v2 at the last transition: the table", V2, 2000, 0},
    {"v2 after the last transition: the footer", V2, 1774746000, 3600},
    {"v2 after the last transition: the footer", V2, 1792890000, 0},
#define V2_EMPTY_FOOTER                                                                            \
    {                                                                                              \
        '2', 1, {1000}, {1}, 2, {0, 7200}, ""                                                      \
    }
    {"v2 empty footer, before", V2_EMPTY_FOOTER, 999, 0},
    {"v2 empty footer, after", V2_EMPTY_FOOTER, 1774746000, 7200},
};

START_TEST(tzif_table)
{
    unsigned char buf[512];
    char err[256];
    struct tzone *z = load_bytes(buf, build_tzif(&table_cases[_i].spec, buf), err, sizeof err);
    ck_assert_msg(z != NULL, "%s: %s", table_cases[_i].what, err);
    int32_t got = caltime_utc_offset(z, table_cases[_i].utc_s);
    ck_assert_msg(got == table_cases[_i].offset, "%s: got %d, want %d", table_cases[_i].what,
                  (int)got, (int)table_cases[_i].offset);
    caltime_free_zone(z);
}
END_TEST

/* Broken files: each must be refused with a message, never crash or leak. */
static const struct {
    const char *what;
    struct tzif_spec spec;
    long truncate_to; /* -1: whole file */
    long corrupt_at;  /* -1: none; else the byte there is set to corrupt_byte */
    unsigned char corrupt_byte;
} broken_cases[] = {
    {"bad magic", {'2', 0, {0}, {0}, 1, {0}, "UTC0"}, -1, 0, 'X'},
    {"bad version", {'2', 0, {0}, {0}, 1, {0}, "UTC0"}, -1, 4, '1'},
    {"no types", {'2', 0, {0}, {0}, 0, {0}, "UTC0"}, -1, -1, 0},
    {"type index out of range", {'2', 1, {1000}, {5}, 1, {0}, "UTC0"}, -1, -1, 0},
    {"transitions out of order", {'2', 2, {2000, 1000}, {0, 0}, 1, {0}, "UTC0"}, -1, -1, 0},
    {"absurd offset", {'2', 0, {0}, {0}, 1, {200000}, "UTC0"}, -1, -1, 0},
    {"empty file", {'2', 0, {0}, {0}, 1, {0}, "UTC0"}, 0, -1, 0},
    {"truncated header", {'2', 0, {0}, {0}, 1, {0}, "UTC0"}, 30, -1, 0},
    {"truncated v1 data", {0, 1, {1000}, {0}, 1, {0}, ""}, 50, -1, 0},
    {"truncated v2 data", {'2', 1, {1000}, {0}, 1, {0}, "UTC0"}, 100, -1, 0},
    {"footer without newline", {'2', 0, {0}, {0}, 1, {0}, "UTC0"}, -1, -1, 0},
    {"bad footer", {'2', 0, {0}, {0}, 1, {0}, "GMT0BST,M13.5.0,M10.5.0"}, -1, -1, 0},
    {"footer with junk", {'2', 0, {0}, {0}, 1, {0}, "GMT0BST,M3.5.0/1,M10.5.0x"}, -1, -1, 0},
    {"footer short name", {'2', 0, {0}, {0}, 1, {0}, "G0"}, -1, -1, 0},
    {"footer no offset", {'2', 0, {0}, {0}, 1, {0}, "GMT"}, -1, -1, 0},
};

START_TEST(broken_tzif_table)
{
    unsigned char buf[512];
    size_t len = build_tzif(&broken_cases[_i].spec, buf);
    if (broken_cases[_i].truncate_to >= 0)
        len = (size_t)broken_cases[_i].truncate_to;
    if (broken_cases[_i].corrupt_at >= 0)
        buf[broken_cases[_i].corrupt_at] = broken_cases[_i].corrupt_byte;
    if (strcmp(broken_cases[_i].what, "footer without newline") == 0)
        len--; /* drop the final '\n' */
    char err[256];
    struct tzone *z = load_bytes(buf, len, err, sizeof err);
    ck_assert_msg(z == NULL, "%s: loaded", broken_cases[_i].what);
    ck_assert_msg(err[0] != '\0', "%s: no message", broken_cases[_i].what);
}
END_TEST

/* The real London file cut short anywhere: refused, never read past the end. */
START_TEST(truncated_london)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/Europe/London", dir && *dir ? dir : "/usr/share/zoneinfo");
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static unsigned char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_uint_gt(len, 100);
    static const size_t cuts[] = {0, 4, 43, 44, 45, 100, 1000, 1500, 2000, 3000};
    for (size_t i = 0; i < N_ELEMS(cuts); i++) {
        if (cuts[i] >= len)
            continue;
        char err[256];
        struct tzone *z = load_bytes(buf, cuts[i], err, sizeof err);
        ck_assert_msg(z == NULL, "cut at %zu: loaded", cuts[i]);
    }
    char err[256];
    struct tzone *z = load_bytes(buf, len, err, sizeof err);
    ck_assert_msg(z != NULL, "whole file: %s", err);
    ck_assert_int_eq(caltime_utc_offset(z, 1774746000), 3600);
    caltime_free_zone(z);
}
END_TEST

/* The zone files against glibc reading the same files (TZ=name): the offset at every
 * day from 1900 to 2040, and at every change there, found by bisecting glibc's answers,
 * the same second each side. Covers the bucket index and the footer after 2037, in zones
 * with half-hour summer time, a skipped day, and summer time switched on and off. */
static const char *const glibc_zones[] = {
    "Europe/London", "America/New_York",  "Australia/Lord_Howe", "Pacific/Apia",
    "Asia/Kolkata",  "America/Sao_Paulo", "Africa/Casablanca",   "Europe/Dublin",
};

static long glibc_offset(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    ck_assert_ptr_nonnull(localtime_r(&tt, &tm));
    return tm.tm_gmtoff;
}

START_TEST(zone_matches_glibc)
{
    const char *name = glibc_zones[_i];
    char err[256];
    struct tzone *z = NULL;
    ck_assert_msg(caltime_load_zone(name, &z, err, sizeof err) == 0, "%s: %s", name, err);
    ck_assert_int_eq(setenv("TZ", name, 1), 0);
    tzset();
    const int64_t from = INT64_C(-2208988800), to = INT64_C(2208988800); /* 1900 - 2040 */
    int changes = 0;
    long g1 = glibc_offset(from);
    for (int64_t t = from; t < to; t += 86400) {
        long g0 = g1; /* glibc's offset at t, asked once (the sanitizers make it slow) */
        g1 = glibc_offset(t + 86400);
        ck_assert_msg(caltime_utc_offset(z, t) == g0, "%s at %lld: got %d, glibc %ld", name,
                      (long long)t, (int)caltime_utc_offset(z, t), g0);
        if (g1 == g0)
            continue;
        int64_t lo = t, hi = t + 86400; /* glibc: g0 at lo, another offset at hi */
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            *(glibc_offset(mid) == g0 ? &lo : &hi) = mid;
        }
        ck_assert_msg(
            caltime_utc_offset(z, lo) == g0 && caltime_utc_offset(z, hi) == glibc_offset(hi),
            "%s: change at %lld: got %d then %d, glibc %ld then %ld", name, (long long)hi,
            (int)caltime_utc_offset(z, lo), (int)caltime_utc_offset(z, hi), g0, glibc_offset(hi));
        changes++;
    }
    ck_assert_msg(changes > 0, "%s: no change found", name);
    caltime_free_zone(z);
}
END_TEST

/* ------------------------------------------------------------------ working calendar */

/* England and Wales bank holidays 2026-2027 (directory.json). */
static const char *const england_holidays[] = {
    "2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31",
    "2026-12-25", "2026-12-28", "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03",
    "2027-05-31", "2027-08-30", "2027-12-27", "2027-12-28",
};

#define MON_FRI 0x1fu

static void england(struct work_calendar *cal, int64_t *days, unsigned working_days)
{
    for (size_t i = 0; i < N_ELEMS(england_holidays); i++)
        days[i] = day_of(england_holidays[i]);
    cal->zone = NULL;
    cal->working_days = working_days;
    cal->holidays = days;
    cal->n_holidays = N_ELEMS(england_holidays);
}

static const struct {
    const char *from;
    int n;
    const char *want;
    unsigned working_days;
} nth_cases[] = {
    {"2026-03-09", 1, "2026-03-10", MON_FRI}, /* Monday -> Tuesday (amber) */
    {"2026-03-09", 3, "2026-03-12", MON_FRI}, /* Monday -> Thursday (green) */
    {"2026-03-13", 1, "2026-03-16", MON_FRI}, /* Friday -> Monday */
    {"2026-03-14", 1, "2026-03-16", MON_FRI}, /* Saturday -> Monday */
    {"2026-03-15", 1, "2026-03-16", MON_FRI}, /* Sunday -> Monday */
    {"2026-03-13", 3, "2026-03-18", MON_FRI},
    {"2026-05-22", 1, "2026-05-26", MON_FRI}, /* Friday before bank holiday Monday */
    {"2026-05-23", 1, "2026-05-26", MON_FRI}, /* Saturday before it */
    {"2026-05-22", 3, "2026-05-28", MON_FRI},
    {"2026-05-25", 1, "2026-05-26", MON_FRI}, /* from the holiday itself */
    {"2026-04-02", 1, "2026-04-07", MON_FRI}, /* Easter: Good Friday and Easter Monday */
    {"2026-04-02", 3, "2026-04-09", MON_FRI},
    {"2026-12-23", 1, "2026-12-24", MON_FRI},
    {"2026-12-23", 3, "2026-12-30", MON_FRI},
    {"2026-12-24", 1, "2026-12-29", MON_FRI}, /* Christmas Fri 25, substitute Mon 28 */
    {"2026-12-25", 1, "2026-12-29", MON_FRI},
    {"2026-12-24", 3, "2026-12-31", MON_FRI},
    {"2026-12-31", 1, "2027-01-04", MON_FRI},       /* New Year's Day Friday */
    {"2027-12-24", 1, "2027-12-29", MON_FRI},       /* Mon 27, Tue 28 */
    {"2026-12-24", 1, "2026-12-26", 0x3fu},         /* Saturdays worked */
    {"2026-12-24", 1, "2026-12-26", 0x7fu | 0x80u}, /* every day; bit 7 ignored */
    {"2026-12-24", 1, "2026-12-27", 0x40u},         /* Sundays only */
    {"2026-12-24", 2, "2027-01-03", 0x40u},
    {"2027-12-31", 1, "2028-01-03", MON_FRI}, /* past the end of the holiday list */
    {"2025-12-31", 1, "2026-01-02", MON_FRI}, /* before its start */
};

START_TEST(nth_working_day_table)
{
    int64_t days[N_ELEMS(england_holidays)];
    struct work_calendar cal;
    england(&cal, days, nth_cases[_i].working_days);
    int64_t got = caltime_nth_working_day_after(&cal, day_of(nth_cases[_i].from), nth_cases[_i].n);
    struct civil_date g = caltime_civil_from_days(got);
    ck_assert_msg(got == day_of(nth_cases[_i].want), "%d after %s: got %04d-%02d-%02d, want %s",
                  nth_cases[_i].n, nth_cases[_i].from, g.year, g.month, g.day, nth_cases[_i].want);
}
END_TEST

static const struct {
    const char *day;
    bool working;
} working_day_cases[] = {
    {"2026-12-24", true},  {"2026-12-25", false}, {"2026-12-26", false}, {"2026-12-27", false},
    {"2026-12-28", false}, {"2026-12-29", true},  {"2026-03-10", true},  {"2026-03-14", false},
    {"2026-01-01", false}, {"2027-12-28", false}, {"2027-12-29", true},  {"2025-12-31", true},
};

START_TEST(is_working_day_table)
{
    int64_t days[N_ELEMS(england_holidays)];
    struct work_calendar cal;
    england(&cal, days, MON_FRI);
    ck_assert_msg(caltime_is_working_day(&cal, day_of(working_day_cases[_i].day)) ==
                      working_day_cases[_i].working,
                  "%s", working_day_cases[_i].day);
}
END_TEST

START_TEST(calendar_edges)
{
    struct work_calendar none = {NULL, 0, NULL, 0};
    ck_assert_int_eq(caltime_nth_working_day_after(&none, day_of("2026-03-09"), 1), -1);
    ck_assert(!caltime_is_working_day(&none, day_of("2026-03-09")));
    struct work_calendar weekend_bit_only = {NULL, 0x80u, NULL, 0};
    ck_assert_int_eq(caltime_nth_working_day_after(&weekend_bit_only, 0, 1), -1);

    struct work_calendar no_holidays = {NULL, MON_FRI, NULL, 0};
    ck_assert_int_eq(caltime_nth_working_day_after(&no_holidays, day_of("2026-12-24"), 1),
                     day_of("2026-12-25"));
    ck_assert(caltime_is_working_day(&no_holidays, day_of("2026-12-25")));
    ck_assert_int_eq(caltime_nth_working_day_after(&no_holidays, day_of("2026-03-09"), 0), -1);

    /* A long run of holidays is walked through. */
    int64_t hol[40];
    for (int i = 0; i < 40; i++)
        hol[i] = day_of("2026-08-01") + i;
    struct work_calendar summer = {NULL, MON_FRI, hol, 40};
    ck_assert_int_eq(caltime_nth_working_day_after(&summer, day_of("2026-07-31"), 1),
                     day_of("2026-09-10"));
}
END_TEST

/* ------------------------------------------------------------------ suite */

static Suite *caltime_suite(void)
{
    Suite *s = suite_create("caltime");
    struct {
        const char *name;
        const TTest *fn;
        int n; /* loop count, 0 for a plain test */
    } tests[] = {
        {"civil", civil_table, (int)N_ELEMS(civil_cases)},
        {"civil_every_day", civil_every_day, 0},
        {"parse_date", parse_date_table, (int)N_ELEMS(date_cases)},
        {"parse_date_null", parse_date_null, 0},
        {"parse_datetime", parse_datetime_table, (int)N_ELEMS(datetime_cases)},
        {"format_utc", format_utc_table, (int)N_ELEMS(format_cases)},
        {"format_utc_ms", format_utc_ms_table, (int)N_ELEMS(format_ms_cases)},
        {"age", age_table, (int)N_ELEMS(age_cases)},
        {"london_offset", london_offset_table, (int)N_ELEMS(london_cases)},
        {"london_local_date", london_local_date_table, (int)N_ELEMS(local_date_cases)},
        {"local_to_utc", local_to_utc_table, (int)N_ELEMS(local_to_utc_cases)},
        {"bad_zone", bad_zone_table, (int)N_ELEMS(bad_zone_names)},
        {"bad_zone_small_err", bad_zone_small_err, 0},
        {"footer", footer_table, (int)N_ELEMS(footer_cases)},
        {"tzif", tzif_table, (int)N_ELEMS(table_cases)},
        {"broken_tzif", broken_tzif_table, (int)N_ELEMS(broken_cases)},
        {"truncated_london", truncated_london, 0},
        {"zone_matches_glibc", zone_matches_glibc, (int)N_ELEMS(glibc_zones)},
        {"nth_working_day", nth_working_day_table, (int)N_ELEMS(nth_cases)},
        {"is_working_day", is_working_day_table, (int)N_ELEMS(working_day_cases)},
        {"calendar_edges", calendar_edges, 0},
    };
    for (size_t i = 0; i < N_ELEMS(tests); i++) {
        TCase *tc = tcase_create(tests[i].name);
        tcase_set_timeout(tc, 60);
        if (tests[i].n > 0)
            tcase_add_loop_test(tc, tests[i].fn, 0, tests[i].n);
        else
            tcase_add_test(tc, tests[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(caltime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
