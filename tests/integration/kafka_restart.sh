#!/usr/bin/env bash
# At-least-once across restarts, against the mock cluster over TCP (kafka fixture):
#  - a daemon stopped by SIGTERM (exit 0, promptly) has committed what it did: the next
#    one in the same group takes only the new events, so each referral has exactly one
#    decision and each unusable event one DLQ message;
#  - a daemon killed with SIGKILL loses nothing: after a restart every referral has a
#    decision (some maybe twice: consumers deduplicate by event_id).
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
service_env kafka
B=$FD_KAFKA_BOOTSTRAP
run="it-restart-$$-$RANDOM"
tmp=$(mktemp -d)
FD_PID=
trap '[ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null; drop_database; rm -rf "$tmp"' EXIT
make_database "$run-$$-$RANDOM"
write_config "$tmp/fd.conf" "$B" "$run"
migrate "$tmp/fd.conf"
create_topics "$B" "$run"

# referrals FROM TO: sample referral 1 with ids REF-RS-FROM..TO, produced keyed by id
referrals() {
    python3 - "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" "$1" "$2" <<'PY' |
import json, sys
base = json.loads(open(sys.argv[1]).readline())
for i in range(int(sys.argv[2]), int(sys.argv[3]) + 1):
    base["event_id"] = "00000000-0000-4000-8000-%012d" % (200000 + i)
    base["referral"]["id"] = "REF-RS-%03d" % i
    print("%s\t%s" % (base["referral"]["id"], json.dumps(base)))
PY
        kcat -b "$B" -P -t "$run.referrals" -K $'\t' 2>/dev/null
}
decisions() { count_messages "$B" "$run.decisions" "$1" 30; }
distinct_keys() {
    python3 "$KAFKA_READ" "$B" "$run.decisions" |
        python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in sys.stdin}))'
}
routed_in() { grep -c 'msg="referral routed"' "$1"; }

# 1. five referrals, clean stop
referrals 1 5
start_daemon "$tmp/fd.conf" "$tmp/run1.log"
expect_eq 5 "$(decisions 5)" "run 1: decisions"
sleep 1.5 # auto-commit interval
stop_daemon
expect_eq 0 "$FD_RC" "run 1: exit status after SIGTERM"
expect_eq 1 "$([ "$FD_STOP_S" -le 10 ] && echo 1)" "run 1: stop took ${FD_STOP_S}s"

# 2. three more and an unusable one while it is down; the restart takes only those
referrals 6 8
printf 'not json' >"$tmp/bad"
produce "$B" "$run.referrals" bad-1 "$tmp/bad"
start_daemon "$tmp/fd.conf" "$tmp/run2.log"
expect_eq 8 "$(decisions 8)" "run 2: decisions"
expect_eq 1 "$(count_messages "$B" "$run.dlq" 1 20)" "run 2: DLQ messages"
sleep 3 # anything replayed would show up by now
expect_eq 8 "$(decisions 8)" "run 2: no referral decided twice"
expect_eq 3 "$(routed_in "$tmp/run2.log")" "run 2: only the new referrals routed"
stop_daemon
expect_eq 0 "$FD_RC" "run 2: exit status after SIGTERM"

# 3. a SIGKILL right after it starts working: nothing is lost
referrals 9 40
start_daemon "$tmp/fd.conf" "$tmp/run3.log"
wait_log "$tmp/run3.log" 'msg="referral routed"' 20
kill -KILL "$FD_PID"
wait "$FD_PID" 2>/dev/null
FD_PID=
start_daemon "$tmp/fd.conf" "$tmp/run4.log"
decisions 40 >/dev/null
expect_eq 40 "$(distinct_keys)" "after SIGKILL and restart: every referral has a decision"
expect_eq 1 "$(count_messages "$B" "$run.dlq")" "the unusable event was not dead-lettered again"
stop_daemon
expect_eq 0 "$FD_RC" "run 4: exit status after SIGTERM"
finish
