/* frontdoord: command line. Exit codes follow sysexits.h. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "frontdoor/config.h"
#include "frontdoor/daemon.h"
#include "frontdoor/explain.h"
#include "frontdoor/kafka.h"
#include "frontdoor/log.h"
#include "frontdoor/migrations.h"
#include "frontdoor/policy.h"

static void print_usage(FILE *f)
{
    fputs("Usage: frontdoord [--config FILE]               run the daemon in the foreground\n"
          "       frontdoord --check-config [--config FILE] validate configuration, rules,\n"
          "                                                 directory and templates\n"
          "       frontdoord [--config FILE] --explain FILE route referral events (one JSON\n"
          "                                                 object a line, - for stdin), dry run\n"
          "       frontdoord [--config FILE] --migrate      create or upgrade the database schema\n"
          "       frontdoord --version | --help\n"
          "\n"
          "Default configuration: " CONFIG_DEFAULT_PATH "\n"
          "Exit status: 0 ok, 64 usage, 65 bad data, 66 unreadable input, 69 unavailable,\n"
          "78 bad configuration.\n",
          f);
}

enum mode { MODE_RUN, MODE_CHECK, MODE_EXPLAIN, MODE_MIGRATE };

/* Load the main file, printing every problem; NULL when it is not usable. */
static struct config *load_config(const char *path)
{
    char errs[16384];
    struct config *cfg;
    if (config_load(path, &cfg, errs, sizeof errs) != 0) {
        fputs(errs, stderr);
        return NULL;
    }
    return cfg;
}

/* --check-config: the rule file and directory too, every problem as file:line, and
 * warnings (bank holidays running out) that do not fail the check. */
static int check_policy(const struct config *cfg)
{
    char errs[16384];
    struct policy *policy;
    if (policy_load(cfg, &policy, errs, sizeof errs) != 0) {
        fputs(errs, stderr);
        return EX_CONFIG;
    }
    errs[0] = '\0';
    if (policy_check_warnings(policy, (int64_t)time(NULL), errs, sizeof errs) > 0)
        fputs(errs, stderr);
    policy_free(policy);
    return EX_OK;
}

/* The rdkafka.* pass-through keys: librdkafka must accept each, and none may override
 * what at-least-once depends on. */
static int check_kafka(const struct config *cfg)
{
    char errs[8192];
    if (kafka_check_config(cfg, errs, sizeof errs) > 0) {
        fputs(errs, stderr);
        return EX_CONFIG;
    }
    const char *tls = kafka_tls_problem(cfg);
    if (tls != NULL)
        fprintf(stderr, "%s: warning: kafka connection: %s\n", cfg->path, tls);
    return EX_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"explain", required_argument, NULL, 'e'},
        {"migrate", no_argument, NULL, 'm'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = CONFIG_DEFAULT_PATH;
    const char *explain_path = NULL;
    enum mode mode = MODE_RUN;
    int modes = 0;
    int c;

    opterr = 0; /* our own message, then usage */
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            mode = MODE_CHECK;
            modes++;
            break;
        case 'e':
            mode = MODE_EXPLAIN;
            explain_path = optarg;
            modes++;
            break;
        case 'm':
            mode = MODE_MIGRATE;
            modes++;
            break;
        case 'V':
            printf("frontdoord %s\n", FRONTDOOR_VERSION);
            return EX_OK;
        case 'h':
            print_usage(stdout);
            return EX_OK;
        default:
            if (optopt != 0 && optopt != '?')
                fprintf(stderr, "frontdoord: option needs a value or is unknown: -%c\n", optopt);
            else
                fprintf(stderr, "frontdoord: unknown option or missing value: %s\n",
                        argv[optind - 1]);
            print_usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "frontdoord: unexpected argument: %s\n", argv[optind]);
        print_usage(stderr);
        return EX_USAGE;
    }
    if (modes > 1) {
        fprintf(stderr, "frontdoord: choose one of --check-config, --explain, --migrate\n");
        return EX_USAGE;
    }

    struct config *cfg = load_config(config_path);
    if (cfg == NULL)
        return EX_CONFIG;
    log_setup((enum log_level)cfg->log.level, cfg->log.format, NULL);

    int rc;
    switch (mode) {
    case MODE_CHECK:
        rc = check_policy(cfg);
        if (check_kafka(cfg) != EX_OK)
            rc = EX_CONFIG;
        if (rc == EX_OK)
            printf("%s: configuration is valid\n", cfg->path);
        break;
    case MODE_EXPLAIN:
        rc = explain_run(cfg, explain_path, stdout, stderr);
        break;
    case MODE_MIGRATE:
        rc = migrations_main(cfg->database.conninfo, cfg->database.password);
        break;
    case MODE_RUN:
    default:
        rc = daemon_run(cfg); /* takes the configuration over (a reload replaces it) */
        cfg = NULL;
        break;
    }
    config_free(cfg);
    return rc;
}
