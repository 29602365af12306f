#!/usr/bin/env bash
# Lost partitions: the group coordinator becomes unreachable for longer than the session
# timeout, so the daemon's assignment is lost (not revoked). It must drop what it was
# doing there without committing, rejoin by itself when the coordinator returns, and go
# on from the committed offsets: nothing decided twice, nothing skipped.
# Uses its own mock cluster (frontdoor-mock-kafka --control) to place the coordinator.
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
    drop_database
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
run=lost

mkfifo "$tmp/ctl"
"$FRONTDOOR_BUILD_DIR/frontdoor-mock-kafka" --brokers 2 --control \
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
# Data on broker 1, the group's coordinator on broker 2.
for tp in "$run.referrals 0" "$run.referrals 1" "$run.case-events 0" "$run.decisions 0" "$run.dlq 0"; do
    ctl leader $tp 1
done
ctl coordinator $run-group 2

referrals() {
    python3 - "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" "$1" "$2" <<'PY' |
import json, sys
base = json.loads(open(sys.argv[1]).readline())
for i in range(int(sys.argv[2]), int(sys.argv[3]) + 1):
    base["event_id"] = "00000000-0000-4000-8000-%012d" % (300000 + i)
    base["referral"]["id"] = "REF-LOST-%03d" % i
    print("%s\t%s" % (base["referral"]["id"], json.dumps(base)))
PY
        kcat -b "$B" -P -t $run.referrals -K $'\t' 2>/dev/null
}

referrals 1 10
make_database "$run-$$-$RANDOM"
write_config "$tmp/fd.conf" "$B" "$run"
migrate "$tmp/fd.conf"
start_daemon "$tmp/fd.conf" "$tmp/daemon.log"
expect_eq 10 "$(count_messages "$B" $run.decisions 10 20)" "decisions before the loss"
sleep 2 # committed

ctl broker_down 2
if wait_log "$tmp/daemon.log" 'msg="partitions lost"' 30; then pass; else
    fail "assignment not lost: $(grep -v 'kafka client' "$tmp/daemon.log" | tail -n 5)"
fi
expect_eq 0 "$(grep -c 'msg="partitions revoked"' "$tmp/daemon.log")" "lost, not revoked"
ctl broker_up 2
deadline=$((SECONDS + 40))
until [ "$(grep -c 'msg="partitions assigned"' "$tmp/daemon.log")" -ge 2 ] || [ $SECONDS -ge $deadline ]; do
    sleep 0.2
done
expect_eq 2 "$(grep -c 'msg="partitions assigned"' "$tmp/daemon.log")" "rejoined by itself"

referrals 11 15
expect_eq 15 "$(count_messages "$B" $run.decisions 15 30)" "decisions after rejoining"
sleep 2
expect_eq 15 "$(count_messages "$B" $run.decisions)" "nothing decided twice (committed offsets kept)"
expect_eq 15 "$(grep -c 'msg="referral routed"' "$tmp/daemon.log")" "each referral routed once"
stop_daemon
expect_eq 0 "$FD_RC" "exit status after SIGTERM"
finish
