#!/usr/bin/env bash
# kafka.brokers = embedded, signals and the pass-through keys (the postgres fixture only):
#  - the daemon starts its in-process cluster with the topics created, reports ready,
#    routes a referral produced to it over TCP and stops cleanly on SIGTERM (exit 0);
#  - SIGHUP reloads a valid configuration, refuses a broken one (logged, the old policy
#    keeps routing) and takes a repaired one;
#  - a second SIGTERM during the stop exits at once with status 75;
#  - a pass-through key librdkafka does not know, or one frontdoord owns, is a
#    configuration error naming its line (exit 78), at start-up and in --check-config;
#  - on an unmigrated database it exits 69, naming `frontdoord --migrate`.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
tmp=$(mktemp -d)
FD_PID=
trap '[ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null; drop_database; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
make_database "embedded-$$-$RANDOM"

# config FILE RULES [extra kafka lines]: the embedded cluster with the default topics
config() {
    local file=$1 rules=$2
    shift 2
    {
        printf '[kafka]\nbrokers = embedded\nembedded_partitions = 2\n'
        printf 'rdkafka.session.timeout.ms = 6000\n'
        for line in "$@"; do echo "$line"; done
        printf '[database]\nconninfo = %s\n' "$FD_DB_CONNINFO"
        printf '[http]\nlisten = 127.0.0.1:0\n'
        printf '[routing]\nrules = %s\n' "$rules"
        printf 'directory = %s/config/directory.json\n' "$FRONTDOOR_SOURCE_DIR"
        printf 'templates = %s/config/templates\n' "$FRONTDOOR_SOURCE_DIR"
        printf '[log]\nlevel = info\n'
    } >"$file.new"
    chmod 0600 "$file.new"
    mv "$file.new" "$file"
}
rules="$FRONTDOOR_SOURCE_DIR/config/frontdoor.rules"
config "$tmp/fd.conf" "$rules"
# an unmigrated database: the daemon refuses to run and says what to run
timeout 60 "$FD_BIN" --config "$tmp/fd.conf" 2>"$tmp/unmigrated.log"
expect_eq 69 $? "exit status on an unmigrated database"
expect_output 'run `frontdoord --migrate` first' cat "$tmp/unmigrated.log"
migrate "$tmp/fd.conf"

start_daemon "$tmp/fd.conf" "$tmp/d.log"
expect_output 'msg="kafka embedded cluster started" bootstrap=127\.0\.0\.1:[0-9]+ partitions=2' cat "$tmp/d.log"
expect_output 'msg="frontdoord ready"' cat "$tmp/d.log"
EB=$(sed -n 's/.*msg="kafka embedded cluster started" bootstrap=\([^ ]*\).*/\1/p' "$tmp/d.log")
meta=$(kcat -b "$EB" -L 2>&1)
for t in frontdoor.referrals frontdoor.case-events frontdoor.decisions frontdoor.dlq; do
    if printf '%s\n' "$meta" | grep -q "topic \"$t\" with 2 partitions"; then pass; else
        fail "embedded cluster lacks topic $t: $meta"
    fi
done
sed -n 1p "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" >"$tmp/r1"
produce "$EB" frontdoor.referrals REF-EX-001 "$tmp/r1"
python3 "$KAFKA_READ" "$EB" frontdoor.decisions 1 20 >"$tmp/dec.jsonl"
expect_eq REF-EX-001 "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["key"])' "$tmp/dec.jsonl")" \
    "decision from the embedded cluster"

# SIGHUP: valid, broken (refused, still routing), repaired
config "$tmp/fd.conf" "$rules" "# reloaded once"
kill -HUP "$FD_PID"
wait_log "$tmp/d.log" 'msg="configuration reloaded"' 10 && pass || fail "valid reload not taken"
config "$tmp/fd.conf" "$tmp/no-such.rules"
kill -HUP "$FD_PID"
wait_log "$tmp/d.log" 'msg="reload refused" problem=".*no-such\.rules' 10 && pass || fail "broken reload not refused: $(tail -n 5 "$tmp/d.log")"
sed -n 2p "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" >"$tmp/r2"
produce "$EB" frontdoor.referrals REF-EX-002 "$tmp/r2"
expect_eq 2 "$(count_messages "$EB" frontdoor.decisions 2 20)" "still routing after a refused reload"
config "$tmp/fd.conf" "$rules"
kill -HUP "$FD_PID"
# the first reload's line is there already: wait for a second one
deadline=$((SECONDS + 10))
until [ "$(grep -c 'msg="configuration reloaded"' "$tmp/d.log")" -ge 2 ] || [ $SECONDS -ge $deadline ]; do
    sleep 0.2
done
expect_eq 2 "$(grep -c 'msg="configuration reloaded"' "$tmp/d.log")" "repaired configuration reloaded"
kill -0 "$FD_PID" 2>/dev/null
expect_eq 0 $? "alive after three reloads"

stop_daemon
expect_eq 0 "$FD_RC" "exit status after SIGTERM"
expect_eq 1 "$([ "$FD_STOP_S" -le 10 ] && echo 1)" "stop took ${FD_STOP_S}s"
expect_output 'msg="kafka consumer closed"' cat "$tmp/d.log"
expect_output 'msg=stopped consumed=2' cat "$tmp/d.log"

# a second signal while stopping: out at once (two different signals, since two of the
# same kind sent back to back may merge into one)
start_daemon "$tmp/fd.conf" "$tmp/d2.log"
kill -INT "$FD_PID"
kill -TERM "$FD_PID"
wait "$FD_PID"
expect_eq 75 $? "exit status after a second signal"
FD_PID=
expect_output 'second signal' cat "$tmp/d2.log"

# pass-through keys
config "$tmp/bad.conf" "$rules" "rdkafka.no.such.property = 1"
expect_exit 78 "$FD_BIN" --config "$tmp/bad.conf"
expect_output 'bad.conf:5: kafka.rdkafka.no.such.property' "$FD_BIN" --check-config --config "$tmp/bad.conf"
expect_exit 78 "$FD_BIN" --check-config --config "$tmp/bad.conf"
config "$tmp/owned.conf" "$rules" "rdkafka.enable.auto.offset.store = true"
expect_output 'owned.conf:5: kafka.rdkafka.enable.auto.offset.store cannot be set' "$FD_BIN" --config "$tmp/owned.conf"
expect_exit 78 "$FD_BIN" --check-config --config "$tmp/owned.conf"
config "$tmp/tls.conf" "$rules" "rdkafka.security.protocol = ssl" "rdkafka.ssl.ca.location = /etc/ssl/certs"
expect_exit 0 "$FD_BIN" --check-config --config "$tmp/tls.conf"
finish
