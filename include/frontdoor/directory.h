/* directory: the council's directory (directory.json): localities, teams, family hubs,
 * schools with their Early Help Officers, and the working calendar.
 *
 * Loaded once per (re)load and then read-only, so the routing engine and any number of
 * threads may read it at the same time. Ownership: struct directory owns every string
 * and array below; pointers returned by the lookups live as long as the directory.
 */
#ifndef FRONTDOOR_DIRECTORY_H
#define FRONTDOOR_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frontdoor/caltime.h"

/* Longest team id, locality id or URN accepted ([A-Za-z0-9._-] only). */
#define DIRECTORY_ID_MAX 64
/* A postcode district (outward code) is at most 4 characters, e.g. "CA11". */
#define DIRECTORY_DISTRICT_MAX 4

struct dir_officer {
    char *name; /* personal data: never logged or put in a reason */
    char *email;
    char *phone; /* or NULL */
};

struct dir_locality {
    char *id;
    size_t id_len;
    char *name;
    char *targeted_team_id;
    const struct dir_team *targeted_team; /* resolved at load */
    int line;                             /* in directory.json, for messages */
};

struct dir_team {
    char *id;
    size_t id_len;
    char *kind; /* social_care, front_door, targeted_family_help, family_hub, ... */
    char *name;
    char *email;
    char *phone;                         /* or NULL */
    const struct dir_locality *locality; /* or NULL */
    int line;
};

struct dir_school {
    char *urn;
    size_t urn_len;
    char *name;
    char *destination; /* "school-<urn>" */
    const struct dir_locality *locality;
    struct dir_officer officer;
    struct dir_officer cover; /* valid when has_cover */
    bool has_cover;
    bool has_absence;
    int64_t absent_from, absent_until; /* day numbers, inclusive, when has_absence */
    int line;
};

/* One postcode district and where it leads. */
struct dir_district {
    char code[DIRECTORY_DISTRICT_MAX + 1];
    uint64_t key; /* code as a number that sorts as strcmp() does (directory.c) */
    const struct dir_locality *locality; /* or NULL */
    const struct dir_team *hub;          /* family_hub team, or NULL */
};

struct directory {
    char *path; /* as given, for messages */
    struct dir_locality *localities;
    size_t n_localities;
    struct dir_team *teams;
    size_t n_teams;
    struct dir_school *schools;
    size_t n_schools;
    struct dir_district *districts; /* sorted by code */
    size_t n_districts;
    struct work_calendar calendar;
    int working_start_s, working_end_s;       /* calendar.working_hours, seconds of the day */
    int sms_window_start_s, sms_window_end_s; /* calendar.family_sms_window */
};

/* Parse and validate directory JSON. `path` names the source in messages. Every problem
 * is appended to errs as a "path:line: message" line (errs always NUL-terminated).
 * Returns 0 and *out (owned by the caller, free with directory_free()), or -1. */
int directory_parse(const char *text, size_t len, const char *path, struct directory **out,
                    char *errs, size_t errs_len);

/* Read `path` and directory_parse() it. */
int directory_load(const char *path, struct directory **out, char *errs, size_t errs_len);

void directory_free(struct directory *dir);

/* Lookups by exact string (len bytes, need not be NUL-terminated). NULL when absent. */
const struct dir_team *directory_find_team(const struct directory *dir, const char *id, size_t len);
const struct dir_school *directory_find_school(const struct directory *dir, const char *urn,
                                               size_t len);
const struct dir_locality *directory_find_locality(const struct directory *dir, const char *id,
                                                   size_t len);
/* `code` is an upper-case outward code such as "LA9". */
const struct dir_district *directory_find_district(const struct directory *dir, const char *code,
                                                   size_t len);

/* True for a destination the directory knows: a team id, `school-<urn>` of a directory
 * school, or `referrer`. */
bool directory_has_destination(const struct directory *dir, const char *dest, size_t len);

/* Whom to tell about a school case on local day `day`: the named Early Help Officer, or
 * the cover officer when the directory marks the officer absent that day. */
const struct dir_officer *directory_school_officer(const struct dir_school *school, int64_t day,
                                                   bool *is_cover);

/* Warnings for --check-config: bank holidays that end within 180 days of now_s (UTC
 * seconds). Appended to buf as "path: warning: ..." lines. Returns the number written. */
int directory_check_warnings(const struct directory *dir, int64_t now_s, char *buf, size_t len);

#endif
