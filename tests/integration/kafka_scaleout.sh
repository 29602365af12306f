#!/usr/bin/env bash
# Two daemons in one consumer group against one database (kafka and postgres fixtures):
# Kafka spreads the partitions between them, and a stream of referrals and case events
# produced while both run (the second joining mid-stream, so partitions move) ends with
# no event handled twice and no case duplicated: one case, one decision row and one
# decisions message per referral, every case event processed once, nothing held.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
service_env kafka
B=$FD_KAFKA_BOOTSTRAP
run="it-scale-$$-$RANDOM"
tmp=$(mktemp -d)
FD_PID=
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    drop_database
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
N=3000

make_database "$run"
write_config "$tmp/fd.conf" "$B" "$run"
migrate "$tmp/fd.conf"
create_topics "$B" "$run"
read -r n_ref n_ce < <(python3 "$FRONTDOOR_SOURCE_DIR/tests/integration/stream.py" "$FRONTDOOR_SPEC_DIR" SC "$N" "$tmp")
half=$((n_ref / 2))
hce=$((n_ce / 2))

# first half with one daemon running
start_daemon "$tmp/fd.conf" "$tmp/d1.log"
PIDS+=("$FD_PID")
head -n "$half" "$tmp/referrals" | kcat -b "$B" -P -t "$run.referrals" -K $'\t' 2>/dev/null
head -n "$hce" "$tmp/case-events" | kcat -b "$B" -P -t "$run.case-events" -K $'\t' 2>/dev/null
# the second joins mid-stream: the group rebalances
start_daemon "$tmp/fd.conf" "$tmp/d2.log"
PIDS+=("$FD_PID")
tail -n +"$((half + 1))" "$tmp/referrals" | kcat -b "$B" -P -t "$run.referrals" -K $'\t' 2>/dev/null
tail -n +"$((hce + 1))" "$tmp/case-events" | kcat -b "$B" -P -t "$run.case-events" -K $'\t' 2>/dev/null

total=$((n_ref + n_ce))
deadline=$((SECONDS + 180))
until [ "$(sql 'SELECT count(*) FROM processed_events')" -ge "$total" ] || [ $SECONDS -ge $deadline ]; do
    sleep 1
done
expect_eq "$total" "$(sql 'SELECT count(*) FROM processed_events')" "every event processed once"
expect_eq "$n_ref" "$(sql 'SELECT count(*) FROM cases')" "one case per referral"
expect_eq "$n_ref" "$(sql 'SELECT count(*) FROM decisions')" "one decision row per referral"
deadline=$((SECONDS + 60))
until [ "$(sql "SELECT count(*) FROM outbox WHERE published_at IS NULL")" = 0 ] || [ $SECONDS -ge $deadline ]; do
    sleep 0.5
done
expect_eq 0 "$(sql "SELECT count(*) FROM outbox WHERE published_at IS NULL")" "every outbox message published"
expect_eq 0 "$(sql 'SELECT count(*) FROM held_events')" "nothing left held"
closed_ok=$(sql "SELECT count(*) FROM processed_events WHERE topic LIKE '%case-events' AND outcome = 'closed'")
rejected=$(sql "SELECT count(*) FROM processed_events WHERE topic LIKE '%case-events' AND outcome <> 'closed'")
expect_eq "$n_ce" "$((closed_ok + rejected))" "every case.closed closed its case or was rejected ($closed_ok, $rejected)"
expect_eq "$rejected" "$(sql "SELECT count(*) FROM outbox WHERE kind = 'dlq'")" "each rejection dead-lettered once"

python3 "$KAFKA_READ" "$B" "$run.decisions" "$n_ref" 60 >"$tmp/decisions.jsonl"
expect_eq "$n_ref" "$(python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in open(sys.argv[1])}))' "$tmp/decisions.jsonl")" \
    "a decision on Kafka for every referral"
handled() { grep -Ec 'msg="(referral routed|case closed|event rejected|case event applied)"' "$1"; }
h1=$(handled "$tmp/d1.log")
h2=$(handled "$tmp/d2.log")
expect_eq 1 "$([ "$h1" -gt 0 ] && [ "$h2" -gt 0 ] && echo 1)" "both daemons did work ($h1 and $h2 events)"
d1=$(grep -c 'msg="duplicate event ignored"' "$tmp/d1.log")
d2=$(grep -c 'msg="duplicate event ignored"' "$tmp/d2.log")
expect_eq "$total" "$((h1 + h2))" "no event handled twice"
echo "events handled: $h1 + $h2; redelivered after a rebalance and found done: $d1 + $d2"

for p in "${PIDS[@]}"; do
    FD_PID=$p
    stop_daemon
    expect_eq 0 "$FD_RC" "exit status after SIGTERM"
done
PIDS=()
finish
