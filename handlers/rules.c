/* rules: the rule file compiler. The grammar is in config/RULES.md; in short, one
 * statement per line, `#` starts a comment, tokens are separated by white space, and
 * conditions are boolean expressions over a closed set of facts. Every problem is
 * reported with file and line, and the whole file is checked before it is refused, so
 * one --check-config run shows every mistake. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/rules.h"

static const char *const route_names[ROUTE_COUNT] = {
    "school",      "family_hub",    "targeted_family_help", "youth_support", "family_help_panel",
    "social_care", "manual_triage", "consent_required",     "signpost",
};
static const char *const priority_names[PRIORITY_COUNT] = {"red", "amber", "green", "blue"};
static const char *const state_names[CASE_STATE_COUNT] = {"allocated", "triage", "awaiting_consent",
                                                          "closed"};

const char *rules_route_name(enum route_kind r)
{
    return (unsigned)r < ROUTE_COUNT ? route_names[r] : "?";
}

const char *rules_priority_name(enum priority p)
{
    return (unsigned)p < PRIORITY_COUNT ? priority_names[p] : "?";
}

const char *rules_state_name(enum case_state s)
{
    return (unsigned)s < CASE_STATE_COUNT ? state_names[s] : "?";
}

static int find_name(const char *const *names, int n, const char *s, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return i;
    return -1;
}

bool rules_parse_route(const char *s, size_t len, enum route_kind *out)
{
    int i = find_name(route_names, ROUTE_COUNT, s, len);
    if (i < 0)
        return false;
    *out = (enum route_kind)i;
    return true;
}

bool rules_parse_state(const char *s, size_t len, enum case_state *out)
{
    int i = find_name(state_names, CASE_STATE_COUNT, s, len);
    if (i < 0)
        return false;
    *out = (enum case_state)i;
    return true;
}

/* ---------------------------------------------------------------- errors */

struct errlist {
    char *buf;
    size_t len;
    size_t used;
    int count;
};

__attribute__((format(printf, 2, 3))) static void errlist_add(struct errlist *e, const char *fmt,
                                                              ...)
{
    e->count++;
    if (!e->buf || e->used + 1 >= e->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->buf + e->used, e->len - e->used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= e->len - e->used - 1) {
        e->used = e->len - 1;
        e->buf[e->used] = '\0';
        return;
    }
    e->used += (size_t)n;
    e->buf[e->used++] = '\n';
    e->buf[e->used] = '\0';
}

/* ---------------------------------------------------------------- tokens */

enum tok_kind { T_WORD, T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_OP };

struct tok {
    enum tok_kind kind;
    const char *s;
    size_t len;
};

#define MAX_TOKENS 512

struct define {
    char name[RULES_NAME_MAX + 1];
    int node;
};

struct parser {
    const char *path;
    struct errlist *errs;
    const struct directory *dir;
    struct rules *r;
    size_t cap_codes, cap_groups, cap_nodes, cap_rules, cap_steps, cap_defines;
    struct define *defines;
    size_t n_defines;
    bool have_route[ROUTE_COUNT];
    bool have_due[PRIORITY_COUNT];
    bool have_unplaced;
    bool have_version;
    struct rule *cur; /* the rule block being read, or NULL */
    bool cur_has_send;
    int line;
    struct tok toks[MAX_TOKENS];
    int ntok;
    int pos;
    bool failed; /* an error on this line was already reported */
};

#define PERR(p, ...)                                                                               \
    do {                                                                                           \
        char m_[400];                                                                              \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                                      \
        errlist_add((p)->errs, "%s:%d: %s", (p)->path, (p)->line, m_);                             \
        (p)->failed = true;                                                                        \
    } while (0)

static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return arr;
    *cap = *cap ? *cap * 2 : 16;
    void *na = realloc(arr, *cap * size);
    if (!na)
        abort(); /* out of memory while loading configuration */
    return na;
}

static bool tokenize(struct parser *p, const char *s, size_t len)
{
    p->ntok = 0;
    p->pos = 0;
    size_t i = 0;
    while (i < len) {
        char c = s[i];
        if (c == '#')
            break;
        if (isspace((unsigned char)c)) {
            i++;
            continue;
        }
        if (p->ntok == MAX_TOKENS) {
            PERR(p, "line too long (more than %d words)", MAX_TOKENS);
            return false;
        }
        struct tok *t = &p->toks[p->ntok++];
        t->s = s + i;
        if (c == ',') { /* commas in lists are optional separators */
            p->ntok--;
            i++;
            continue;
        }
        if (c == '(' || c == ')' || c == '[' || c == ']') {
            t->kind = c == '(' ? T_LPAREN : c == ')' ? T_RPAREN : c == '[' ? T_LBRACK : T_RBRACK;
            t->len = 1;
            i++;
            continue;
        }
        if (strchr("=!<>", c)) {
            t->kind = T_OP;
            size_t j = i + 1;
            if (j < len && s[j] == '=')
                j++;
            t->len = j - i;
            i = j;
            continue;
        }
        t->kind = T_WORD;
        size_t j = i;
        while (j < len && !isspace((unsigned char)s[j]) && !strchr("#()[],=!<>", s[j]))
            j++;
        t->len = j - i;
        i = j;
    }
    return true;
}

static bool tok_is(const struct tok *t, const char *w)
{
    return t->kind == T_WORD && t->len == strlen(w) && memcmp(t->s, w, t->len) == 0;
}

static struct tok *peek(struct parser *p)
{
    return p->pos < p->ntok ? &p->toks[p->pos] : NULL;
}

static struct tok *next(struct parser *p)
{
    return p->pos < p->ntok ? &p->toks[p->pos++] : NULL;
}

static bool accept_word(struct parser *p, const char *w)
{
    struct tok *t = peek(p);
    if (t && tok_is(t, w)) {
        p->pos++;
        return true;
    }
    return false;
}

static bool expect_word(struct parser *p, const char *w)
{
    if (accept_word(p, w))
        return true;
    struct tok *t = peek(p);
    if (t)
        PERR(p, "expected `%s`, found \"%.*s\"", w, (int)t->len, t->s);
    else
        PERR(p, "expected `%s` at the end of the line", w);
    return false;
}

static bool expect_end(struct parser *p)
{
    struct tok *t = peek(p);
    if (!t)
        return true;
    PERR(p, "unexpected \"%.*s\"", (int)t->len, t->s);
    return false;
}

static bool parse_int(struct parser *p, int lo, int hi, int *out)
{
    struct tok *t = next(p);
    if (!t || t->kind != T_WORD || t->len > 6) {
        PERR(p, "expected a whole number");
        return false;
    }
    int v = 0;
    for (size_t i = 0; i < t->len; i++) {
        if (!isdigit((unsigned char)t->s[i])) {
            PERR(p, "expected a whole number, found \"%.*s\"", (int)t->len, t->s);
            return false;
        }
        v = v * 10 + (t->s[i] - '0');
    }
    if (v < lo || v > hi) {
        PERR(p, "number %d out of range (%d-%d)", v, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

/* [a-z0-9_]{1,40}: rule names and need codes, safe to print anywhere. */
static bool valid_code(const char *s, size_t len)
{
    if (len == 0 || len > RULES_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* [A-Za-z_][A-Za-z0-9_]{0,39}: group and define names. */
static bool valid_name(const char *s, size_t len)
{
    if (len == 0 || len > RULES_NAME_MAX || isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* ---------------------------------------------------------------- vocabulary */

static int code_index(const struct rules *r, const char *s, size_t len)
{
    for (size_t i = 0; i < r->n_codes; i++)
        if (r->codes[i].len == len && memcmp(r->codes[i].code, s, len) == 0)
            return r->codes[i].index;
    return -1;
}

static const struct need_group *find_group(const struct rules *r, const char *s, size_t len)
{
    for (size_t i = 0; i < r->n_groups; i++)
        if (strlen(r->groups[i].name) == len && memcmp(r->groups[i].name, s, len) == 0)
            return &r->groups[i];
    return NULL;
}

static const struct define *find_define(const struct parser *p, const char *s, size_t len)
{
    for (size_t i = 0; i < p->n_defines; i++)
        if (strlen(p->defines[i].name) == len && memcmp(p->defines[i].name, s, len) == 0)
            return &p->defines[i];
    return NULL;
}

static void set_bit(struct need_set *s, int i)
{
    s->bits[i / 64] |= (uint64_t)1 << (i % 64);
}

/* group NAME code code ... */
static void parse_group(struct parser *p)
{
    struct rules *r = p->r;
    struct tok *name = next(p);
    if (!name || name->kind != T_WORD || !valid_name(name->s, name->len)) {
        PERR(p, "expected a group name (letters, digits, _) after `group`");
        return;
    }
    if (find_group(r, name->s, name->len)) {
        PERR(p, "group %.*s is defined twice", (int)name->len, name->s);
        return;
    }
    r->groups = grow(r->groups, &p->cap_groups, r->n_groups, sizeof *r->groups);
    struct need_group *g = &r->groups[r->n_groups++];
    memset(g, 0, sizeof *g);
    memcpy(g->name, name->s, name->len);
    g->line = p->line;
    if (!peek(p))
        PERR(p, "group %s has no need codes", g->name);
    struct tok *t;
    while ((t = next(p))) {
        if (t->kind != T_WORD || !valid_code(t->s, t->len)) {
            PERR(p, "\"%.*s\" is not a need code (1-40 characters of a-z 0-9 _)",
                 (int)(t->len > 40 ? 40 : t->len), t->s);
            continue;
        }
        int idx = code_index(r, t->s, t->len);
        if (idx < 0) {
            if (r->n_codes == RULES_MAX_NEEDS) {
                PERR(p, "more than %d need codes", RULES_MAX_NEEDS);
                return;
            }
            r->codes = grow(r->codes, &p->cap_codes, r->n_codes, sizeof *r->codes);
            struct need_code *c = &r->codes[r->n_codes];
            c->code = strndup(t->s, t->len);
            if (!c->code)
                abort();
            c->len = t->len;
            c->index = idx = (int)r->n_codes++;
        } else if (g->set.bits[idx / 64] >> (idx % 64) & 1) {
            PERR(p, "need code %.*s is listed twice in group %s", (int)t->len, t->s, g->name);
            continue;
        }
        set_bit(&g->set, idx);
    }
}

/* ---------------------------------------------------------------- expressions */

static int new_node(struct parser *p, enum rule_op op)
{
    struct rules *r = p->r;
    r->nodes = grow(r->nodes, &p->cap_nodes, r->n_nodes, sizeof *r->nodes);
    struct rule_node *n = &r->nodes[r->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->a = n->b = -1;
    n->within_days = -1;
    return (int)r->n_nodes++;
}

static int parse_or(struct parser *p);

static const char *const flag_facts[] = {"immediate_risk", "consent", "send", "pre_birth",
                                         "incomplete"};
static const enum rule_fact flag_ids[] = {FACT_IMMEDIATE_RISK, FACT_CONSENT, FACT_SEND,
                                          FACT_PRE_BIRTH, FACT_INCOMPLETE};
static const char *const num_facts[] = {"level", "age", "distinct_needs"};
const enum rule_fact rules_number_facts[RULES_NUMBER_FACTS] = {FACT_LEVEL, FACT_AGE,
                                                               FACT_DISTINCT_NEEDS};
static const char *const known_facts[] = {"locality", "hub", "school", "district", "age", "level"};
static const enum rule_fact known_ids[] = {FACT_LOCALITY, FACT_HUB, FACT_SCHOOL,
                                           FACT_DISTRICT, FACT_AGE, FACT_LEVEL};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* "[" route route ... "]" or `any`, as a bit set. */
static bool parse_routes(struct parser *p, unsigned *out, bool allow_any)
{
    *out = 0;
    if (allow_any && accept_word(p, "any")) {
        *out = (1u << ROUTE_COUNT) - 1;
        return true;
    }
    struct tok *t = next(p);
    if (!t || t->kind != T_LBRACK) {
        PERR(p, "expected a list of routes in [ ]%s", allow_any ? " or `any`" : "");
        return false;
    }
    while ((t = next(p)) && t->kind != T_RBRACK) {
        enum route_kind rk;
        if (t->kind != T_WORD || !rules_parse_route(t->s, t->len, &rk)) {
            PERR(p, "unknown route \"%.*s\"", (int)(t->len > 40 ? 40 : t->len), t->s);
            return false;
        }
        *out |= 1u << rk;
    }
    if (!t) {
        PERR(p, "missing `]`");
        return false;
    }
    if (!*out) {
        PERR(p, "empty list of routes");
        return false;
    }
    return true;
}

/* A group name or "[" code ... "]". */
static bool parse_need_set(struct parser *p, struct rule_node *n)
{
    struct tok *t = next(p);
    if (t && t->kind == T_WORD) {
        const struct need_group *g = find_group(p->r, t->s, t->len);
        if (!g) {
            PERR(p, "unknown need group \"%.*s\"", (int)(t->len > 40 ? 40 : t->len), t->s);
            return false;
        }
        n->needs = g->set;
        strcpy(n->set_name, g->name);
        return true;
    }
    if (!t || t->kind != T_LBRACK) {
        PERR(p, "expected a need group or a list of need codes in [ ]");
        return false;
    }
    bool any = false;
    while ((t = next(p)) && t->kind != T_RBRACK) {
        int idx = t->kind == T_WORD ? code_index(p->r, t->s, t->len) : -1;
        if (idx < 0) {
            PERR(p, "unknown need code \"%.*s\" (not in any group)",
                 (int)(t->len > 40 ? 40 : t->len), t->s);
            return false;
        }
        set_bit(&n->needs, idx);
        any = true;
    }
    if (!t || !any) {
        PERR(p, "expected need codes and `]`");
        return false;
    }
    return true;
}

static int parse_atom(struct parser *p)
{
    struct tok *t = next(p);
    if (!t) {
        PERR(p, "condition ends too early");
        return -1;
    }
    if (t->kind == T_LPAREN) {
        int n = parse_or(p);
        if (n < 0)
            return -1;
        struct tok *c = next(p);
        if (!c || c->kind != T_RPAREN) {
            PERR(p, "missing `)`");
            return -1;
        }
        return n;
    }
    if (t->kind != T_WORD) {
        PERR(p, "unexpected \"%.*s\" in a condition", (int)t->len, t->s);
        return -1;
    }
    if (tok_is(t, "not")) {
        int a = parse_atom(p);
        if (a < 0)
            return -1;
        int n = new_node(p, OP_NOT);
        p->r->nodes[n].a = a;
        return n;
    }
    if (tok_is(t, "always"))
        return new_node(p, OP_ALWAYS);
    int i = find_name(flag_facts, N_OF(flag_facts), t->s, t->len);
    if (i >= 0) {
        int n = new_node(p, OP_FLAG);
        p->r->nodes[n].fact = flag_ids[i];
        return n;
    }
    i = find_name(num_facts, N_OF(num_facts), t->s, t->len);
    if (i >= 0) {
        struct tok *op = next(p);
        if (op && tok_is(op, "in")) {
            int n = new_node(p, OP_IN);
            struct rule_node *nd = &p->r->nodes[n];
            nd->fact = rules_number_facts[i];
            struct tok *b = next(p);
            if (!b || b->kind != T_LBRACK) {
                PERR(p, "expected [ numbers ] after `in`");
                return -1;
            }
            while (peek(p) && peek(p)->kind != T_RBRACK) {
                if (nd->n_list == RULES_MAX_LIST) {
                    PERR(p, "more than %d numbers in a list", RULES_MAX_LIST);
                    return -1;
                }
                int v;
                if (!parse_int(p, 0, 200, &v))
                    return -1;
                p->r->nodes[n].list[p->r->nodes[n].n_list++] = v;
                nd = &p->r->nodes[n];
            }
            if (!next(p) || nd->n_list == 0) {
                PERR(p, "expected numbers and `]`");
                return -1;
            }
            return n;
        }
        static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">="};
        int c = op && op->kind == T_OP ? find_name(ops, 6, op->s, op->len) : -1;
        if (c < 0) {
            PERR(p, "expected a comparison (= != < <= > >=) or `in` after %.*s", (int)t->len, t->s);
            return -1;
        }
        int v;
        if (!parse_int(p, 0, rules_number_facts[i] == FACT_DISTINCT_NEEDS ? RULES_MAX_COUNT : 200,
                       &v))
            return -1;
        int n = new_node(p, OP_CMP);
        p->r->nodes[n].fact = rules_number_facts[i];
        p->r->nodes[n].cmp = (enum rule_cmp)c;
        p->r->nodes[n].value = v;
        return n;
    }
    if (tok_is(t, "known")) {
        struct tok *f = next(p);
        i = f && f->kind == T_WORD ? find_name(known_facts, N_OF(known_facts), f->s, f->len) : -1;
        if (i < 0) {
            PERR(p, "expected one of locality, hub, school, district, age, level after `known`");
            return -1;
        }
        int n = new_node(p, OP_KNOWN);
        p->r->nodes[n].fact = known_ids[i];
        return n;
    }
    if (tok_is(t, "any_need") || tok_is(t, "every_need")) {
        int n = new_node(p, tok_is(t, "any_need") ? OP_ANY_NEED : OP_EVERY_NEED);
        if (!expect_word(p, "in"))
            return -1;
        if (!parse_need_set(p, &p->r->nodes[n]))
            return -1;
        return n;
    }
    if (tok_is(t, "child_case") || tok_is(t, "family_case")) {
        int n = new_node(p, tok_is(t, "child_case") ? OP_CHILD_CASE : OP_FAMILY_CASE);
        unsigned routes;
        if (!expect_word(p, "in") || !parse_routes(p, &routes, false))
            return -1;
        p->r->nodes[n].routes = routes;
        if (accept_word(p, "closed_within")) {
            int d;
            if (!parse_int(p, 0, 3650, &d) || !expect_word(p, "days"))
                return -1;
            p->r->nodes[n].within_days = d;
        }
        return n;
    }
    const struct define *d = find_define(p, t->s, t->len);
    if (d)
        return d->node;
    PERR(p, "unknown field or predicate \"%.*s\"", (int)(t->len > 40 ? 40 : t->len), t->s);
    return -1;
}

static int parse_and(struct parser *p)
{
    int left = parse_atom(p);
    while (left >= 0 && accept_word(p, "and")) {
        int right = parse_atom(p);
        if (right < 0)
            return -1;
        int n = new_node(p, OP_AND);
        p->r->nodes[n].a = left;
        p->r->nodes[n].b = right;
        left = n;
    }
    return left;
}

static int parse_or(struct parser *p)
{
    int left = parse_and(p);
    while (left >= 0 && accept_word(p, "or")) {
        int right = parse_and(p);
        if (right < 0)
            return -1;
        int n = new_node(p, OP_OR);
        p->r->nodes[n].a = left;
        p->r->nodes[n].b = right;
        left = n;
    }
    return left;
}

static int parse_condition(struct parser *p)
{
    int n = parse_or(p);
    if (n >= 0 && !expect_end(p))
        return -1;
    return n;
}

/* ---------------------------------------------------------------- statements */

static bool parse_dest(struct parser *p, struct dest_spec *d, bool allow_case)
{
    struct tok *t = next(p);
    memset(d, 0, sizeof *d);
    if (!t || t->kind != T_WORD) {
        PERR(p, "expected a destination after `to`");
        return false;
    }
    if (tok_is(t, "referrer")) {
        d->kind = DEST_REFERRER;
    } else if (tok_is(t, "locality_team")) {
        d->kind = DEST_LOCALITY_TEAM;
    } else if (tok_is(t, "hub")) {
        d->kind = DEST_HUB;
    } else if (tok_is(t, "school")) {
        d->kind = DEST_SCHOOL;
    } else if (tok_is(t, "case.destination")) {
        if (!allow_case) {
            PERR(p, "case.destination is only for rules");
            return false;
        }
        d->kind = DEST_CASE;
    } else {
        d->kind = DEST_TEAM;
        if (t->len >= sizeof d->team) {
            PERR(p, "destination too long");
            return false;
        }
        memcpy(d->team, t->s, t->len);
        if (p->dir && !directory_has_destination(p->dir, t->s, t->len)) {
            PERR(p, "unknown destination \"%s\" (not a team or school of %s)", d->team,
                 p->dir->path);
            return false;
        }
    }
    return true;
}

static bool parse_route_word(struct parser *p, enum route_kind *out)
{
    struct tok *t = next(p);
    if (!t || t->kind != T_WORD || !rules_parse_route(t->s, t->len, out)) {
        if (t)
            PERR(p, "unknown route \"%.*s\"", (int)(t->len > 40 ? 40 : t->len), t->s);
        else
            PERR(p, "expected a route");
        return false;
    }
    return true;
}

static bool parse_priority_word(struct parser *p, enum priority *out)
{
    struct tok *t = next(p);
    int i = t && t->kind == T_WORD ? find_name(priority_names, PRIORITY_COUNT, t->s, t->len) : -1;
    if (i < 0) {
        PERR(p, "expected a priority (red, amber, green, blue)");
        return false;
    }
    *out = (enum priority)i;
    return true;
}

/* priority P hours N | working_days N at HH:MM | none */
static void parse_priority(struct parser *p)
{
    enum priority pr;
    if (!parse_priority_word(p, &pr))
        return;
    if (p->have_due[pr]) {
        PERR(p, "priority %s is defined twice", priority_names[pr]);
        return;
    }
    struct due_spec *d = &p->r->due[pr];
    if (accept_word(p, "none")) {
        d->kind = DUE_NONE;
    } else if (accept_word(p, "hours")) {
        d->kind = DUE_HOURS;
        if (!parse_int(p, 0, 10000, &d->amount))
            return;
    } else if (accept_word(p, "working_days")) {
        d->kind = DUE_WORKING_DAYS;
        if (!parse_int(p, 1, 366, &d->amount) || !expect_word(p, "at"))
            return;
        struct tok *t = next(p);
        if (!t || t->kind != T_WORD || t->len != 5 || t->s[2] != ':' ||
            !isdigit((unsigned char)t->s[0]) || !isdigit((unsigned char)t->s[1]) ||
            !isdigit((unsigned char)t->s[3]) || !isdigit((unsigned char)t->s[4])) {
            PERR(p, "expected a local time HH:MM after `at`");
            return;
        }
        int h = (t->s[0] - '0') * 10 + (t->s[1] - '0');
        int m = (t->s[3] - '0') * 10 + (t->s[4] - '0');
        if (h > 23 || m > 59) {
            PERR(p, "expected a local time HH:MM after `at`");
            return;
        }
        d->at_s = h * 3600 + m * 60;
    } else {
        PERR(p, "expected `none`, `hours N` or `working_days N at HH:MM` after the priority");
        return;
    }
    if (expect_end(p))
        p->have_due[pr] = true;
}

/* route R PRIORITY STATE */
static void parse_route_table(struct parser *p)
{
    enum route_kind rk;
    enum priority pr;
    if (!parse_route_word(p, &rk) || !parse_priority_word(p, &pr))
        return;
    struct tok *t = next(p);
    enum case_state st;
    if (!t || t->kind != T_WORD || !rules_parse_state(t->s, t->len, &st)) {
        PERR(p, "expected a case state (allocated, triage, awaiting_consent, closed)");
        return;
    }
    if (!expect_end(p))
        return;
    if (p->have_route[rk]) {
        PERR(p, "route %s is defined twice", route_names[rk]);
        return;
    }
    p->have_route[rk] = true;
    p->r->route_priority[rk] = pr;
    p->r->route_state[rk] = st;
}

static void parse_define(struct parser *p)
{
    struct tok *name = next(p);
    if (!name || name->kind != T_WORD || !valid_name(name->s, name->len)) {
        PERR(p, "expected a name (letters, digits, _) after `define`");
        return;
    }
    if (find_define(p, name->s, name->len) || find_group(p->r, name->s, name->len) ||
        find_name(flag_facts, N_OF(flag_facts), name->s, name->len) >= 0 ||
        find_name(num_facts, N_OF(num_facts), name->s, name->len) >= 0 || tok_is(name, "not") ||
        tok_is(name, "and") || tok_is(name, "or") || tok_is(name, "always") ||
        tok_is(name, "known") || tok_is(name, "any_need") || tok_is(name, "every_need") ||
        tok_is(name, "child_case") || tok_is(name, "family_case")) {
        PERR(p, "the name %.*s is already taken", (int)name->len, name->s);
        return;
    }
    int n = parse_condition(p);
    if (n < 0)
        return;
    p->defines = grow(p->defines, &p->cap_defines, p->n_defines, sizeof *p->defines);
    struct define *d = &p->defines[p->n_defines++];
    memset(d, 0, sizeof *d);
    memcpy(d->name, name->s, name->len);
    d->node = n;
}

static void parse_rule(struct parser *p)
{
    struct tok *name = next(p);
    if (!name || name->kind != T_WORD || !valid_code(name->s, name->len)) {
        PERR(p, "expected a rule name (1-40 characters of a-z 0-9 _) after `rule`");
        p->cur = NULL;
        return;
    }
    if (!expect_end(p))
        return;
    struct rules *r = p->r;
    for (size_t i = 0; i < r->n_rules; i++)
        if (strlen(r->rules[i].name) == name->len &&
            memcmp(r->rules[i].name, name->s, name->len) == 0)
            PERR(p, "rule %.*s is defined twice", (int)name->len, name->s);
    r->rules = grow(r->rules, &p->cap_rules, r->n_rules, sizeof *r->rules);
    struct rule *ru = &r->rules[r->n_rules++];
    memset(ru, 0, sizeof *ru);
    memcpy(ru->name, name->s, name->len);
    ru->line = p->line;
    ru->cond = -1;
    ru->history_node = -1;
    p->cur = ru;
    p->cur_has_send = false;
}

static void parse_when(struct parser *p)
{
    int n = parse_condition(p);
    struct rule *ru = p->cur;
    if (n < 0 || ru->cond == -2) {
        ru->cond = -2; /* reported already: no "has no when" on top */
        return;
    }
    if (ru->cond < 0) {
        ru->cond = n;
    } else { /* several `when` lines: all must hold */
        int a = new_node(p, OP_AND);
        p->r->nodes[a].a = ru->cond;
        p->r->nodes[a].b = n;
        ru->cond = a;
    }
}

/* send ROUTE|case.route to DEST [priority P] */
static void parse_send(struct parser *p)
{
    struct rule *ru = p->cur;
    if (p->cur_has_send) {
        PERR(p, "rule %s has two `send` lines", ru->name);
        return;
    }
    strcpy(ru->dest.team, "?"); /* a failed line is reported once, not as "no send" too */
    if (accept_word(p, "case.route")) {
        ru->route_from_case = true;
    } else if (!parse_route_word(p, &ru->route)) {
        return;
    }
    if (!expect_word(p, "to") || !parse_dest(p, &ru->dest, true))
        return;
    if (accept_word(p, "priority")) {
        if (!parse_priority_word(p, &ru->priority))
            return;
        ru->has_priority = true;
    }
    if (expect_end(p))
        p->cur_has_send = true;
}

/* on EVENT from [routes]|any send ROUTE to DEST */
static void parse_on(struct parser *p)
{
    static const char *const evs[] = {"stepped_up", "stepped_down", "no_coordinator"};
    static const enum event_type ev_ids[] = {EVENT_CASE_STEPPED_UP, EVENT_CASE_STEPPED_DOWN,
                                             EVENT_CASE_NO_COORDINATOR};
    struct tok *t = next(p);
    int e = t && t->kind == T_WORD ? find_name(evs, 3, t->s, t->len) : -1;
    if (e < 0) {
        PERR(p, "expected stepped_up, stepped_down or no_coordinator after `on`");
        return;
    }
    struct step_rule st;
    memset(&st, 0, sizeof st);
    st.on = ev_ids[e];
    st.line = p->line;
    if (!expect_word(p, "from") || !parse_routes(p, &st.from_routes, true))
        return;
    if (!expect_word(p, "send") || !parse_route_word(p, &st.to) || !expect_word(p, "to") ||
        !parse_dest(p, &st.dest, false) || !expect_end(p))
        return;
    struct rules *r = p->r;
    for (size_t i = 0; i < r->n_steps; i++)
        if (r->steps[i].on == st.on && (r->steps[i].from_routes & st.from_routes))
            PERR(p, "a route is listed for %s twice (see line %d)", evs[e], r->steps[i].line);
    r->steps = grow(r->steps, &p->cap_steps, r->n_steps, sizeof *r->steps);
    r->steps[r->n_steps++] = st;
}

/* unplaced ROUTE to TEAM */
static void parse_unplaced(struct parser *p)
{
    if (p->have_unplaced) {
        PERR(p, "`unplaced` is given twice");
        return;
    }
    if (!parse_route_word(p, &p->r->unplaced_route) || !expect_word(p, "to") ||
        !parse_dest(p, &p->r->unplaced_dest, false) || !expect_end(p))
        return;
    if (p->r->unplaced_dest.kind != DEST_TEAM && p->r->unplaced_dest.kind != DEST_REFERRER) {
        PERR(p, "`unplaced` must name a team");
        return;
    }
    p->have_unplaced = true;
}

static void parse_line(struct parser *p, const char *s, size_t len)
{
    p->failed = false;
    if (!tokenize(p, s, len) || p->ntok == 0)
        return;
    struct tok *kw = next(p);
    bool in_rule_kw = tok_is(kw, "when") || tok_is(kw, "send");
    if (in_rule_kw) {
        if (!p->cur) {
            PERR(p, "`%.*s` outside a rule (start one with `rule NAME`)", (int)kw->len, kw->s);
            return;
        }
        if (tok_is(kw, "when"))
            parse_when(p);
        else
            parse_send(p);
        return;
    }
    p->cur = NULL;
    if (tok_is(kw, "version")) {
        int v;
        if (parse_int(p, 0, 1000, &v) && expect_end(p)) {
            if (v != 1)
                PERR(p, "unsupported rule file version %d (this frontdoord reads version 1)", v);
            p->have_version = true;
        }
    } else if (tok_is(kw, "group")) {
        parse_group(p);
    } else if (tok_is(kw, "priority")) {
        parse_priority(p);
    } else if (tok_is(kw, "route")) {
        parse_route_table(p);
    } else if (tok_is(kw, "define")) {
        parse_define(p);
    } else if (tok_is(kw, "rule")) {
        parse_rule(p);
    } else if (tok_is(kw, "on")) {
        parse_on(p);
    } else if (tok_is(kw, "unplaced")) {
        parse_unplaced(p);
    } else {
        PERR(p, "unknown statement \"%.*s\"", (int)(kw->len > 40 ? 40 : kw->len), kw->s);
    }
}

/* ---------------------------------------------------------------- whole-file checks */

static bool node_is_always(const struct rules *r, int n)
{
    return n >= 0 && r->nodes[n].op == OP_ALWAYS;
}

static int count_history(const struct rules *r, int n)
{
    if (n < 0)
        return 0;
    const struct rule_node *nd = &r->nodes[n];
    if (nd->op == OP_CHILD_CASE || nd->op == OP_FAMILY_CASE)
        return 1;
    return count_history(r, nd->a) + count_history(r, nd->b);
}

/* The history atom reached from the root through `and` only, or -1. */
static int bound_history(const struct rules *r, int n)
{
    const struct rule_node *nd = &r->nodes[n];
    if (nd->op == OP_CHILD_CASE || nd->op == OP_FAMILY_CASE)
        return n;
    if (nd->op != OP_AND)
        return -1;
    int a = bound_history(r, nd->a);
    return a >= 0 ? a : bound_history(r, nd->b);
}

/* The flag and `known` atoms that node n (negated when neg) cannot hold without. */
static void necessary_bits(const struct rules *r, int n, bool neg, struct rule *ru)
{
    const struct rule_node *nd = &r->nodes[n];
    switch (nd->op) {
    case OP_AND: /* a and b: both; not (a and b): nothing certain */
    case OP_OR:  /* not (a or b) = not a and not b */
        if ((nd->op == OP_AND) != neg) {
            necessary_bits(r, nd->a, neg, ru);
            necessary_bits(r, nd->b, neg, ru);
        }
        return;
    case OP_NOT:
        necessary_bits(r, nd->a, !neg, ru);
        return;
    case OP_FLAG:
        *(neg ? &ru->no_flags : &ru->need_flags) |= 1u << nd->fact;
        return;
    case OP_KNOWN:
        *(neg ? &ru->no_known : &ru->need_known) |= 1u << nd->fact;
        return;
    default:
        return;
    }
}

/* Nodes under n once the defines are written out, memo[] holding each node's once
 * counted (0: not yet); past RULES_MAX_EXPANDED it stops counting. */
static size_t expanded_size(const struct rules *r, int n, size_t *memo)
{
    if (n < 0)
        return 0;
    if (memo[n] == 0) {
        const struct rule_node *nd = &r->nodes[n];
        size_t s = 1 + expanded_size(r, nd->a, memo) + expanded_size(r, nd->b, memo);
        memo[n] = s > RULES_MAX_EXPANDED ? RULES_MAX_EXPANDED + 1 : s;
    }
    return memo[n];
}

static void check_rules(struct parser *p)
{
    struct rules *r = p->r;
    int saved = p->line;
    size_t *memo = calloc(r->n_nodes + 1, sizeof *memo);
    if (!memo)
        abort(); /* out of memory while loading configuration */
    for (size_t i = 0; i < r->n_rules; i++) {
        struct rule *ru = &r->rules[i];
        p->line = ru->line;
        if (ru->cond == -2)
            continue;
        if (ru->cond < 0) {
            PERR(p, "rule %s has no `when` line", ru->name);
            continue;
        }
        if (ru->dest.kind == DEST_TEAM && ru->dest.team[0] == '\0') {
            PERR(p, "rule %s has no `send` line", ru->name);
            continue;
        }
        if (expanded_size(r, ru->cond, memo) > RULES_MAX_EXPANDED) {
            PERR(p,
                 "rule %s: its condition has more than %d tests once its defines are written "
                 "out (a define used twice in the next, again and again?)",
                 ru->name, RULES_MAX_EXPANDED);
            continue;
        }
        necessary_bits(r, ru->cond, false, ru);
        bool uses_case = ru->route_from_case || ru->dest.kind == DEST_CASE;
        if (uses_case) {
            if (count_history(r, ru->cond) != 1 ||
                (ru->history_node = bound_history(r, ru->cond)) < 0)
                PERR(p,
                     "rule %s sends to the history case, so its condition needs exactly one "
                     "child_case or family_case, joined with `and` only",
                     ru->name);
            if (!ru->route_from_case || ru->dest.kind != DEST_CASE)
                PERR(p, "rule %s: use case.route together with case.destination", ru->name);
        }
    }
    if (r->n_rules == 0) {
        PERR(p, "no rules");
    } else {
        const struct rule *last = &r->rules[r->n_rules - 1];
        p->line = last->line;
        if (!node_is_always(r, last->cond) || last->route_from_case ||
            (last->dest.kind != DEST_TEAM && last->dest.kind != DEST_REFERRER))
            PERR(p,
                 "the last rule (%s) must be `when always` and send to a named team, so that "
                 "every referral is routed",
                 last->name);
    }
    p->line = saved;
    free(memo);
    for (int i = 0; i < ROUTE_COUNT; i++)
        if (!p->have_route[i])
            PERR(p, "route %s is missing from the route table (`route %s PRIORITY STATE`)",
                 route_names[i], route_names[i]);
    for (int i = 0; i < PRIORITY_COUNT; i++)
        if (!p->have_due[i])
            PERR(p, "priority %s has no deadline line (`priority %s ...`)", priority_names[i],
                 priority_names[i]);
    if (!p->have_unplaced)
        PERR(p, "missing `unplaced ROUTE to TEAM` (where an unplaceable case event goes)");
    if (r->n_codes == 0)
        PERR(p, "no need groups");
}

/* ---------------------------------------------------------------- compiled conditions */

/* Routing walks a condition tree node by node, an indirect jump each; a condition in
 * `or`-of-`and` form over bits of the facts is a few mask tests instead. */
struct dnf {
    struct rule_term t[RULES_MAX_TERMS];
    int n;
};

static bool same_atom(const struct rule_node *x, const struct rule_node *y)
{
    return x->op == y->op && x->fact == y->fact && x->cmp == y->cmp && x->value == y->value &&
           x->n_list == y->n_list &&
           memcmp(x->list, y->list, (size_t)x->n_list * sizeof x->list[0]) == 0 &&
           memcmp(&x->needs, &y->needs, sizeof x->needs) == 0;
}

/* The bit of a leaf node (rules.h, struct rule_term); 0 when the atoms are used up. */
static uint64_t atom_bit(struct rules *r, int n)
{
    const struct rule_node *nd = &r->nodes[n];
    if (nd->op == OP_FLAG || nd->op == OP_KNOWN)
        return 1ull << nd->fact;
    size_t i = 0;
    while (i < r->n_atoms && !same_atom(&r->nodes[r->atoms[i]], nd))
        i++;
    if (i == r->n_atoms) {
        if (i == RULES_MAX_ATOMS)
            return 0;
        r->atoms[r->n_atoms++] = n;
    }
    return 1ull << (RULES_ATOM_BASE + i);
}

/* Node n (negated when neg) as `or` of `and` terms; false when it has a history atom or
 * more than RULES_MAX_TERMS terms. */
static bool dnf_of(struct rules *r, int n, bool neg, struct dnf *out)
{
    const struct rule_node *nd = &r->nodes[n];
    out->n = 0;
    switch (nd->op) {
    case OP_ALWAYS:
        if (!neg)
            out->t[out->n++] = (struct rule_term){0, 0};
        return true;
    case OP_NOT:
        return dnf_of(r, nd->a, !neg, out);
    case OP_AND:
    case OP_OR: {
        struct dnf *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        if (!a || !b)
            abort();
        bool ok = dnf_of(r, nd->a, neg, a) && dnf_of(r, nd->b, neg, b);
        if (ok && (nd->op == OP_OR) != neg) { /* either: the terms of both */
            ok = a->n + b->n <= RULES_MAX_TERMS;
            for (int i = 0; ok && i < a->n; i++)
                out->t[out->n++] = a->t[i];
            for (int i = 0; ok && i < b->n; i++)
                out->t[out->n++] = b->t[i];
        } else if (ok) { /* both: every pair that does not contradict itself */
            for (int i = 0; ok && i < a->n; i++)
                for (int j = 0; ok && j < b->n; j++) {
                    const struct rule_term *x = &a->t[i], *y = &b->t[j];
                    if ((x->mask & y->mask & (x->want ^ y->want)) != 0)
                        continue;
                    ok = out->n < RULES_MAX_TERMS;
                    if (ok)
                        out->t[out->n++] = (struct rule_term){x->mask | y->mask, x->want | y->want};
                }
        }
        free(a);
        free(b);
        return ok;
    }
    case OP_CHILD_CASE:
    case OP_FAMILY_CASE:
        return false;
    default: {
        uint64_t bit = atom_bit(r, n);
        if (bit)
            out->t[out->n++] = (struct rule_term){bit, neg ? 0 : bit};
        return bit != 0;
    }
    }
}

bool rules_number_holds(const struct rule_node *nd, int v)
{
    if (nd->op == OP_IN) {
        for (int i = 0; i < nd->n_list; i++)
            if (nd->list[i] == v)
                return true;
        return false;
    }
    switch (nd->cmp) {
    case CMP_EQ:
        return v == nd->value;
    case CMP_NE:
        return v != nd->value;
    case CMP_LT:
        return v < nd->value;
    case CMP_LE:
        return v <= nd->value;
    case CMP_GT:
        return v > nd->value;
    case CMP_GE:
        return v >= nd->value;
    }
    return false;
}

/* The atoms' tables: a number test becomes a load per fact. */
static void atom_tables(struct rules *r)
{
    for (size_t i = 0; i < r->n_atoms; i++) {
        const struct rule_node *nd = &r->nodes[r->atoms[i]];
        if (nd->op != OP_CMP && nd->op != OP_IN) {
            r->need_atoms[r->n_need_atoms++] = (unsigned char)i;
            continue;
        }
        for (int k = 0; k < RULES_NUMBER_FACTS; k++)
            for (int v = 0; nd->fact == rules_number_facts[k] && v < RULES_NUM_VALUES; v++)
                if (rules_number_holds(nd, v))
                    r->num_atoms[k][v] |= 1ull << (RULES_ATOM_BASE + i);
    }
}

static void compile_rules(struct rules *r)
{
    struct dnf d;
    size_t cap = 0;
    r->terms = grow(NULL, &cap, 0, sizeof *r->terms); /* never NULL: routing adds to it */
    for (size_t i = 0; i < r->n_rules; i++) {
        struct rule *ru = &r->rules[i];
        ru->first_term = 0;
        ru->n_terms = -1;
        if (!dnf_of(r, ru->cond, false, &d))
            continue;
        while (cap < r->n_terms + (size_t)d.n)
            r->terms = grow(r->terms, &cap, cap, sizeof *r->terms);
        ru->first_term = (int)r->n_terms;
        ru->n_terms = d.n;
        if (d.n > 0)
            memcpy(r->terms + r->n_terms, d.t, (size_t)d.n * sizeof d.t[0]);
        r->n_terms += (size_t)d.n;
    }
    atom_tables(r);
}

/* FNV-1a: every need of every referral is looked up, and a binary search's five
 * unpredictable branches cost more than hashing a code of a dozen bytes. */
static size_t code_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void index_codes(struct rules *r)
{
    size_t n = 16;
    while (n < 2 * r->n_codes)
        n *= 2;
    r->code_slots = malloc(n * sizeof *r->code_slots);
    if (!r->code_slots)
        abort(); /* out of memory while loading configuration */
    for (size_t i = 0; i < n; i++)
        r->code_slots[i] = -1;
    r->code_mask = n - 1;
    for (size_t k = 0; k < r->n_codes; k++) {
        size_t i = code_hash(r->codes[k].code, r->codes[k].len) & r->code_mask;
        while (r->code_slots[i] >= 0)
            i = (i + 1) & r->code_mask;
        r->code_slots[i] = (int)k;
    }
}

static int cmp_code(const void *a, const void *b)
{
    const struct need_code *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->code, y->code, x->len);
}

int rules_parse(const char *text, size_t len, const char *path, const struct directory *dir,
                struct rules **out, char *errs, size_t errs_len)
{
    struct errlist el = {errs, errs_len, 0, 0};
    if (errs && errs_len)
        errs[0] = '\0';
    *out = NULL;
    struct rules *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->path = strdup(path);
    struct parser *p = calloc(1, sizeof *p);
    if (!p || !r->path)
        abort();
    p->path = path;
    p->errs = &el;
    p->dir = dir;
    p->r = r;

    size_t start = 0;
    for (int line = 1; start <= len; line++) {
        size_t end = start;
        while (end < len && text[end] != '\n')
            end++;
        p->line = line;
        if (memchr(text + start, '\0', end - start)) {
            PERR(p, "NUL byte in the rule file");
        } else {
            parse_line(p, text + start, end - start);
        }
        start = end + 1;
    }
    p->line = 1;
    check_rules(p);
    if (r->n_codes > 1) /* a file without groups has no array to sort (NULL) */
        qsort(r->codes, r->n_codes, sizeof *r->codes, cmp_code);
    index_codes(r);
    if (el.count == 0)
        compile_rules(r);
    free(p->defines);
    free(p);
    if (el.count) {
        rules_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int rules_load(const char *path, const struct directory *dir, struct rules **out, char *errs,
               size_t errs_len)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errs && errs_len)
            snprintf(errs, errs_len, "%s:0: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        if (errs && errs_len)
            snprintf(errs, errs_len, "%s:0: read error\n", path);
        return -1;
    }
    int rc = rules_parse(buf, len, path, dir, out, errs, errs_len);
    free(buf);
    return rc;
}

void rules_free(struct rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_codes; i++)
        free(r->codes[i].code);
    free(r->codes);
    free(r->code_slots);
    free(r->groups);
    free(r->nodes);
    free(r->rules);
    free(r->terms);
    free(r->steps);
    free(r->path);
    free(r);
}

/* memcmp() for the short codes here: inline, most comparisons end at the first bytes,
 * and a library call cost more than the rest of the look-up (every need of every
 * referral is looked up). */
static int short_cmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
    return 0;
}

int rules_find_need(const struct rules *r, const char *code, size_t len)
{
    for (size_t i = code_hash(code, len) & r->code_mask;; i = (i + 1) & r->code_mask) {
        int k = r->code_slots[i];
        if (k < 0)
            return -1;
        const struct need_code *c = &r->codes[k];
        if (c->len == len && short_cmp(c->code, code, len) == 0)
            return c->index;
    }
}
