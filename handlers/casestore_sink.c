/* casestore_sink: adapts the case store to intake's sink interface. */
#include <stdint.h>
#include <stdlib.h>

#include "frontdoor/casestore_sink.h"

struct cs_sink {
    struct sink sink;
    struct casestore **cs; /* owned, n of them */
    size_t n;
};

size_t casestore_sink_pick(const char *referral_id, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)(referral_id ? referral_id : ""); *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return n > 1 ? (size_t)(h % n) : 0;
}

static void on_done(void *arg, const struct casestore_result *res)
{
    (void)res;
    sink_item_complete(arg, SINK_DURABLE);
}

static void cs_submit(void *impl, struct sink_item *item)
{
    struct cs_sink *s = impl;
    struct casestore_source src = {
        .kind = item->kind,
        .topic = item->topic,
        .partition = item->partition,
        .offset = item->offset,
    };
    /* On failure (out of memory) the item is abandoned: consumed again after a restart. */
    struct casestore *cs = s->cs[casestore_sink_pick(item->ev.referral_id, s->n)];
    if (casestore_submit(cs, &src, item->bytes, item->len, &item->ev, on_done, item) != 0)
        sink_item_complete(item, SINK_ABANDONED);
}

static void cs_set_policy(void *impl, const struct policy *policy)
{
    struct cs_sink *s = impl;
    for (size_t i = 0; i < s->n; i++)
        casestore_set_policy(s->cs[i], policy);
}

static size_t cs_in_flight(const void *impl)
{
    const struct cs_sink *s = impl;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += casestore_pending(s->cs[i]);
    return n;
}

static void cs_destroy(void *impl)
{
    struct cs_sink *s = impl;
    for (size_t i = 0; i < s->n; i++)
        casestore_free(s->cs[i]);
    free(s->cs);
    free(s);
}

static const struct sink_ops cs_ops = {
    .name = "casestore",
    .submit = cs_submit,
    .set_policy = cs_set_policy,
    .in_flight = cs_in_flight,
    .destroy = cs_destroy,
};

int casestore_sink_new(struct casestore *const *cs, size_t n, struct sink **out)
{
    struct cs_sink *s = calloc(1, sizeof *s);
    if (s != NULL)
        s->cs = calloc(n, sizeof *s->cs);
    if (s == NULL || s->cs == NULL) {
        free(s);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        s->cs[i] = cs[i];
    s->n = n;
    s->sink.ops = &cs_ops;
    s->sink.impl = s;
    *out = &s->sink;
    return 0;
}
