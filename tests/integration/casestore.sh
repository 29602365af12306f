#!/usr/bin/env bash
# The case store against the real PostgreSQL fixture (see casestore_test.py): schema and
# --migrate, every case state transition, both rejections, duplicates, history rules 5
# and 6, the unknown-case hold, replay, a killed feeder, PostgreSQL restarted mid-stream
# and two feeders on one database.
set -u
exec /usr/bin/python3 "$FRONTDOOR_SOURCE_DIR/tests/integration/casestore_test.py" "$@"
