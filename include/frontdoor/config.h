/* config: the main configuration file (frontdoord.conf), parsed into one struct.
 *
 * config_load() parses a file into a fresh struct and validates it; the caller owns the
 * result and frees it with config_free(). A reload builds a new struct the same way and
 * swaps it in only when it is valid, so a bad file never replaces a good one.
 */
#ifndef FRONTDOOR_CONFIG_H
#define FRONTDOOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_DEFAULT_PATH "/etc/frontdoord/frontdoord.conf"
/* Longest line accepted in the main file (bytes, without the newline). */
#define CONFIG_MAX_LINE 4000

enum log_format_kind { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

/* A provider for one notification channel. */
enum provider_kind { PROVIDER_FILE, PROVIDER_SMTP, PROVIDER_NOTIFY };

/* `rdkafka.<property> = value` lines, passed to librdkafka as they are. */
struct kv_pair {
    char *key; /* without the `rdkafka.` prefix */
    char *value;
    int line;
};

struct channel_config {
    enum provider_kind provider;
    char *spool_dir;           /* file provider; absolute */
    char *notify_url;          /* notify provider base URL */
    char *notify_api_key;      /* secret, read from notify_api_key_file */
    int rate_limit_per_minute; /* over any rolling 60 s */
    int timeout_s;             /* a send taking longer is abandoned and retried */
    int max_in_flight;         /* sends of this channel at once */
    /* `notify_template.<template>[.<lang>] = <Notify template id>` lines */
    struct kv_pair *notify_templates;
    size_t n_notify_templates;
};

struct config {
    char *path; /* absolute path of the file this came from */
    char *dir;  /* its folder: relative paths resolve against it */

    struct {
        char *brokers; /* required; "embedded" = in-process mock cluster */
        char *group_id;
        char *referrals_topic;
        char *case_events_topic;
        char *decisions_topic;
        char *dlq_topic;
        size_t max_message_bytes; /* events larger than this are too_large */
        int unknown_case_retry_s; /* how long a case event waits for its referral */
        int embedded_partitions;  /* partitions per topic of the embedded cluster */
        int max_in_flight;        /* consumed events not yet durable, at most */
        char *sasl_password;      /* secret from sasl_password_file, or NULL */
        struct kv_pair *rdkafka;  /* pass-through properties */
        size_t n_rdkafka;
    } kafka;

    struct {
        char *conninfo;
        char *password;           /* secret from password_file, or NULL */
        int batch_max;            /* events per transaction at most */
        int connections;          /* case-store pipelines, each with its own connection */
        bool prepared_statements; /* parse each statement once per connection */
    } database;

    struct channel_config email;
    char *email_smtp_url;
    char *email_from;
    char *email_smtp_username;
    char *email_smtp_password; /* secret */
    char *email_smtp_ca_file;  /* CA certificates for the relay's TLS, or NULL: the system's */

    struct channel_config sms;

    struct {
        char *listen;         /* host:port */
        char *callback_token; /* secret: bearer token for /notify/callback */
    } http;

    struct {
        char *rules; /* absolute paths */
        char *directory;
        char *templates;
    } routing;

    struct {
        int level; /* enum log_level */
        enum log_format_kind format;
    } log;
};

/* Parse and validate `path`. Every problem is appended to `errs` as one
 * "file:line: message" line (errs is always NUL-terminated; long lists are cut).
 * Returns 0 and *out on success, -1 otherwise (then *out is NULL). */
int config_load(const char *path, struct config **out, char *errs, size_t errs_len);

/* The settings that differ between a and b: fn gets each key's name ("section.key", in
 * the order of the key table; "kafka.rdkafka.*" when the pass-through keys differ).
 * Secrets are compared, never passed on. Returns how many differ. */
int config_diff(const struct config *a, const struct config *b,
                void (*fn)(void *arg, const char *name), void *arg);

/* Release a configuration (NULL is fine). Secrets are wiped first. */
void config_free(struct config *cfg);

/* Read a secret named by a `*_file` key: a bare name is looked up first in
 * $CREDENTIALS_DIRECTORY (systemd LoadCredential=), then relative to `dir`. The value
 * is the file's contents less one trailing newline. Returns 0, or -1 with err set. */
int config_read_secret(const char *name, const char *dir, char **out, char *err, size_t errlen);

/* The Notify template id configured for a template (and language, falling back to
 * English) on a channel, or NULL. */
const char *config_notify_template_id(const struct channel_config *ch, const char *template_name,
                                      const char *lang);

/* Is the host of a URL (smtp://, https://, ...) the loopback interface: localhost,
 * 127.0.0.0/8 or ::1? Such a host needs no TLS. */
bool config_url_is_loopback(const char *url);

/* Resolve `p` against `dir` unless it is absolute; the caller frees the result. */
char *config_resolve_path(const char *dir, const char *p);

#endif
