/* route: derived facts, the ordered rules, deadlines and case-event re-routes.
 *
 * Hot path: one pass over the referral's JSON computes every fact; the compiled rules
 * are a node array evaluated by a small recursive walk; only the rule that matched is
 * explained in words. Nothing is allocated and nothing global is touched. Reasons are
 * built from ids, codes and fixed words only, never from the referral's free text,
 * names, contacts, dates of birth or postcodes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/route.h"

/* ---------------------------------------------------------------- small helpers */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* A JSON string as bytes (NUL-free use needs strlen == len). */
static const char *str_of(const json_t *v, size_t *len)
{
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

static bool need_in(const struct need_set *s, int i)
{
    return (s->bits[i / 64] >> (i % 64)) & 1u;
}

/* Bounded reason builder: appends, silently cutting at the slot size. */
struct rb {
    char *s;
    size_t n;
};

static void rb_mem(struct rb *b, const char *p, size_t len)
{
    if (b->n >= ROUTE_REASON_MAX - 1)
        return; /* full (written so GCC's -O2 overread check sees len cannot wrap) */
    if (len > ROUTE_REASON_MAX - 1 - b->n)
        len = ROUTE_REASON_MAX - 1 - b->n;
    memcpy(b->s + b->n, p, len);
    b->n += len;
    b->s[b->n] = '\0';
}

static void rb_str(struct rb *b, const char *s)
{
    rb_mem(b, s, strlen(s));
}

static void rb_int(struct rb *b, long v)
{
    char tmp[24];
    int i = 0;
    bool neg = v < 0;
    unsigned long u = neg ? 0ul - (unsigned long)v : (unsigned long)v;
    do {
        tmp[sizeof tmp - 1 - i++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        tmp[sizeof tmp - 1 - i++] = '-';
    rb_mem(b, tmp + sizeof tmp - i, (size_t)i);
}

/* Reasons on a decision: deduplicated; past the limit the last says how many more. */
struct reasons {
    struct decision *d; /* with no reasons when this began */
    int dropped;
    unsigned char len[ROUTE_MAX_REASONS]; /* of d's reasons: most differ in length */
    char scratch[ROUTE_REASON_MAX];       /* written when the decision is full */
};

static struct rb reason_begin(struct reasons *r)
{
    struct rb b = {NULL, 0};
    if (r->d->n_reasons >= ROUTE_MAX_REASONS) {
        b.s = r->scratch;
        b.s[0] = '\0';
        return b;
    }
    b.s = r->d->reasons[r->d->n_reasons];
    b.s[0] = '\0';
    return b;
}

static void reason_end(struct reasons *r, struct rb *b)
{
    struct decision *d = r->d;
    if (d->n_reasons >= ROUTE_MAX_REASONS) {
        r->dropped++;
        return;
    }
    for (size_t i = 0; i < d->n_reasons; i++)
        if (r->len[i] == b->n && memcmp(d->reasons[i], b->s, b->n) == 0)
            return;
    _Static_assert(ROUTE_REASON_MAX <= 256, "a reason's length is kept in a byte");
    r->len[d->n_reasons++] = (unsigned char)b->n;
}

static void reason_add(struct reasons *r, const char *text)
{
    struct rb b = reason_begin(r);
    rb_str(&b, text);
    reason_end(r, &b);
}

static void reasons_finish(struct reasons *r)
{
    if (r->dropped == 0)
        return;
    struct rb b = {r->d->reasons[ROUTE_MAX_REASONS - 1], 0};
    rb_str(&b, "and ");
    rb_int(&b, r->dropped + 1);
    rb_str(&b, " more reasons");
}

/* ---------------------------------------------------------------- postcodes */

/* Length of a white-space character at p (Unicode White_Space, as UTF-8), or 0. */
static size_t space_len(const unsigned char *p, size_t left)
{
    if ((*p >= 0x09 && *p <= 0x0d) || *p == 0x20 || (*p >= 0x1c && *p <= 0x1f))
        return 1;
    if (left >= 2 && p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
        return 2;
    if (left >= 3) {
        if (p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80)
            return 3;
        if (p[0] == 0xe2 && p[1] == 0x80 &&
            ((p[2] >= 0x80 && p[2] <= 0x8a) || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
            return 3;
        if (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f)
            return 3;
        if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
            return 3;
    }
    return 0;
}

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool route_postcode_district(const char *postcode, size_t len, char out[DIRECTORY_DISTRICT_MAX + 1])
{
    char buf[8];
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)postcode;
    out[0] = '\0';
    for (size_t i = 0; i < len;) {
        size_t sl = space_len(p + i, len - i);
        if (sl) {
            i += sl;
            continue;
        }
        if (n == 7)
            return false;
        char c = (char)p[i++];
        buf[n++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    if (n < 5)
        return false;
    /* inward: a digit and two letters */
    if (!is_digit(buf[n - 3]) || !is_upper(buf[n - 2]) || !is_upper(buf[n - 1]))
        return false;
    /* outward: 1-2 letters, a digit, then optionally a letter or digit */
    size_t ow = n - 3, i = 0;
    while (i < ow && i < 2 && is_upper(buf[i]))
        i++;
    if (i == 0 || i >= ow || !is_digit(buf[i]))
        return false;
    i++;
    if (i < ow && (is_digit(buf[i]) || is_upper(buf[i])))
        i++;
    if (i != ow)
        return false;
    memcpy(out, buf, ow);
    out[ow] = '\0';
    return true;
}

/* ---------------------------------------------------------------- facts */

_Static_assert(sizeof((struct event_referral *)0)->district == DIRECTORY_DISTRICT_MAX + 1,
               "event_referral.district holds a district");

void route_derive_facts(const struct policy *p, const struct event *ev, bool consent_override,
                        struct route_facts *f)
{
    const struct rules *r = p->rules;
    const struct directory *dir = p->directory;
    const struct event_referral *x = &ev->ref; /* picked out by event_parse */
    memset(f, 0, sizeof *f);
    f->occurred_at_s = floor_div(ev->occurred_at_ms, 1000);
    f->received_day = caltime_local_day(dir->calendar.zone, f->occurred_at_s);

    f->immediate_risk = x->immediate_risk;
    f->consent = consent_override || x->early_help;
    f->send = x->send;

    /* level: a JSON number with a whole value 1-4 ("2", true, 2.5 are not) */
    if (!x->has_level)
        f->problems |= PROBLEM_LEVEL_MISSING;
    else if (x->level)
        f->level = x->level;
    else
        f->problems |= PROBLEM_LEVEL_INVALID;

    const json_t *needs = x->needs;
    /* needs: a non-empty array of vocabulary codes */
    f->needs_json = needs;
    if (!needs) {
        f->problems |= PROBLEM_NEEDS_MISSING;
    } else if (!json_is_array(needs)) {
        f->problems |= PROBLEM_NEEDS_NOT_ARRAY;
    } else if (json_array_size(needs) == 0) {
        f->problems |= PROBLEM_NEEDS_EMPTY;
    } else {
        f->has_needs = true;
        const char *unknown[RULES_MAX_COUNT + 1];
        size_t unknown_len[RULES_MAX_COUNT + 1];
        int n_unknown = 0;
        size_t n = json_array_size(needs);
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const char *s = str_of(json_array_get(needs, i), &len);
            if (!s) {
                f->problems |= PROBLEM_NEEDS_NOT_STRING;
                f->unknown_needs = true;
                continue;
            }
            int idx = rules_find_need(r, s, len);
            if (idx >= 0) {
                f->needs.bits[idx / 64] |= (uint64_t)1 << (idx % 64);
                continue;
            }
            f->problems |= PROBLEM_NEEDS_UNKNOWN;
            f->unknown_needs = true;
            /* distinct strings, counted only as far as any rule can ask */
            if (n_unknown > RULES_MAX_COUNT)
                continue;
            bool seen = false;
            for (int k = 0; k < n_unknown && !seen; k++)
                seen = unknown_len[k] == len && memcmp(unknown[k], s, len) == 0;
            if (!seen) {
                unknown[n_unknown] = s;
                unknown_len[n_unknown++] = len;
            }
        }
        int known = 0;
        for (int w = 0; w < RULES_NEED_WORDS; w++)
            for (uint64_t b = f->needs.bits[w]; b; b &= b - 1)
                known++; /* a few bits: cheaper than a popcount call without -mpopcnt */
        f->distinct_needs = known + n_unknown;
    }

    /* child.id: a non-empty string */
    if (!x->has_child_id) {
        f->problems |= PROBLEM_CHILD_ID_MISSING;
    } else if (!x->child_id || x->child_id_len == 0) {
        f->problems |= PROBLEM_CHILD_ID_INVALID;
    } else {
        f->child_id = x->child_id;
        f->child_id_len = x->child_id_len;
    }

    /* dates: date_of_birth, or expected_due_date for a pre-birth referral */
    if (!x->has_dob && !x->has_edd)
        f->problems |= PROBLEM_NO_BIRTH_DATE;
    if (x->has_edd && !x->edd_valid)
        f->problems |= PROBLEM_EDD_INVALID;
    f->pre_birth = !x->has_dob && x->has_edd;
    if (x->has_dob) {
        if (!x->dob_valid) {
            f->problems |= PROBLEM_DOB_INVALID;
        } else {
            /* valid dates, so the later (year, month, day) is the later day */
            struct civil_date on = caltime_civil_from_days(f->received_day), b = x->dob;
            if (b.year != on.year     ? b.year > on.year
                : b.month != on.month ? b.month > on.month
                                      : b.day > on.day) {
                f->problems |= PROBLEM_DOB_AFTER_RECEIVED;
            } else {
                f->has_age = true;
                f->age = caltime_age_years(b, on);
            }
        }
    }

    /* placement: district -> locality and hub; the school; the school's locality */
    if (x->district[0]) {
        memcpy(f->district, x->district, sizeof f->district);
        const struct dir_district *dd =
            directory_find_district(dir, f->district, strlen(f->district));
        if (dd) {
            f->locality = dd->locality;
            f->hub = dd->hub;
        }
    }
    if (x->school_urn)
        f->school = directory_find_school(dir, x->school_urn, x->school_urn_len);
    if (!f->locality && f->school && f->school->locality) {
        f->locality = f->school->locality;
        f->locality_from_school = true;
    }

    if (x->family_id && x->family_id_len > 0) {
        f->family_id = x->family_id;
        f->family_id_len = x->family_id_len;
    }
}

/* ---------------------------------------------------------------- evaluation */

struct eval {
    const struct rules *r;
    const struct route_facts *f;
    const struct route_history *h;
    const char *referral_id;
    const struct history_case *bound; /* the case found by the last history atom */
    /* The facts the atoms read, laid out once per decision so an atom is a load and a
     * test (a bit per enum rule_fact): true flags, `known` facts, numbers with a value. */
    unsigned flags, known, has_num;
    int num[FACT_DISTRICT + 1];
};

static void eval_init(struct eval *e, const struct rules *r, const struct route_facts *f,
                      const struct route_history *h, const char *referral_id)
{
    memset(e, 0, sizeof *e);
    e->r = r;
    e->f = f;
    e->h = h;
    e->referral_id = referral_id;
    e->flags = (unsigned)f->immediate_risk << FACT_IMMEDIATE_RISK |
               (unsigned)f->consent << FACT_CONSENT | (unsigned)f->send << FACT_SEND |
               (unsigned)f->pre_birth << FACT_PRE_BIRTH |
               (unsigned)(f->problems != 0) << FACT_INCOMPLETE;
    e->known = (unsigned)(f->locality != NULL) << FACT_LOCALITY |
               (unsigned)(f->hub != NULL) << FACT_HUB |
               (unsigned)(f->school != NULL) << FACT_SCHOOL |
               (unsigned)(f->district[0] != '\0') << FACT_DISTRICT |
               (unsigned)f->has_age << FACT_AGE | (unsigned)(f->level > 0) << FACT_LEVEL;
    e->has_num = (unsigned)f->has_age << FACT_AGE | (unsigned)(f->level > 0) << FACT_LEVEL |
                 1u << FACT_DISTINCT_NEEDS;
    e->num[FACT_LEVEL] = f->level;
    e->num[FACT_AGE] = f->age;
    e->num[FACT_DISTINCT_NEEDS] = f->distinct_needs;
}

/* any_need / every_need */
static bool need_holds(const struct route_facts *f, const struct rule_node *nd)
{
    if (nd->op == OP_ANY_NEED) {
        for (int w = 0; w < RULES_NEED_WORDS; w++)
            if (f->needs.bits[w] & nd->needs.bits[w])
                return true;
        return false;
    }
    /* vacuous truth is no truth here: no needs, or an unknown one, is not "every" */
    if (!f->has_needs || f->unknown_needs)
        return false;
    uint64_t any = 0;
    for (int w = 0; w < RULES_NEED_WORDS; w++) {
        if (f->needs.bits[w] & ~nd->needs.bits[w])
            return false;
        any |= f->needs.bits[w];
    }
    return any != 0;
}

/* The bits the compiled conditions test (rules.h, struct rule_term): number atoms from
 * the tables (the atoms of an unknown number never hold), need atoms one by one. */
static uint64_t atom_bits(struct eval *e)
{
    _Static_assert(FACT_DISTRICT < RULES_ATOM_BASE, "fact bits overlap the atoms");
    const struct rules *r = e->r;
    uint64_t bits = e->flags | e->known;
    for (int k = 0; k < RULES_NUMBER_FACTS; k++) {
        enum rule_fact fact = rules_number_facts[k];
        if (!(e->has_num >> fact & 1u))
            continue;
        int v = e->num[fact];
        if (v >= 0 && v < RULES_NUM_VALUES) {
            bits |= r->num_atoms[k][v];
            continue;
        }
        for (size_t i = 0; i < r->n_atoms; i++) {
            const struct rule_node *nd = &r->nodes[r->atoms[i]];
            if ((nd->op == OP_CMP || nd->op == OP_IN) && nd->fact == fact)
                bits |= (uint64_t)rules_number_holds(nd, v) << (RULES_ATOM_BASE + i);
        }
    }
    for (size_t j = 0; j < r->n_need_atoms; j++)
        bits |= (uint64_t)need_holds(e->f, &r->nodes[r->atoms[r->need_atoms[j]]])
                << (RULES_ATOM_BASE + r->need_atoms[j]);
    return bits;
}

static bool same_str(const char *a, const char *b, size_t blen)
{
    return a && b && strlen(a) == blen && memcmp(a, b, blen) == 0;
}

/* Rules 5 and 6: the matching case decided most recently (ties: the larger referral id,
 * so the answer does not depend on the order the case store lists them). */
static const struct history_case *find_case(const struct eval *e, const struct rule_node *nd)
{
    const struct route_history *h = e->h;
    if (!h)
        return NULL;
    bool family = nd->op == OP_FAMILY_CASE;
    const struct history_case *list = family ? h->family_cases : h->child_cases;
    size_t n = family ? h->n_family_cases : h->n_child_cases;
    if (family ? !e->f->family_id : !e->f->child_id)
        return NULL;
    int64_t occurred_ms = e->f->occurred_at_s * 1000;
    const struct history_case *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct history_case *c = &list[i];
        if ((unsigned)c->route >= ROUTE_COUNT || !(nd->routes >> c->route & 1u))
            continue;
        if (!c->destination || strlen(c->destination) >= ROUTE_DEST_MAX)
            continue;
        if (e->referral_id && c->referral_id && strcmp(c->referral_id, e->referral_id) == 0)
            continue; /* the case being decided is not its own history */
        if (family && same_str(c->child_id, e->f->child_id, e->f->child_id_len))
            continue; /* rule 6 is about another child of the family */
        if (!c->open) {
            if (nd->within_days < 0)
                continue;
            /* closed no earlier than N x 24 h before occurred_at (a case closed after
             * occurred_at was still open when the referral came) */
            if (c->closed_at_ms < occurred_ms - (int64_t)nd->within_days * 86400000)
                continue;
        }
        if (!best || c->decided_at_ms > best->decided_at_ms ||
            (c->decided_at_ms == best->decided_at_ms && c->referral_id && best->referral_id &&
             strcmp(c->referral_id, best->referral_id) > 0))
            best = c;
    }
    return best;
}

/* The value of a number fact; false when unknown. */
static bool number_fact(const struct route_facts *f, enum rule_fact fact, int *v)
{
    switch (fact) {
    case FACT_LEVEL:
        *v = f->level;
        return f->level > 0;
    case FACT_AGE:
        *v = f->age;
        return f->has_age;
    case FACT_DISTINCT_NEEDS:
        *v = f->distinct_needs;
        return true;
    default:
        return false;
    }
}

static bool eval_node(struct eval *e, int n)
{
    const struct rule_node *nd = &e->r->nodes[n];
    const struct route_facts *f = e->f;
    switch (nd->op) {
    case OP_ALWAYS:
        return true;
    case OP_AND:
        return eval_node(e, nd->a) && eval_node(e, nd->b);
    case OP_OR:
        return eval_node(e, nd->a) || eval_node(e, nd->b);
    case OP_NOT:
        return !eval_node(e, nd->a);
    case OP_FLAG:
        return e->flags >> nd->fact & 1u;
    case OP_KNOWN:
        return e->known >> nd->fact & 1u;
    case OP_CMP:
    case OP_IN:
        return (e->has_num >> nd->fact & 1u) && rules_number_holds(nd, e->num[nd->fact]);
    case OP_ANY_NEED:
    case OP_EVERY_NEED:
        return need_holds(f, nd);
    case OP_CHILD_CASE:
    case OP_FAMILY_CASE:
        e->bound = find_case(e, nd);
        return e->bound != NULL;
    }
    return false;
}

/* ---------------------------------------------------------------- explanation */

static void rb_set_name(struct rb *b, const struct rule_node *nd)
{
    rb_str(b, nd->set_name[0] ? nd->set_name : "the listed codes");
}

/* The first vocabulary code (by index) of the referral that is (in_set) or is not in
 * the node's set; NULL when none. */
static const struct need_code *first_code(const struct rules *r, const struct route_facts *f,
                                          const struct need_set *set, bool in_set)
{
    for (size_t i = 0; i < r->n_codes; i++) {
        int idx = r->codes[i].index;
        if (need_in(&f->needs, idx) && need_in(set, idx) == in_set)
            return &r->codes[i];
    }
    return NULL;
}

static bool quotable(const char *s, size_t len)
{
    if (len == 0 || len > 40 || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || is_digit(s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* Rule 2: one reason per problem, naming the field. */
static void explain_problems(const struct eval *e, struct reasons *rs)
{
    const struct route_facts *f = e->f;
    unsigned p = f->problems;
    if (p & PROBLEM_LEVEL_MISSING)
        reason_add(rs, "level_of_need missing");
    if (p & PROBLEM_LEVEL_INVALID)
        reason_add(rs, "level_of_need not a whole number from 1 to 4");
    if (p & PROBLEM_NEEDS_MISSING)
        reason_add(rs, "needs missing");
    if (p & PROBLEM_NEEDS_NOT_ARRAY)
        reason_add(rs, "needs not a list");
    if (p & PROBLEM_NEEDS_EMPTY)
        reason_add(rs, "needs empty");
    if (p & (PROBLEM_NEEDS_NOT_STRING | PROBLEM_NEEDS_UNKNOWN)) {
        size_t n = json_array_size(f->needs_json);
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const char *s = str_of(json_array_get(f->needs_json, i), &len);
            struct rb b;
            if (!s) {
                b = reason_begin(rs);
                rb_str(&b, "needs[");
                rb_int(&b, (long)i);
                rb_str(&b, "] not a string");
                reason_end(rs, &b);
            } else if (rules_find_need(e->r, s, len) < 0) {
                b = reason_begin(rs);
                if (quotable(s, len)) {
                    rb_str(&b, "unknown need code \"");
                    rb_mem(&b, s, len);
                    rb_str(&b, "\"");
                } else {
                    rb_str(&b, "unknown need code (not shown)");
                }
                reason_end(rs, &b);
            }
        }
    }
    if (p & PROBLEM_CHILD_ID_MISSING)
        reason_add(rs, "child.id missing");
    if (p & PROBLEM_CHILD_ID_INVALID)
        reason_add(rs, "child.id not a non-empty string");
    if (p & PROBLEM_NO_BIRTH_DATE)
        reason_add(rs, "child.date_of_birth and child.expected_due_date both missing");
    if (p & PROBLEM_DOB_INVALID)
        reason_add(rs, "child.date_of_birth not a YYYY-MM-DD date");
    if (p & PROBLEM_EDD_INVALID)
        reason_add(rs, "child.expected_due_date not a YYYY-MM-DD date");
    if (p & PROBLEM_DOB_AFTER_RECEIVED)
        reason_add(rs, "child.date_of_birth after the received date");
}

static enum rule_cmp negate(enum rule_cmp c)
{
    static const enum rule_cmp neg[] = {CMP_NE, CMP_EQ, CMP_GE, CMP_GT, CMP_LE, CMP_LT};
    return neg[c];
}

static void rb_cmp(struct rb *b, enum rule_cmp c, int v)
{
    switch (c) {
    case CMP_EQ:
        rb_int(b, v);
        break;
    case CMP_NE:
        rb_str(b, "not ");
        rb_int(b, v);
        break;
    case CMP_LT:
        rb_str(b, "under ");
        rb_int(b, v);
        break;
    case CMP_LE:
        rb_int(b, v);
        rb_str(b, " or under");
        break;
    case CMP_GT:
        rb_str(b, "over ");
        rb_int(b, v);
        break;
    case CMP_GE:
        rb_int(b, v);
        rb_str(b, " or over");
        break;
    }
}

static void explain_history(struct eval *e, const struct rule_node *nd, bool value,
                            struct reasons *rs)
{
    bool family = nd->op == OP_FAMILY_CASE;
    struct rb b = reason_begin(rs);
    const struct history_case *c = value ? find_case(e, nd) : NULL;
    if (!c) {
        rb_str(&b, family ? "no open case of another child of the family matches"
                          : "no recent case of the same child matches");
    } else {
        rb_str(&b, "case ");
        size_t idlen = c->referral_id ? strlen(c->referral_id) : 0;
        rb_mem(&b, c->referral_id ? c->referral_id : "", idlen > 64 ? 64 : idlen);
        rb_str(&b, family ? " of the same family" : " of the same child");
        rb_str(&b, c->open ? " is open (" : " closed within ");
        if (!c->open) {
            rb_int(&b, nd->within_days);
            rb_str(&b, " days (");
        }
        rb_str(&b, rules_route_name(c->route));
        rb_str(&b, ")");
    }
    reason_end(rs, &b);
}

static void explain_node(struct eval *e, int n, bool value, struct reasons *rs)
{
    const struct rule_node *nd = &e->r->nodes[n];
    const struct route_facts *f = e->f;
    struct rb b;
    int v;
    switch (nd->op) {
    case OP_ALWAYS:
        reason_add(rs, "no earlier rule matched");
        return;
    case OP_AND:
    case OP_OR: {
        /* the operands that made the outcome: all of them, or those agreeing with it */
        bool all = (nd->op == OP_AND) == value;
        if (all || eval_node(e, nd->a) == value)
            explain_node(e, nd->a, value, rs);
        if (all || eval_node(e, nd->b) == value)
            explain_node(e, nd->b, value, rs);
        return;
    }
    case OP_NOT:
        explain_node(e, nd->a, !value, rs);
        return;
    case OP_FLAG:
        switch (nd->fact) {
        case FACT_IMMEDIATE_RISK:
            reason_add(rs, value ? "safeguarding.immediate_risk is true"
                                 : "safeguarding.immediate_risk is not true");
            return;
        case FACT_CONSENT:
            reason_add(rs, value ? "family.consent.early_help is true"
                                 : "family.consent.early_help is not true");
            return;
        case FACT_SEND:
            reason_add(rs, value ? "child.send is true" : "child.send is not true");
            return;
        case FACT_PRE_BIRTH:
            reason_add(rs, value ? "pre-birth referral (expected due date, no date of birth)"
                                 : "not a pre-birth referral");
            return;
        case FACT_INCOMPLETE:
            if (value)
                explain_problems(e, rs);
            else
                reason_add(rs, "referral complete");
            return;
        default:
            return;
        }
    case OP_KNOWN:
        b = reason_begin(rs);
        switch (nd->fact) {
        case FACT_LOCALITY:
            if (!f->locality) {
                rb_str(&b, "no locality from the postcode district or the school");
            } else {
                rb_str(&b, "locality ");
                rb_str(&b, f->locality->id);
                rb_str(&b, f->locality_from_school ? " (from the school)"
                                                   : " (from the postcode district)");
            }
            break;
        case FACT_HUB:
            if (!f->hub) {
                rb_str(&b, "no family hub covers the postcode district");
            } else {
                rb_str(&b, "family hub ");
                rb_str(&b, f->hub->id);
                rb_str(&b, " covers the postcode district");
            }
            break;
        case FACT_SCHOOL:
            if (!f->school) {
                rb_str(&b, "child.school_urn is not a directory school");
            } else {
                rb_str(&b, "school ");
                rb_str(&b, f->school->urn);
                rb_str(&b, " is in the directory");
            }
            break;
        case FACT_DISTRICT:
            rb_str(&b, f->district[0] ? "postcode district known"
                                      : "child.postcode missing or not a UK postcode");
            break;
        case FACT_AGE:
            rb_str(&b, f->has_age ? "age known" : "age unknown");
            break;
        case FACT_LEVEL:
        default:
            if (f->level) {
                rb_str(&b, "level_of_need is ");
                rb_int(&b, f->level);
            } else {
                rb_str(&b, "level_of_need missing or not a level");
            }
            break;
        }
        reason_end(rs, &b);
        return;
    case OP_CMP:
    case OP_IN:
        b = reason_begin(rs);
        if (nd->fact == FACT_LEVEL) {
            if (f->level) {
                rb_str(&b, "level_of_need is ");
                rb_int(&b, f->level);
            } else {
                rb_str(&b, "level_of_need missing or not a level");
            }
        } else if (nd->fact == FACT_DISTINCT_NEEDS) {
            rb_int(&b, f->distinct_needs);
            rb_str(&b, f->distinct_needs == 1 ? " distinct need" : " distinct needs");
        } else if (!number_fact(f, nd->fact, &v)) {
            rb_str(&b, f->pre_birth ? "age unknown (pre-birth)" : "age unknown");
        } else if (nd->op == OP_CMP) {
            /* the comparison that holds, without the age itself */
            rb_str(&b, "age is ");
            rb_cmp(&b, value ? nd->cmp : negate(nd->cmp), nd->value);
        } else {
            rb_str(&b, value ? "age is one of" : "age is not one of");
            for (int i = 0; i < nd->n_list; i++) {
                rb_str(&b, " ");
                rb_int(&b, nd->list[i]);
            }
        }
        reason_end(rs, &b);
        return;
    case OP_ANY_NEED: {
        b = reason_begin(rs);
        const struct need_code *c = value ? first_code(e->r, f, &nd->needs, true) : NULL;
        if (c) {
            rb_str(&b, "need ");
            rb_str(&b, c->code);
            rb_str(&b, " is in ");
        } else {
            rb_str(&b, "no need is in ");
        }
        rb_set_name(&b, nd);
        reason_end(rs, &b);
        return;
    }
    case OP_EVERY_NEED: {
        b = reason_begin(rs);
        const struct need_code *c = value ? NULL : first_code(e->r, f, &nd->needs, false);
        if (value) {
            rb_str(&b, "every need is in ");
        } else if (!f->has_needs) {
            rb_str(&b, "no needs, so not every need is in ");
        } else if (c) {
            rb_str(&b, "need ");
            rb_str(&b, c->code);
            rb_str(&b, " is not in ");
        } else {
            rb_str(&b, "a need outside the vocabulary is not in ");
        }
        rb_set_name(&b, nd);
        reason_end(rs, &b);
        return;
    }
    case OP_CHILD_CASE:
    case OP_FAMILY_CASE:
        explain_history(e, nd, value, rs);
        return;
    }
}

/* ---------------------------------------------------------------- decisions */

/* Short ids are copied byte by byte: GCC expands a memcpy whose size it can bound into
 * `rep movs`, which took longer than the rest of resolving a destination. */
static void copy_short(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
    dst[n] = '\0';
}

static bool copy_dest(struct decision *d, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= ROUTE_DEST_MAX)
        return false;
    copy_short(d->destination, s, n);
    return true;
}

/* Resolve a destination for these facts; false when it does not apply (no locality, no
 * hub, no school, no history case). */
static bool resolve_dest(const struct dest_spec *ds, const struct route_facts *f,
                         const struct history_case *bound, struct decision *d)
{
    switch (ds->kind) {
    case DEST_TEAM:
        return copy_dest(d, ds->team);
    case DEST_REFERRER:
        return copy_dest(d, "referrer");
    case DEST_LOCALITY_TEAM:
        return f && f->locality && f->locality->targeted_team &&
               copy_dest(d, f->locality->targeted_team->id);
    case DEST_HUB:
        return f && f->hub && copy_dest(d, f->hub->id);
    case DEST_SCHOOL:
        return f && f->school && copy_dest(d, f->school->destination);
    case DEST_CASE:
        return bound && copy_dest(d, bound->destination);
    }
    return false;
}

static void set_rule_name(struct decision *d, const char *name)
{
    size_t n = strlen(name);
    if (n >= ROUTE_RULE_MAX)
        n = ROUTE_RULE_MAX - 1;
    copy_short(d->rule, name, n);
}

static int64_t local_day_of(const struct policy *p, int64_t utc_s)
{
    return caltime_local_day(p->directory->calendar.zone, utc_s);
}

struct route_due_table {
    int64_t first_day; /* local day number of at[0] */
    size_t n_days;
    int64_t *at; /* [day * PRIORITY_COUNT + priority]: UTC seconds, or DUE_TABLE_NONE */
};
#define DUE_TABLE_NONE INT64_MIN

/* The deadline from an event time and its local day (computed once by the caller). */
static bool due_from(const struct policy *p, enum priority prio, int64_t base_s, int64_t base_day,
                     int64_t *due_at_s)
{
    if ((unsigned)prio >= PRIORITY_COUNT)
        return false;
    const struct due_spec *ds = &p->rules->due[prio];
    const struct work_calendar *cal = &p->directory->calendar;
    switch (ds->kind) {
    case DUE_NONE:
        return false;
    case DUE_HOURS:
        *due_at_s = base_s + (int64_t)ds->amount * 3600;
        return true;
    case DUE_WORKING_DAYS: {
        const struct route_due_table *t = p->due_table;
        if (t && base_day >= t->first_day && base_day - t->first_day < (int64_t)t->n_days) {
            int64_t at = t->at[(size_t)(base_day - t->first_day) * PRIORITY_COUNT + prio];
            *due_at_s = at;
            return at != DUE_TABLE_NONE;
        }
        int64_t day = caltime_nth_working_day_after(cal, base_day, ds->amount);
        if (day < 0)
            return false;
        *due_at_s = caltime_local_to_utc(cal->zone, caltime_civil_from_days(day), ds->at_s);
        return true;
    }
    }
    return false;
}

int route_build_due_table(struct policy *p)
{
    const struct work_calendar *cal = &p->directory->calendar;
    p->due_table = NULL;
    if (cal->n_holidays == 0)
        return 0;
    int64_t first = cal->holidays[0] - 366, last = cal->holidays[cal->n_holidays - 1] + 366;
    if (last - first > 20 * 366)
        last = first + 20 * 366; /* a directory with decades of holidays: the rest walk */
    struct route_due_table *t = calloc(1, sizeof *t);
    size_t n = (size_t)(last - first + 1);
    int64_t *at = t ? malloc(sizeof *at * n * PRIORITY_COUNT) : NULL;
    if (!at) {
        free(t);
        return -1;
    }
    for (size_t d = 0; d < n; d++) {
        for (int prio = 0; prio < PRIORITY_COUNT; prio++) {
            int64_t due;
            /* a working-day deadline depends on the local day only, not the instant */
            bool has = p->rules->due[prio].kind == DUE_WORKING_DAYS &&
                       due_from(p, (enum priority)prio, 0, first + (int64_t)d, &due);
            at[d * PRIORITY_COUNT + (size_t)prio] = has ? due : DUE_TABLE_NONE;
        }
    }
    t->first_day = first;
    t->n_days = n;
    t->at = at;
    p->due_table = t; /* from here on due_from() reads it */
    return 0;
}

void route_free_due_table(struct route_due_table *t)
{
    if (t) {
        free(t->at);
        free(t);
    }
}

bool route_due_at(const struct policy *p, enum priority prio, int64_t occurred_at_s,
                  int64_t *due_at_s)
{
    return due_from(p, prio, occurred_at_s, local_day_of(p, occurred_at_s), due_at_s);
}

const char *route_format_due(const struct decision *d, char *buf)
{
    if (!d->has_due)
        return NULL;
    return caltime_format_utc(d->due_at_s, buf);
}

/* Route, priority, state, deadline and whom a school case notifies, once route and
 * destination are set. base_day is the local day of base_s; school the directory school
 * of a DEST_SCHOOL destination when the caller has it (saves a lookup). */
static void finish_decision(const struct policy *p, struct decision *d, bool has_priority,
                            enum priority prio, int64_t base_s, int64_t base_day,
                            const struct dir_school *school)
{
    const struct rules *r = p->rules;
    d->priority = has_priority ? prio : r->route_priority[d->route];
    d->state = r->route_state[d->route];
    d->has_due = due_from(p, d->priority, base_s, base_day, &d->due_at_s);
    d->local_day = base_day;
    d->school = NULL;
    d->notify_officer = NULL;
    d->officer_is_cover = false;
    if (d->destination[0] == 's' && strncmp(d->destination, "school-", 7) == 0) {
        d->school = school && strcmp(school->destination, d->destination) == 0
                        ? school
                        : directory_find_school(p->directory, d->destination + 7,
                                                strlen(d->destination + 7));
        if (d->school)
            d->notify_officer =
                directory_school_officer(d->school, d->local_day, &d->officer_is_cover);
    }
}

void route_decide_facts(const struct policy *p, const struct route_facts *f,
                        const char *referral_id, const struct route_history *history,
                        struct decision *out)
{
    const struct rules *r = p->rules;
    struct eval e;
    eval_init(&e, r, f, history, referral_id);
    uint64_t bits = atom_bits(&e);
    out->n_reasons = 0;
    for (size_t i = 0; i < r->n_rules; i++) {
        const struct rule *ru = &r->rules[i];
        e.bound = NULL;
        if (ru->n_terms >= 0) {
            const struct rule_term *t = r->terms + ru->first_term, *end = t + ru->n_terms;
            while (t < end && (bits & t->mask) != t->want)
                t++;
            if (t == end)
                continue;
        } else if ((e.flags & ru->need_flags) != ru->need_flags || (e.flags & ru->no_flags) != 0 ||
                   (e.known & ru->need_known) != ru->need_known || (e.known & ru->no_known) != 0 ||
                   !eval_node(&e, ru->cond)) {
            continue; /* the prefilter: a fact cond needs is not so, so it cannot hold */
        }
        const struct history_case *bound = e.bound;
        if (!resolve_dest(&ru->dest, f, bound, out))
            continue; /* a rule whose destination does not apply does not match */
        out->route = ru->route_from_case ? bound->route : ru->route;
        set_rule_name(out, ru->name);
        finish_decision(p, out, ru->has_priority, ru->priority, f->occurred_at_s, f->received_day,
                        f->school);
        struct reasons rs = {.d = out};
        explain_node(&e, ru->cond, true, &rs);
        reasons_finish(&rs);
        return;
    }
    /* Unreachable with a validated rule file (its last rule always matches); never drop
     * a referral all the same. */
    out->route = r->unplaced_route;
    resolve_dest(&r->unplaced_dest, f, NULL, out);
    set_rule_name(out, "default");
    finish_decision(p, out, false, PRIORITY_AMBER, f->occurred_at_s, f->received_day, NULL);
    struct reasons rs = {.d = out};
    reason_add(&rs, "no rule matched");
}

void route_decide_referral(const struct policy *p, const struct event *ev,
                           const struct route_history *history, struct decision *out)
{
    struct route_facts f;
    route_derive_facts(p, ev, false, &f);
    route_decide_facts(p, &f, ev->referral_id, history, out);
}

void route_case_placement(const struct policy *p, const struct event *referral,
                          const char **locality_id, const char **hub_id)
{
    struct route_facts f;
    route_derive_facts(p, referral, false, &f);
    *locality_id = f.locality ? f.locality->id : NULL;
    *hub_id = f.hub ? f.hub->id : NULL;
}

/* ---------------------------------------------------------------- case events */

static enum event_error transition_error(const struct event *ev, const struct case_view *c,
                                         const char *allowed, char *detail, size_t len)
{
    if (detail && len)
        snprintf(detail, len, "%s is allowed %s; the case is %s", event_type_name(ev->type),
                 allowed, rules_state_name(c->state));
    return EVENT_INVALID_TRANSITION;
}

static void set_detail(char *detail, size_t len, const char *msg)
{
    if (detail && len)
        snprintf(detail, len, "%s", msg);
}

enum event_error route_apply_case_event(const struct policy *p, const struct event *ev,
                                        const struct case_view *c, const struct event *referral,
                                        const struct route_history *history,
                                        enum case_effect *effect, struct decision *out,
                                        char *detail, size_t detail_len)
{
    const struct rules *r = p->rules;
    int64_t at_s = floor_div(ev->occurred_at_ms, 1000);
    *effect = CASE_EFFECT_NONE;
    set_detail(detail, detail_len, "");
    switch (ev->type) {
    case EVENT_REFERRAL_RECEIVED:
        set_detail(detail, detail_len, "referral.received is not a case event");
        return EVENT_UNKNOWN_TYPE;

    case EVENT_CONSENT_GIVEN: {
        if (c->state != CASE_AWAITING_CONSENT)
            return transition_error(ev, c, "in state awaiting_consent", detail, detail_len);
        if (!referral) {
            set_detail(detail, detail_len, "the case's referral is not available");
            return EVENT_UNKNOWN_CASE;
        }
        /* the same referral, consent now given; the deadline counts from this event */
        struct route_facts f;
        route_derive_facts(p, referral, true, &f);
        route_decide_facts(p, &f, c->referral_id, history, out);
        finish_decision(p, out, true, out->priority, at_s, local_day_of(p, at_s), f.school);
        *effect = CASE_EFFECT_REROUTE;
        return EVENT_OK;
    }

    case EVENT_CASE_TRIAGED: {
        if (c->state != CASE_TRIAGE)
            return transition_error(ev, c, "in state triage", detail, detail_len);
        enum route_kind rk;
        if (!ev->triage_route ||
            !rules_parse_route(ev->triage_route, strlen(ev->triage_route), &rk) ||
            rk == ROUTE_MANUAL_TRIAGE) {
            set_detail(detail, detail_len, "triage.route is not a route of the policy");
            return EVENT_INVALID_FIELD;
        }
        if (!ev->triage_destination ||
            !directory_has_destination(p->directory, ev->triage_destination,
                                       strlen(ev->triage_destination)) ||
            !copy_dest(out, ev->triage_destination)) {
            set_detail(detail, detail_len,
                       "triage.destination is not a destination of the directory");
            return EVENT_INVALID_FIELD;
        }
        out->route = rk;
        out->n_reasons = 0;
        set_rule_name(out, "triaged");
        finish_decision(p, out, false, PRIORITY_AMBER, at_s, local_day_of(p, at_s), NULL);
        struct reasons rs = {.d = out};
        reason_add(&rs, "staff triage decision");
        *effect = CASE_EFFECT_REROUTE;
        return EVENT_OK;
    }

    case EVENT_CASE_STEPPED_UP:
    case EVENT_CASE_STEPPED_DOWN:
    case EVENT_CASE_NO_COORDINATOR: {
        if (c->state != CASE_ALLOCATED)
            return transition_error(ev, c, "in state allocated", detail, detail_len);
        const struct step_rule *st = NULL;
        for (size_t i = 0; i < r->n_steps && !st; i++)
            if (r->steps[i].on == ev->type && (unsigned)c->route < ROUTE_COUNT &&
                (r->steps[i].from_routes >> c->route & 1u))
                st = &r->steps[i];
        const char *name = ev->type == EVENT_CASE_STEPPED_UP     ? "stepped_up"
                           : ev->type == EVENT_CASE_STEPPED_DOWN ? "stepped_down"
                                                                 : "no_coordinator";
        if (!st) {
            if (detail && detail_len)
                snprintf(detail, detail_len, "the policy has no %s for a case on route %s", name,
                         rules_route_name(c->route));
            return EVENT_INVALID_TRANSITION;
        }
        /* placement from the referral when we have it, else what the case store kept */
        struct route_facts f;
        memset(&f, 0, sizeof f);
        if (referral) {
            route_derive_facts(p, referral, false, &f);
        } else {
            if (c->locality_id)
                f.locality =
                    directory_find_locality(p->directory, c->locality_id, strlen(c->locality_id));
            if (c->hub_id) {
                const struct dir_team *t =
                    directory_find_team(p->directory, c->hub_id, strlen(c->hub_id));
                f.hub = t && t->kind && strcmp(t->kind, "family_hub") == 0 ? t : NULL;
            }
        }
        out->n_reasons = 0;
        struct reasons rs = {.d = out};
        struct rb b = reason_begin(&rs);
        rb_str(&b, name);
        rb_str(&b, " from ");
        rb_str(&b, rules_route_name(c->route));
        reason_end(&rs, &b);
        if (resolve_dest(&st->dest, &f, NULL, out)) {
            out->route = st->to;
        } else {
            out->route = r->unplaced_route;
            resolve_dest(&r->unplaced_dest, &f, NULL, out);
            reason_add(&rs, st->dest.kind == DEST_HUB ? "no family hub for the case: a person "
                                                        "must place it"
                                                      : "no locality for the case: a person must "
                                                        "place it");
        }
        set_rule_name(out, name);
        finish_decision(p, out, false, PRIORITY_AMBER, at_s, local_day_of(p, at_s), NULL);
        *effect = CASE_EFFECT_REROUTE;
        return EVENT_OK;
    }

    case EVENT_APPOINTMENT_BOOKED:
    case EVENT_APPOINTMENT_CANCELLED:
        if (c->state != CASE_ALLOCATED)
            return transition_error(ev, c, "in state allocated", detail, detail_len);
        return EVENT_OK;

    case EVENT_CASE_CLOSED:
        if (c->state == CASE_CLOSED)
            return transition_error(ev, c, "in any state but closed", detail, detail_len);
        *effect = CASE_EFFECT_CLOSE;
        return EVENT_OK;
    }
    set_detail(detail, detail_len, "unknown event type");
    return EVENT_UNKNOWN_TYPE;
}
