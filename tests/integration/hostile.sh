#!/usr/bin/env bash
# The hostile corpus (tests/hostile/, expected outcomes in expected.tsv) through the
# daemon, against PostgreSQL (a fresh migrated database) and the Kafka mock cluster:
#  - phase 1: every malformed or hostile event that needs nothing before it; phase 2, once
#    phase 1 is done: case events on the cases phase 1 created, and duplicates of phase-1
#    events (so step 9 of events.md has something to find);
#  - the daemon never crashes: alive after each phase, exit 0 on SIGTERM;
#  - each event has its expected outcome: dead-lettered with its error code and original
#    bytes, or routed by its rule, re-routed, applied, closed, or a plain duplicate;
#  - hostile text is stored verbatim: every case's referral_body is the produced bytes, and
#    child and family ids with SQL metacharacters are stored as sent;
#  - the log (at debug level) has no error line and none of the hostile text.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
service_env kafka
B=$FD_KAFKA_BOOTSTRAP
run="it-hostile-$$-$RANDOM"
tmp=$(mktemp -d)
FD_PID=
trap '[ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null; drop_database; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
here="$FRONTDOOR_SOURCE_DIR/tests/integration"
corpus="$FRONTDOOR_SOURCE_DIR/tests/hostile"
H() { python3 "$here/hostile.py" "$@"; }

make_database "$run"
# case events on unknown cases are held 3 s, then given up as unknown_case
write_config "$tmp/fd.conf" "$B" "$run" "unknown_case_retry_seconds = 3"
sed -i 's/^level = info$/level = debug/' "$tmp/fd.conf"
migrate "$tmp/fd.conf"
echo "$run.referrals" >"$tmp/topic.referrals"
echo "$run.case-events" >"$tmp/topic.case-events"
create_topics "$B" "$run"
start_daemon "$tmp/fd.conf" "$tmp/daemon.log"

# produce_phase N: every event of phase N, in corpus order
produce_phase() {
    local topic key file n=0 want
    want=$(H list "$corpus" "$1" | wc -l)
    while read -r topic key file; do
        produce "$B" "$run.$topic" "$key" "$file" && n=$((n + 1))
    done < <(H list "$corpus" "$1")
    expect_eq "$want" "$n" "phase $1 events produced"
}

# wait_sql SECONDS WANT QUERY: until the query gives WANT
wait_sql() {
    local deadline=$((SECONDS + $1)) got
    while :; do
        got=$(sql "$3")
        [ "$got" = "$2" ] && return 0
        [ $SECONDS -ge $deadline ] && { echo "waited for $3 = $2, got $got" >&2; return 1; }
        sleep 0.5
    done
}

alive() {
    if kill -0 "$FD_PID" 2>/dev/null; then pass; else
        fail "frontdoord died $1: $(tail -n 20 "$tmp/daemon.log")"
        FD_PID=
        finish
    fi
}

produce_phase 1
wait_sql 90 "$(H count "$corpus" routed)" "SELECT count(*) FROM cases" && pass ||
    fail "phase-1 referrals not all routed"
n=$(count_messages "$B" "$run.dlq" "$(H count "$corpus" dlq1)" 60)
expect_eq "$(H count "$corpus" dlq1)" "$n" "phase-1 dead letters"
alive "in phase 1"

produce_phase 2
n=$(count_messages "$B" "$run.dlq" "$(H count "$corpus" dlq)" 90)
expect_eq "$(H count "$corpus" dlq)" "$n" "all dead letters"
wait_sql 30 0 "SELECT count(*) FROM held_events" && pass || fail "held events left"
wait_sql 30 0 "SELECT count(*) FROM outbox WHERE published_at IS NULL" && pass ||
    fail "outbox not published"
sleep 2 # anything more would be a message too many
alive "in phase 2"

python3 "$KAFKA_READ" "$B" "$run.dlq" "$(H count "$corpus" dlq)" 10 >"$tmp/dlq.jsonl"
python3 "$KAFKA_READ" "$B" "$run.decisions" "$(H count "$corpus" decisions)" 30 >"$tmp/decisions.jsonl"
sql "SELECT coalesce(json_agg(json_build_object('referral_id', referral_id, 'state', state,
        'rule', rule, 'child_id', child_id, 'family_id', family_id,
        'body', encode(referral_body, 'hex'))), '[]') FROM cases" >"$tmp/sql-cases.json"
sql "SELECT coalesce(json_agg(json_build_object('event_id', event_id, 'outcome', outcome)), '[]')
     FROM processed_events" >"$tmp/sql-processed.json"

stop_daemon
expect_eq 0 "$FD_RC" "frontdoord exit status after SIGTERM"
FD_PID=
expect_output 'msg=stopped' cat "$tmp/daemon.log"

run_checks H check "$corpus" "$tmp"
if [ "$FD_FAILED" -gt 0 ]; then
    echo "--- daemon log (tail)"
    grep -v 'kafka client' "$tmp/daemon.log" | tail -n 40
fi
finish
