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
# (The notification path joins this test when notifications land.)
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
service_env kafka
B=$FD_KAFKA_BOOTSTRAP
run="it-canary-$$-$RANDOM"
tmp=$(mktemp -d)
FD_PID=
trap '[ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null; drop_database; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
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

make_database "$run"
write_config "$tmp/fd.conf" "$B" "$run" "unknown_case_retry_seconds = 2"
sed -i 's/^level = info$/level = debug/' "$tmp/fd.conf"
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
sleep 2
stop_daemon
FD_PID=
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
