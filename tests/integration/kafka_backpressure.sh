#!/usr/bin/env bash
# Backpressure with the downstream (the case store's database) stalled: another session
# holds an exclusive lock on the cases table, so no transaction can commit and no offset
# may be stored. The daemon must stop at its in-flight bound (1000 events) with every
# partition paused while it keeps polling, its memory bounded; once the lock goes it
# commits the held events, resumes by itself and finishes the backlog with exactly one
# case and one decision per referral. Then, stopping while the database is stalled again:
# the in-flight events are given up after the drain time, the daemon still exits 0
# within 30 s, and the next run decides them (nothing lost).
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
service_env kafka
B=$FD_KAFKA_BOOTSTRAP
run="it-bp-$$-$RANDOM"
tmp=$(mktemp -d)
FD_PID=
LOCK_PID=
unlock() {
    if [ -n "$LOCK_PID" ]; then
        printf "COMMIT;\n\\q\n" >&4
        exec 4>&-
        wait "$LOCK_PID" 2>/dev/null
        LOCK_PID=
    fi
}
cleanup() {
    [ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null
    unlock
    drop_database
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
N=1500

make_database "$run"
write_config "$tmp/fd.conf" "$B" "$run" "max_in_flight = 1000"
migrate "$tmp/fd.conf"
create_topics "$B" "$run"

# lock: a psql session that takes the cases table and keeps it until unlock.
lock() {
    rm -f "$tmp/lockctl"
    mkfifo "$tmp/lockctl"
    "$FD_PG_BIN/psql" -XAtq "$FD_DB_CONNINFO" -v ON_ERROR_STOP=1 <"$tmp/lockctl" >"$tmp/lock.out" 2>&1 &
    LOCK_PID=$!
    exec 4>"$tmp/lockctl"
    echo "BEGIN; LOCK TABLE cases IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&4
    wait_log "$tmp/lock.out" '^locked$' 10 && pass || fail "could not lock the cases table: $(cat "$tmp/lock.out")"
}

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
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$FD_PID/status" 2>/dev/null; }
cases() { sql "SELECT count(*) FROM cases"; }

backlog 0 "$N" | kcat -b "$B" -P -t "$run.referrals" -K $'\t' 2>/dev/null
expect_eq 0 $? "backlog of $N referrals produced"

lock
start_daemon "$tmp/fd.conf" "$tmp/daemon.log"
if wait_log "$tmp/daemon.log" 'msg="consumption paused" in_flight=1000' 30; then pass; else
    fail "not paused at 1000 in flight: $(tail -n 5 "$tmp/daemon.log")"
fi
rss1=$(rss_kib)
sleep 3 # paused: still polling, nothing more taken
expect_eq 0 "$(grep -c 'msg="consumption resumed" in_flight=[1-9]' "$tmp/daemon.log")" "still paused"
kill -0 "$FD_PID" 2>/dev/null
expect_eq 0 $? "daemon alive while paused"
rss2=$(rss_kib)
expect_eq 1 "$([ -n "$rss2" ] && [ "$rss2" -le $((rss1 + 8192)) ] && [ "$rss2" -le 102400 ] && echo 1)" \
    "memory bounded while paused (RSS ${rss1} KiB then ${rss2} KiB)"
unlock
expect_eq 0 "$(cases)" "nothing committed while the database was stalled"

if wait_log "$tmp/daemon.log" 'msg="consumption resumed"' 60; then pass; else
    fail "did not resume: $(tail -n 5 "$tmp/daemon.log")"
fi
python3 "$KAFKA_READ" "$B" "$run.decisions" "$N" 90 >"$tmp/decisions.jsonl"
expect_eq "$N" "$(wc -l <"$tmp/decisions.jsonl")" "decisions after the database came back"
expect_eq "$N" "$(python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in open(sys.argv[1])}))' "$tmp/decisions.jsonl")" \
    "one decision per referral"
expect_eq "$N" "$(cases)" "one case per referral"
expect_eq "$N" "$(sql "SELECT count(*) FROM decisions")" "one decision row per referral"

# Stop while the database is stalled: give up what is in flight, exit 0 in time.
lock
backlog "$N" $((N + 10)) | kcat -b "$B" -P -t "$run.referrals" -K $'\t' 2>/dev/null
# the daemon's transaction waits for the lock; the rest of the 10 queue behind it
deadline=$((SECONDS + 30))
until [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")" -ge 1 ] ||
    [ $SECONDS -ge $deadline ]; do
    sleep 0.2
done
sleep 2
stop_daemon
expect_eq 0 "$FD_RC" "exit status after SIGTERM with the database stalled"
expect_eq 1 "$([ "$FD_STOP_S" -le 30 ] && echo 1)" "stopped within 30 s (${FD_STOP_S}s)"
expect_output 'msg="stopping with events in flight; they are consumed again at the next start" in_flight=10' \
    cat "$tmp/daemon.log"
unlock
expect_eq "$N" "$(cases)" "the given-up events left nothing behind"
start_daemon "$tmp/fd.conf" "$tmp/daemon2.log"
python3 "$KAFKA_READ" "$B" "$run.decisions" $((N + 10)) 60 >"$tmp/decisions.jsonl"
expect_eq $((N + 10)) "$(python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in open(sys.argv[1])}))' "$tmp/decisions.jsonl")" \
    "the abandoned referrals were decided by the next run"
expect_eq 10 "$(grep -c 'msg="referral routed"' "$tmp/daemon2.log")" "the next run took only those"
expect_eq $((N + 10)) "$(cases)" "one case per referral at the end"
stop_daemon
expect_eq 0 "$FD_RC" "exit status after SIGTERM"
finish
