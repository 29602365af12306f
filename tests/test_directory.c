/* Unit tests: directory.json loading, validation with file:line, lookups and warnings. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/directory.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct directory *load_shipped(void)
{
    const char *src = getenv("FRONTDOOR_SOURCE_DIR");
    ck_assert_ptr_nonnull(src);
    char path[1024], errs[8192];
    snprintf(path, sizeof path, "%s/config/directory.json", src);
    struct directory *dir;
    ck_assert_msg(directory_load(path, &dir, errs, sizeof errs) == 0, "%s", errs);
    return dir;
}

/* The project ships the spec's directory unchanged. */
START_TEST(test_shipped_is_the_spec)
{
    const char *src = getenv("FRONTDOOR_SOURCE_DIR"), *spec = getenv("FRONTDOOR_SPEC_DIR");
    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(spec);
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/config/directory.json", src);
    snprintf(b, sizeof b, "%s/directory.json", spec);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    ck_assert_ptr_nonnull(fa);
    ck_assert_ptr_nonnull(fb);
    int ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        ck_assert_int_eq(ca, cb);
    } while (ca != EOF);
    fclose(fa);
    fclose(fb);
}
END_TEST

static const struct {
    const char *district;
    const char *locality; /* NULL: none */
    const char *hub;
} district_cases[] = {
    {"LA9", "south-lakes", "hub-kendal"},
    {"LA23", "south-lakes", "hub-windermere"},
    {"LA12", "barrow", "hub-ulverston"},
    {"LA14", "barrow", "hub-barrow"},
    {"CA11", "eden", "hub-penrith"},
    {"CA17", "eden", "hub-appleby"},
    {"LA20", "barrow", "hub-ulverston"},
    {"LA21", "south-lakes", "hub-windermere"},
    {"LA6", "south-lakes", "hub-kendal"},
    {"CA1", NULL, NULL},
    {"LA1", NULL, NULL},
    {"la9", NULL, NULL},
};

START_TEST(test_districts)
{
    struct directory *dir = load_shipped();
    const char *code = district_cases[_i].district;
    const struct dir_district *d = directory_find_district(dir, code, strlen(code));
    if (!district_cases[_i].locality) {
        ck_assert_ptr_null(d);
    } else {
        ck_assert_ptr_nonnull(d);
        ck_assert_str_eq(d->locality->id, district_cases[_i].locality);
        ck_assert_str_eq(d->hub->id, district_cases[_i].hub);
        ck_assert_str_eq(d->hub->kind, "family_hub");
    }
    directory_free(dir);
}
END_TEST

START_TEST(test_lookups)
{
    struct directory *dir = load_shipped();
    ck_assert_uint_eq(dir->n_localities, 3);
    ck_assert_uint_eq(dir->n_teams, 16);
    ck_assert_uint_eq(dir->n_schools, 9);
    const struct dir_locality *l = directory_find_locality(dir, "eden", 4);
    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(l->targeted_team->id, "tfh-eden");
    const struct dir_school *s = directory_find_school(dir, "900501", 6);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->locality->id, "eden");
    ck_assert_str_eq(s->destination, "school-900501");
    ck_assert_ptr_null(directory_find_school(dir, "90050", 5));
    ck_assert_ptr_nonnull(directory_find_team(dir, "youth-support", 13));
    ck_assert_ptr_null(directory_find_team(dir, "youth", 5));
    ck_assert(directory_has_destination(dir, "referrer", 8));
    ck_assert(directory_has_destination(dir, "school-900102", 13));
    ck_assert(!directory_has_destination(dir, "school-900103", 13));
    ck_assert(directory_has_destination(dir, "adult-services", 14));
    ck_assert(!directory_has_destination(dir, "adult", 5));
    /* calendar: Mon-Fri, 16 bank holidays, Europe/London */
    ck_assert_uint_eq(dir->calendar.working_days, 0x1f);
    ck_assert_uint_eq(dir->calendar.n_holidays, 16);
    ck_assert_int_eq(dir->sms_window_start_s, 8 * 3600);
    ck_assert_int_eq(dir->sms_window_end_s, 20 * 3600);
    ck_assert_int_eq(dir->working_end_s, 17 * 3600);
    ck_assert_int_eq(caltime_utc_offset(dir->calendar.zone, 1782900000), 3600); /* July 2026 */
    directory_free(dir);
}
END_TEST

START_TEST(test_officer_absence)
{
    struct directory *dir = load_shipped();
    const struct dir_school *s = directory_find_school(dir, "900102", 6);
    bool cover;
    struct civil_date d1 = {2026, 11, 30}, d2 = {2026, 12, 1}, d3 = {2027, 1, 15},
                      d4 = {2027, 1, 16};
    ck_assert_str_eq(directory_school_officer(s, caltime_days_from_civil(d1), &cover)->email,
                     "eho.900102@example.org");
    ck_assert(!cover);
    ck_assert_str_eq(directory_school_officer(s, caltime_days_from_civil(d2), &cover)->email,
                     "cover.900102@example.org");
    ck_assert(cover);
    ck_assert(directory_school_officer(s, caltime_days_from_civil(d3), &cover) == &s->cover);
    ck_assert(directory_school_officer(s, caltime_days_from_civil(d4), &cover) == &s->officer);
    directory_free(dir);
}
END_TEST

/* Bank holidays of the shipped directory end on 2027-12-28. */
static const struct {
    const char *now; /* UTC */
    bool warn;
} warn_cases[] = {
    {"2026-11-22T12:00:00Z", false},
    {"2027-07-01T12:00:00Z", false}, /* 180 days before 2027-12-28 is 2027-07-01: not within */
    {"2027-07-02T12:00:00Z", true},
    {"2027-12-28T12:00:00Z", true},
    {"2028-06-01T12:00:00Z", true},
};

START_TEST(test_warnings)
{
    struct directory *dir = load_shipped();
    int64_t ms;
    ck_assert(caltime_parse_datetime(warn_cases[_i].now, &ms));
    char buf[1024] = "";
    int n = directory_check_warnings(dir, ms / 1000, buf, sizeof buf);
    ck_assert_int_eq(n, warn_cases[_i].warn ? 1 : 0);
    if (warn_cases[_i].warn)
        ck_assert_msg(strstr(buf, "2027-12-28") && strstr(buf, "warning"), "%s", buf);
    directory_free(dir);
}
END_TEST

/* A small valid directory, one member per line, so errors have known lines. */
#define GOOD_LOCALITIES                                                                            \
    "{\n"                                                                                          \
    "\"localities\": [\n"                                                                          \
    "  {\"id\": \"north\", \"name\": \"North\",\n"                                                 \
    "   \"postcode_districts\": [\"LA1\", \"LA2\"],\n"                                             \
    "   \"targeted_team\": \"tfh-north\"}\n"                                                       \
    "],\n"
#define GOOD_TEAMS                                                                                 \
    "\"teams\": [\n"                                                                               \
    "  {\"id\": \"tfh-north\", \"kind\": \"targeted_family_help\", \"name\": \"T\", \"email\": "   \
    "\"t@example.org\"},\n"                                                                        \
    "  {\"id\": \"hub-north\", \"kind\": \"family_hub\", \"name\": \"H\", \"email\": "             \
    "\"h@example.org\",\n"                                                                         \
    "   \"postcode_districts\": [\"LA1\"]}\n"                                                      \
    "],\n"
#define GOOD_SCHOOLS                                                                               \
    "\"schools\": [\n"                                                                             \
    "  {\"urn\": \"1\", \"name\": \"S\", \"locality\": \"north\",\n"                               \
    "   \"early_help_officer\": {\"name\": \"O\", \"email\": \"o@example.org\"}}\n"                \
    "],\n"
#define GOOD_CALENDAR                                                                              \
    "\"calendar\": {\"timezone\": \"Europe/London\", \"working_days\": [\"Mon\", \"Tue\"],\n"      \
    " \"working_hours\": {\"start\": \"09:00\", \"end\": \"17:00\"},\n"                            \
    " \"bank_holidays\": [\"2026-12-25\"],\n"                                                      \
    " \"family_sms_window\": {\"start\": \"08:00\", \"end\": \"20:00\"}}\n"                        \
    "}\n"

static const struct {
    const char *name;
    const char *text;
    const char *error; /* expected substring, or NULL for a valid directory */
} parse_cases[] = {
    {"valid", GOOD_LOCALITIES GOOD_TEAMS GOOD_SCHOOLS GOOD_CALENDAR, NULL},
    {"not JSON", "{\n\"localities\": [\n}", "t.json:3: not valid JSON"},
    {"unknown targeted team",
     "{\n\"localities\": [\n  {\"id\": \"north\", \"name\": \"North\",\n"
     "   \"postcode_districts\": [\"LA1\"],\n   \"targeted_team\": \"tfh-south\"}\n],\n" GOOD_TEAMS
         GOOD_SCHOOLS GOOD_CALENDAR,
     "t.json:5: localities/0/targeted_team: not a team id of this directory"},
    {"bad district",
     "{\n\"localities\": [\n  {\"id\": \"north\", \"name\": \"North\",\n"
     "   \"postcode_districts\": [\"LA1\", \"la2\"],\n   \"targeted_team\": "
     "\"tfh-north\"}\n],\n" GOOD_TEAMS GOOD_SCHOOLS GOOD_CALENDAR,
     "t.json:4: localities/0/postcode_districts/1: not an upper-case postcode district"},
    {"district in two hubs",
     GOOD_LOCALITIES
     "\"teams\": [\n  {\"id\": \"tfh-north\", \"kind\": \"targeted_family_help\", \"name\": \"T\", "
     "\"email\": \"t@example.org\"},\n  {\"id\": \"hub-a\", \"kind\": \"family_hub\", \"name\": "
     "\"H\", \"email\": \"h@example.org\", \"postcode_districts\": [\"LA1\"]},\n  {\"id\": "
     "\"hub-b\", \"kind\": \"family_hub\", \"name\": \"H\", \"email\": \"h@example.org\", "
     "\"postcode_districts\": [\"LA1\"]}\n],\n" GOOD_SCHOOLS GOOD_CALENDAR,
     "t.json:10: teams/2/postcode_districts/0: district LA1 is listed twice"},
    {"duplicate team id",
     GOOD_LOCALITIES
     "\"teams\": [\n  {\"id\": \"tfh-north\", \"kind\": \"targeted_family_help\", \"name\": \"T\", "
     "\"email\": \"t@example.org\"},\n  {\"id\": \"tfh-north\", \"kind\": \"x\", \"name\": \"T\", "
     "\"email\": \"t@example.org\"}\n],\n" GOOD_SCHOOLS GOOD_CALENDAR,
     "t.json:9: teams/1/id: team id listed twice"},
    {"team without email",
     GOOD_LOCALITIES "\"teams\": [\n  {\"id\": \"tfh-north\", \"kind\": \"targeted_family_help\", "
                     "\"name\": \"T\"}\n],\n" GOOD_SCHOOLS GOOD_CALENDAR,
     "t.json:8: teams/0/email: missing"},
    {"reserved team id",
     GOOD_LOCALITIES
     "\"teams\": [\n  {\"id\": \"tfh-north\", \"kind\": \"targeted_family_help\", "
     "\"name\": \"T\", \"email\": \"t@example.org\"},\n  {\"id\": \"referrer\", "
     "\"kind\": \"x\", \"name\": \"R\", \"email\": \"r@example.org\"}\n],\n" GOOD_SCHOOLS
         GOOD_CALENDAR,
     "teams/1/id: team id must not be `referrer`"},
    {"school in an unknown locality",
     GOOD_LOCALITIES GOOD_TEAMS
     "\"schools\": [\n  {\"urn\": \"1\", \"name\": \"S\", \"locality\": \"south\",\n"
     "   \"early_help_officer\": {\"name\": \"O\", \"email\": "
     "\"o@example.org\"}}\n],\n" GOOD_CALENDAR,
     "t.json:13: schools/0/locality: not a locality id of this directory"},
    {"absence without cover",
     GOOD_LOCALITIES GOOD_TEAMS
     "\"schools\": [\n  {\"urn\": \"1\", \"name\": \"S\", \"locality\": \"north\",\n"
     "   \"early_help_officer\": {\"name\": \"O\", \"email\": \"o@example.org\"},\n"
     "   \"officer_absent\": {\"from\": \"2026-12-01\", \"until\": "
     "\"2027-01-15\"}}\n],\n" GOOD_CALENDAR,
     "t.json:15: schools/0/officer_absent: an absent officer needs a cover_officer"},
    {"absence back to front",
     GOOD_LOCALITIES GOOD_TEAMS
     "\"schools\": [\n  {\"urn\": \"1\", \"name\": \"S\", \"locality\": \"north\",\n"
     "   \"early_help_officer\": {\"name\": \"O\", \"email\": \"o@example.org\"},\n"
     "   \"cover_officer\": {\"name\": \"C\", \"email\": \"c@example.org\"},\n"
     "   \"officer_absent\": {\"from\": \"2027-12-01\", \"until\": "
     "\"2027-01-15\"}}\n],\n" GOOD_CALENDAR,
     "t.json:16: schools/0/officer_absent: from is after until"},
    {"unknown time zone",
     GOOD_LOCALITIES GOOD_TEAMS GOOD_SCHOOLS
     "\"calendar\": {\"timezone\": \"Europe/Nowhere\", \"working_days\": [\"Mon\"],\n"
     " \"working_hours\": {\"start\": \"09:00\", \"end\": \"17:00\"},\n"
     " \"bank_holidays\": [],\n \"family_sms_window\": {\"start\": \"08:00\", \"end\": "
     "\"20:00\"}}\n}\n",
     "t.json:16: calendar/timezone: cannot load time zone"},
    {"bad working day",
     GOOD_LOCALITIES GOOD_TEAMS GOOD_SCHOOLS
     "\"calendar\": {\"timezone\": \"Europe/London\", \"working_days\": [\"Monday\"],\n"
     " \"working_hours\": {\"start\": \"09:00\", \"end\": \"17:00\"},\n"
     " \"bank_holidays\": [],\n \"family_sms_window\": {\"start\": \"08:00\", \"end\": "
     "\"20:00\"}}\n}\n",
     "t.json:16: calendar/working_days/0: not a day name"},
    {"bad bank holiday",
     GOOD_LOCALITIES GOOD_TEAMS GOOD_SCHOOLS
     "\"calendar\": {\"timezone\": \"Europe/London\", \"working_days\": [\"Mon\"],\n"
     " \"working_hours\": {\"start\": \"09:00\", \"end\": \"17:00\"},\n"
     " \"bank_holidays\": [\"2026-12-25\", \"2027-02-29\"],\n"
     " \"family_sms_window\": {\"start\": \"08:00\", \"end\": \"20:00\"}}\n}\n",
     "t.json:18: calendar/bank_holidays/1: not a YYYY-MM-DD date"},
    {"bad sms window",
     GOOD_LOCALITIES GOOD_TEAMS GOOD_SCHOOLS
     "\"calendar\": {\"timezone\": \"Europe/London\", \"working_days\": [\"Mon\"],\n"
     " \"working_hours\": {\"start\": \"09:00\", \"end\": \"17:00\"},\n"
     " \"bank_holidays\": [],\n \"family_sms_window\": {\"start\": \"20:00\", \"end\": "
     "\"08:00\"}}\n}\n",
     "t.json:19: calendar/family_sms_window: must be"},
    {"calendar missing", GOOD_LOCALITIES GOOD_TEAMS "\"schools\": []\n}\n",
     "t.json:1: calendar: missing"},
};

START_TEST(test_parse_table)
{
    struct directory *dir = NULL;
    char errs[4096];
    const char *t = parse_cases[_i].text;
    int rc = directory_parse(t, strlen(t), "t.json", &dir, errs, sizeof errs);
    if (!parse_cases[_i].error) {
        ck_assert_msg(rc == 0, "%s: %s", parse_cases[_i].name, errs);
        ck_assert_ptr_nonnull(dir);
        directory_free(dir);
    } else {
        ck_assert_msg(rc != 0, "%s: accepted", parse_cases[_i].name);
        ck_assert_ptr_null(dir);
        ck_assert_msg(strstr(errs, parse_cases[_i].error) != NULL, "%s: errors:\n%swant: %s",
                      parse_cases[_i].name, errs, parse_cases[_i].error);
        /* no officer's name or contact in a message */
        ck_assert_msg(strstr(errs, "o@example.org") == NULL, "%s", errs);
    }
}
END_TEST

START_TEST(test_load_missing_file)
{
    struct directory *dir;
    char errs[512];
    ck_assert_int_eq(directory_load("/nonexistent/directory.json", &dir, errs, sizeof errs), -1);
    ck_assert(strstr(errs, "/nonexistent/directory.json:0: cannot open") != NULL);
}
END_TEST

static Suite *directory_suite(void)
{
    Suite *s = suite_create("directory");
    TCase *tc = tcase_create("directory");
    tcase_add_test(tc, test_shipped_is_the_spec);
    tcase_add_loop_test(tc, test_districts, 0, N(district_cases));
    tcase_add_test(tc, test_lookups);
    tcase_add_test(tc, test_officer_absence);
    tcase_add_loop_test(tc, test_warnings, 0, N(warn_cases));
    tcase_add_loop_test(tc, test_parse_table, 0, N(parse_cases));
    tcase_add_test(tc, test_load_missing_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(directory_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
