#!/usr/bin/env bash
# Notifications end to end with the file provider against the real PostgreSQL fixture
# (see notify_file_test.py): every trigger, skip reason, window, reminder, reschedule,
# cancellation, unusable event, overdue decision and late red alert, from Kafka events
# to files in the spool folders, with a set clock; two daemons on one database.
set -u
# The second half of the phases, as its own test so CTest runs it beside the first.
exec /usr/bin/python3 "$FRONTDOOR_SOURCE_DIR/tests/integration/notify_file_test.py" 2 "$@"
