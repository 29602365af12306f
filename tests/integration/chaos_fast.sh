#!/usr/bin/env bash
# The reliability runs of scripts/chaos at a small size (3,000 referrals and 600 case
# events a scenario): kill -9 twice, scale-out with a kill, SIGTERM under load, then the
# SMTP server down for 20 s with Notify refusing some texts, PostgreSQL restart, broker and
# cluster outages with request errors; nothing lost, nothing twice, every notification
# delivered to the SMTP and Notify test servers (tests/tools), duplicates there counted.
set -u
exec /usr/bin/python3 "$FRONTDOOR_SOURCE_DIR/tests/integration/chaos.py" --fast
