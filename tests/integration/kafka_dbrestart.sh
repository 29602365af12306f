#!/usr/bin/env bash
# The database goes away mid-stream (its own PostgreSQL, stopped with -m immediate, as
# a crash would, then started again): the daemon reports not-ready and pauses
# consumption, retries the connection with backoff, resumes by itself and loses nothing:
# one case, decision and decisions message per referral, every case event once.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
service_env kafka
B=$FD_KAFKA_BOOTSTRAP
run="it-dbrestart-$$-$RANDOM"
tmp=$(mktemp -d)
chmod 0755 "$tmp"
FD_PID=
cleanup() {
    [ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null
    FRONTDOOR_SERVICES_DIR="$tmp/svc" "$FRONTDOOR_SOURCE_DIR/scripts/services" postgres stop >/dev/null 2>&1
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
N=4000

# a PostgreSQL of this test's own, so stopping it disturbs no other test
FRONTDOOR_SERVICES_DIR="$tmp/svc" "$FRONTDOOR_SOURCE_DIR/scripts/services" postgres start >/dev/null ||
    { fail "cannot start a PostgreSQL"; finish; }
. "$tmp/svc/postgres.env"
FD_DB_CONNINFO=$FD_PG_CONNINFO
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_stop() { as_pg "$FD_PG_BIN/pg_ctl" -D "$FD_PG_DIR/data" -m immediate -w stop >/dev/null; }
pg_start() {
    as_pg "$FD_PG_BIN/pg_ctl" -D "$FD_PG_DIR/data" -l "$FD_PG_DIR/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -c port=$FD_PG_PORT -c unix_socket_directories=$FD_PG_DIR -c max_connections=200" >/dev/null
}

write_config "$tmp/fd.conf" "$B" "$run"
migrate "$tmp/fd.conf"
create_topics "$B" "$run"
read -r n_ref n_ce < <(python3 "$FRONTDOOR_SOURCE_DIR/tests/integration/stream.py" "$FRONTDOOR_SPEC_DIR" DB "$N" "$tmp")
kcat -b "$B" -P -t "$run.referrals" -K $'\t' <"$tmp/referrals" 2>/dev/null
kcat -b "$B" -P -t "$run.case-events" -K $'\t' <"$tmp/case-events" 2>/dev/null

start_daemon "$tmp/fd.conf" "$tmp/daemon.log"
wait_log "$tmp/daemon.log" 'msg="referral routed"' 30 || fail "nothing routed"
pg_stop && pass || fail "PostgreSQL did not stop"
before=$(grep -c 'msg="referral routed"' "$tmp/daemon.log")
expect_eq 1 "$([ "$before" -lt "$n_ref" ] && echo 1)" "stopped mid-stream ($before of $n_ref referrals routed)"
if wait_log "$tmp/daemon.log" 'msg="database not ready; consumption paused"' 20; then pass; else
    fail "not-ready not reported: $(tail -n 5 "$tmp/daemon.log")"
fi
sleep 4 # down for a while: the daemon retries with backoff, and stays up
kill -0 "$FD_PID" 2>/dev/null
expect_eq 0 $? "daemon alive while the database is down"
retries=$(grep -c 'msg="database unavailable, retrying"' "$tmp/daemon.log")
expect_eq 1 "$([ "$retries" -ge 2 ] && echo 1)" "connection retried while down ($retries attempts logged)"
pg_start && pass || fail "PostgreSQL did not start again"
if wait_log "$tmp/daemon.log" 'msg="database ready; consuming" reason="database connected"' 60; then pass; else
    fail "did not resume: $(tail -n 5 "$tmp/daemon.log")"
fi

total=$((n_ref + n_ce))
deadline=$((SECONDS + 120))
until [ "$(sql 'SELECT count(*) FROM processed_events')" -ge "$total" ] || [ $SECONDS -ge $deadline ]; do
    sleep 1
done
expect_eq "$total" "$(sql 'SELECT count(*) FROM processed_events')" "every event processed once"
expect_eq "$n_ref" "$(sql 'SELECT count(*) FROM cases')" "one case per referral"
expect_eq "$n_ref" "$(sql 'SELECT count(*) FROM decisions')" "one decision row per referral"
expect_eq 0 "$(sql 'SELECT count(*) FROM held_events')" "nothing left held"
python3 "$KAFKA_READ" "$B" "$run.decisions" "$n_ref" 60 >"$tmp/decisions.jsonl"
expect_eq "$n_ref" "$(python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in open(sys.argv[1])}))' "$tmp/decisions.jsonl")" \
    "a decision on Kafka for every referral"
stop_daemon
expect_eq 0 "$FD_RC" "exit status after SIGTERM"
finish
