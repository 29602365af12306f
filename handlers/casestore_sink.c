/* casestore_sink: adapts the case store to intake's sink interface. */
#include <stdlib.h>

#include "frontdoor/casestore_sink.h"

struct cs_sink {
    struct sink sink;
    struct casestore *cs; /* owned */
};

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
    if (casestore_submit(s->cs, &src, item->bytes, item->len, &item->ev, on_done, item) != 0)
        sink_item_complete(item, SINK_ABANDONED);
}

static void cs_set_policy(void *impl, const struct policy *policy)
{
    struct cs_sink *s = impl;
    casestore_set_policy(s->cs, policy);
}

static size_t cs_in_flight(const void *impl)
{
    const struct cs_sink *s = impl;
    return casestore_pending(s->cs);
}

static void cs_destroy(void *impl)
{
    struct cs_sink *s = impl;
    casestore_free(s->cs);
    free(s);
}

static const struct sink_ops cs_ops = {
    .name = "casestore",
    .submit = cs_submit,
    .set_policy = cs_set_policy,
    .in_flight = cs_in_flight,
    .destroy = cs_destroy,
};

int casestore_sink_new(struct casestore *cs, struct sink **out)
{
    struct cs_sink *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    s->cs = cs;
    s->sink.ops = &cs_ops;
    s->sink.impl = s;
    *out = &s->sink;
    return 0;
}
