/* libFuzzer target: the directory loader (directory_parse). A directory it accepts is
 * looked up by every id it holds and by hostile ones, warned about like --check-config
 * does, and, when the shipped rule file compiles against it, routes every fixed referral
 * to a complete decision. */
#include <stdint.h>

#include "fuzz_common.h"

static char *rules_text;
static size_t rules_len;
static struct event referrals[FUZZ_N_REFERRALS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rules_text = fuzz_read_file(fuzz_source_path("config/frontdoor.rules"), &rules_len);
    fuzz_parse_referrals(referrals);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char errs[8192];
    struct directory *dir = NULL;
    memset(errs, 'x', sizeof errs);
    int rc = directory_parse((const char *)data, size, "fuzz.json", &dir, errs, sizeof errs);
    fuzz_assert_terminated(errs, sizeof errs);
    if (rc != 0) {
        FUZZ_ASSERT(dir == NULL);
        FUZZ_ASSERT(errs[0] != '\0');
        return 0;
    }
    FUZZ_ASSERT(dir != NULL);
    for (size_t i = 0; i < dir->n_teams; i++)
        FUZZ_ASSERT(directory_find_team(dir, dir->teams[i].id, dir->teams[i].id_len) != NULL);
    for (size_t i = 0; i < dir->n_localities; i++)
        FUZZ_ASSERT(
            directory_find_locality(dir, dir->localities[i].id, dir->localities[i].id_len) != NULL);
    for (size_t i = 0; i < dir->n_schools; i++) {
        const struct dir_school *s = &dir->schools[i];
        FUZZ_ASSERT(directory_find_school(dir, s->urn, s->urn_len) != NULL);
        FUZZ_ASSERT(directory_has_destination(dir, s->destination, strlen(s->destination)));
        bool cover;
        for (int64_t day = 20000; day < 20800; day += 97)
            FUZZ_ASSERT(directory_school_officer(s, day, &cover) != NULL);
    }
    for (size_t i = 0; i < dir->n_districts; i++)
        FUZZ_ASSERT(directory_find_district(dir, dir->districts[i].code,
                                            strlen(dir->districts[i].code)) != NULL);
    directory_find_team(dir, "", 0);
    directory_has_destination(dir, "school-", 7);
    directory_has_destination(dir, "referrer", 8);
    char warn[4096];
    directory_check_warnings(dir, INT64_C(1795425300), warn, sizeof warn);

    struct rules *r = NULL;
    if (rules_parse(rules_text, rules_len, "frontdoor.rules", dir, &r, errs, sizeof errs) == 0) {
        struct policy p = {.directory = dir, .rules = r, .templates = NULL};
        struct decision d;
        for (size_t i = 0; i < FUZZ_N_REFERRALS; i++) {
            route_decide_referral(&p, &referrals[i], NULL, &d);
            fuzz_check_decision(&d);
        }
        rules_free(r);
    }
    directory_free(dir);
    return 0;
}
