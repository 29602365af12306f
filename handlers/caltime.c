/* caltime: civil dates, RFC 3339 times, time zones and the working calendar.
 *
 * Everything here is a pure function of its arguments (plus the TZif file read by
 * caltime_load_zone). Nothing touches TZ, tzset() or localtime(): the daemon's other
 * code, and libraries it links, may depend on the process time zone.
 *
 * Time zones: a TZif file (RFC 8536) gives a sorted table of transitions; instants after
 * the last one follow the POSIX TZ string in the footer of version 2+ files. Debian ships
 * "fat" files whose tables run to 2037, but "slim" files stop at the last rule change
 * (1996 for Europe/London), so the footer is the normal case, not an edge case.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontdoor/caltime.h"

/* The instants this module represents: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define MIN_UTC_S    INT64_C(-62135596800)
#define MAX_UTC_S    INT64_C(253402300799)
#define SECS_PER_DAY 86400

/* A zone file larger than this is not a zone file (the largest in tzdata is ~ 4 KiB). */
#define MAX_TZIF_BYTES (1 << 20)
#define MAX_ZONE_NAME  255

/* ------------------------------------------------------------------ civil dates */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return (r != 0 && (r < 0) != (b < 0)) ? r + b : r;
}

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms", days_from_civil.
 * Computed in 64 bits so that any int year is free of overflow. */
static int64_t days_from_ymd(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

int64_t caltime_days_from_civil(struct civil_date d)
{
    return days_from_ymd(d.year, d.month, d.day);
}

/* Hinnant's civil_from_days. */
struct civil_date caltime_civil_from_days(int64_t days)
{
    int64_t z = days + 719468;
    if (z >= 0 && z <= INT32_MAX) {
        /* The same in 32-bit unsigned arithmetic, every date from 0000-03-01 on: routing
         * takes one a referral, and 64-bit divisions made it half of deriving the facts. */
        uint32_t era = (uint32_t)z / 146097;
        uint32_t doe = (uint32_t)z - era * 146097;
        uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        uint32_t mp = (5 * doy + 2) / 153;
        int d = (int)(doy - (153 * mp + 2) / 5 + 1);
        int m = (int)(mp < 10 ? mp + 3 : mp - 9);
        struct civil_date out = {(int)(yoe + era * 400 + (m <= 2)), m, d};
        return out;
    }
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    struct civil_date out = {(int)(yoe + era * 400 + (m <= 2)), m, d};
    return out;
}

int caltime_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday (3). */
    return ((int)floor_mod(days, 7) + 3) % 7;
}

/* ------------------------------------------------------------------ parsing */

/* n decimal digits at s, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* `YYYY-MM-DD` at s (not necessarily terminated there), a real date in 0001-9999. */
static bool parse_date_prefix(const char *s, struct civil_date *out)
{
    int y = digits(s, 4);
    if (y < 1 || s[4] != '-')
        return false;
    int m = digits(s + 5, 2);
    if (m < 1 || m > 12 || s[7] != '-')
        return false;
    int d = digits(s + 8, 2);
    if (d < 1 || d > days_in_month(y, m))
        return false;
    out->year = y;
    out->month = m;
    out->day = d;
    return true;
}

bool caltime_parse_date(const char *s, struct civil_date *out)
{
    struct civil_date d;
    /* digits() stops at the first non-digit, so a short string never reads past its NUL. */
    if (s == NULL || !parse_date_prefix(s, &d) || s[10] != '\0')
        return false;
    if (out)
        *out = d;
    return true;
}

bool caltime_parse_datetime(const char *s, int64_t *utc_ms)
{
    struct civil_date d;
    if (s == NULL || !parse_date_prefix(s, &d))
        return false;
    const char *p = s + 10;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return false;
    p++;
    int hh = digits(p, 2);
    if (hh < 0 || hh > 23 || p[2] != ':')
        return false;
    int mm = digits(p + 3, 2);
    if (mm < 0 || mm > 59 || p[5] != ':')
        return false;
    int ss = digits(p + 6, 2);
    if (ss < 0 || ss > 59) /* 60: leap seconds are refused */
        return false;
    p += 8;

    /* Fraction of any length, truncated to milliseconds: ".5" is 500, ".123456" 123. */
    int ms = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        int kept = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (kept < 3) {
                ms = ms * 10 + (*p - '0');
                kept++;
            }
        }
        for (; kept < 3; kept++)
            ms *= 10;
    }

    int64_t offset_s;
    if (*p == 'Z' || *p == 'z') {
        offset_s = 0;
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2);
        if (oh < 0 || oh > 23 || p[3] != ':')
            return false;
        int om = digits(p + 4, 2);
        if (om < 0 || om > 59)
            return false;
        offset_s = (int64_t)oh * 3600 + om * 60;
        if (*p == '-')
            offset_s = -offset_s;
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;

    int64_t secs = caltime_days_from_civil(d) * SECS_PER_DAY + hh * 3600 + mm * 60 + ss - offset_s;
    if (secs < MIN_UTC_S || secs > MAX_UTC_S)
        return false;
    if (utc_ms)
        *utc_ms = secs * 1000 + ms;
    return true;
}

/* ------------------------------------------------------------------ formatting */

static int64_t clamp_s(int64_t s)
{
    return s < MIN_UTC_S ? MIN_UTC_S : s > MAX_UTC_S ? MAX_UTC_S : s;
}

static char *put_digits(char *p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* `YYYY-MM-DDTHH:MM:SS` of an instant already clamped to years 0001-9999; returns the end. */
static char *put_datetime(char *p, int64_t s)
{
    int64_t days = floor_div(s, SECS_PER_DAY);
    int sod = (int)(s - days * SECS_PER_DAY);
    struct civil_date d = caltime_civil_from_days(days);
    p = put_digits(p, d.year, 4);
    *p++ = '-';
    p = put_digits(p, d.month, 2);
    *p++ = '-';
    p = put_digits(p, d.day, 2);
    *p++ = 'T';
    p = put_digits(p, sod / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sod / 60 % 60, 2);
    *p++ = ':';
    return put_digits(p, sod % 60, 2);
}

/* Instants outside 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z are clamped to that range,
 * so the output always fits the documented buffer sizes. */
char *caltime_format_utc(int64_t utc_s, char *buf)
{
    char *p = put_datetime(buf, clamp_s(utc_s));
    p[0] = 'Z';
    p[1] = '\0';
    return buf;
}

char *caltime_format_utc_ms(int64_t utc_ms, char *buf)
{
    int64_t s = floor_div(utc_ms, 1000);
    int ms = (int)floor_mod(utc_ms, 1000);
    if (s < MIN_UTC_S) {
        s = MIN_UTC_S;
        ms = 0;
    } else if (s > MAX_UTC_S) {
        s = MAX_UTC_S;
        ms = 999;
    }
    char *p = put_datetime(buf, s);
    *p++ = '.';
    p = put_digits(p, ms, 3);
    p[0] = 'Z';
    p[1] = '\0';
    return buf;
}

/* ------------------------------------------------------------------ ages */

int caltime_age_years(struct civil_date birth, struct civil_date on)
{
    /* Comparing (month, day) pairs gives the 29 February rule for free: in a common year
     * 28 February is still before (2, 29) and 1 March is after it. */
    int age = on.year - birth.year;
    if (on.month < birth.month || (on.month == birth.month && on.day < birth.day))
        age--;
    return age;
}

/* ------------------------------------------------------------------ time zones */

/* A POSIX TZ rule date: Mm.w.d ('M'), Jn ('J', 1-365, 29 February never counted) or n
 * ('N', 0-365, 29 February counted), and the local time of day (seconds, may be negative
 * or past 24 h in TZif version 3) at which the change happens. */
struct tzrule {
    char kind;
    int month, week, wday; /* 'M': wday 0 = Sunday; week 5 = the last */
    int yday;              /* 'J' and 'N' */
    int32_t time;
};

struct tzone {
    size_t n;           /* transitions */
    int64_t *trans;     /* UTC seconds, strictly ascending */
    int32_t *off_after; /* offset in force from trans[i] on */
    int32_t off_before; /* time type 0: before the first transition */
    bool has_footer;    /* a non-empty POSIX TZ footer governs after the last transition */
    bool footer_dst;    /* ... and it has summer time rules */
    int32_t std_off, dst_off;
    struct tzrule start, end; /* into and out of summer time */
    /* For a lookup without a search (routing takes one a referral): bucket k covers
     * the 2^TZ_BUCKET_SHIFT seconds from idx_base + k * 2^TZ_BUCKET_SHIFT, and idx[k] is
     * the last transition at or before its start. Built at load; read-only after. */
    int64_t idx_base;
    size_t n_idx;
    uint32_t *idx;
};

/* 2^21 s, about 24 days: a bucket holds at most a transition or two in real zones, and
 * 1900-2037 takes about 2,100 buckets (8 KiB). */
#define TZ_BUCKET_SHIFT 21
#define TZ_IDX_MAX      (1u << 16)
#define TZ_IDX_FROM_S   INT64_C(-2208988800) /* 1900-01-01: older instants search */

/* The day number of a rule's date in year y. */
static int64_t rule_day(int64_t y, const struct tzrule *r)
{
    if (r->kind == 'J')
        return days_from_ymd(y, 1, 1) + r->yday - 1 + (is_leap(y) && r->yday >= 60);
    if (r->kind == 'N')
        return days_from_ymd(y, 1, 1) + r->yday;
    int64_t first = days_from_ymd(y, r->month, 1);
    int first_wday = (caltime_weekday(first) + 1) % 7; /* 0 = Sunday, as POSIX counts */
    int day = (r->wday - first_wday + 7) % 7 + (r->week - 1) * 7;
    while (day >= days_in_month(y, r->month))
        day -= 7;
    return first + day;
}

static int32_t footer_offset(const struct tzone *z, int64_t t)
{
    if (!z->footer_dst)
        return z->std_off;
    /* The year the rules are evaluated for: that of local standard time. */
    int64_t y = caltime_civil_from_days(floor_div(t + z->std_off, SECS_PER_DAY)).year;
    int64_t start = rule_day(y, &z->start) * SECS_PER_DAY + z->start.time - z->std_off;
    int64_t end = rule_day(y, &z->end) * SECS_PER_DAY + z->end.time - z->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? z->dst_off : z->std_off;
}

int32_t caltime_utc_offset(const struct tzone *z, int64_t utc_s)
{
    if (z == NULL)
        return 0;
    int64_t t = clamp_s(utc_s);
    size_t n = z->n;
    if (n == 0)
        return z->has_footer ? footer_offset(z, t) : z->off_before;
    if (t < z->trans[0])
        return z->off_before;
    if (t >= z->trans[n - 1])
        return z->has_footer && t > z->trans[n - 1] ? footer_offset(z, t) : z->off_after[n - 1];
    if (t >= z->idx_base && z->n_idx > 0) {
        uint64_t k = (uint64_t)(t - z->idx_base) >> TZ_BUCKET_SHIFT;
        if (k < z->n_idx) {
            size_t i = z->idx[k];        /* trans[i] <= the bucket's start <= t */
            while (z->trans[i + 1] <= t) /* t < trans[n - 1]: stops there at the latest */
                i++;
            return z->off_after[i];
        }
    }
    /* trans[lo] <= t < trans[hi] */
    size_t lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->off_after[lo];
}

int64_t caltime_local_day(const struct tzone *z, int64_t utc_s)
{
    int64_t t = clamp_s(utc_s);
    return floor_div(t + caltime_utc_offset(z, t), SECS_PER_DAY);
}

struct civil_date caltime_local_date(const struct tzone *z, int64_t utc_s, int *sec_of_day)
{
    int64_t t = clamp_s(utc_s);
    int64_t local = t + caltime_utc_offset(z, t);
    int64_t days = floor_div(local, SECS_PER_DAY);
    if (sec_of_day)
        *sec_of_day = (int)(local - days * SECS_PER_DAY);
    return caltime_civil_from_days(days);
}

/* sec_of_day outside 0-86399 is taken as an offset from the date's midnight, as mktime
 * normalises. Real offsets are within -12 h .. +14 h, so the offsets a day either side
 * are those before and after any change near the wall-clock time. */
int64_t caltime_local_to_utc(const struct tzone *z, struct civil_date d, int sec_of_day)
{
    int64_t local = days_from_ymd(d.year, d.month, d.day) * SECS_PER_DAY + sec_of_day;
    int32_t off_before = caltime_utc_offset(z, local - SECS_PER_DAY);
    int32_t off_after = caltime_utc_offset(z, local + SECS_PER_DAY);
    int64_t u_before = local - off_before;
    int64_t u_after = local - off_after;
    bool ok_before = caltime_utc_offset(z, u_before) == off_before;
    bool ok_after = caltime_utc_offset(z, u_after) == off_after;
    if (ok_before && ok_after) /* unambiguous (the same instant) or an overlap: the earlier */
        return u_before < u_after ? u_before : u_after;
    if (ok_after)
        return u_after;
    /* ok_before alone, or a gap: as if the earlier offset still applied. */
    return u_before;
}

/* ---- POSIX TZ footer: std offset [dst [offset] [,start[/time],end[/time]]] */

static bool parse_tz_abbr(const char **pp)
{
    const char *p = *pp;
    size_t n = 0;
    if (*p == '<') {
        for (p++; *p != '>'; p++, n++) {
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || *p == '+' || *p == '-'))
                return false;
        }
        p++;
    } else {
        for (; (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'); p++)
            n++;
    }
    if (n < 3)
        return false;
    *pp = p;
    return true;
}

/* [+|-]hh[:mm[:ss]], hours 0..max_h (24 for offsets, 167 for rule times). */
static bool parse_tz_hms(const char **pp, int max_h, int32_t *out)
{
    const char *p = *pp;
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    int h = 0, nd = 0;
    for (; *p >= '0' && *p <= '9' && nd < 3; p++, nd++)
        h = h * 10 + (*p - '0');
    if (nd == 0 || h > max_h)
        return false;
    int m = 0, s = 0;
    if (*p == ':') {
        m = digits(p + 1, 2);
        if (m < 0 || m > 59)
            return false;
        p += 3;
        if (*p == ':') {
            s = digits(p + 1, 2);
            if (s < 0 || s > 59)
                return false;
            p += 3;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    *pp = p;
    return true;
}

static bool parse_tz_num(const char **pp, int lo, int hi, int *out)
{
    const char *p = *pp;
    int v = 0, nd = 0;
    for (; *p >= '0' && *p <= '9' && nd < 3; p++, nd++)
        v = v * 10 + (*p - '0');
    if (nd == 0 || v < lo || v > hi)
        return false;
    *out = v;
    *pp = p;
    return true;
}

static bool parse_tz_rule(const char **pp, struct tzrule *r)
{
    const char *p = *pp;
    if (*p == 'M') {
        p++;
        r->kind = 'M';
        if (!parse_tz_num(&p, 1, 12, &r->month) || *p++ != '.' ||
            !parse_tz_num(&p, 1, 5, &r->week) || *p++ != '.' || !parse_tz_num(&p, 0, 6, &r->wday))
            return false;
    } else if (*p == 'J') {
        p++;
        r->kind = 'J';
        if (!parse_tz_num(&p, 1, 365, &r->yday))
            return false;
    } else {
        r->kind = 'N';
        if (!parse_tz_num(&p, 0, 365, &r->yday))
            return false;
    }
    r->time = 7200; /* 02:00 unless given */
    if (*p == '/') {
        p++;
        if (!parse_tz_hms(&p, 167, &r->time))
            return false;
    }
    *pp = p;
    return true;
}

static bool parse_tz_footer(const char *p, struct tzone *z)
{
    int32_t off;
    if (!parse_tz_abbr(&p) || !parse_tz_hms(&p, 24, &off))
        return false;
    z->std_off = -off; /* POSIX offsets count west of Greenwich */
    if (*p == '\0')
        return true;
    if (!parse_tz_abbr(&p))
        return false;
    z->dst_off = z->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (!parse_tz_hms(&p, 24, &off))
            return false;
        z->dst_off = -off;
    }
    z->footer_dst = true;
    if (*p == '\0') {
        /* No rules: the traditional US default, as glibc assumes. */
        z->start = (struct tzrule){.kind = 'M', .month = 3, .week = 2, .wday = 0, .time = 7200};
        z->end = (struct tzrule){.kind = 'M', .month = 11, .week = 1, .wday = 0, .time = 7200};
        return true;
    }
    if (*p++ != ',' || !parse_tz_rule(&p, &z->start) || *p++ != ',' || !parse_tz_rule(&p, &z->end))
        return false;
    return *p == '\0';
}

/* ---- TZif (RFC 8536) */

struct tzif_header {
    int version; /* 0, 2, 3, 4, ... (the ASCII digit's value) */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64s(const unsigned char *p)
{
    uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
    return (int64_t)v; /* two's complement on every platform this builds on */
}

#define TZIF_HEADER_BYTES 44

static bool read_tzif_header(const unsigned char *p, size_t avail, struct tzif_header *h)
{
    if (avail < TZIF_HEADER_BYTES || memcmp(p, "TZif", 4) != 0)
        return false;
    if (p[4] == 0)
        h->version = 0;
    else if (p[4] >= '2' && p[4] <= '9')
        h->version = p[4] - '0';
    else
        return false;
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return h->typecnt != 0 && (h->isutcnt == 0 || h->isutcnt == h->typecnt) &&
           (h->isstdcnt == 0 || h->isstdcnt == h->typecnt);
}

static uint64_t tzif_block_bytes(const struct tzif_header *h, unsigned time_size)
{
    return (uint64_t)h->timecnt * time_size + h->timecnt + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

/* Fills z's transition table from a data block; returns an error text or NULL. */
static const char *read_tzif_block(const unsigned char *p, const struct tzif_header *h,
                                   unsigned time_size, struct tzone *z)
{
    const unsigned char *times = p;
    const unsigned char *idx = times + (size_t)h->timecnt * time_size;
    const unsigned char *types = idx + h->timecnt;

    int32_t *utoff = malloc(sizeof *utoff * h->typecnt);
    if (utoff == NULL)
        return "out of memory";
    for (uint32_t i = 0; i < h->typecnt; i++) {
        utoff[i] = (int32_t)be32(types + 6 * (size_t)i);
        if (utoff[i] < -89999 || utoff[i] > 93599) {
            free(utoff);
            return "UTC offset out of range";
        }
    }
    z->off_before = utoff[0];
    z->n = h->timecnt;
    if (h->timecnt > 0) {
        z->trans = malloc(sizeof *z->trans * h->timecnt);
        z->off_after = malloc(sizeof *z->off_after * h->timecnt);
        if (z->trans == NULL || z->off_after == NULL) {
            free(utoff);
            return "out of memory";
        }
    }
    for (uint32_t i = 0; i < h->timecnt; i++) {
        const unsigned char *tp = times + (size_t)i * time_size;
        z->trans[i] = time_size == 8 ? be64s(tp) : (int64_t)(int32_t)be32(tp);
        if (idx[i] >= h->typecnt || (i > 0 && z->trans[i] <= z->trans[i - 1])) {
            free(utoff);
            return idx[i] >= h->typecnt ? "bad time type index" : "transitions out of order";
        }
        z->off_after[i] = utoff[idx[i]];
    }
    free(utoff);
    return NULL;
}

static const char *parse_tzif(const unsigned char *buf, size_t len, struct tzone *z)
{
    struct tzif_header h;
    if (!read_tzif_header(buf, len, &h))
        return "not a TZif file";
    uint64_t pos = TZIF_HEADER_BYTES;
    unsigned time_size = 4;
    if (h.version >= 2) {
        /* Skip the 32-bit data: the 64-bit section after it is complete. */
        pos += tzif_block_bytes(&h, 4);
        if (pos > len || !read_tzif_header(buf + pos, len - pos, &h) || h.version < 2)
            return "truncated or bad version 2+ header";
        pos += TZIF_HEADER_BYTES;
        time_size = 8;
    }
    if (h.leapcnt != 0)
        return "leap-second (\"right/\") zones are not supported";
    uint64_t block = tzif_block_bytes(&h, time_size);
    if (block > len - pos)
        return "truncated TZif data";
    const char *e = read_tzif_block(buf + pos, &h, time_size, z);
    if (e)
        return e;
    pos += block;
    if (h.version < 2)
        return NULL;

    /* Footer: "\n" TZ-string "\n". */
    if (pos >= len || buf[pos] != '\n')
        return "missing TZ string footer";
    const unsigned char *start = buf + pos + 1;
    const unsigned char *nl = memchr(start, '\n', len - pos - 1);
    if (nl == NULL)
        return "unterminated TZ string footer";
    size_t flen = (size_t)(nl - start);
    if (flen == 0)
        return NULL; /* no rule: the last transition's type holds forever */
    char footer[128];
    if (flen >= sizeof footer || memchr(start, '\0', flen) != NULL)
        return "bad TZ string footer";
    memcpy(footer, start, flen);
    footer[flen] = '\0';
    if (!parse_tz_footer(footer, z))
        return "unsupported TZ string footer";
    z->has_footer = true;
    return NULL;
}

static bool valid_zone_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > MAX_ZONE_NAME || name[0] == '/' || name[len - 1] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '+' || c == '-' || c == '/';
        if (!ok || (c == '/' && name[i + 1] == '/'))
            return false;
    }
    /* '.' is not in the set, so ".." cannot occur; checked anyway for whoever widens it. */
    return strstr(name, "..") == NULL;
}

/* Reads a whole regular file of at most MAX_TZIF_BYTES; returns an errno value. */
static int read_small_file(const char *path, unsigned char **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) != 0)
        e = errno;
    else if (!S_ISREG(st.st_mode))
        e = EISDIR; /* a directory such as "Europe", or a device: not a zone */
    else if (st.st_size > MAX_TZIF_BYTES)
        e = EFBIG;
    if (e != 0) {
        close(fd);
        return e;
    }
    size_t cap = (size_t)st.st_size + 1;
    unsigned char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return ENOMEM;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            e = errno;
            free(buf);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) { /* grew since fstat */
            free(buf);
            close(fd);
            return EFBIG;
        }
    }
    close(fd);
    *out = buf;
    *outlen = len;
    return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, a, b);
}

/* The bucket index of caltime_utc_offset(), over [max(first transition, 1900), last
 * transition), at most TZ_IDX_MAX buckets (later instants search). False on ENOMEM. */
static bool build_zone_index(struct tzone *z)
{
    if (z->n < 2)
        return true;
    int64_t base = z->trans[0] > TZ_IDX_FROM_S ? z->trans[0] : TZ_IDX_FROM_S;
    if (base >= z->trans[z->n - 1])
        return true;
    uint64_t span = (uint64_t)(z->trans[z->n - 1] - base);
    uint64_t n_idx = (span >> TZ_BUCKET_SHIFT) + 1;
    if (n_idx > TZ_IDX_MAX)
        n_idx = TZ_IDX_MAX;
    z->idx = malloc(sizeof *z->idx * n_idx);
    if (z->idx == NULL)
        return false;
    size_t i = 0;
    for (uint64_t k = 0; k < n_idx; k++) {
        int64_t start = base + (int64_t)(k << TZ_BUCKET_SHIFT);
        while (i + 1 < z->n && z->trans[i + 1] <= start)
            i++;
        z->idx[k] = (uint32_t)i;
    }
    z->idx_base = base;
    z->n_idx = (size_t)n_idx;
    return true;
}

int caltime_load_zone(const char *name, struct tzone **out, char *err, size_t errlen)
{
    if (out == NULL)
        return -1;
    *out = NULL;
    if (name == NULL || !valid_zone_name(name)) {
        set_err(err, errlen, "invalid time zone name \"%s\"%s", name ? name : "(null)", "");
        return -1;
    }
    const char *dir = getenv("TZDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/usr/share/zoneinfo";
    char path[4096];
    int pn = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (pn < 0 || (size_t)pn >= sizeof path) {
        set_err(err, errlen, "time zone \"%s\": path too long%s", name, "");
        return -1;
    }

    unsigned char *buf =
        NULL; /* set by read_small_file; initialised for -Wmaybe-uninitialized at -O2 */
    size_t len = 0;
    int e = read_small_file(path, &buf, &len);
    if (e != 0) {
        set_err(err, errlen, e == ENOENT ? "unknown time zone \"%s\" (%s)" : "time zone \"%s\": %s",
                name, e == ENOENT ? path : strerror(e));
        return -1;
    }
    struct tzone *z = calloc(1, sizeof *z);
    if (z == NULL) {
        free(buf);
        set_err(err, errlen, "time zone \"%s\": %s", name, strerror(ENOMEM));
        return -1;
    }
    const char *perr = parse_tzif(buf, len, z);
    free(buf);
    if (perr == NULL && !build_zone_index(z))
        perr = strerror(ENOMEM);
    if (perr != NULL) {
        set_err(err, errlen, "time zone \"%s\": %s", name, perr);
        caltime_free_zone(z);
        return -1;
    }
    *out = z;
    return 0;
}

void caltime_free_zone(struct tzone *z)
{
    if (z == NULL)
        return;
    free(z->idx);
    free(z->trans);
    free(z->off_after);
    free(z);
}

/* ------------------------------------------------------------------ working calendar */

/* Index of the first holiday > days. */
static size_t holidays_after(const struct work_calendar *cal, int64_t days)
{
    size_t lo = 0, hi = cal->n_holidays;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->holidays[mid] <= days)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool caltime_is_working_day(const struct work_calendar *cal, int64_t days)
{
    if (cal == NULL || !(cal->working_days >> caltime_weekday(days) & 1u))
        return false;
    size_t i = holidays_after(cal, days);
    return !(i > 0 && cal->holidays[i - 1] == days);
}

/* n < 1 also returns -1 (there is no 0th working day). */
int64_t caltime_nth_working_day_after(const struct work_calendar *cal, int64_t days, int n)
{
    if (cal == NULL || (cal->working_days & 0x7fu) == 0 || n < 1)
        return -1;
    /* One binary search, then walk the holidays alongside the days. */
    size_t h = holidays_after(cal, days);
    int wd = caltime_weekday(days);
    int64_t d = days;
    while (n > 0) {
        d++;
        wd = wd == 6 ? 0 : wd + 1;
        while (h < cal->n_holidays && cal->holidays[h] < d)
            h++;
        bool holiday = h < cal->n_holidays && cal->holidays[h] == d;
        if ((cal->working_days >> wd & 1u) && !holiday)
            n--;
    }
    return d;
}
