#!/usr/bin/env bash
# Delivery by SMTP through libcurl on the loop, against the aiosmtpd fixture and a
# refusing aiosmtpd (tests/tools/smtp_server.py): headers and Message-ID, 4xx/5xx replies,
# STARTTLS required off loopback, AUTH with a password file (see notify_smtp_test.py).
set -u
exec /usr/bin/python3 "$FRONTDOOR_SOURCE_DIR/tests/integration/notify_smtp_test.py" "$@"
