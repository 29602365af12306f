/* Unit tests: `frontdoord --explain` against the spec's examples and events.md's rules
 * for the dry run (fields, order, empty lines, exit codes). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>

#include "frontdoor/config.h"
#include "frontdoor/explain.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char rules_path[1024], dir_path[1024];

static void config_for(struct config *cfg, size_t max_bytes)
{
    const char *src = getenv("FRONTDOOR_SOURCE_DIR");
    ck_assert_ptr_nonnull(src);
    snprintf(rules_path, sizeof rules_path, "%s/config/frontdoor.rules", src);
    snprintf(dir_path, sizeof dir_path, "%s/config/directory.json", src);
    memset(cfg, 0, sizeof *cfg);
    cfg->path = "test.conf";
    cfg->kafka.max_message_bytes = max_bytes;
    cfg->routing.rules = rules_path;
    cfg->routing.directory = dir_path;
}

static void spec_path(char *buf, size_t len, const char *name)
{
    const char *spec = getenv("FRONTDOOR_SPEC_DIR");
    ck_assert_ptr_nonnull(spec);
    snprintf(buf, len, "%s/examples/%s", spec, name);
}

/* Run explain_run on `path`; output and error text are returned (caller frees). */
static int run(const struct config *cfg, const char *path, char **out, char **err)
{
    size_t olen, elen;
    FILE *o = open_memstream(out, &olen), *e = open_memstream(err, &elen);
    int rc = explain_run(cfg, path, o, e);
    fclose(o);
    fclose(e);
    return rc;
}

/* Run on literal input written to a temporary file. */
static int run_text(const struct config *cfg, const char *text, char **out, char **err)
{
    char path[] = "/tmp/test_explain_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = run(cfg, path, out, err);
    unlink(path);
    return rc;
}

/* The lines of a text, as an array of strings (caller frees each and the array). */
static size_t split_lines(const char *text, char ***lines)
{
    size_t n = 0, cap = 8;
    *lines = malloc(cap * sizeof **lines);
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (n == cap)
            *lines = realloc(*lines, (cap *= 2) * sizeof **lines);
        (*lines)[n++] = strndup(p, len);
        p += len + (nl ? 1 : 0);
    }
    return n;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    ck_assert_int_ge(n, 0);
    fclose(f);
    return buf;
}

/* Every line of expected.jsonl, field by field, plus `reasons`, in this order. */
START_TEST(test_spec_examples)
{
    struct config cfg;
    config_for(&cfg, 65536);
    char in[1024], exp[1024], *out, *err;
    spec_path(in, sizeof in, "referrals.jsonl");
    spec_path(exp, sizeof exp, "expected.jsonl");
    ck_assert_int_eq(run(&cfg, in, &out, &err), EX_OK);
    ck_assert_str_eq(err, "");
    char *want = slurp(exp);
    char **got_lines, **want_lines;
    size_t ng = split_lines(out, &got_lines), nw = split_lines(want, &want_lines);
    ck_assert_uint_eq(ng, nw);
    ck_assert_uint_eq(ng, 25);
    static const char *const keys[] = {"referral_id",     "cause_event_id", "route",
                                       "destination",     "priority",       "rule",
                                       "decision_due_at", "reasons"};
    for (size_t i = 0; i < ng; i++) {
        json_error_t je;
        json_t *g = json_loads(got_lines[i], 0, &je), *w = json_loads(want_lines[i], 0, &je);
        ck_assert_ptr_nonnull(g);
        ck_assert_ptr_nonnull(w);
        const char *k;
        json_t *v;
        json_object_foreach(w, k, v)
        {
            ck_assert_msg(json_equal(json_object_get(g, k), v), "line %zu field %s: got %s", i + 1,
                          k, got_lines[i]);
        }
        ck_assert_uint_eq(json_object_size(g), N(keys));
        json_t *reasons = json_object_get(g, "reasons");
        ck_assert(json_is_array(reasons) && json_array_size(reasons) > 0);
        for (size_t r = 0; r < json_array_size(reasons); r++)
            ck_assert(json_is_string(json_array_get(reasons, r)));
        /* the keys in events.md's order, with the separators of expected.jsonl: the
         * line is the expected line with `reasons` added at the end */
        size_t wl = strlen(want_lines[i]);
        ck_assert_msg(strncmp(got_lines[i], want_lines[i], wl - 1) == 0 &&
                          strncmp(got_lines[i] + wl - 1, ", \"reasons\": [", 14) == 0,
                      "line %zu:\n got %s\nwant %s", i + 1, got_lines[i], want_lines[i]);
        json_decref(g);
        json_decref(w);
    }
    free_lines(got_lines, ng);
    free_lines(want_lines, nw);
    free(want);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_spec_unusable)
{
    struct config cfg;
    config_for(&cfg, 65536);
    char in[1024], exp[1024], *out, *err;
    spec_path(in, sizeof in, "unusable.jsonl");
    spec_path(exp, sizeof exp, "unusable.expected.jsonl");
    ck_assert_int_eq(run(&cfg, in, &out, &err), EX_DATAERR);
    char *want = slurp(exp);
    char **got_lines, **want_lines;
    size_t ng = split_lines(out, &got_lines), nw = split_lines(want, &want_lines);
    ck_assert_uint_eq(ng, nw);
    for (size_t i = 0; i < ng; i++) {
        json_error_t je;
        json_t *g = json_loads(got_lines[i], 0, &je), *w = json_loads(want_lines[i], 0, &je);
        ck_assert_ptr_nonnull(g);
        ck_assert(json_equal(json_object_get(g, "line"), json_object_get(w, "line")));
        ck_assert_msg(json_equal(json_object_get(g, "error"), json_object_get(w, "error")),
                      "line %zu: %s", i + 1, got_lines[i]);
        ck_assert(json_is_string(json_object_get(g, "error_detail")));
        ck_assert_uint_eq(json_object_size(g), 3);
        ck_assert(strncmp(got_lines[i], "{\"line\": ", 9) == 0);
        json_decref(g);
        json_decref(w);
    }
    free_lines(got_lines, ng);
    free_lines(want_lines, nw);
    free(want);
    free(out);
    free(err);
}
END_TEST

#define GOOD(id)                                                                                   \
    "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-00000000000" id "\", "        \
    "\"type\": \"referral.received\", \"occurred_at\": \"2026-11-23T10:15:00Z\", \"referral\": "   \
    "{\"id\": \"REF-" id "\", \"level_of_need\": 1, \"needs\": [\"parenting\"], \"child\": "       \
    "{\"id\": \"C-1\", \"date_of_birth\": \"2017-05-02\"}}}"

static const struct {
    const char *name;
    const char *input;
    size_t max_bytes;
    int rc;
    const char *lines[4]; /* each output line starts with this */
} input_cases[] = {
    {"one routed line", GOOD("1") "\n", 65536, EX_OK, {"{\"referral_id\": \"REF-1\""}},
    {"no final newline", GOOD("1"), 65536, EX_OK, {"{\"referral_id\": \"REF-1\""}},
    {"empty input", "", 65536, EX_OK, {NULL}},
    {"empty lines skipped, counted",
     "\n" GOOD("1") "\n\n   \nnot json\n",
     65536,
     EX_DATAERR,
     {"{\"referral_id\": \"REF-1\"", "{\"line\": 5, \"error\": \"invalid_json\""}},
    {"CRLF line ends",
     GOOD("1") "\r\n" GOOD("2") "\r\n",
     65536,
     EX_OK,
     {"{\"referral_id\": \"REF-1\"", "{\"referral_id\": \"REF-2\""}},
    {"order kept, unusable in the middle",
     GOOD("1") "\n[]\n" GOOD("3") "\n",
     65536,
     EX_DATAERR,
     {"{\"referral_id\": \"REF-1\"", "{\"line\": 2, \"error\": \"invalid_json\"",
      "{\"referral_id\": \"REF-3\""}},
    {"too large", GOOD("1") "\n", 100, EX_DATAERR, {"{\"line\": 1, \"error\": \"too_large\""}},
    {"case events are not for this topic",
     "{\"schema_version\": 1, \"event_id\": \"00000000-0000-4000-8000-000000000001\", \"type\": "
     "\"consent.given\", \"occurred_at\": \"2026-11-23T10:15:00Z\", \"case\": {\"referral_id\": "
     "\"R-1\"}}\n",
     65536,
     EX_DATAERR,
     {"{\"line\": 1, \"error\": \"unknown_type\""}},
    {"blue has a null deadline",
     GOOD("1") "\n",
     65536,
     EX_OK,
     {"{\"referral_id\": \"REF-1\", \"cause_event_id\": \"00000000-0000-4000-8000-000000000001\", "
      "\"route\": \"signpost\", \"destination\": \"universal-services\", \"priority\": \"blue\", "
      "\"rule\": \"universal\", \"decision_due_at\": null, \"reasons\": [\"level_of_need is "
      "1\"]}"}},
};

START_TEST(test_inputs)
{
    struct config cfg;
    config_for(&cfg, input_cases[_i].max_bytes);
    char *out, *err;
    int rc = run_text(&cfg, input_cases[_i].input, &out, &err);
    ck_assert_msg(rc == input_cases[_i].rc, "%s: rc %d", input_cases[_i].name, rc);
    char **lines;
    size_t n = split_lines(out, &lines), want = 0;
    while (want < 4 && input_cases[_i].lines[want])
        want++;
    ck_assert_msg(n == want, "%s: %zu lines:\n%s", input_cases[_i].name, n, out);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(
            strncmp(lines[i], input_cases[_i].lines[i], strlen(input_cases[_i].lines[i])) == 0,
            "%s: line %zu: %s", input_cases[_i].name, i + 1, lines[i]);
    free_lines(lines, n);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_exit_codes)
{
    struct config cfg;
    config_for(&cfg, 65536);
    char *out, *err;
    ck_assert_int_eq(run(&cfg, "/nonexistent/referrals.jsonl", &out, &err), EX_NOINPUT);
    ck_assert(strstr(err, "/nonexistent/referrals.jsonl") != NULL);
    free(out);
    free(err);
    ck_assert_int_eq(run(&cfg, "/", &out, &err), EX_NOINPUT); /* a folder */
    free(out);
    free(err);
    ck_assert_int_eq(run(&cfg, NULL, &out, &err), EX_USAGE);
    free(out);
    free(err);
    cfg.routing.rules = "/nonexistent/frontdoor.rules";
    char in[1024];
    spec_path(in, sizeof in, "referrals.jsonl");
    ck_assert_int_eq(run(&cfg, in, &out, &err), EX_CONFIG);
    ck_assert_msg(strstr(err, "/nonexistent/frontdoor.rules:0:") != NULL, "%s", err);
    ck_assert_str_eq(out, "");
    free(out);
    free(err);
}
END_TEST

static Suite *explain_suite(void)
{
    Suite *s = suite_create("explain");
    TCase *tc = tcase_create("explain");
    tcase_add_test(tc, test_spec_examples);
    tcase_add_test(tc, test_spec_unusable);
    tcase_add_loop_test(tc, test_inputs, 0, N(input_cases));
    tcase_add_test(tc, test_exit_codes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(explain_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
