#!/usr/bin/env bash
# The database connection against the real PostgreSQL fixture: prepared statements
# (tests/integration/db_test.c, a Check suite).
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
service_env postgres
export FD_PG_CONNINFO
CK_FORK=yes exec "$FRONTDOOR_BUILD_DIR/it_db"
