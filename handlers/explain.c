/* explain: the routing dry run. The routing engine lands with the routing issue. */
#include <sysexits.h>

#include "frontdoor/explain.h"

int explain_run(const struct config *cfg, const char *path, FILE *out, FILE *err)
{
    (void)cfg;
    (void)path;
    (void)out;
    fprintf(err, "frontdoord: --explain is not yet implemented\n");
    return EX_UNAVAILABLE;
}
