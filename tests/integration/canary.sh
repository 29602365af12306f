#!/usr/bin/env bash
# No personal data in any log line: referrals and case events whose every personal field
# (names, organisation, emails, phones, dates of birth, postcodes, summary, reason,
# outcome, appointment location and with) holds a canary, a value found nowhere else, run
# through the daemon at log.level = debug against PostgreSQL and the Kafka mock cluster:
# routed, re-routed, applied, closed, dead-lettered at every check of events.md (bad
# JSON, too large, bad UTF-8, a canary as the bad value itself) and rejected against the
# database (invalid transition, unknown case, duplicates). The first half is logged as
# logfmt, the second, after a SIGHUP reload, as JSON. No canary may appear in the log, on
# the decisions topic, in a DLQ header or in the stored reasons. The scanner is first shown
# to find a canary in a line that has one, so the test cannot pass by not looking.
# Notifications go the whole way too: staff and referrer emails over SMTP to
# tests/tools/smtp_server.py (one canary address refused with 550, one deferred with 451
# and retried), family texts through the notify provider to tests/tools/notify_server.py
# (which checks the JWT; one canary mobile answered 500 once, then retried), each
# delivery checked at the server, with the clock inside the family-text window.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
service_env kafka
B=$FD_KAFKA_BOOTSTRAP
run="it-canary-$$-$RANDOM"
tmp=$(mktemp -d)
FD_PID=
SERVERS=
trap '[ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null; [ -n "$SERVERS" ] && kill $SERVERS 2>/dev/null; drop_database; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
here="$FRONTDOOR_SOURCE_DIR/tests/integration"
read -r want_dec want_dlq < <(python3 "$here/canary.py" make "$tmp")
scan() { python3 "$here/canary.py" scan "$tmp" "$@"; }

# the scanner finds what it must: a canary in a log line, in either case and format
canary=$(python3 -c 'import json,sys; print(next(k for k,v in json.load(open(sys.argv[1])).items() if v == "summary"))' "$tmp/canaries.json")
printf 'level=info msg="referral routed" referral=REF-1\nlevel=debug msg=x text="a %s b"\n' "$canary" >"$tmp/selftest.log"
expect_exit 1 scan "$tmp/selftest.log"
printf '{"level":"info","msg":"x","v":"%s"}\n' "$(echo "$canary" | tr a-z A-Z)" >"$tmp/selftest.json"
expect_exit 1 scan "$tmp/selftest.json"
printf 'level=info msg="referral routed" referral=REF-CAN-01 mobile=07*******51\n' >"$tmp/clean.log"
expect_exit 0 scan "$tmp/clean.log"

# the providers' servers: a refusing SMTP server and a Notify-compatible API
canary_of() { python3 -c 'import json,sys; print(next(k for k,v in json.load(open(sys.argv[1])).items() if v == sys.argv[2] and sys.argv[3] in k))' "$tmp/canaries.json" "$2" "$1"; }
spare_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
refused=$(canary_of q02Z@ referrer.email)  # REF-CAN-02's referrer: 550
deferred=$(canary_of q01Z@ referrer.email) # REF-CAN-01's referrer: 451 once, then taken
mkdir -p "$tmp/smtp" "$tmp/notify"
printf '{"%s": ["rcpt:550"], "%s": ["data:451"]}\n' "$refused" "$deferred" >"$tmp/smtp/control.json"
smtp_port=$(spare_port)
/usr/bin/python3 "$FRONTDOOR_SOURCE_DIR/tests/tools/smtp_server.py" --host 127.0.0.1 \
    --port "$smtp_port" --maildir "$tmp/smtp/maildir" --log "$tmp/smtp/events.jsonl" \
    --control "$tmp/smtp/control.json" 2>"$tmp/smtp/err" &
SERVERS="$SERVERS $!"
SID=26785a09-ab16-4eb0-8407-a37497a57506
SECRET=3d844edf-8d35-48ac-975b-e847b4f122b0
printf 'frontdoord_canary-%s-%s\n' "$SID" "$SECRET" >"$tmp/notify/key"
chmod 0600 "$tmp/notify/key"
# REF-CAN-01's family mobile (07700 931701) gets a 500 first
echo '{"+447700931701": ["500"]}' >"$tmp/notify/control.json"
/usr/bin/python3 "$FRONTDOOR_SOURCE_DIR/tests/tools/notify_server.py" --service-id "$SID" \
    --secret "$SECRET" --port-file "$tmp/notify/port" --log "$tmp/notify/requests.jsonl" \
    --control "$tmp/notify/control.json" 2>"$tmp/notify/err" &
SERVERS="$SERVERS $!"
deadline=$((SECONDS + 20))
until [ -s "$tmp/notify/port" ] && [ -s "$tmp/smtp/events.jsonl" -o -n "$(ss -Hltn "sport = :$smtp_port" 2>/dev/null)" ] ||
    [ $SECONDS -ge $deadline ]; do sleep 0.2; done
[ -s "$tmp/notify/port" ] && pass || fail "notify server did not start: $(cat "$tmp/notify/err")"

make_database "$run"
write_config "$tmp/fd.conf" "$B" "$run" "unknown_case_retry_seconds = 2"
sed -i 's/^level = info$/level = debug/' "$tmp/fd.conf"
{
    echo "[email]"
    echo "provider = smtp"
    echo "smtp_url = smtp://127.0.0.1:$smtp_port"
    echo "from = family-help@example.org"
    echo "timeout_seconds = 5"
    echo "[sms]"
    echo "provider = notify"
    echo "notify_url = http://127.0.0.1:$(cat "$tmp/notify/port")"
    echo "notify_api_key_file = $tmp/notify/key"
    echo "timeout_seconds = 5"
    for t in safeguarding_alert safeguarding_alert_failed appointment_booked \
        appointment_reminder appointment_cancelled; do
        echo "notify_template.$t = $(python3 -c 'import uuid,sys; print(uuid.uuid5(uuid.NAMESPACE_URL, sys.argv[1]))' "$t")"
    done
} >>"$tmp/fd.conf"
# inside the family-text window (a Tuesday afternoon), a day after the referrals
export FRONTDOOR_TEST_CLOCK=2026-11-24T14:00:30Z
migrate "$tmp/fd.conf"
create_topics "$B" "$run"
start_daemon "$tmp/fd.conf" "$tmp/daemon.log"

produce_list() {
    local topic key file n=0
    while read -r topic key file; do
        [ -n "$topic" ] || continue
        produce "$B" "$run.$topic" "$key" "$file" && n=$((n + 1))
    done <"$1"
    expect_eq "$(grep -c . "$1")" "$n" "events of $(basename "$1") produced"
}
produce_list "$tmp/produce-1.list"
# phase 2 (case events on these cases, duplicates) once every phase-1 referral has a case
deadline=$((SECONDS + 60))
until [ "$(sql 'SELECT count(*) FROM cases')" = 9 ] || [ $SECONDS -ge $deadline ]; do sleep 0.5; done
expect_eq 9 "$(sql 'SELECT count(*) FROM cases')" "phase-1 referrals routed"
# the rest is logged as JSON
sed -i 's/^format = .*//; s/^\[log\]$/[log]\nformat = json/' "$tmp/fd.conf"
kill -HUP "$FD_PID"
wait_log "$tmp/daemon.log" 'configuration reloaded' 20 && pass || fail "reload to JSON logs"
produce_list "$tmp/produce-2.list"

expect_eq "$want_dlq" "$(count_messages "$B" "$run.dlq" "$want_dlq" 60)" "dead letters"
expect_eq "$want_dec" "$(count_messages "$B" "$run.decisions" "$want_dec" 60)" "decisions"
deadline=$((SECONDS + 30))
until [ "$(sql 'SELECT count(*) FROM held_events')" = 0 ] || [ $SECONDS -ge $deadline ]; do sleep 0.5; done
# every notification due now reaches a final state: sent, failed or skipped
due="SELECT count(*) FROM notifications WHERE state IN ('queued', 'sending') AND not_before <= '2026-11-24T15:00:00Z'"
deadline=$((SECONDS + 90))
until [ "$(sql "$due")" = 0 ] || [ $SECONDS -ge $deadline ]; do sleep 0.5; done
expect_eq 0 "$(sql "$due")" "notifications due were all dealt with"
sleep 2
stop_daemon
FD_PID=
sql "SELECT template || ' ' || channel || ' ' || state || ' ' || attempts || ' ' || recipient FROM notifications ORDER BY 1" >"$tmp/notifications.txt"
# the canary paths really ran: delivered to canary addresses, refused, deferred, retried
smtp_msgs=$(ls "$tmp/smtp/maildir/new" 2>/dev/null | grep -c . || true)
[ "$smtp_msgs" -ge 5 ] && pass || fail "only $smtp_msgs messages reached the SMTP server"
expect_output "^referral_acknowledged email sent 1 $(canary_of q05Z@ referrer.email)\$" cat "$tmp/notifications.txt"
expect_output "^referral_acknowledged email sent 2 $deferred\$" cat "$tmp/notifications.txt"
expect_output "^referral_acknowledged email failed 1 $refused\$" cat "$tmp/notifications.txt"
expect_output "^appointment_booked sms sent 2 \+447700931701\$" cat "$tmp/notifications.txt"
grep -q "$deferred" "$tmp/smtp/maildir/new"/* && pass || fail "the deferred message was not delivered on retry"
expect_eq 2 "$(grep -c '"phone_number": "+447700931701"' "$tmp/notify/requests.jsonl")" "Notify asked twice for the 500'd text"
expect_output 'notification failed.*smtp 550' cat "$tmp/daemon.log"
expect_output 'notification will be retried.*notify 500 ' cat "$tmp/daemon.log"
expect_eq 0 "$FD_RC" "exit status after SIGTERM"
expect_output '^\{"level":"info","msg":"stopped"' cat "$tmp/daemon.log"
expect_output '^level=debug msg="event accepted"' cat "$tmp/daemon.log"

# where a canary must never be: the log, the decisions topic, the DLQ headers, the reasons
python3 "$KAFKA_READ" "$B" "$run.decisions" >"$tmp/decisions.jsonl"
python3 - "$tmp/decisions.jsonl" >"$tmp/decisions.txt" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    print(bytes.fromhex(json.loads(l)["payload_hex"]).decode("utf-8", "replace"))
PY
python3 "$KAFKA_READ" "$B" "$run.dlq" | python3 -c '
import json, sys
for l in sys.stdin:
    print(json.dumps(json.loads(l)["headers"]))' >"$tmp/dlq-headers.txt"
sql "SELECT reasons FROM decisions" >"$tmp/reasons.txt"
expect_eq "$want_dec" "$(grep -c . "$tmp/decisions.txt")" "decision messages read back"
expect_eq "$want_dlq" "$(grep -c error_detail "$tmp/dlq-headers.txt")" "DLQ headers read back"
lines=$(grep -c . "$tmp/daemon.log")
echo "canary: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/canaries.json") canaries, $lines log lines"
if leaks=$(scan "$tmp/daemon.log" "$tmp/decisions.txt" "$tmp/dlq-headers.txt" "$tmp/reasons.txt"); then
    pass
else
    fail "personal data found: $leaks"
fi
finish
