#!/usr/bin/env bash
# The reliability runs of scripts/chaos at a small size (3,000 referrals and 600 case
# events a scenario): kill -9 twice, scale-out with a kill, PostgreSQL restart, broker and
# cluster outages with request errors, SIGTERM under load; nothing lost, nothing twice.
set -u
exec /usr/bin/python3 "$FRONTDOOR_SOURCE_DIR/tests/integration/chaos.py" --fast
