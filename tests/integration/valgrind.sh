#!/usr/bin/env bash
# The daemon under valgrind (memcheck), one whole run with a clean shutdown: the embedded
# Kafka cluster, a fresh migrated database on the postgres fixture, a few sample
# referrals, an unusable event, case events (one re-routes a case, one is held for its
# referral), a SIGHUP reload, then SIGTERM. It must route and dead-letter as usual, exit 0,
# and valgrind must find no invalid access or use of uninitialised memory and no leak
# (definitely and indirectly lost 0 bytes). Only registered for a build without
# sanitizers (valgrind and ASan do not mix).
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
tmp=$(mktemp -d)
FD_PID=
trap '[ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null; drop_database; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
make_database "valgrind-$$-$RANDOM"
{
    printf '[kafka]\nbrokers = embedded\nembedded_partitions = 2\n'
    printf 'rdkafka.session.timeout.ms = 6000\nunknown_case_retry_seconds = 60\n'
    printf '[database]\nconninfo = %s\n' "$FD_DB_CONNINFO"
    printf '[routing]\nrules = %s/config/frontdoor.rules\n' "$FRONTDOOR_SOURCE_DIR"
    printf 'directory = %s/config/directory.json\n' "$FRONTDOOR_SOURCE_DIR"
    printf 'templates = %s/config/templates\n' "$FRONTDOOR_SOURCE_DIR"
    printf '[log]\nlevel = debug\n'
} >"$tmp/fd.conf"
chmod 0600 "$tmp/fd.conf"
migrate "$tmp/fd.conf"

# --error-exitcode: any memcheck error (a leak counts only when definite or indirect)
# turns exit 0 into 99; the summary in vg.log says which. tests/valgrind.supp leaves out
# only a race inside librdkafka's own mock cluster teardown (see there).
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=no \
    --num-callers=30 --log-file="$tmp/vg.log" --suppressions="$FRONTDOOR_SOURCE_DIR/tests/valgrind.supp" \
    "$FD_BIN" --config "$tmp/fd.conf" 2>"$tmp/d.log" &
FD_PID=$!
if wait_log "$tmp/d.log" 'msg="partitions assigned"' 180; then pass; else
    fail "daemon under valgrind did not get partitions: $(tail -n 20 "$tmp/d.log")"
fi
EB=$(sed -n 's/.*msg="kafka embedded cluster started" bootstrap=\([^ ]*\).*/\1/p' "$tmp/d.log")

# five sample referrals, one unusable event and two appointments: one on REF-EX-001
# (allocated, school), applied; one for a referral produced only later, held, then applied
head -n 5 "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" |
    python3 -c 'import json,sys
for l in sys.stdin:
    if l.strip(): print(json.loads(l)["referral"]["id"] + "\t" + l.strip())' |
    kcat -b "$EB" -P -t frontdoor.referrals -K $'\t' 2>/dev/null
printf '{"schema_version": 1, "event_id": "nope"}' >"$tmp/bad"
produce "$EB" frontdoor.referrals bad-1 "$tmp/bad"
appointment() {
    printf '{"schema_version": 1, "event_id": "%s", "type": "appointment.booked", "occurred_at": "2026-11-24T14:00:00Z", "case": {"referral_id": "%s"}, "appointment": {"id": "A-1", "starts_at": "2026-12-01T10:30:00Z", "location": "Hub", "with": "Worker"}}' "$1" "$2"
}
appointment 00000000-0000-4000-8000-00000000a001 REF-EX-001 >"$tmp/ce1"
produce "$EB" frontdoor.case-events REF-EX-001 "$tmp/ce1"
appointment 00000000-0000-4000-8000-00000000a002 REF-VG-LATE >"$tmp/ce2"
produce "$EB" frontdoor.case-events REF-VG-LATE "$tmp/ce2"
expect_eq 5 "$(count_messages "$EB" frontdoor.decisions 5 120)" "decisions under valgrind"
expect_eq 1 "$(count_messages "$EB" frontdoor.dlq 1 60)" "dead letters under valgrind"
wait_log "$tmp/d.log" 'msg="case event held' 60 && pass || fail "case event not held"
python3 - "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" >"$tmp/late" <<'PY'
import json, sys
e = json.loads(open(sys.argv[1]).readline())
e["event_id"] = "00000000-0000-4000-8000-00000000a003"
e["referral"]["id"] = "REF-VG-LATE"
e["referral"]["child"]["id"] = "C-VG-LATE"
print(json.dumps(e), end="")
PY
produce "$EB" frontdoor.referrals REF-VG-LATE "$tmp/late"
expect_eq 6 "$(count_messages "$EB" frontdoor.decisions 6 120)" "late referral decided"
wait_log "$tmp/d.log" 'msg="case event applied".*referral=REF-VG-LATE' 90 && pass ||
    fail "held case event not applied after its referral"
kill -HUP "$FD_PID"
wait_log "$tmp/d.log" 'msg="configuration reloaded"' 60 && pass || fail "reload under valgrind"
sleep 3 # offsets committed, outbox drained

t0=$SECONDS
kill -TERM "$FD_PID"
wait "$FD_PID"
rc=$?
FD_PID=
expect_eq 0 "$rc" "exit status under valgrind (99: memcheck found errors; see below)"
expect_output 'msg=stopped' cat "$tmp/d.log"
echo "valgrind: stopped in $((SECONDS - t0))s"
expect_eq 6 "$(sql 'SELECT count(*) FROM cases')" "cases in the database"
expect_output 'ERROR SUMMARY: 0 errors' cat "$tmp/vg.log"
expect_output 'definitely lost: 0 bytes|All heap blocks were freed' cat "$tmp/vg.log"
expect_output 'indirectly lost: 0 bytes|All heap blocks were freed' cat "$tmp/vg.log"
# the figures, for the record
grep -E 'HEAP SUMMARY|in use at exit|total heap usage|definitely lost|indirectly lost|possibly lost|still reachable|ERROR SUMMARY' "$tmp/vg.log" |
    sed 's/^==[0-9]*== */valgrind: /'
if [ "$FD_FAILED" -gt 0 ]; then
    echo "--- valgrind log"
    head -n 200 "$tmp/vg.log"
    echo "--- daemon log (tail)"
    grep -v 'kafka client' "$tmp/d.log" | tail -n 30
fi
finish
