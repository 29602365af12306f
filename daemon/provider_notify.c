/* provider_notify: GOV.UK Notify over HTTPS with libcurl (see provider_notify.h). */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "frontdoor/curlev.h"
#include "frontdoor/log.h"
#include "frontdoor/provider_notify.h"

/* A response larger than this is cut (Notify's are a few hundred bytes). */
#define MAX_RESPONSE 65536

struct notify_provider {
    struct curlev *cv;
    enum template_channel channel;
    char *url; /* .../v2/notifications/email|sms */
    char service_id[37], secret[37];
    long timeout_ms;
    struct kv_pair *templates; /* copied ids */
    size_t n_templates;
    struct channel_config lookup; /* only its template list, for config_notify_template_id */
    struct transfer *transfers;
};

struct transfer {
    struct transfer *next, *prev;
    struct notify_provider *np;
    CURL *easy;
    struct curl_slist *headers;
    char *request;
    char *response;
    size_t len;
    provider_done_fn done;
    void *arg;
};

/* ---------------------------------------------------------------- the key and the JWT */

static bool is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

int provider_notify_parse_key(const char *key, char service_id[37], char secret[37])
{
    size_t n = key ? strlen(key) : 0;
    if (n < 74 || key[n - 37] != '-' || key[n - 74] != '-' || !is_uuid(key + n - 73) ||
        !is_uuid(key + n - 36))
        return -1;
    memcpy(service_id, key + n - 73, 36);
    service_id[36] = '\0';
    memcpy(secret, key + n - 36, 36);
    secret[36] = '\0';
    return 0;
}

/* base64url without padding (RFC 7515) */
static char *b64url(const unsigned char *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = t[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = t[v & 63];
    }
    out[o] = '\0';
    return out;
}

char *provider_notify_jwt(const char *service_id, const char *secret, int64_t iat)
{
    static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"HS256\"}";
    char payload[128];
    snprintf(payload, sizeof payload, "{\"iss\":\"%s\",\"iat\":%lld}", service_id, (long long)iat);
    char *h = b64url((const unsigned char *)header, strlen(header));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    char *signing = NULL, *sig = NULL, *jwt = NULL;
    if (h && p && asprintf(&signing, "%s.%s", h, p) >= 0) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signing,
                 strlen(signing), mac, &maclen) != NULL &&
            (sig = b64url(mac, maclen)) != NULL && asprintf(&jwt, "%s.%s", signing, sig) < 0)
            jwt = NULL;
        OPENSSL_cleanse(mac, sizeof mac);
    }
    free(h);
    free(p);
    free(signing);
    free(sig);
    return jwt;
}

/* ---------------------------------------------------------------- answers */

/* Notify's error class (`errors[0].error`): letters only, at most 40; "" when none. */
static void error_class(const char *body, size_t len, char out[48])
{
    out[0] = '\0';
    if (body == NULL || len == 0)
        return;
    json_t *o = json_loadb(body, len, 0, NULL);
    const char *e = json_string_value(
        json_object_get(json_array_get(json_object_get(o, "errors"), 0), "error"));
    if (e) {
        size_t n = 0;
        for (; e[n] && n < 40; n++)
            if (!((e[n] >= 'A' && e[n] <= 'Z') || (e[n] >= 'a' && e[n] <= 'z')))
                break;
        if (e[n] == '\0') {
            memcpy(out, e, n);
            out[n] = '\0';
        }
    }
    json_decref(o);
}

void provider_notify_classify(int result, long status, const char *body, size_t len,
                              int64_t retry_after_s, struct provider_result *out)
{
    memset(out, 0, sizeof *out);
    out->retry_after_ms = retry_after_s >= 0 ? retry_after_s * 1000 : -1;
    if (result != CURLE_OK || status == 0) {
        out->outcome = PROVIDER_TRANSIENT;
        out->retry_after_ms = -1;
        snprintf(out->error, sizeof out->error, "notify: %s",
                 result == CURLE_OPERATION_TIMEDOUT ? "timeout"
                 : result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_HOST ||
                         result == CURLE_GOT_NOTHING || result == CURLE_RECV_ERROR ||
                         result == CURLE_SEND_ERROR || result == CURLE_PARTIAL_FILE
                     ? "connection error"
                     : curl_easy_strerror(result));
        return;
    }
    char cls[48];
    error_class(body, len, cls);
    snprintf(out->error, sizeof out->error, "notify %ld%s%s", status, cls[0] ? " " : "", cls);
    if (status >= 200 && status < 300) {
        out->outcome = PROVIDER_ACCEPTED;
        out->error[0] = '\0';
        json_t *o = json_loadb(body ? body : "", len, 0, NULL);
        const char *id = json_string_value(json_object_get(o, "id"));
        if (id && strlen(id) < sizeof out->ref)
            snprintf(out->ref, sizeof out->ref, "%s", id);
        json_decref(o);
    } else if (status == 400) {
        out->outcome = PROVIDER_PERMANENT;
    } else if (status == 403) {
        out->outcome = PROVIDER_AUTH;
    } else if (status == 429) {
        out->outcome =
            strcmp(cls, "TooManyRequestsError") == 0 ? PROVIDER_DAILY_LIMIT : PROVIDER_RATE_LIMITED;
    } else {
        /* 5xx; and any other answer Notify does not document (a proxy's 404 or 502): a
         * message is never given up because of a configuration slip, it is retried */
        out->outcome = PROVIDER_TRANSIENT;
    }
}

/* ---------------------------------------------------------------- transfers */

static void transfer_free(struct transfer *t)
{
    struct notify_provider *np = t->np;
    if (t->prev)
        t->prev->next = t->next;
    else
        np->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    if (t->request) {
        explicit_bzero(t->request, strlen(t->request));
        free(t->request);
    }
    free(t->response);
    free(t);
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;
    size_t keep = t->len + n > MAX_RESPONSE ? MAX_RESPONSE - t->len : n;
    if (keep > 0) {
        char *r = realloc(t->response, t->len + keep + 1);
        if (r == NULL)
            return 0; /* aborts the transfer: retried */
        t->response = r;
        memcpy(r + t->len, p, keep);
        t->len += keep;
        r[t->len] = '\0';
    }
    return n;
}

static void done_cb(void *arg, CURL *easy, CURLcode result)
{
    struct transfer *t = arg;
    long status = 0;
    curl_off_t retry_after = -1;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK || retry_after <= 0)
        retry_after = -1;
    struct provider_result res;
    provider_notify_classify(result, status, t->response, t->len, (int64_t)retry_after, &res);
    provider_done_fn done = t->done;
    void *darg = t->arg;
    transfer_free(t);
    done(darg, &res);
}

static json_t *clean_personalisation(const json_t *in)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        char *c = template_clean_value(json_string_value(v));
        if (c == NULL || json_object_set_new(o, k, json_string(c)) != 0) {
            free(c);
            json_decref(o);
            return NULL;
        }
        free(c);
    }
    return o;
}

static int notify_send(void *impl, const struct provider_message *m, provider_done_fn done,
                       void *arg)
{
    struct notify_provider *np = impl;
    const char *template_id = config_notify_template_id(&np->lookup, m->template_name, m->language);
    if (template_id == NULL)
        return -1; /* configuration checks make this impossible */
    struct transfer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -1;
    t->np = np;
    t->done = done;
    t->arg = arg;
    t->next = np->transfers;
    if (np->transfers)
        np->transfers->prev = t;
    np->transfers = t;

    json_t *pers = clean_personalisation(m->personalisation);
    json_t *req = pers ? json_pack("{s:s, s:s, s:o, s:s}", "template_id", template_id,
                                   np->channel == TEMPLATE_EMAIL ? "email_address" : "phone_number",
                                   m->recipient, "personalisation", pers, "reference", m->id)
                       : NULL;
    t->request = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    char *jwt = provider_notify_jwt(np->service_id, np->secret, (int64_t)time(NULL));
    char *auth = NULL;
    if (jwt == NULL || asprintf(&auth, "Authorization: Bearer %s", jwt) < 0)
        auth = NULL;
    free(jwt);
    t->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (t->headers && auth)
        t->headers = curl_slist_append(t->headers, auth);
    if (t->headers)
        t->headers = curl_slist_append(t->headers, "User-Agent: frontdoord/" FRONTDOOR_VERSION);
    free(auth);
    t->easy = curl_easy_init();
    if (t->request == NULL || t->headers == NULL || t->easy == NULL) {
        transfer_free(t);
        return -1;
    }
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, np->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(t->request));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, np->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     np->timeout_ms < 10000 ? np->timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (curlev_add(np->cv, e, done_cb, t) != 0) {
        transfer_free(t);
        return -1;
    }
    return 0;
}

static void notify_destroy(void *impl)
{
    struct notify_provider *np = impl;
    if (np == NULL)
        return;
    while (np->transfers) {
        struct transfer *t = np->transfers;
        curlev_remove(np->cv, t->easy);
        transfer_free(t);
    }
    curlev_free(np->cv);
    for (size_t i = 0; i < np->n_templates; i++) {
        free(np->templates[i].key);
        free(np->templates[i].value);
    }
    free(np->templates);
    free(np->url);
    OPENSSL_cleanse(np->secret, sizeof np->secret);
    free(np);
}

static const struct provider_ops notify_ops = {
    .name = "notify",
    .renders = false,
    .send = notify_send,
    .destroy = notify_destroy,
};

int provider_notify_new(struct event_base *base, enum template_channel channel,
                        const struct channel_config *ch, struct provider *out, char *err,
                        size_t errlen)
{
    struct notify_provider *np = calloc(1, sizeof *np);
    if (np == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    np->channel = channel;
    if (provider_notify_parse_key(ch->notify_api_key, np->service_id, np->secret) != 0) {
        snprintf(err, errlen,
                 "the API key does not end with -<service id>-<secret key> (two UUIDs)");
        free(np);
        return -1;
    }
    if (curlev_new(base, &np->cv, err, errlen) != 0) {
        OPENSSL_cleanse(np->secret, sizeof np->secret);
        free(np);
        return -1;
    }
    const char *base_url = ch->notify_url;
    size_t bl = strlen(base_url);
    while (bl > 0 && base_url[bl - 1] == '/')
        bl--;
    if (asprintf(&np->url, "%.*s/v2/notifications/%s", (int)bl, base_url,
                 channel == TEMPLATE_EMAIL ? "email" : "sms") < 0)
        np->url = NULL;
    np->timeout_ms = (long)(ch->timeout_s > 0 ? ch->timeout_s : 30) * 1000L;
    np->templates = calloc(ch->n_notify_templates + 1, sizeof *np->templates);
    bool oom = np->url == NULL || np->templates == NULL;
    for (size_t i = 0; !oom && i < ch->n_notify_templates; i++) {
        np->templates[i].key = strdup(ch->notify_templates[i].key);
        np->templates[i].value = strdup(ch->notify_templates[i].value);
        np->n_templates++;
        oom = !np->templates[i].key || !np->templates[i].value;
    }
    if (oom) {
        snprintf(err, errlen, "out of memory");
        notify_destroy(np);
        return -1;
    }
    np->lookup.notify_templates = np->templates;
    np->lookup.n_notify_templates = np->n_templates;
    out->ops = &notify_ops;
    out->impl = np;
    return 0;
}
