/* rules: the routing policy as data, read from the rule file (config/frontdoor.rules,
 * format in config/RULES.md).
 *
 * The file is compiled once per (re)load into flat arrays (need sets as bitsets, the
 * conditions as a node array) so that routing a referral allocates nothing. The parsed
 * rules are read-only afterwards and may be shared between threads.
 * Ownership: struct rules owns everything it points to; free it with rules_free().
 */
#ifndef FRONTDOOR_RULES_H
#define FRONTDOOR_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frontdoor/directory.h"
#include "frontdoor/event.h"

/* The routes of the policy: a closed set, since notifications and the case lifecycle
 * depend on them. Their priority and resulting case state come from the rule file. */
enum route_kind {
    ROUTE_SCHOOL,
    ROUTE_FAMILY_HUB,
    ROUTE_TARGETED_FAMILY_HELP,
    ROUTE_YOUTH_SUPPORT,
    ROUTE_FAMILY_HELP_PANEL,
    ROUTE_SOCIAL_CARE,
    ROUTE_MANUAL_TRIAGE,
    ROUTE_CONSENT_REQUIRED,
    ROUTE_SIGNPOST,
    ROUTE_COUNT
};

enum priority { PRIORITY_RED, PRIORITY_AMBER, PRIORITY_GREEN, PRIORITY_BLUE, PRIORITY_COUNT };

enum case_state {
    CASE_ALLOCATED,
    CASE_TRIAGE,
    CASE_AWAITING_CONSENT,
    CASE_CLOSED,
    CASE_STATE_COUNT
};

/* Names as written in events, the database and the rule file ("targeted_family_help",
 * "amber", "awaiting_consent"). */
const char *rules_route_name(enum route_kind r);
const char *rules_priority_name(enum priority p);
const char *rules_state_name(enum case_state s);
/* Exact match of len bytes; false when unknown. */
bool rules_parse_route(const char *s, size_t len, enum route_kind *out);
bool rules_parse_state(const char *s, size_t len, enum case_state *out);

#define RULES_NAME_MAX   40  /* rule, group and define names */
#define RULES_MAX_NEEDS  256 /* need codes in the vocabulary */
#define RULES_NEED_WORDS (RULES_MAX_NEEDS / 64)
#define RULES_MAX_LIST   16 /* numbers in a `level in [...]` list */
#define RULES_MAX_COUNT  64 /* largest N in `distinct_needs >= N` */
/* Tests in one rule's condition with its defines written out: a define used twice in
 * the next, and that one twice in the next, doubles at every step, and routing walks
 * the written-out tree (26 such steps took 4.8 s to load and as long a decision). */
#define RULES_MAX_EXPANDED 1024

struct need_set {
    uint64_t bits[RULES_NEED_WORDS];
};

struct need_code {
    char *code;
    size_t len;
    int index; /* bit in a need_set */
};

struct need_group {
    char name[RULES_NAME_MAX + 1];
    struct need_set set;
    int line;
};

/* Facts a condition can test (routing-policy.md, "derived facts"). */
enum rule_fact {
    FACT_IMMEDIATE_RISK, /* safeguarding.immediate_risk is true */
    FACT_CONSENT,        /* family.consent.early_help is true */
    FACT_SEND,           /* child.send is true */
    FACT_PRE_BIRTH,
    FACT_INCOMPLETE, /* any rule-2 problem */
    FACT_LEVEL,      /* numbers */
    FACT_AGE,
    FACT_DISTINCT_NEEDS,
    FACT_LOCALITY, /* `known ...` */
    FACT_HUB,
    FACT_SCHOOL,
    FACT_DISTRICT,
};

enum rule_op {
    OP_ALWAYS,
    OP_AND, /* a and b */
    OP_OR,
    OP_NOT,         /* not a */
    OP_FLAG,        /* fact is true */
    OP_KNOWN,       /* fact is known */
    OP_CMP,         /* number fact <cmp> value; false when the fact is unknown */
    OP_IN,          /* number fact in list */
    OP_ANY_NEED,    /* some need in set */
    OP_EVERY_NEED,  /* at least one need, and every need in set */
    OP_CHILD_CASE,  /* history: a case of the same child */
    OP_FAMILY_CASE, /* history: an open case of the same family, another child */
};

enum rule_cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

struct rule_node {
    enum rule_op op;
    int a, b; /* operand node indices (AND, OR, NOT) */
    enum rule_fact fact;
    enum rule_cmp cmp;
    int value;
    int list[RULES_MAX_LIST];
    int n_list;
    struct need_set needs;
    char set_name[RULES_NAME_MAX + 1]; /* group name, or "" for a literal list */
    unsigned routes;                   /* history: bit per enum route_kind */
    int within_days;                   /* history: closed cases count for this long; -1 none */
};

/* Where a rule or a case event sends the case. */
enum dest_kind {
    DEST_TEAM,          /* a literal directory team id (or school-<urn>) */
    DEST_REFERRER,      /* `referrer` */
    DEST_LOCALITY_TEAM, /* the locality's targeted team */
    DEST_HUB,           /* the postcode district's family hub */
    DEST_SCHOOL,        /* school-<urn> of the child's directory school */
    DEST_CASE,          /* the destination of the history case that matched */
};

struct dest_spec {
    enum dest_kind kind;
    char team[DIRECTORY_ID_MAX + 8]; /* DEST_TEAM */
};

/* A condition compiled into `or` of `and` terms over atom bits: it holds when some term
 * has (atoms & mask) == want. Bits 0-15 are the flag and `known` facts (a bit per enum
 * rule_fact: the flag facts and the `known` facts are different facts, so one word holds
 * both); bit RULES_ATOM_BASE + i is atom i of struct rules (a number test or a need set). */
#define RULES_ATOM_BASE  16
#define RULES_MAX_ATOMS  (64 - RULES_ATOM_BASE)
#define RULES_MAX_TERMS  32 /* terms of one compiled condition; more and it is walked */
#define RULES_NUM_VALUES 128

/* The number facts, in the order of struct rules' num_atoms (and of their names in the
 * rule file: level, age, distinct_needs). */
#define RULES_NUMBER_FACTS 3
extern const enum rule_fact rules_number_facts[RULES_NUMBER_FACTS];

struct rule_term {
    uint64_t mask, want;
};

struct rule {
    char name[RULES_NAME_MAX + 1];
    int line;
    int cond;             /* root node index */
    bool route_from_case; /* `route case` */
    enum route_kind route;
    struct dest_spec dest;
    bool has_priority; /* `priority` line; else the route's priority */
    enum priority priority;
    int history_node; /* the history atom that binds `case`, or -1 */
    /* What cond needs, read from its `and`s (and `not`s over `or`s), a bit per enum
     * rule_fact: flags that must be true or false, facts that must be known or unknown.
     * Routing tests these before it walks cond, which most rules then fail. */
    unsigned need_flags, no_flags, need_known, no_known;
    /* cond compiled: terms[first_term .. first_term + n_terms) of struct rules, tested
     * instead of walking cond; n_terms -1 when cond has a history atom (it binds `case`,
     * and its look-up is worth doing only when reached) or too many terms. */
    int first_term, n_terms;
};

/* `on <event> from [routes] to <route> <destination>`: how a case event moves an
 * allocated case. */
struct step_rule {
    enum event_type on;
    unsigned from_routes; /* bit per enum route_kind */
    enum route_kind to;
    struct dest_spec dest;
    int line;
};

enum due_kind { DUE_NONE, DUE_HOURS, DUE_WORKING_DAYS };

/* `priority amber working_days 1 at 17:00`, `priority red hours 4`, `priority blue none`. */
struct due_spec {
    enum due_kind kind;
    int amount;
    int at_s; /* DUE_WORKING_DAYS: local second of the day */
};

struct rules {
    char *path;
    struct need_code *codes; /* sorted by (len, bytes) */
    size_t n_codes;
    /* codes by hash, open addressing: an index into codes, or -1; code_mask + 1 slots, at
     * least twice n_codes (so a look-up always meets a free slot) */
    int *code_slots;
    size_t code_mask;
    struct need_group *groups;
    size_t n_groups;
    struct rule_node *nodes;
    size_t n_nodes;
    struct rule *rules; /* in order: the first that matches decides */
    size_t n_rules;
    struct rule_term *terms; /* of the compiled conditions */
    size_t n_terms;
    int atoms[RULES_MAX_ATOMS]; /* node of each distinct number or need atom they test */
    size_t n_atoms;
    /* The number atoms as tables: for level, age and distinct_needs (in that order) and a
     * value below RULES_NUM_VALUES, the bits of the atoms that hold. The need atoms are
     * the rest: need_atoms lists their atom indices. */
    uint64_t num_atoms[RULES_NUMBER_FACTS][RULES_NUM_VALUES];
    unsigned char need_atoms[RULES_MAX_ATOMS];
    size_t n_need_atoms;
    struct step_rule *steps;
    size_t n_steps;
    enum priority route_priority[ROUTE_COUNT];
    enum case_state route_state[ROUTE_COUNT];
    struct due_spec due[PRIORITY_COUNT];
    enum route_kind unplaced_route; /* when a step's destination cannot be resolved */
    struct dest_spec unplaced_dest;
};

/* Whether a number atom (OP_CMP or OP_IN) holds for the known value v of its fact. */
bool rules_number_holds(const struct rule_node *nd, int v);

/* Compile a rule file. `path` names it in messages. With `dir` non-NULL, literal
 * destinations are checked against it. Every problem is appended to errs as one
 * "path:line: message" line. Returns 0 and *out (caller frees with rules_free()), or -1. */
int rules_parse(const char *text, size_t len, const char *path, const struct directory *dir,
                struct rules **out, char *errs, size_t errs_len);

/* Read `path` and rules_parse() it. */
int rules_load(const char *path, const struct directory *dir, struct rules **out, char *errs,
               size_t errs_len);

void rules_free(struct rules *r);

/* Index of a need code in the vocabulary (its bit in a need_set), or -1. */
int rules_find_need(const struct rules *r, const char *code, size_t len);

#endif
