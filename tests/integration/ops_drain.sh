#!/usr/bin/env bash
# Stopping in the middle of a backlog (mock cluster over TCP, kafka fixture; a fresh
# database on the postgres fixture):
#  - SIGTERM while referrals are being decided: exit 0 within 30 s, the work in flight
#    finished and its offsets committed, so the next run takes only the rest: no event is
#    consumed twice (no duplicate outcome), none is skipped (one case per referral);
#  - SIGINT then SIGTERM: out at once (75), and nothing is lost: the next run decides
#    every referral the first left undone, each exactly once in the database.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
service_env kafka
B=$FD_KAFKA_BOOTSTRAP
run="it-drain-$$-$RANDOM"
tmp=$(mktemp -d)
FD_PID=
trap '[ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null; drop_database; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
make_database "$run"
# At most 200 events in flight: the backlog is far larger, so a SIGTERM after the first
# decisions stops part-way whatever the machine's speed (with the default 4,000 the whole
# backlog was fetched before the first commit and drained, and nothing was left for run 2).
write_config "$tmp/fd.conf" "$B" "$run" "max_in_flight = 200"
migrate "$tmp/fd.conf"
create_topics "$B" "$run"

# backlog FROM TO: referrals REF-DR-FROM..TO, each a child and family of its own
backlog() {
    python3 - "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" "$1" "$2" <<'PY' |
import json, sys
base = json.loads(open(sys.argv[1]).readline())
for i in range(int(sys.argv[2]), int(sys.argv[3]) + 1):
    base["event_id"] = "00000000-0000-4000-8000-%012d" % (400000 + i)
    base["referral"]["id"] = "REF-DR-%04d" % i
    base["referral"]["child"]["id"] = "C-DR-%04d" % i
    base["referral"]["family"]["id"] = "F-DR-%04d" % i
    print("%s\t%s" % (base["referral"]["id"], json.dumps(base)))
PY
        kcat -b "$B" -P -t "$run.referrals" -K $'\t' 2>/dev/null
}
cases() { sql "SELECT count(*) FROM cases"; }
# wait_cases N SECONDS
wait_cases() {
    local deadline=$((SECONDS + $2))
    until [ "$(cases)" -ge "$1" ] || [ $SECONDS -ge $deadline ]; do sleep 0.3; done
    [ "$(cases)" -ge "$1" ]
}
# outcome NAME: events counted with that outcome by the running daemon
outcome() {
    curl -s -m 5 "http://$FD_HTTP/metrics" |
        awk -v o="outcome=\"$1\"}" 'index($0, "frontdoord_events_consumed_total{") == 1 && index($0, o) { n += $2 } END { print n + 0 }'
}

N=1500
backlog 1 $N

# 1. SIGTERM part-way through
start_daemon "$tmp/fd.conf" "$tmp/run1.log"
wait_log "$tmp/run1.log" 'msg="referral routed"' 30 || fail "nothing routed: $(tail -n 5 "$tmp/run1.log")"
stop_daemon
FD_PID=
expect_eq 0 "$FD_RC" "exit status after SIGTERM mid-backlog"
expect_eq 1 "$([ "$FD_STOP_S" -le 30 ] && echo 1)" "stopped within 30 s (${FD_STOP_S}s)"
expect_output 'msg="kafka consumer closed"' cat "$tmp/run1.log"
expect_eq 0 "$(grep -c 'stopping with events in flight' "$tmp/run1.log")" "nothing in flight was given up"
done1=$(cases)
echo "run 1 decided $done1 of $N before stopping"
expect_eq 1 "$([ "$done1" -ge 1 ] && [ "$done1" -lt $N ] && echo 1)" "run 1 stopped part-way ($done1 of $N)"

# 2. The next run takes exactly the rest
start_daemon "$tmp/fd.conf" "$tmp/run2.log"
wait_cases $N 90 && pass || fail "run 2: $(cases) cases of $N"
sleep 2 # anything consumed twice would be counted by now
expect_eq 0 "$(outcome duplicate)" "run 2: no event consumed twice (offsets of run 1 committed)"
expect_eq $((N - done1)) "$(outcome routed)" "run 2: routed exactly what run 1 left"
expect_eq $N "$(cases)" "one case per referral"
expect_eq $N "$(sql "SELECT count(DISTINCT referral_id) FROM decisions")" "every referral decided"
expect_eq $N "$(sql "SELECT count(*) FROM decisions")" "one decision per referral"
stop_daemon
FD_PID=
expect_eq 0 "$FD_RC" "run 2: exit status after SIGTERM"

# 3. A second signal: out at once; the next run finishes the job
backlog $((N + 1)) $((2 * N))
"$FD_BIN" --config "$tmp/fd.conf" 2>"$tmp/run3.log" &
FD_PID=$!
wait_log "$tmp/run3.log" 'msg="referral routed"' 40 || fail "run 3: nothing routed: $(tail -n 5 "$tmp/run3.log")"
t0=$SECONDS
kill -INT "$FD_PID"
kill -TERM "$FD_PID"
wait "$FD_PID"
rc=$?
FD_PID=
expect_eq 75 "$rc" "exit status after a second signal"
expect_eq 1 "$([ $((SECONDS - t0)) -le 5 ] && echo 1)" "second signal: out in $((SECONDS - t0)) s"
# a COMMIT the daemon sent before it died still completes at the server: count once its
# sessions are gone
deadline=$((SECONDS + 20))
until [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'frontdoord%'")" = 0 ] ||
    [ $SECONDS -ge $deadline ]; do
    sleep 0.2
done
done3=$(cases)
echo "run 3 decided $((done3 - N)) of $N before the second signal"
start_daemon "$tmp/fd.conf" "$tmp/run4.log"
wait_cases $((2 * N)) 90 && pass || fail "run 4: $(cases) cases of $((2 * N))"
sleep 2
expect_eq $((2 * N)) "$(cases)" "nothing lost after a second signal: one case per referral"
expect_eq $((2 * N)) "$(sql "SELECT count(*) FROM decisions")" "one decision per referral"
expect_eq $((2 * N)) "$(python3 "$KAFKA_READ" "$B" "$run.decisions" $((2 * N)) 60 |
    python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in sys.stdin}))')" \
    "a decision message for every referral"
expect_eq $((2 * N - done3)) "$(outcome routed)" "run 4 routed what run 3 left undone"
stop_daemon
FD_PID=
expect_eq 0 "$FD_RC" "run 4: exit status after SIGTERM"
finish
