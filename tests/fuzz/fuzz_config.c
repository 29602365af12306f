/* libFuzzer target: the main configuration file (config_load).
 *
 * The input is written as a frontdoord.conf (mode 0600) into a private folder that also
 * holds secret files (good, too large, two lines) and a systemd credentials folder, so
 * *_file keys find something. Invariants: problems are reported, and a configuration
 * that loads has what the daemon relies on: brokers, distinct topics, absolute paths, a
 * From address that cannot carry a second header, and secrets of one line. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontdoor/config.h"
#include "fuzz_common.h"

static char dir[4096], conf[4200], creds[4200];

static void put(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            perror(path);
            exit(1);
        }
        p += w;
        len -= (size_t)w;
    }
    fchmod(fd, 0600);
    close(fd);
}

static const char *const files[] = {"secret", "big", "twolines", "empty", "notifykey"};

static void remove_dir(void)
{
    char path[8400];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/token", creds);
    unlink(path);
    rmdir(creds);
    unlink(conf);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/frontdoor-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(conf, sizeof conf, "%s/frontdoord.conf", dir);
    snprintf(creds, sizeof creds, "%s/creds", dir);
    mkdir(creds, 0700);
    atexit(remove_dir);
    char path[8400], big[9000];
    memset(big, 'k', sizeof big);
    snprintf(path, sizeof path, "%s/secret", dir);
    put(path, "s3cret-value\n", 13);
    snprintf(path, sizeof path, "%s/big", dir);
    put(path, big, sizeof big);
    snprintf(path, sizeof path, "%s/twolines", dir);
    put(path, "a\nb\n", 4);
    snprintf(path, sizeof path, "%s/empty", dir);
    put(path, "", 0);
    snprintf(path, sizeof path, "%s/notifykey", dir);
    const char *key = "frontdoor-00000000-0000-4000-8000-000000000001-"
                      "00000000-0000-4000-8000-000000000002\n";
    put(path, key, strlen(key));
    snprintf(path, sizeof path, "%s/token", creds);
    put(path, "credential-token", 16);
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    return 0;
}

static bool one_line(const char *s)
{
    return s == NULL || (s[0] != '\0' && strpbrk(s, "\r\n") == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    put(conf, data, size);
    struct config *cfg = NULL;
    static char errs[16384];
    memset(errs, 'x', sizeof errs);
    int rc = config_load(conf, &cfg, errs, sizeof errs);
    fuzz_assert_terminated(errs, sizeof errs);
    if (rc != 0) {
        FUZZ_ASSERT(cfg == NULL && errs[0] != '\0');
        return 0;
    }
    FUZZ_ASSERT(cfg != NULL);
    FUZZ_ASSERT(cfg->kafka.brokers != NULL && cfg->kafka.brokers[0] != '\0');
    const char *topics[] = {cfg->kafka.referrals_topic, cfg->kafka.case_events_topic,
                            cfg->kafka.decisions_topic, cfg->kafka.dlq_topic};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            FUZZ_ASSERT(strcmp(topics[i], topics[j]) != 0);
    FUZZ_ASSERT(cfg->path[0] == '/' && cfg->routing.rules[0] == '/' &&
                cfg->routing.directory[0] == '/' && cfg->routing.templates[0] == '/' &&
                cfg->email.spool_dir[0] == '/' && cfg->sms.spool_dir[0] == '/');
    FUZZ_ASSERT(strpbrk(cfg->email_from, "\r\n") == NULL && strchr(cfg->email_from, '@'));
    FUZZ_ASSERT(cfg->kafka.max_message_bytes >= 1024);
    FUZZ_ASSERT(one_line(cfg->database.password) && one_line(cfg->email_smtp_password) &&
                one_line(cfg->http.callback_token) && one_line(cfg->email.notify_api_key) &&
                one_line(cfg->sms.notify_api_key));
    for (size_t i = 0; i < cfg->kafka.n_rdkafka; i++)
        FUZZ_ASSERT(cfg->kafka.rdkafka[i].key[0] != '\0');
    config_free(cfg);
    return 0;
}
