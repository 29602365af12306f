#!/usr/bin/env bash
# The HTTP listener, checked with curl against a running daemon (its own mock Kafka
# cluster with fault injection, and a fresh database on the postgres fixture):
#  - GET /healthz answers 200 while the loop runs; unknown paths 404, other methods 405;
#  - GET /readyz answers 200 once the database and Kafka are connected; 503 naming the
#    database while it refuses connections, 503 naming Kafka while its broker is down,
#    and 200 again after each comes back by itself;
#  - GET /metrics is Prometheus text: after three referrals and one unusable event the
#    counters say so (decisions by the route and rule --explain gives for the same
#    referrals, summing to 3), the dead letter by its error code, the consumer lag falls
#    to 0 once offsets are committed, the outbox is empty, the round-trip histogram has
#    counted the case store's rounds, notifications are counted by channel and state from
#    the table, and the overdue deadlines are those of the referrals still waiting for a
#    person past their decision_due_at.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
tmp=$(mktemp -d)
FD_PID=
MOCK_PID=
cleanup() {
    [ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null
    exec 3>&- 2>/dev/null
    stop_pid "$MOCK_PID"
    [ -n "${FD_DB_NAME:-}" ] && sql_admin "ALTER DATABASE $FD_DB_NAME ALLOW_CONNECTIONS true" >/dev/null 2>&1
    drop_database
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
run=ops
sql_admin() { "$FD_PG_BIN/psql" -XAtq "$FD_PG_CONNINFO" -v ON_ERROR_STOP=1 -c "$1"; }

mkfifo "$tmp/ctl"
"$FRONTDOOR_BUILD_DIR/frontdoor-mock-kafka" --brokers 1 --control \
    --topic $run.referrals:2 --topic $run.case-events:1 --topic $run.decisions:1 \
    --topic $run.dlq:1 <"$tmp/ctl" >"$tmp/mock.out" 2>"$tmp/mock.err" &
MOCK_PID=$!
exec 3>"$tmp/ctl"
wait_log "$tmp/mock.out" '^127\.0\.0\.1:' 10 || fail "mock cluster did not start"
B=$(head -n 1 "$tmp/mock.out")
ctl_n=0
ctl() {
    echo "$*" >&3
    ctl_n=$((ctl_n + 1))
    local deadline=$((SECONDS + 10))
    until [ "$(grep -c '' "$tmp/mock.out")" -gt "$ctl_n" ]; do
        [ $SECONDS -ge $deadline ] && break
        sleep 0.05
    done
    expect_eq ok "$(sed -n "$((ctl_n + 1))p" "$tmp/mock.out")" "mock control: $*"
}

make_database "$run-$$-$RANDOM"
write_config "$tmp/fd.conf" "$B" "$run"
migrate "$tmp/fd.conf"

# get PATH: status code on the first line, then the body
get() { curl -s -m 5 -o "$tmp/body" -w '%{http_code}' "http://$FD_HTTP$1"; }
# wait_status PATH CODE SECONDS: until PATH answers CODE
wait_status() {
    local deadline=$((SECONDS + $3))
    until [ "$(get "$1")" = "$2" ]; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}
# metric NAME{LABELS}: the value of one series in a fresh scrape, or "absent"
metric() {
    curl -s -m 5 "http://$FD_HTTP/metrics" >"$tmp/metrics"
    scraped "$1"
}
# scraped NAME{LABELS}: the same from the last scrape (series that must agree are read
# from one scrape: the daemon's timers make database rounds between two)
scraped() {
    awk -v s="$1" 'index($0, s " ") == 1 { v = substr($0, length(s) + 2) } END { print (v == "" ? "absent" : v) }' "$tmp/metrics"
}
# wait_metric SERIES VALUE SECONDS
wait_metric() {
    local deadline=$((SECONDS + $3))
    until [ "$(metric "$1")" = "$2" ]; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.5
    done
}

start_daemon "$tmp/fd.conf" "$tmp/daemon.log"
expect_eq 1 "$([[ "$FD_HTTP" =~ ^127\.0\.0\.1:[0-9]+$ ]] && echo 1)" "listening address logged ($FD_HTTP)"

# /healthz, /readyz, unknown paths and methods
expect_eq 200 "$(get /healthz)" "/healthz"
expect_eq ok "$(cat "$tmp/body")" "/healthz body"
wait_status /readyz 200 20 && pass || fail "/readyz not 200: $(cat "$tmp/body")"
expect_eq ready "$(cat "$tmp/body")" "/readyz body when ready"
expect_eq 404 "$(get /nope)" "unknown path"
expect_eq 405 "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST --data x "http://$FD_HTTP/metrics")" \
    "POST to /metrics"
expect_output '^HTTP/1\.1 200' curl -s -m 5 -I "http://$FD_HTTP/healthz"

# known events: three referrals whose decisions --explain tells us, one unusable event
for n in 1 8 14; do sed -n "${n}p" "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl"; done >"$tmp/three.jsonl"
"$FD_BIN" --config "$tmp/fd.conf" --explain "$tmp/three.jsonl" >"$tmp/explain.jsonl"
i=0
while IFS= read -r line; do
    i=$((i + 1))
    printf '%s' "$line" >"$tmp/ref$i"
    produce "$B" $run.referrals "REF-$i" "$tmp/ref$i"
done <"$tmp/three.jsonl"
printf 'not json' >"$tmp/bad"
produce "$B" $run.referrals bad-1 "$tmp/bad"
expect_eq 3 "$(count_messages "$B" $run.decisions 3 30)" "three decisions published"
expect_eq 1 "$(count_messages "$B" $run.dlq 1 30)" "one dead letter"

curl -s -m 5 -D "$tmp/headers" "http://$FD_HTTP/metrics" >"$tmp/metrics"
expect_output '^Content-Type: text/plain; version=0\.0\.4' cat "$tmp/headers"
# every sample line is `name{labels} value` under its # TYPE line
python3 - "$tmp/metrics" <<'PY' && pass || fail "metrics text malformed: $(head -c 2000 "$tmp/metrics")"
import re, sys
family = None
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (\S+)$')
for line in open(sys.argv[1]).read().splitlines():
    if line.startswith("# TYPE "):
        family = line.split()[2]
        continue
    if line.startswith("# HELP "):
        continue
    m = sample.match(line)
    assert m, line
    assert m.group(1) in (family, family + "_bucket", family + "_sum", family + "_count"), line
    float(m.group(5).replace("Inf", "inf"))
PY
python3 - "$tmp/explain.jsonl" "$tmp/metrics" <<'PY' >"$tmp/checks"
import json, sys, collections
want = collections.Counter((d["route"], d["rule"]) for d in map(json.loads, open(sys.argv[1])))
got, total = {}, 0
for line in open(sys.argv[2]):
    if line.startswith("frontdoord_decisions_total{"):
        labels, value = line.rsplit(" ", 1)
        route = labels.split('route="')[1].split('"')[0]
        rule = labels.split('rule="')[1].split('"')[0]
        got[(route, rule)] = float(value)
        total += float(value)
print(("PASS" if total == 3 else "FAIL") + " decisions counter sums to 3 (got %s)" % total)
for (route, rule), n in want.items():
    print(("PASS" if got.get((route, rule)) == n else "FAIL") +
          " decisions{route=%s,rule=%s} = %d (got %s)" % (route, rule, n, got.get((route, rule))))
PY
run_checks cat "$tmp/checks"
expect_eq 3 "$(metric 'frontdoord_events_consumed_total{topic="ops.referrals",outcome="routed"}')" \
    "referrals consumed as routed"
expect_eq 1 "$(metric 'frontdoord_events_consumed_total{topic="ops.referrals",outcome="unusable"}')" \
    "unusable event consumed"
expect_eq 1 "$(metric 'frontdoord_events_dead_lettered_total{topic="ops.referrals",error="invalid_json"}')" \
    "dead letter by error code"
rtt=$(metric 'frontdoord_database_round_trip_seconds_count{db="frontdoord-casestore"}')
expect_eq 1 "$([ "$rtt" != absent ] && [ "$rtt" -ge 2 ] && echo 1)" "casestore round trips counted ($rtt)"
expect_eq "$rtt" "$(scraped 'frontdoord_database_round_trip_seconds_bucket{db="frontdoord-casestore",le="+Inf"}')" \
    "+Inf bucket holds every round"
wait_metric 'frontdoord_outbox_depth' 0 20 && pass || fail "outbox depth not 0: $(metric frontdoord_outbox_depth)"
# committed every second, statistics every second
wait_metric 'frontdoord_kafka_consumer_lag{topic="ops.referrals",partition="0"}' 0 20 && pass ||
    fail "lag of partition 0 not 0: $(grep consumer_lag "$tmp/metrics")"
wait_metric 'frontdoord_kafka_consumer_lag{topic="ops.referrals",partition="1"}' 0 20 && pass ||
    fail "lag of partition 1 not 0: $(grep consumer_lag "$tmp/metrics")"
expect_eq 1 "$(metric 'frontdoord_up{component="database"}')" "database up"
expect_eq 1 "$(metric 'frontdoord_up{component="kafka"}')" "kafka up"
expect_eq 1 "$(metric 'frontdoord_ready')" "ready gauge"

# Overdue: the referrals --explain sends to a person (triage or consent) whose deadline
# has passed now; notifications: rows put in the table, counted at the next query.
overdue=$(python3 - "$tmp/explain.jsonl" <<'PY'
import json, sys, datetime
now = datetime.datetime.now(datetime.timezone.utc)
n = 0
for d in map(json.loads, open(sys.argv[1])):
    due = d["decision_due_at"]
    if d["route"] in ("manual_triage", "consent_required") and due and \
            datetime.datetime.fromisoformat(due.replace("Z", "+00:00")) < now:
        n += 1
print(n)
PY
)
# The daemon's own notifications of those referrals are sent first (file provider), so
# the counts stand still while the metric catches up with the table.
for _ in $(seq 1 100); do
    [ "$(sql "SELECT count(*) FROM notifications WHERE state IN ('queued', 'sending')")" = 0 ] && break
    sleep 0.2
done
sql "INSERT INTO notifications (id, template, channel, state) VALUES
     (gen_random_uuid(), 'triage_needed', 'email', 'sent'),
     (gen_random_uuid(), 'triage_needed', 'email', 'sent'),
     (gen_random_uuid(), 'appointment_booked', 'sms', 'failed')" >/dev/null
email_sent=$(sql "SELECT count(*) FROM notifications WHERE channel = 'email' AND state = 'sent'")
sms_failed=$(sql "SELECT count(*) FROM notifications WHERE channel = 'sms' AND state = 'failed'")
expect_eq 1 "$([ "$email_sent" -ge 2 ] && echo 1)" "email/sent rows in the table ($email_sent)"
wait_metric 'frontdoord_notifications{channel="email",state="sent"}' "$email_sent" 30 && pass ||
    fail "email/sent not $email_sent: $(grep '^frontdoord_notifications' "$tmp/metrics")"
expect_eq "$sms_failed" "$(metric 'frontdoord_notifications{channel="sms",state="failed"}')" "sms/failed"
expect_eq 0 "$(metric 'frontdoord_notifications{channel="sms",state="queued"}')" "sms/queued listed at 0"
expect_eq "$overdue" "$(metric 'frontdoord_decision_deadlines_overdue')" "overdue deadlines"

# The database refuses connections: /readyz says so, the loop still answers /healthz.
sql_admin "ALTER DATABASE $FD_DB_NAME ALLOW_CONNECTIONS false" >/dev/null
sql_admin "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$FD_DB_NAME' AND pid <> pg_backend_pid()" >/dev/null
wait_status /readyz 503 20 && pass || fail "/readyz not 503 with the database down: $(cat "$tmp/body")"
expect_output '^database: ' cat "$tmp/body"
expect_eq 200 "$(get /healthz)" "/healthz while the database is down"
expect_eq 0 "$(metric 'frontdoord_up{component="database"}')" "database down in /metrics"
expect_eq 0 "$(metric 'frontdoord_ready')" "not ready in /metrics"
sql_admin "ALTER DATABASE $FD_DB_NAME ALLOW_CONNECTIONS true" >/dev/null
wait_status /readyz 200 60 && pass || fail "/readyz not 200 after the database came back: $(cat "$tmp/body")"

# Kafka's only broker goes down, then comes back.
ctl broker_down 1
wait_status /readyz 503 30 && pass || fail "/readyz not 503 with the broker down: $(cat "$tmp/body")"
expect_output '^kafka (consumer|producer): no broker connected' cat "$tmp/body"
expect_eq 200 "$(get /healthz)" "/healthz while Kafka is down"
ctl broker_up 1
wait_status /readyz 200 60 && pass || fail "/readyz not 200 after the broker came back: $(cat "$tmp/body")"

# Stopping: exit 0, and the listener is gone.
kill -TERM "$FD_PID"
wait "$FD_PID"
expect_eq 0 $? "exit status after SIGTERM"
FD_PID=
expect_eq 000 "$(get /healthz)" "listener closed after exit"
finish
