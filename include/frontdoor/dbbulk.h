/* dbbulk: many rows for one statement, so a batch writes each table with one statement.
 *
 * Rows are collected column by column as PostgreSQL array literals and sent as one
 * parameter per column to a statement that unnests them, e.g.
 *
 *   INSERT INTO t (a, b) SELECT a, b FROM unnest($1::text[], $2::bytea[]) AS x(a, b)
 *
 * Values are quoted and escaped here (never spliced into SQL text); NULL is SQL NULL;
 * bytes travel as bytea hex. A row's values keep their order: unnest yields elements in
 * array order, so the statement sees the rows in the order they were added.
 *
 * Ownership: the caller owns a struct dbbulk (dbbulk_free); the SQL text is borrowed and
 * must outlive it (a literal).
 */
#ifndef FRONTDOOR_DBBULK_H
#define FRONTDOOR_DBBULK_H

#include <stddef.h>

#include "frontdoor/db.h"

/* Largest number of columns a bulk statement may have. */
#define DBBULK_MAX_COLS 24

struct dbbulk;

struct dbbulk *dbbulk_new(const char *sql, int ncols);
void dbbulk_free(struct dbbulk *b);

/* Forget every row (keeps the memory for the next batch). */
void dbbulk_reset(struct dbbulk *b);

/* Add one row of ncols values. values[i] NULL is SQL NULL. lens NULL means every value is
 * text (NUL-terminated); otherwise lens[i] >= 0 marks values[i] as that many bytes for a
 * bytea column, and lens[i] < 0 as text. Returns 0, or -1 when out of memory (the row is
 * then not added). */
int dbbulk_add(struct dbbulk *b, const char *const *values, const long *lens);

size_t dbbulk_rows(const struct dbbulk *b);

/* Append the statement with every row to r and reset b. The round borrows b's text
 * (no copy of a megabyte a batch): submit r before the next dbbulk_add on b. Returns
 * the statement's index, -2 when there are no rows (nothing appended), or -1 when out
 * of memory. */
int dbbulk_flush(struct dbbulk *b, struct db_round *r);

/* The array literal element for one text value ("..." with \ and " escaped), appended
 * to a NUL-terminated growing buffer; exposed for tests. Returns 0 or -1. */
int dbbulk_quote_text(char **buf, size_t *len, size_t *cap, const char *s);

#endif
