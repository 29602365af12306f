/* Unit tests: the main configuration file. */
#define _GNU_SOURCE
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontdoor/config.h"
#include "frontdoor/log.h"

static char tmpdir[] = "/tmp/frontdoor-config-test-XXXXXX";

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *write_file(const char *name, const char *text, mode_t mode)
{
    char *path;
    ck_assert_int_ge(asprintf(&path, "%s/%s", tmpdir, name), 0);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

/* Every sms template mapped to a Notify template id (as notify needs). */
#define SMS_TEMPLATE_IDS                                                                           \
    "notify_template.safeguarding_alert = 00000000-0000-4000-8000-000000000001\n"                  \
    "notify_template.safeguarding_alert_failed = 00000000-0000-4000-8000-000000000002\n"           \
    "notify_template.appointment_booked = 00000000-0000-4000-8000-000000000003\n"                  \
    "notify_template.appointment_reminder = 00000000-0000-4000-8000-000000000004\n"                \
    "notify_template.appointment_cancelled = 00000000-0000-4000-8000-000000000005\n"

/* ---- table: file text -> accepted, or the error expected at a line */

static const struct {
    const char *text;
    const char *error; /* NULL: accepted; else ":LINE: message fragment" */
} cases[] = {
    {"[kafka]\nbrokers = embedded\n", NULL},
    {"[kafka]\nbrokers = k1:9092,k2:9092\ngroup_id = g\n", NULL},
    {"# only a comment\n[kafka]\n; another\nbrokers=embedded\n", NULL},
    {"[kafka]\ngroup_id = g\n", "kafka.brokers is required"},
    {"[kafka]\nbrokers =\n", "kafka.brokers is required"},
    {"[kafka]\nbrokers = embedded\nbrokers = other\n",
     ":3: kafka.brokers is already set on line 2"},
    {"[kafka]\nbrokers = embedded\nborkers = x\n", ":3: unknown key borkers in [kafka]"},
    {"brokers = embedded\n", ":1: key brokers is outside any [section]"},
    {"[kafka]\nbrokers = embedded\n[nosuch]\nx = 1\n", ":4: unknown key x in [nosuch]"},
    {"[kafka]\nbrokers = embedded\nthis line has no equals sign\n", ":3: syntax error"},
    {"[kafka]\nbrokers = embedded\nmax_message_bytes = 12x\n", ":3: kafka.max_message_bytes must"},
    {"[kafka]\nbrokers = embedded\nmax_message_bytes = 64 KiB\n", NULL},
    {"[kafka]\nbrokers = embedded\nmax_message_bytes = 64 KB\n", ":3: kafka.max_message_bytes"},
    {"[kafka]\nbrokers = embedded\nmax_message_bytes = 1023\n", ":3: kafka.max_message_bytes"},
    {"[kafka]\nbrokers = embedded\nmax_message_bytes = 64KiB\n", NULL},
    {"[kafka]\nbrokers = embedded\nunknown_case_retry_seconds = -1\n", ":3: kafka.unknown_case"},
    {"[kafka]\nbrokers = embedded\nreferrals_topic = t\ndlq_topic = t\n", "used twice"},
    {"[kafka]\nbrokers = embedded\nrdkafka.security.protocol = ssl\n", NULL},
    {"[kafka]\nbrokers = embedded\nrdkafka.a = 1\nrdkafka.a = 2\n",
     ":4: kafka.rdkafka.a is already"},
    {"[kafka]\nbrokers = embedded\n[email]\nprovider = pigeon\n", ":4: email.provider must be"},
    {"[kafka]\nbrokers = embedded\n[sms]\nprovider = smtp\n", ":4: sms.provider must be file or"},
    {"[kafka]\nbrokers = embedded\n[sms]\nprovider = notify\n", "needs sms.notify_api_key_file"},
    {"[kafka]\nbrokers = embedded\n[log]\nlevel = loud\n", ":4: log.level must be"},
    {"[kafka]\nbrokers = embedded\n[log]\nformat = xml\n", ":4: log.format must be"},
    {"[kafka]\nbrokers = embedded\n[http]\nlisten = 9464\n",
     ":4: http.listen must be address:port"},
    {"[kafka]\nbrokers = embedded\n[http]\nlisten = 127.0.0.1:99999\n",
     ":4: http.listen port must"},
    {"[kafka]\nbrokers = embedded\n[http]\nlisten = 127.0.0.1:\n", ":4: http.listen port must"},
    {"[kafka]\nbrokers = embedded\n[http]\nlisten = ::1:9464\n", ":4: http.listen must be"},
    {"[kafka]\nbrokers = embedded\n[http]\nlisten = [::1]:9464\n", NULL},
    {"[kafka]\nbrokers = embedded\n[http]\nlisten = localhost:0\n", NULL},
    {"[kafka]\nbrokers = embedded\n[http]\nlisten = :9464\n", NULL},
    {"[kafka]\nbrokers = embedded\n[email]\nfrom = nobody\n", "email.from must be one email"},
    {"[kafka]\nbrokers = embedded\n[database]\npassword_file = missing\n",
     ":4: database.password_file: cannot read secret file"},
    {"[kafka]\nbrokers = embedded\n[sms]\nnotify_template.appointment_booked = "
     "00000000-0000-4000-8000-000000000003\nnotify_template.appointment_booked.cy = "
     "00000000-0000-4000-8000-000000000004\n",
     NULL},
    {"[kafka]\nbrokers = embedded\n[sms]\nnotify_template.apointment_booked = "
     "00000000-0000-4000-8000-000000000003\n",
     ":4: sms.notify_template.apointment_booked: apointment_booked is not a template sent by sms"},
    {"[kafka]\nbrokers = embedded\n[sms]\nnotify_template.case_allocated = "
     "00000000-0000-4000-8000-000000000003\n",
     ":4: sms.notify_template.case_allocated: case_allocated is not a template sent by sms"},
    {"[kafka]\nbrokers = embedded\n[email]\nnotify_template.case_allocated = abc\n",
     ":4: email.notify_template.case_allocated must be a Notify template id (a UUID)"},
    {"[kafka]\nbrokers = embedded\n[email]\nnotify_template.case_allocated.welsh = "
     "00000000-0000-4000-8000-000000000003\n",
     ":4: email.notify_template.case_allocated.welsh: the language must be a two-letter"},
    {"[kafka]\nbrokers = embedded\n[email]\nnotify_template.case_allocated = "
     "00000000-0000-4000-8000-000000000003\nnotify_template.case_allocated.en = "
     "00000000-0000-4000-8000-000000000004\n",
     ":5: email.notify_template.case_allocated.en is already set on line 4"},
    {"[kafka]\nbrokers = embedded\n[email]\ntimeout_seconds = 0\n",
     ":4: email.timeout_seconds must be a whole number from 1 to 600"},
    {"[kafka]\nbrokers = embedded\n[sms]\nmax_in_flight = 0\n",
     ":4: sms.max_in_flight must be a whole number from 1 to 1000"},
    {"[kafka]\nbrokers = embedded\n[database]\nprepared_statements = yes\n",
     ":4: database.prepared_statements must be true or false"},
    {"[kafka]\nbrokers = embedded\n[database]\nprepared_statements = True\n",
     ":4: database.prepared_statements must be true or false"},
};

START_TEST(test_table)
{
    char errs[4096];
    struct config *cfg = NULL;
    char *path = write_file("t.conf", cases[_i].text, 0600);
    int rc = config_load(path, &cfg, errs, sizeof errs);
    if (cases[_i].error == NULL) {
        ck_assert_msg(rc == 0, "case %d refused: %s", _i, errs);
        ck_assert_ptr_nonnull(cfg);
    } else {
        ck_assert_msg(rc == -1, "case %d accepted", _i);
        ck_assert_ptr_null(cfg);
        ck_assert_msg(strstr(errs, cases[_i].error) != NULL, "case %d: want '%s' in '%s'", _i,
                      cases[_i].error, errs);
        /* every message names the file */
        ck_assert_msg(strncmp(errs, path, strlen(path)) == 0, "no file name in '%s'", errs);
    }
    config_free(cfg);
    free(path);
}
END_TEST

START_TEST(test_all_errors_reported)
{
    char errs[4096];
    struct config *cfg;
    char *path =
        write_file("t.conf", "[kafka]\nbrokers = x\nnope = 1\n[log]\nlevel = loud\n", 0600);
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(strstr(errs, ":3: unknown key nope"));
    ck_assert_ptr_nonnull(strstr(errs, ":5: log.level"));
    free(path);
}
END_TEST

START_TEST(test_defaults)
{
    char errs[4096];
    struct config *cfg;
    char *path = write_file("t.conf", "[kafka]\nbrokers = embedded\n", 0600);
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), 0);
    ck_assert_str_eq(cfg->kafka.group_id, "frontdoord");
    ck_assert_str_eq(cfg->kafka.referrals_topic, "frontdoor.referrals");
    ck_assert_str_eq(cfg->kafka.case_events_topic, "frontdoor.case-events");
    ck_assert_str_eq(cfg->kafka.decisions_topic, "frontdoor.decisions");
    ck_assert_str_eq(cfg->kafka.dlq_topic, "frontdoor.dlq");
    ck_assert_uint_eq(cfg->kafka.max_message_bytes, 65536);
    ck_assert_int_eq(cfg->kafka.unknown_case_retry_s, 600);
    ck_assert_int_eq(cfg->email.provider, PROVIDER_FILE);
    ck_assert_int_eq(cfg->sms.provider, PROVIDER_FILE);
    ck_assert_int_eq(cfg->email.rate_limit_per_minute, 3000);
    ck_assert_str_eq(cfg->http.listen, "127.0.0.1:9464");
    ck_assert_int_eq(cfg->log.level, LOG_INFO);
    ck_assert_int_eq(cfg->log.format, LOG_FORMAT_LOGFMT);
    ck_assert_ptr_null(cfg->database.password);
    ck_assert_int_eq(cfg->database.connections, 3);
    ck_assert(cfg->database.prepared_statements);
    config_free(cfg);
    free(path);
}
END_TEST

START_TEST(test_relative_paths)
{
    char errs[4096];
    struct config *cfg;
    char *path = write_file("t.conf",
                            "[kafka]\nbrokers = embedded\n[routing]\nrules = r/x.rules\n"
                            "directory = /abs/dir.json\n[email]\nspool_dir = ../spool\n",
                            0600);
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), 0);
    char *want;
    ck_assert_int_ge(asprintf(&want, "%s/r/x.rules", tmpdir), 0);
    ck_assert_str_eq(cfg->routing.rules, want);
    free(want);
    ck_assert_str_eq(cfg->routing.directory, "/abs/dir.json");
    ck_assert_int_ge(asprintf(&want, "%s/templates", tmpdir), 0); /* default, also relative */
    ck_assert_str_eq(cfg->routing.templates, want);
    free(want);
    ck_assert_int_ge(asprintf(&want, "%s/../spool", tmpdir), 0);
    ck_assert_str_eq(cfg->email.spool_dir, want);
    free(want);
    config_free(cfg);
    free(path);
}
END_TEST

static const mode_t bad_modes[] = {0620, 0602, 0666, 0664};

START_TEST(test_writable_refused)
{
    char errs[4096];
    struct config *cfg;
    char *path = write_file("t.conf", "[kafka]\nbrokers = embedded\n", bad_modes[_i]);
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(strstr(errs, "group- or world-writable"));
    free(path);
}
END_TEST

START_TEST(test_long_line)
{
    /* inih would silently cut a line longer than its buffer; we refuse it by number. */
    char errs[4096];
    struct config *cfg;
    size_t n = CONFIG_MAX_LINE + 200;
    char *text = malloc(n + 100);
    strcpy(text, "[kafka]\nbrokers = embedded\n[database]\nconninfo = ");
    size_t at = strlen(text);
    memset(text + at, 'x', n);
    strcpy(text + at + n, "\n");
    char *path = write_file("t.conf", text, 0600);
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(strstr(errs, ":4: line is longer than 4000 bytes"));
    free(path);
    /* the longest accepted line arrives whole */
    memset(text + at, 'y', CONFIG_MAX_LINE - strlen("conninfo = "));
    strcpy(text + at + CONFIG_MAX_LINE - strlen("conninfo = "), "\n");
    path = write_file("t.conf", text, 0600);
    ck_assert_msg(config_load(path, &cfg, errs, sizeof errs) == 0, "%s", errs);
    ck_assert_uint_eq(strlen(cfg->database.conninfo), CONFIG_MAX_LINE - strlen("conninfo = "));
    config_free(cfg);
    free(path);
    free(text);
}
END_TEST

START_TEST(test_values_verbatim)
{
    char errs[4096];
    struct config *cfg;
    char *path = write_file("t.conf",
                            "[kafka]\nbrokers = embedded\nrdkafka.sasl.username = a;b#c\n"
                            "[database]\nconninfo = host=/run/x dbname=fd ; sslmode=disable\n",
                            0600);
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), 0);
    ck_assert_str_eq(cfg->database.conninfo, "host=/run/x dbname=fd ; sslmode=disable");
    ck_assert_uint_eq(cfg->kafka.n_rdkafka, 1);
    ck_assert_str_eq(cfg->kafka.rdkafka[0].key, "sasl.username");
    ck_assert_str_eq(cfg->kafka.rdkafka[0].value, "a;b#c");
    ck_assert_int_eq(cfg->kafka.rdkafka[0].line, 3);
    config_free(cfg);
    free(path);
}
END_TEST

START_TEST(test_secrets)
{
    char errs[4096];
    struct config *cfg;
    const char *key = "frontdoord_test-11111111-2222-3333-4444-555555555555-"
                      "66666666-7777-8888-9999-000000000000";
    char *keytext;
    ck_assert_int_ge(asprintf(&keytext, "%s\n", key), 0);
    free(write_file("dbpass", "s3cret\n", 0600));
    free(write_file("notifykey", keytext, 0600));
    free(keytext);
    char *path =
        write_file("t.conf",
                   "[kafka]\nbrokers = embedded\n[database]\npassword_file = dbpass\n"
                   "[sms]\nprovider = notify\nnotify_api_key_file = notifykey\n" SMS_TEMPLATE_IDS,
                   0600);
    unsetenv("CREDENTIALS_DIRECTORY");
    ck_assert_msg(config_load(path, &cfg, errs, sizeof errs) == 0, "%s", errs);
    ck_assert_str_eq(cfg->database.password, "s3cret");
    ck_assert_str_eq(cfg->sms.notify_api_key, key);
    config_free(cfg);

    /* a systemd credential of the same name wins over the file beside the config */
    char *creds;
    ck_assert_int_ge(asprintf(&creds, "%s/creds", tmpdir), 0);
    ck_assert_int_eq(mkdir(creds, 0700), 0);
    free(write_file("creds/dbpass", "from-credential", 0600));
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    ck_assert_msg(config_load(path, &cfg, errs, sizeof errs) == 0, "%s", errs);
    ck_assert_str_eq(cfg->database.password, "from-credential");
    config_free(cfg);
    unsetenv("CREDENTIALS_DIRECTORY");
    free(creds);

    /* the Kafka SASL password from a file; not together with the inline property */
    free(write_file("saslpass", "kafka-s3cret\n", 0600));
    char *kpath =
        write_file("k.conf", "[kafka]\nbrokers = embedded\nsasl_password_file = saslpass\n", 0600);
    ck_assert_msg(config_load(kpath, &cfg, errs, sizeof errs) == 0, "%s", errs);
    ck_assert_str_eq(cfg->kafka.sasl_password, "kafka-s3cret");
    config_free(cfg);
    free(kpath);
    kpath = write_file("k.conf",
                       "[kafka]\nbrokers = embedded\nsasl_password_file = saslpass\n"
                       "rdkafka.sasl.password = inline\n",
                       0600);
    ck_assert_int_eq(config_load(kpath, &cfg, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(
        strstr(errs, ":4: kafka.rdkafka.sasl.password and kafka.sasl_password_file"));
    ck_assert_ptr_null(strstr(errs, "kafka-s3cret"));
    free(kpath);

    /* an empty secret file is refused */
    free(write_file("dbpass", "\n", 0600));
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(strstr(errs, ":4: database.password_file: secret file"));
    /* the secret itself never appears in a message */
    ck_assert_ptr_null(strstr(errs, "s3cret"));
    free(path);
}
END_TEST

/* notify: every template of the channel mapped, https except to loopback, a key of the
 * right shape. */
START_TEST(test_notify_checks)
{
    char errs[8192];
    struct config *cfg;
    free(write_file("key",
                    "k-11111111-2222-3333-4444-555555555555-"
                    "66666666-7777-8888-9999-000000000000\n",
                    0600));
    free(write_file("badkey",
                    "k-11111111-2222-3333-4444-555555555555-secret-of-the-wrong-shape--x\n", 0600));
    char *path = write_file("n.conf",
                            "[kafka]\nbrokers = embedded\n[sms]\nprovider = notify\n"
                            "notify_api_key_file = key\n"
                            "notify_template.appointment_booked = "
                            "00000000-0000-4000-8000-000000000003\n",
                            0600);
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), -1);
    const char *missing[] = {"safeguarding_alert", "safeguarding_alert_failed",
                             "appointment_reminder", "appointment_cancelled"};
    for (size_t i = 0; i < 4; i++) {
        char want[128];
        snprintf(want, sizeof want, "sms.provider = notify needs sms.notify_template.%s\n",
                 missing[i]);
        ck_assert_msg(strstr(errs, want) != NULL, "%s lacks %s", errs, want);
    }
    ck_assert_ptr_null(strstr(errs, "notify_template.appointment_booked\n"));
    free(path);

    path = write_file(
        "n.conf",
        "[kafka]\nbrokers = embedded\n[sms]\nprovider = notify\n"
        "notify_api_key_file = key\nnotify_url = http://notify.example.org\n" SMS_TEMPLATE_IDS,
        0600);
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(
        strstr(errs, "sms.notify_url must be https:// (http:// only to loopback)"));
    free(path);

    path = write_file(
        "n.conf",
        "[kafka]\nbrokers = embedded\n[sms]\nprovider = notify\n"
        "notify_api_key_file = key\nnotify_url = http://127.0.0.1:8080/\n" SMS_TEMPLATE_IDS,
        0600);
    ck_assert_msg(config_load(path, &cfg, errs, sizeof errs) == 0, "%s", errs);
    ck_assert_str_eq(config_notify_template_id(&cfg->sms, "appointment_booked", "en"),
                     "00000000-0000-4000-8000-000000000003");
    config_free(cfg);
    free(path);

    path = write_file("n.conf",
                      "[kafka]\nbrokers = embedded\n[sms]\nprovider = notify\n"
                      "notify_api_key_file = badkey\n" SMS_TEMPLATE_IDS,
                      0600);
    ck_assert_int_eq(config_load(path, &cfg, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(strstr(errs, "sms.notify_api_key_file does not hold a Notify API key"));
    ck_assert_ptr_null(strstr(errs, "secret-of")); /* never the key itself */
    free(path);
}
END_TEST

/* The family's language when mapped, else English; nothing when neither is. */
START_TEST(test_notify_template_lookup)
{
    struct kv_pair kv[] = {{"appointment_booked.en", "id-en", 1},
                           {"appointment_booked.cy", "id-cy", 2},
                           {"appointment_reminder.en", "id-rem", 3}};
    struct channel_config ch = {.notify_templates = kv, .n_notify_templates = 3};
    ck_assert_str_eq(config_notify_template_id(&ch, "appointment_booked", "cy"), "id-cy");
    ck_assert_str_eq(config_notify_template_id(&ch, "appointment_booked", "pl"), "id-en");
    ck_assert_str_eq(config_notify_template_id(&ch, "appointment_booked", NULL), "id-en");
    ck_assert_str_eq(config_notify_template_id(&ch, "appointment_reminder", "cy"), "id-rem");
    ck_assert_ptr_null(config_notify_template_id(&ch, "appointment_cancelled", "en"));
}
END_TEST

static const struct {
    const char *url;
    bool loopback;
} loopback_cases[] = {
    {"smtp://127.0.0.1:2525", true},
    {"smtp://127.1.2.3", true},
    {"smtp://localhost:25", true},
    {"smtp://LOCALHOST", true},
    {"smtp://[::1]:25", true},
    {"http://user:pw@127.0.0.1:80/x", true},
    {"smtp://192.0.2.2:25", false},
    {"smtp://127.0.0.1.example.org", false},
    {"smtp://localhost.example.org", false},
    {"smtp://relay.example.org", false},
    {"https://api.notifications.service.gov.uk", false},
    {"smtp://[::2]:25", false},
    {"127.0.0.1", false},
};

START_TEST(test_loopback_table)
{
    ck_assert_msg(config_url_is_loopback(loopback_cases[_i].url) == loopback_cases[_i].loopback,
                  "%s", loopback_cases[_i].url);
}
END_TEST

START_TEST(test_shipped_config)
{
    char errs[8192];
    struct config *cfg;
    char *path;
    ck_assert_int_ge(asprintf(&path, "%s/config/frontdoord.conf", getenv("FRONTDOOR_SOURCE_DIR")),
                     0);
    ck_assert_msg(config_load(path, &cfg, errs, sizeof errs) == 0, "%s", errs);
    ck_assert_str_eq(cfg->kafka.brokers, "embedded");
    ck_assert_ptr_nonnull(strstr(cfg->routing.directory, "/config/directory.json"));
    config_free(cfg);
    free(path);
}
END_TEST

START_TEST(test_missing_file)
{
    char errs[4096];
    struct config *cfg;
    ck_assert_int_eq(config_load("/nonexistent/frontdoord.conf", &cfg, errs, sizeof errs), -1);
    ck_assert_ptr_nonnull(strstr(errs, "/nonexistent/frontdoord.conf: cannot open"));
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- table: what a reload compares (config_diff) */

static const struct {
    const char *before, *after;
    const char *changed; /* names, space-separated, in key-table order */
} diff_cases[] = {
    {"[kafka]\nbrokers = embedded\n", "[kafka]\nbrokers = embedded\n", ""},
    {"[kafka]\nbrokers = embedded\n", "# a comment\n[kafka]\nbrokers = embedded\n", ""},
    {"[kafka]\nbrokers = a:9092\n", "[kafka]\nbrokers = b:9092\n", "kafka.brokers"},
    {"[kafka]\nbrokers = embedded\n", "[kafka]\nbrokers = embedded\nmax_message_bytes = 1 MiB\n",
     "kafka.max_message_bytes"},
    {"[kafka]\nbrokers = embedded\n", "[kafka]\nbrokers = embedded\nrdkafka.acks.x = 1\n",
     "kafka.rdkafka.*"},
    {"[kafka]\nbrokers = embedded\nrdkafka.a = 1\n", "[kafka]\nbrokers = embedded\nrdkafka.a = 2\n",
     "kafka.rdkafka.*"},
    {"[kafka]\nbrokers = embedded\n",
     "[kafka]\nbrokers = embedded\n[log]\nlevel = debug\nformat = json\n", "log.level log.format"},
    {"[kafka]\nbrokers = embedded\n",
     "[kafka]\nbrokers = embedded\n[routing]\nrules = other.rules\n[http]\nlisten = 127.0.0.1:1\n",
     "http.listen routing.rules"},
    {"[kafka]\nbrokers = embedded\n",
     "[kafka]\nbrokers = embedded\n[sms]\nprovider = notify\n"
     "notify_api_key_file = key\n" SMS_TEMPLATE_IDS,
     "sms.provider sms.notify_api_key_file sms.notify_template.*"},
    {"[kafka]\nbrokers = embedded\n[database]\nbatch_max = 5\n",
     "[kafka]\nbrokers = embedded\n[database]\nbatch_max = 6\n", "database.batch_max"},
    {"[kafka]\nbrokers = embedded\n",
     "[kafka]\nbrokers = embedded\n[database]\nprepared_statements = false\n",
     "database.prepared_statements"},
    {"[kafka]\nbrokers = embedded\n[database]\nprepared_statements = true\n",
     "[kafka]\nbrokers = embedded\n", ""},
};

static void collect(void *arg, const char *name)
{
    char *buf = arg;
    if (buf[0] != '\0')
        strcat(buf, " ");
    strcat(buf, name);
}

START_TEST(test_diff)
{
    char errs[4096], got[1024] = "";
    struct config *a, *b;
    /* a Notify key file as Notify issues them: name, service id, secret */
    free(write_file(
        "key", "test-11111111-1111-1111-1111-111111111111-22222222-2222-2222-2222-222222222222\n",
        0600));
    char *pa = write_file("a.conf", diff_cases[_i].before, 0600);
    char *pb = write_file("b.conf", diff_cases[_i].after, 0600);
    ck_assert_msg(config_load(pa, &a, errs, sizeof errs) == 0, "%s", errs);
    ck_assert_msg(config_load(pb, &b, errs, sizeof errs) == 0, "%s", errs);
    int n = config_diff(a, b, collect, got);
    ck_assert_str_eq(got, diff_cases[_i].changed);
    int words = 0;
    for (const char *p = diff_cases[_i].changed; *p; p++)
        words += (p == diff_cases[_i].changed || p[-1] == ' ');
    ck_assert_int_eq(n, words);
    /* symmetric */
    got[0] = '\0';
    config_diff(b, a, collect, got);
    ck_assert_str_eq(got, diff_cases[_i].changed);
    config_free(a);
    config_free(b);
    free(pa);
    free(pb);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_table, 0, N(cases));
    tcase_add_test(tc, test_all_errors_reported);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_relative_paths);
    tcase_add_loop_test(tc, test_writable_refused, 0, N(bad_modes));
    tcase_add_test(tc, test_long_line);
    tcase_add_test(tc, test_values_verbatim);
    tcase_add_test(tc, test_secrets);
    tcase_add_test(tc, test_shipped_config);
    tcase_add_test(tc, test_notify_checks);
    tcase_add_test(tc, test_notify_template_lookup);
    tcase_add_loop_test(tc, test_loopback_table, 0, N(loopback_cases));
    tcase_add_test(tc, test_missing_file);
    tcase_add_loop_test(tc, test_diff, 0, N(diff_cases));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
