#!/usr/bin/env bash
# Delivery through GOV.UK Notify against a local Notify-compatible server that verifies
# the JWT (tests/tools/notify_server.py), on the real PostgreSQL fixture: requests, every
# documented answer, Retry-After, the daily pause, the rate limit, late red alerts, the
# 24 h give-up, delivery receipts and the one accepted duplicate (see notify_notify_test.py).
set -u
# The second half of the phases, as its own test so CTest runs it beside the first.
exec /usr/bin/python3 "$FRONTDOOR_SOURCE_DIR/tests/integration/notify_notify_test.py" 2 "$@"
