#!/usr/bin/env bash
# The test services are real and reachable: a row goes into PostgreSQL and comes back,
# a message sent over SMTP lands in aiosmtpd's Maildir, and a record produced to the
# mock Kafka cluster over TCP is consumed back with kcat.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
token="canary-$$-$RANDOM"

service_env postgres
psql=("$FD_PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 "$FD_PG_CONNINFO")
expect_eq "$FD_PG_PORT" "$("${psql[@]}" -c "show port")" "PostgreSQL answers on its own port"
got=$("${psql[@]}" -c "create temp table t(v text); insert into t values ('$token'); select v from t")
expect_eq "$token" "$got" "PostgreSQL stores and returns a row"
expect_eq "on" "$("${psql[@]}" -c "show synchronous_commit")" "PostgreSQL commits synchronously"

service_env smtp
mail=$(mktemp)
printf 'From: test@example.org\r\nTo: triage@example.org\r\nSubject: %s\r\n\r\nbody\r\n' "$token" >"$mail"
curl -sS --url "$FD_SMTP_URL" --mail-from test@example.org --mail-rcpt triage@example.org \
    --upload-file "$mail" >/dev/null 2>&1
expect_eq 0 $? "curl sends to the SMTP server"
rm -f "$mail"
found=$(grep -rl "Subject: $token" "$FD_SMTP_MAILDIR" 2>/dev/null | wc -l)
expect_eq 1 "$found" "the SMTP server stored the message"

service_env kafka
meta=$(kcat -b "$FD_KAFKA_BOOTSTRAP" -L 2>&1)
if printf '%s\n' "$meta" | grep -q 'topic "frontdoor.referrals" with 4 partitions'; then pass; else fail "topics: $meta"; fi
printf '%s\n' "$token" | kcat -b "$FD_KAFKA_BOOTSTRAP" -P -t frontdoor.case-events -k REF-1 -p 2
expect_eq 0 $? "kcat produces to the mock cluster"
got=$(timeout 20 kcat -b "$FD_KAFKA_BOOTSTRAP" -C -t frontdoor.case-events -p 2 -o beginning -c 1 -e -f '%k %s\n' 2>/dev/null)
expect_eq "REF-1 $token" "$got" "kcat consumes the record back over TCP"
finish
