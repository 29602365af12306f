/* explain: the routing dry run, `frontdoord --explain FILE` (events.md). */
#ifndef FRONTDOOR_EXPLAIN_H
#define FRONTDOOR_EXPLAIN_H

#include <stdio.h>

#include "frontdoor/config.h"

/* Route every referral line of `path` ("-" = standard input) with the configured rules
 * and directory, one JSON line per non-empty input line on `out`; problems with the
 * configuration or the file go to `err`. Returns a sysexits.h code: 0, 64, 65, 66 or 78. */
int explain_run(const struct config *cfg, const char *path, FILE *out, FILE *err);

#endif
