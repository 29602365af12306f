/* dbbulk: rows as array literals, one statement per table and batch (see dbbulk.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "frontdoor/dbbulk.h"

struct col {
    char *s; /* "{e1,e2,...": closed with '}' at flush */
    size_t len, cap;
};

struct dbbulk {
    const char *sql;
    int ncols;
    size_t rows;
    struct col cols[DBBULK_MAX_COLS];
};

static int grow(char **buf, size_t *len, size_t *cap, size_t more)
{
    if (*len + more + 1 <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 256;
    while (*len + more + 1 > ncap)
        ncap *= 2;
    char *n = realloc(*buf, ncap);
    if (n == NULL)
        return -1;
    *buf = n;
    *cap = ncap;
    return 0;
}

static int put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (grow(buf, len, cap, n) != 0)
        return -1;
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int dbbulk_quote_text(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s), extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += s[i] == '"' || s[i] == '\\';
    if (grow(buf, len, cap, n + extra + 2) != 0)
        return -1;
    char *o = *buf + *len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            *o++ = '\\';
        *o++ = s[i];
    }
    *o++ = '"';
    *len = (size_t)(o - *buf);
    (*buf)[*len] = '\0';
    return 0;
}

/* "\\x0a1b..": the element's text is \x<hex>, its backslash escaped in the literal */
static int quote_bytes(char **buf, size_t *len, size_t *cap, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (grow(buf, len, cap, 2 * n + 6) != 0)
        return -1;
    char *o = *buf + *len;
    memcpy(o, "\"\\\\x", 4);
    o += 4;
    for (size_t i = 0; i < n; i++) {
        *o++ = hex[p[i] >> 4];
        *o++ = hex[p[i] & 15];
    }
    *o++ = '"';
    *len = (size_t)(o - *buf);
    (*buf)[*len] = '\0';
    return 0;
}

struct dbbulk *dbbulk_new(const char *sql, int ncols)
{
    if (ncols < 1 || ncols > DBBULK_MAX_COLS)
        return NULL;
    struct dbbulk *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->sql = sql;
    b->ncols = ncols;
    return b;
}

void dbbulk_free(struct dbbulk *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < b->ncols; i++)
        free(b->cols[i].s);
    free(b);
}

void dbbulk_reset(struct dbbulk *b)
{
    b->rows = 0;
    for (int i = 0; i < b->ncols; i++)
        b->cols[i].len = 0;
}

size_t dbbulk_rows(const struct dbbulk *b)
{
    return b->rows;
}

int dbbulk_add(struct dbbulk *b, const char *const *values, const long *lens)
{
    size_t mark[DBBULK_MAX_COLS];
    for (int i = 0; i < b->ncols; i++)
        mark[i] = b->cols[i].len;
    int rc = 0;
    for (int i = 0; i < b->ncols && rc == 0; i++) {
        struct col *c = &b->cols[i];
        rc = put(&c->s, &c->len, &c->cap, b->rows == 0 ? "{" : ",", 1);
        if (rc != 0)
            break;
        if (values[i] == NULL)
            rc = put(&c->s, &c->len, &c->cap, "NULL", 4);
        else if (lens != NULL && lens[i] >= 0)
            rc = quote_bytes(&c->s, &c->len, &c->cap, (const unsigned char *)values[i],
                             (size_t)lens[i]);
        else
            rc = dbbulk_quote_text(&c->s, &c->len, &c->cap, values[i]);
    }
    if (rc != 0) {
        for (int i = 0; i < b->ncols; i++) /* take the partial row back */
            if (b->cols[i].s != NULL) {
                b->cols[i].len = mark[i];
                b->cols[i].s[mark[i]] = '\0';
            }
        return -1;
    }
    b->rows++;
    return 0;
}

int dbbulk_flush(struct dbbulk *b, struct db_round *r)
{
    if (b->rows == 0)
        return -2;
    const char *v[DBBULK_MAX_COLS];
    for (int i = 0; i < b->ncols; i++) {
        struct col *c = &b->cols[i];
        if (put(&c->s, &c->len, &c->cap, "}", 1) != 0) {
            for (int j = 0; j < i; j++) /* undo the closing braces */
                b->cols[j].s[--b->cols[j].len] = '\0';
            return -1;
        }
        v[i] = c->s;
    }
    /* not copied: the literals stay as they are until the next dbbulk_add, and the caller
     * submits the round before adding to b again (dbbulk.h) */
    int idx = db_round_addv_borrowed(r, b->sql, b->ncols, v);
    if (idx < 0) {
        for (int i = 0; i < b->ncols; i++)
            b->cols[i].s[--b->cols[i].len] = '\0';
        return -1;
    }
    dbbulk_reset(b);
    return idx;
}
