#!/usr/bin/env bash
# Kafka intake end to end, against the mock cluster over TCP (kafka fixture):
#  - every unusable example of the spec, and too large, invalid UTF-8, non-object JSON,
#    wrong-topic types, bad occurred_at / referral ids and bad case-event fields, goes to
#    the DLQ topic with its original bytes and key and the headers error, error_detail,
#    source_topic, source_partition, source_offset; one over the producer's size limit
#    (rdkafka.message.max.bytes, passed through) is cut and marked truncated: true;
#  - every sample referral comes out on the decisions topic as a case.routed message
#    keyed by its referral id with the route, destination, priority, rule and deadline
#    of expected.jsonl, and no personal data; a usable case event is not dead-lettered;
#  - the decisions go through the case store (a fresh, migrated database on the postgres
#    fixture) and its outbox: one case and decision per referral in SQL, all published;
#  - no personal data reaches the log; SIGTERM stops the daemon with status 0, promptly.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
service_env kafka
B=$FD_KAFKA_BOOTSTRAP
run="it-intake-$$-$RANDOM"
tmp=$(mktemp -d)
FD_PID=
trap '[ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null; drop_database; rm -rf "$tmp"' EXIT
here="$FRONTDOOR_SOURCE_DIR/tests/integration"

make_database "$run"
write_config "$tmp/fd.conf" "$B" "$run" "rdkafka.message.max.bytes = 100000"
migrate "$tmp/fd.conf"
echo 100000 >"$tmp/dlq_limit"
echo "$run.referrals" >"$tmp/topic.referrals"
echo "$run.case-events" >"$tmp/topic.case-events"
create_topics "$B" "$run"
n=$(python3 "$here/kafka_intake.py" make "$tmp" "$FRONTDOOR_SPEC_DIR")
expect_eq 1 "$([ "$n" -gt 40 ] && echo 1)" "test cases written ($n)"

# Produce everything before the daemon starts, so it finds a backlog.
python3 - "$tmp/cases.json" <<'PY' >"$tmp/produce.list"
import json, sys
for c in json.load(open(sys.argv[1])):
    print(c["topic"], c["key"], c["file"], "null" if c["null"] else "")
PY
produced=0
while read -r topic key file null; do
    produce "$B" "$run.$topic" "$key" "$file" $null && produced=$((produced + 1))
done <"$tmp/produce.list"
expect_eq "$n" "$produced" "every case produced"

start_daemon "$tmp/fd.conf" "$tmp/daemon.log"
want_dlq=$(python3 -c 'import json,sys; print(sum(c["want"]!="valid" for c in json.load(open(sys.argv[1]))))' "$tmp/cases.json")
want_dec=$(python3 -c 'import json,sys; print(sum("decision" in c for c in json.load(open(sys.argv[1]))))' "$tmp/cases.json")
python3 "$KAFKA_READ" "$B" "$run.dlq" "$want_dlq" 30 >"$tmp/dlq.jsonl"
python3 "$KAFKA_READ" "$B" "$run.decisions" "$want_dec" 30 >"$tmp/decisions.jsonl"
python3 "$KAFKA_READ" "$B" "$run.referrals" >"$tmp/referrals.jsonl"
python3 "$KAFKA_READ" "$B" "$run.case-events" >"$tmp/case-events.jsonl"
# every offset is stored once its event is done: wait for the last commit, then stop
wait_log "$tmp/daemon.log" 'msg="case event applied"' 20
sleep 2
# in the case store: one case and one decision per sample referral, every usable event
# processed once, every outbox message published
expect_eq "$want_dec" "$(sql 'SELECT count(*) FROM cases')" "cases in the database"
expect_eq "$want_dec" "$(sql 'SELECT count(*) FROM decisions')" "decisions in the database"
expect_eq $((want_dec + 1)) "$(sql 'SELECT count(*) FROM processed_events')" "processed events"
expect_eq 0 "$(sql 'SELECT count(*) FROM outbox WHERE published_at IS NULL')" "outbox published"
stop_daemon
expect_eq 0 "$FD_RC" "frontdoord exit status after SIGTERM"
expect_eq 1 "$([ "$FD_STOP_S" -le 10 ] && echo 1)" "SIGTERM stop took ${FD_STOP_S}s (at most 10)"
expect_output 'msg=stopped' cat "$tmp/daemon.log"

run_checks python3 "$here/kafka_intake.py" check "$tmp"
if [ "$FD_FAILED" -gt 0 ]; then
    echo "--- daemon log (tail)"
    grep -v 'kafka client' "$tmp/daemon.log" | tail -n 40
fi
finish
