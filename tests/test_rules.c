/* Unit tests: the rule file compiler: the shipped policy, every kind of mistake with its
 * file and line, and local changes made without touching the code. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/event.h"
#include "frontdoor/policy.h"
#include "frontdoor/route.h"
#include "frontdoor/rules.h"

#include "rules_text.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct directory *D;

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void source_path(char *buf, size_t len, const char *rel)
{
    const char *src = getenv("FRONTDOOR_SOURCE_DIR");
    ck_assert_ptr_nonnull(src);
    snprintf(buf, len, "%s/%s", src, rel);
}

static void load_dir(void)
{
    char path[1024], errs[4096];
    source_path(path, sizeof path, "config/directory.json");
    ck_assert_msg(directory_load(path, &D, errs, sizeof errs) == 0, "%s", errs);
}

static void free_dir(void)
{
    directory_free(D);
    D = NULL;
}

/* ================================================================ the shipped policy */

START_TEST(test_shipped_rules)
{
    char path[1024], errs[8192];
    source_path(path, sizeof path, "config/frontdoor.rules");
    struct rules *r;
    ck_assert_msg(rules_load(path, D, &r, errs, sizeof errs) == 0, "%s", errs);
    static const char *const names[] = {
        "safeguarding", "incomplete", "age_out_of_range", "no_consent",       "known_child",
        "known_family", "universal",  "complex_needs",    "complex_unplaced", "youth",
        "early_years",  "school",     "family_hub",       "default"};
    ck_assert_uint_eq(r->n_rules, N(names));
    for (size_t i = 0; i < N(names); i++)
        ck_assert_str_eq(r->rules[i].name, names[i]);
    /* the route table of routing-policy.md */
    static const struct {
        enum route_kind r;
        enum priority p;
        enum case_state s;
    } table[] = {
        {ROUTE_SCHOOL, PRIORITY_GREEN, CASE_ALLOCATED},
        {ROUTE_FAMILY_HUB, PRIORITY_GREEN, CASE_ALLOCATED},
        {ROUTE_YOUTH_SUPPORT, PRIORITY_GREEN, CASE_ALLOCATED},
        {ROUTE_TARGETED_FAMILY_HELP, PRIORITY_AMBER, CASE_ALLOCATED},
        {ROUTE_FAMILY_HELP_PANEL, PRIORITY_AMBER, CASE_ALLOCATED},
        {ROUTE_SOCIAL_CARE, PRIORITY_RED, CASE_ALLOCATED},
        {ROUTE_MANUAL_TRIAGE, PRIORITY_AMBER, CASE_TRIAGE},
        {ROUTE_CONSENT_REQUIRED, PRIORITY_GREEN, CASE_AWAITING_CONSENT},
        {ROUTE_SIGNPOST, PRIORITY_BLUE, CASE_CLOSED},
    };
    for (size_t i = 0; i < N(table); i++) {
        ck_assert_int_eq(r->route_priority[table[i].r], table[i].p);
        ck_assert_int_eq(r->route_state[table[i].r], table[i].s);
    }
    ck_assert_int_eq(r->due[PRIORITY_RED].kind, DUE_HOURS);
    ck_assert_int_eq(r->due[PRIORITY_RED].amount, 4);
    ck_assert_int_eq(r->due[PRIORITY_AMBER].kind, DUE_WORKING_DAYS);
    ck_assert_int_eq(r->due[PRIORITY_AMBER].amount, 1);
    ck_assert_int_eq(r->due[PRIORITY_AMBER].at_s, 17 * 3600);
    ck_assert_int_eq(r->due[PRIORITY_GREEN].amount, 3);
    ck_assert_int_eq(r->due[PRIORITY_BLUE].kind, DUE_NONE);
    /* the vocabulary: 8 + 7 + 6 + 4 codes */
    ck_assert_uint_eq(r->n_codes, 25);
    ck_assert_int_ge(rules_find_need(r, "parental_conflict", 17), 0);
    ck_assert_int_eq(rules_find_need(r, "neglect", 7), -1);
    ck_assert_int_eq(rules_find_need(r, "neet ", 5), -1);
    ck_assert_int_ge(r->rules[4].history_node, 0);
    ck_assert_int_ge(r->rules[5].history_node, 0);
    ck_assert_uint_eq(r->n_steps, 5);
    rules_free(r);
}
END_TEST

START_TEST(test_names)
{
    enum route_kind rk;
    enum case_state st;
    ck_assert(rules_parse_route("targeted_family_help", 20, &rk));
    ck_assert_int_eq(rk, ROUTE_TARGETED_FAMILY_HELP);
    ck_assert(!rules_parse_route("targeted_family_hel", 19, &rk));
    ck_assert(!rules_parse_route("School", 6, &rk));
    ck_assert(rules_parse_state("awaiting_consent", 16, &st));
    ck_assert_int_eq(st, CASE_AWAITING_CONSENT);
    ck_assert_str_eq(rules_route_name(ROUTE_CONSENT_REQUIRED), "consent_required");
    ck_assert_str_eq(rules_priority_name(PRIORITY_AMBER), "amber");
    ck_assert_str_eq(rules_state_name(CASE_TRIAGE), "triage");
}
END_TEST

/* ================================================================ mistakes */

/* 14 lines: a group, the deadlines and the route table. */
#define HEAD "group A a_code b_code\n" RULES_TEXT_TABLES
#define TAIL                                                                                       \
    "rule default\n"                                                                               \
    "  when always\n"                                                                              \
    "  send manual_triage to front-door-triage\n"                                                  \
    "unplaced manual_triage to front-door-triage\n"

static const struct {
    const char *name;
    const char *text;
    const char *error; /* NULL: valid */
} error_cases[] = {
    {"minimal file is valid", HEAD TAIL, NULL},
    /* 2^11 = 2,048 tests written out: refused at load, not walked at every decision */
    {"define doubling",
     HEAD "define D0 send\ndefine D1 D0 and D0\ndefine D2 D1 or D1\ndefine D3 D2 and D2\n"
          "define D4 D3 and D3\ndefine D5 D4 and D4\ndefine D6 D5 and D5\n"
          "define D7 D6 and D6\ndefine D8 D7 and D7\ndefine D9 D8 and D8\n"
          "define D10 D9 and D9\ndefine D11 D10 and not D10\n"
          "rule x\n  when D11\n  send signpost to adult-services\n" TAIL,
     "r.rules:27: rule x: its condition has more than 1024 tests once its defines"},
    {"define doubling within the limit",
     HEAD "define D0 send\ndefine D1 D0 and D0\ndefine D2 D1 or D1\ndefine D3 D2 and D2\n"
          "define D4 D3 and D3\ndefine D5 D4 and D4\ndefine D6 D5 and D5\n"
          "define D7 D6 and D6\ndefine D8 D7 and D7\n"
          "rule x\n  when D8\n  send signpost to adult-services\n" TAIL,
     NULL},
    {"comments and blank lines", "# a comment\n\n" HEAD "   # indented comment\n" TAIL, NULL},
    {"unknown destination", HEAD "rule x\n  when level = 1\n  send signpost to nowhere-team\n" TAIL,
     "r.rules:17: unknown destination \"nowhere-team\""},
    {"unknown need code in a list",
     HEAD "rule x\n  when any_need in [a_code zzz]\n  send school to school\n" TAIL,
     "r.rules:16: unknown need code \"zzz\""},
    {"unknown field", HEAD "rule x\n  when levle = 1\n  send signpost to adult-services\n" TAIL,
     "r.rules:16: unknown field or predicate \"levle\""},
    {"unknown known-fact",
     HEAD "rule x\n  when known postcode\n  send signpost to adult-services\n" TAIL,
     "r.rules:16: expected one of locality"},
    {"unknown group", HEAD "rule x\n  when any_need in NOPE\n  send school to school\n" TAIL,
     "r.rules:16: unknown need group \"NOPE\""},
    {"unknown route", HEAD "rule x\n  when always\n  send schools to school\n" TAIL,
     "r.rules:17: unknown route \"schools\""},
    {"unknown statement", HEAD "frobnicate 1\n" TAIL,
     "r.rules:15: unknown statement \"frobnicate\""},
    {"when outside a rule", HEAD "when always\n" TAIL, "r.rules:15: `when` outside a rule"},
    {"missing parenthesis",
     HEAD "rule x\n  when (level = 1 or level = 2\n  send signpost to adult-services\n" TAIL,
     "r.rules:16: missing `)`"},
    {"missing comparison", HEAD "rule x\n  when level 1\n  send signpost to adult-services\n" TAIL,
     "r.rules:16: expected a comparison"},
    {"trailing words",
     HEAD "rule x\n  when always always\n  send signpost to adult-services\n" TAIL,
     "r.rules:16: unexpected \"always\""},
    {"last rule must always match",
     HEAD "rule default\n  when level = 1\n  send manual_triage to front-door-triage\n"
          "unplaced manual_triage to front-door-triage\n",
     "r.rules:15: the last rule (default) must be `when always`"},
    {"last rule must name a team",
     HEAD "rule default\n  when always\n  send family_hub to hub\n"
          "unplaced manual_triage to front-door-triage\n",
     "must be `when always` and send to a named team"},
    {"route missing from the table",
     "group A a_code\npriority red hours 4\npriority amber working_days 1 at 17:00\n"
     "priority green working_days 3 at 17:00\npriority blue none\n"
     "route school green allocated\nroute family_hub green allocated\n"
     "route youth_support green allocated\nroute targeted_family_help amber allocated\n"
     "route family_help_panel amber allocated\nroute social_care red allocated\n"
     "route manual_triage amber triage\nroute consent_required green awaiting_consent\n" TAIL,
     "route signpost is missing from the route table"},
    {"route twice", HEAD "route signpost blue closed\n" TAIL,
     "r.rules:15: route signpost is defined twice"},
    {"unknown case state", HEAD "route signpost blue finished\n" TAIL,
     "r.rules:15: expected a case state"},
    {"priority twice", HEAD "priority red hours 5\n" TAIL,
     "r.rules:15: priority red is defined twice"},
    {"priority twice, reported at the second", "priority red hours 4\n" HEAD TAIL,
     "r.rules:3: priority red is defined twice"},
    {"rule twice",
     HEAD "rule default\n  when always\n  send manual_triage to front-door-triage\n" TAIL,
     "r.rules:18: rule default is defined twice"},
    {"rule without send", HEAD "rule x\n  when always\n" TAIL,
     "r.rules:15: rule x has no `send` line"},
    {"rule without when", HEAD "rule x\n  send signpost to adult-services\n" TAIL,
     "r.rules:15: rule x has no `when` line"},
    {"bad rule name", HEAD "rule Big-Name\n" TAIL, "r.rules:15: expected a rule name"},
    {"history destination without history",
     HEAD "rule x\n  when level = 1\n  send case.route to case.destination\n" TAIL,
     "r.rules:15: rule x sends to the history case"},
    {"history under or",
     HEAD "rule x\n  when child_case in [school] or level = 1\n  send case.route to "
          "case.destination\n" TAIL,
     "r.rules:15: rule x sends to the history case"},
    {"history with a literal route",
     HEAD "rule x\n  when child_case in [school]\n  send school to case.destination\n" TAIL,
     "use case.route together with case.destination"},
    {"history route unknown",
     HEAD "rule x\n  when family_case in [schol]\n  send signpost to adult-services\n" TAIL,
     "r.rules:16: unknown route \"schol\""},
    {"bad need code in a group", "group B Bad-Code\n" HEAD TAIL,
     "r.rules:1: \"Bad-Code\" is not a need code"},
    {"code twice in a group", "group B x_code x_code\n" HEAD TAIL,
     "r.rules:1: need code x_code is listed twice in group B"},
    {"group twice", "group A c_code\n" HEAD TAIL, "r.rules:2: group A is defined twice"},
    {"step from an unknown route",
     HEAD "on stepped_up from [nope] send social_care to social-care-duty\n" TAIL,
     "r.rules:15: unknown route \"nope\""},
    {"step to an unknown destination",
     HEAD "on stepped_up from [school] send social_care to nowhere\n" TAIL,
     "r.rules:15: unknown destination \"nowhere\""},
    {"step for an unknown event",
     HEAD "on stepped_sideways from [school] send social_care to social-care-duty\n" TAIL,
     "r.rules:15: expected stepped_up, stepped_down or no_coordinator"},
    {"a route stepped twice",
     HEAD "on stepped_up from [school] send social_care to social-care-duty\n"
          "on stepped_up from any send family_help_panel to family-help-panel\n" TAIL,
     "r.rules:16: a route is listed for stepped_up twice (see line 15)"},
    {"unplaced missing",
     HEAD "rule default\n  when always\n  send manual_triage to front-door-triage\n",
     "missing `unplaced"},
    {"version 2", "version 2\n" HEAD TAIL, "r.rules:1: unsupported rule file version 2"},
    {"define takes a used name", HEAD "define level always\n" TAIL,
     "r.rules:15: the name level is already taken"},
    {"distinct needs out of range",
     HEAD "rule x\n  when distinct_needs >= 100\n  send signpost to adult-services\n" TAIL,
     "r.rules:16: number 100 out of range"},
    {"define used before it is defined",
     HEAD "rule x\n  when LATER\n  send signpost to adult-services\ndefine LATER always\n" TAIL,
     "r.rules:16: unknown field or predicate \"LATER\""},
    /* found by fuzz_rules: with no need codes the compiler sorted a NULL array (UBSan) */
    {"an empty file", "", "missing `unplaced"},
    {"comments only", "# nothing\n\n", "missing `unplaced"},
    {"every mistake is reported",
     HEAD "rule x\n  when levle = 1\n  send signpost to nowhere\n" TAIL,
     "r.rules:17: unknown destination \"nowhere\""},
};

START_TEST(test_errors)
{
    struct rules *r = NULL;
    char errs[4096];
    const char *t = error_cases[_i].text;
    int rc = rules_parse(t, strlen(t), "r.rules", D, &r, errs, sizeof errs);
    if (!error_cases[_i].error) {
        ck_assert_msg(rc == 0, "%s: %s", error_cases[_i].name, errs);
        rules_free(r);
        return;
    }
    ck_assert_msg(rc != 0, "%s: accepted", error_cases[_i].name);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(errs, error_cases[_i].error) != NULL, "%s: errors:\n%swant: %s",
                  error_cases[_i].name, errs, error_cases[_i].error);
}
END_TEST

/* ================================================================ local changes */

/* A referral on Monday 23 November 2026, 10:15 GMT, in LA9 (hub-kendal). */
static void referral(struct event *ev, const char *dob, int level, const char *needs,
                     const char *extra)
{
    char buf[2048], detail[256];
    snprintf(buf, sizeof buf,
             "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-000000000001\", "
             "\"type\": \"referral.received\", \"occurred_at\": \"2026-11-23T10:15:00Z\", "
             "\"referral\": {\"id\": \"REF-1\", \"child\": {\"id\": \"C-1\", \"date_of_birth\": "
             "\"%s\", \"postcode\": \"LA9 4DQ\", \"school_urn\": \"900301\"}, \"family\": {\"id\": "
             "\"F-1\", \"consent\": {\"early_help\": true}}, \"level_of_need\": %d, \"needs\": %s, "
             "\"safeguarding\": {\"immediate_risk\": %s}}}",
             dob, level, needs, extra ? extra : "false");
    ck_assert_int_eq(
        event_parse(buf, strlen(buf), EVENT_TOPIC_REFERRALS, 65536, ev, detail, sizeof detail),
        EVENT_OK);
}

/* The shipped rule file with one text replaced (must occur). */
static char *shipped_with(const char *from, const char *to)
{
    char path[1024];
    source_path(path, sizeof path, "config/frontdoor.rules");
    char *text = read_file(path);
    if (!from)
        return text;
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "not in the rule file: %s", from);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    free(text);
    return out;
}

static const struct {
    const char *name;
    const char *from, *to;         /* replace in the shipped rule file */
    const char *dir_from, *dir_to; /* replace in the shipped directory, or NULL */
    const char *dob;
    int level;
    const char *needs;
    const char *risk;
    const char *route, *dest, *rule, *prio;
} change_cases[] = {
    {"shipped: 19 is out of range", NULL, NULL, NULL, NULL, "2007-11-23", 2,
     "[\"school_attendance\"]", NULL, "signpost", "adult-services", "age_out_of_range", "blue"},
    {"age limit 21", "when age >= 25 or (age >= 19 and not send)",
     "when age >= 25 or (age >= 21 and not send)", NULL, NULL, "2007-11-23", 2,
     "[\"school_attendance\"]", NULL, "school", "school-900301", "school", "green"},
    {"age limit 21, at 21", "when age >= 25 or (age >= 19 and not send)",
     "when age >= 25 or (age >= 21 and not send)", NULL, NULL, "2005-11-23", 2,
     "[\"school_attendance\"]", NULL, "signpost", "adult-services", "age_out_of_range", "blue"},
    {"another need group", "group YOUTH", "group NEURO autism adhd\ngroup YOUTH", NULL, NULL,
     "2017-05-02", 2, "[\"autism\"]", NULL, "family_hub", "hub-kendal", "family_hub", "green"},
    {"another need group with its own rule", "rule school\n",
     "group NEURO autism adhd\nrule neuro\n    when any_need in NEURO\n    send youth_support to "
     "youth-support\n\nrule "
     "school\n",
     NULL, NULL, "2017-05-02", 2, "[\"adhd\"]", NULL, "youth_support", "youth-support", "neuro",
     "green"},
    {"a new destination", "send family_hub to hub\n\n# 14.", "send family_hub to hub-new\n\n# 14.",
     "\"teams\": [",
     "\"teams\": [\n    {\"id\": \"hub-new\", \"kind\": \"family_hub\", \"name\": \"New hub\", "
     "\"email\": \"new@example.org\"},",
     "2017-05-02", 2, "[\"parenting\"]", NULL, "family_hub", "hub-new", "family_hub", "green"},
    {"shipped: risk beats universal", NULL, NULL, NULL, NULL, "2017-05-02", 1, "[\"parenting\"]",
     "true", "social_care", "social-care-duty", "safeguarding", "red"},
    {"rule order: universal first", "rule safeguarding\n",
     "rule universal_first\n    when level = 1\n    send signpost to "
     "universal-services\n\nrule safeguarding\n",
     NULL, NULL, "2017-05-02", 1, "[\"parenting\"]", "true", "signpost", "universal-services",
     "universal_first", "blue"},
    {"priority of a rule", "send family_hub to hub\n\n# 14.",
     "send family_hub to hub priority amber\n\n# 14.", NULL, NULL, "2017-05-02", 2,
     "[\"parenting\"]", NULL, "family_hub", "hub-kendal", "family_hub", "amber"},
};

START_TEST(test_local_changes)
{
    char *text = change_cases[_i].from ? shipped_with(change_cases[_i].from, change_cases[_i].to)
                                       : shipped_with(NULL, NULL);
    struct directory *dir = D;
    char errs[8192];
    if (change_cases[_i].dir_from) {
        char path[1024];
        source_path(path, sizeof path, "config/directory.json");
        char *dt = read_file(path);
        char *at = strstr(dt, change_cases[_i].dir_from);
        ck_assert_ptr_nonnull(at);
        size_t n = strlen(dt) + strlen(change_cases[_i].dir_to) + 1;
        char *nd = malloc(n);
        snprintf(nd, n, "%.*s%s%s", (int)(at - dt), dt, change_cases[_i].dir_to,
                 at + strlen(change_cases[_i].dir_from));
        ck_assert_msg(directory_parse(nd, strlen(nd), "d.json", &dir, errs, sizeof errs) == 0, "%s",
                      errs);
        free(nd);
        free(dt);
    }
    struct rules *r;
    ck_assert_msg(rules_parse(text, strlen(text), "r.rules", dir, &r, errs, sizeof errs) == 0,
                  "%s: %s", change_cases[_i].name, errs);
    struct policy p = {dir, r, NULL, NULL};
    struct event ev;
    struct decision d;
    referral(&ev, change_cases[_i].dob, change_cases[_i].level, change_cases[_i].needs,
             change_cases[_i].risk);
    route_decide_referral(&p, &ev, NULL, &d);
    ck_assert_str_eq(rules_route_name(d.route), change_cases[_i].route);
    ck_assert_str_eq(d.destination, change_cases[_i].dest);
    ck_assert_str_eq(d.rule, change_cases[_i].rule);
    ck_assert_str_eq(rules_priority_name(d.priority), change_cases[_i].prio);
    event_release(&ev);
    rules_free(r);
    if (dir != D)
        directory_free(dir);
    free(text);
}
END_TEST

/* Without the directory the syntax is still checked (policy_load reports both). */
START_TEST(test_no_directory)
{
    struct rules *r;
    char errs[1024];
    const char *t = HEAD "rule x\n  when always\n  send signpost to anything-goes\n" TAIL;
    ck_assert_int_eq(rules_parse(t, strlen(t), "r.rules", NULL, &r, errs, sizeof errs), 0);
    rules_free(r);
    ck_assert_int_eq(rules_load("/nonexistent.rules", NULL, &r, errs, sizeof errs), -1);
    ck_assert(strstr(errs, "/nonexistent.rules:0: cannot open") != NULL);
}
END_TEST

/* What a condition cannot hold without, which routing tests before walking it: only
 * what `and` (or `not` over `or`) makes certain. And how many `and` terms the compiled
 * condition has (-1: walked, as a history atom is; 0: it never holds). */
#define F(x) (1u << FACT_##x)
static const struct {
    const char *when;
    unsigned need_flags, no_flags, need_known, no_known;
    int terms;
} necessary_cases[] = {
    {"always", 0, 0, 0, 0, 1},
    {"send", F(SEND), 0, 0, 0, 1},
    {"not send", 0, F(SEND), 0, 0, 1},
    {"known school and not pre_birth", 0, F(PRE_BIRTH), F(SCHOOL), 0, 1},
    {"send or known hub", 0, 0, 0, 0, 2},
    {"not (pre_birth or known hub)", 0, F(PRE_BIRTH), 0, F(HUB), 1},
    {"not (consent and known locality)", 0, 0, 0, 0, 2},
    {"not not incomplete", F(INCOMPLETE), 0, 0, 0, 1},
    {"level = 3 and known locality and immediate_risk", F(IMMEDIATE_RISK), 0, F(LOCALITY), 0, 1},
    {"(consent or send) and not known district and age >= 11", 0, 0, 0, F(DISTRICT), 2},
    {"send and not send", F(SEND), F(SEND), 0, 0, 0},
    {"(send or consent) and (send or known hub)", 0, 0, 0, 0, 4},
    {"child_case in [school] and send", F(SEND), 0, 0, 0, -1},
    /* 2^6 terms: more than RULES_MAX_TERMS */
    {"(send or consent) and (pre_birth or known hub) and (immediate_risk or known school) and "
     "(level = 1 or age = 7) and (known locality or any_need in A) and (age < 2 or known district)",
     0, 0, 0, 0, -1},
};
#undef F

START_TEST(test_necessary)
{
    char text[2048], errs[1024];
    snprintf(text, sizeof text, HEAD "rule x\n  when %s\n  send signpost to anything-goes\n" TAIL,
             necessary_cases[_i].when);
    struct rules *r;
    ck_assert_msg(rules_parse(text, strlen(text), "r.rules", NULL, &r, errs, sizeof errs) == 0,
                  "%s: %s", necessary_cases[_i].when, errs);
    const struct rule *x = &r->rules[0];
    ck_assert_msg(x->need_flags == necessary_cases[_i].need_flags &&
                      x->no_flags == necessary_cases[_i].no_flags &&
                      x->need_known == necessary_cases[_i].need_known &&
                      x->no_known == necessary_cases[_i].no_known,
                  "%s: got %#x %#x %#x %#x", necessary_cases[_i].when, x->need_flags, x->no_flags,
                  x->need_known, x->no_known);
    ck_assert_msg(x->n_terms == necessary_cases[_i].terms, "%s: %d terms, expected %d",
                  necessary_cases[_i].when, x->n_terms, necessary_cases[_i].terms);
    rules_free(r);
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, load_dir, free_dir);
    tcase_add_test(tc, test_shipped_rules);
    tcase_add_test(tc, test_names);
    tcase_add_loop_test(tc, test_necessary, 0, N(necessary_cases));
    tcase_add_loop_test(tc, test_errors, 0, N(error_cases));
    tcase_add_loop_test(tc, test_local_changes, 0, N(change_cases));
    tcase_add_test(tc, test_no_directory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rules_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
