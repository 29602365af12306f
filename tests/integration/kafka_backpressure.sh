#!/usr/bin/env bash
# Backpressure with the downstream down: the broker leading the decisions topic goes
# down, so decisions cannot be delivered and no offset may be stored. The daemon must
# stop at its in-flight bound (1000 events) with every partition paused while it keeps
# polling, then, once the broker is back, deliver the held decisions, resume by itself
# and finish the backlog with exactly one decision per referral. Then, stopping while the
# downstream is down again: the in-flight events are given up after the drain time, the
# daemon still exits 0 within 30 s, and the next run decides them (nothing lost).
# Uses its own mock cluster (frontdoor-mock-kafka --control) to place partition leaders.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
tmp=$(mktemp -d)
FD_PID=
MOCK_PID=
cleanup() {
    [ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null
    exec 3>&- 2>/dev/null
    [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
run=bp
N=1500

mkfifo "$tmp/ctl"
"$FRONTDOOR_BUILD_DIR/frontdoor-mock-kafka" --brokers 2 --control \
    --topic $run.referrals:2 --topic $run.case-events:1 --topic $run.decisions:1 \
    --topic $run.dlq:1 <"$tmp/ctl" >"$tmp/mock.out" 2>"$tmp/mock.err" &
MOCK_PID=$!
exec 3>"$tmp/ctl"
wait_log "$tmp/mock.out" '^127\.0\.0\.1:' 10 || fail "mock cluster did not start"
B=$(head -n 1 "$tmp/mock.out")
# ctl CMD...: one control command, answered "ok".
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
# Everything on broker 1 except the decisions topic, which broker 2 leads.
ctl leader $run.referrals 0 1
ctl leader $run.referrals 1 1
ctl leader $run.case-events 0 1
ctl leader $run.dlq 0 1
ctl leader $run.decisions 0 2
ctl coordinator $run-group 1

# backlog FROM TO: referrals REF-BP-FROM..TO-1, "key<TAB>value" lines
backlog() {
    python3 - "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" "$1" "$2" <<'PY'
import json, sys
base = json.loads(open(sys.argv[1]).readline())
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    base["event_id"] = "00000000-0000-4000-8000-%012d" % (100000 + i)
    base["referral"]["id"] = "REF-BP-%05d" % i
    print("%s\t%s" % (base["referral"]["id"], json.dumps(base)))
PY
}
backlog 0 "$N" >"$tmp/backlog"
kcat -b "$B" -P -t $run.referrals -K $'\t' <"$tmp/backlog" 2>/dev/null
expect_eq 0 $? "backlog of $N referrals produced"

ctl broker_down 2
write_config "$tmp/fd.conf" "$B" "$run"
start_daemon "$tmp/fd.conf" "$tmp/daemon.log"
if wait_log "$tmp/daemon.log" 'msg="consumption paused" in_flight=1000' 30; then pass; else
    fail "not paused at 1000 in flight: $(grep -v 'kafka client' "$tmp/daemon.log" | tail -n 5)"
fi
sleep 3 # paused: still polling, nothing more taken
routed=$(grep -c 'msg="referral routed"' "$tmp/daemon.log")
expect_eq 1 "$([ "$routed" -ge 1000 ] && [ "$routed" -le 1010 ] && echo 1)" \
    "events taken while the downstream is down ($routed, bound 1000)"
expect_eq 0 "$(grep -c 'msg="consumption resumed"' "$tmp/daemon.log")" "still paused"
kill -0 "$FD_PID" 2>/dev/null
expect_eq 0 $? "daemon alive while paused"

ctl broker_up 2
if wait_log "$tmp/daemon.log" 'msg="consumption resumed"' 60; then pass; else
    fail "did not resume: $(grep -v 'kafka client' "$tmp/daemon.log" | tail -n 5)"
fi
python3 "$KAFKA_READ" "$B" $run.decisions "$N" 90 >"$tmp/decisions.jsonl"
expect_eq "$N" "$(wc -l <"$tmp/decisions.jsonl")" "decisions after the broker came back"
expect_eq "$N" "$(python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in open(sys.argv[1])}))' "$tmp/decisions.jsonl")" \
    "one decision per referral"

# Stop while the downstream is down: give up what is in flight, exit 0 in time.
ctl broker_down 2
backlog "$N" $((N + 10)) | kcat -b "$B" -P -t $run.referrals -K $'\t' 2>/dev/null
deadline=$((SECONDS + 30))
until [ "$(grep -c 'msg="referral routed"' "$tmp/daemon.log")" -ge $((N + 10)) ] || [ $SECONDS -ge $deadline ]; do
    sleep 0.2
done
expect_eq $((N + 10)) "$(grep -c 'msg="referral routed"' "$tmp/daemon.log")" "new referrals taken"
stop_daemon
expect_eq 0 "$FD_RC" "exit status after SIGTERM with the downstream down"
expect_eq 1 "$([ "$FD_STOP_S" -le 30 ] && echo 1)" "stopped within 30 s (${FD_STOP_S}s)"
expect_output 'msg="stopping with events in flight; they are consumed again at the next start" in_flight=10' \
    cat "$tmp/daemon.log"
ctl broker_up 2
start_daemon "$tmp/fd.conf" "$tmp/daemon2.log"
python3 "$KAFKA_READ" "$B" $run.decisions $((N + 10)) 60 >"$tmp/decisions.jsonl"
expect_eq $((N + 10)) "$(python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in open(sys.argv[1])}))' "$tmp/decisions.jsonl")" \
    "the abandoned referrals were decided by the next run"
expect_eq 10 "$(grep -c 'msg="referral routed"' "$tmp/daemon2.log")" "the next run took only those"
stop_daemon
expect_eq 0 "$FD_RC" "exit status after SIGTERM"
finish
