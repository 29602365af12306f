#!/usr/bin/env bash
# systemd notifications and SIGHUP reloads, on the embedded cluster and a fresh database
# on the postgres fixture. The daemon's NOTIFY_SOCKET is a datagram socket this test
# reads (notify_listen.py), with WATCHDOG_USEC set as systemd would:
#  - READY=1 once, after the database is connected; STATUS= lines; WATCHDOG=1 from the
#    loop at half the watchdog interval (not every second, never a whole interval apart);
#  - SIGHUP: RELOADING=1 (with MONOTONIC_USEC) then READY=1, for a reload taken and for
#    one refused;
#  - a reload takes new rules (a referral the old rules sent to its school goes to the
#    family hub after) and a new log level; a broken rule file, directory, template or
#    main file is refused with a log line naming the file and line, and the old
#    configuration keeps routing; a changed setting a reload cannot apply is named;
#  - SIGTERM: STOPPING=1, exit 0.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
tmp=$(mktemp -d)
FD_PID=
NL_PID=
cleanup() {
    [ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null
    [ -n "$NL_PID" ] && kill "$NL_PID" 2>/dev/null && wait "$NL_PID" 2>/dev/null
    drop_database
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
make_database "signals-$$-$RANDOM"
src=$FRONTDOOR_SOURCE_DIR/config

# A private copy of rules, directory and templates, so the test can break and mend them.
cp -r "$src/templates" "$tmp/templates"
cp "$src/frontdoor.rules" "$tmp/frontdoor.rules"
cp "$src/directory.json" "$tmp/directory.json"
# config [extra lines...]: the embedded cluster, this database, the private policy files
config() {
    {
        printf '[kafka]\nbrokers = embedded\nembedded_partitions = 2\n'
        printf 'rdkafka.session.timeout.ms = 6000\n'
        printf '[database]\nconninfo = %s\n' "$FD_DB_CONNINFO"
        printf '[http]\nlisten = 127.0.0.1:0\n'
        printf '[routing]\nrules = frontdoor.rules\ndirectory = directory.json\ntemplates = templates\n'
        printf '[log]\nlevel = info\n'
        for line in "$@"; do echo "$line"; done
    } >"$tmp/fd.conf.new"
    chmod 0600 "$tmp/fd.conf.new"
    mv "$tmp/fd.conf.new" "$tmp/fd.conf"
}
config
migrate "$tmp/fd.conf"

python3 "$FRONTDOOR_SOURCE_DIR/tests/integration/notify_listen.py" "$tmp/notify.sock" "$tmp/notify.log" &
NL_PID=$!
wait_log "$tmp/notify.log" listening 10 || fail "notify listener did not start"

NOTIFY_SOCKET="$tmp/notify.sock" WATCHDOG_USEC=8000000 "$FD_BIN" --config "$tmp/fd.conf" 2>"$tmp/d.log" &
FD_PID=$!
wait_log "$tmp/d.log" 'msg="partitions assigned"' 40 && pass || fail "no partitions: $(tail -n 5 "$tmp/d.log")"
wait_log "$tmp/notify.log" ' READY=1$' 20 && pass || fail "no READY=1: $(cat "$tmp/notify.log")"
EB=$(sed -n 's/.*msg="kafka embedded cluster started" bootstrap=\([^ ]*\).*/\1/p' "$tmp/d.log")
expect_output 'msg="systemd watchdog enabled" ping_ms=4000' cat "$tmp/d.log"
# READY only after the case store's database is connected (the log is written first)
expect_eq 1 "$(grep -c ' READY=1$' "$tmp/notify.log")" "READY=1 sent once"
expect_output 'msg="database ready; consuming"' sed -n '1,/msg="frontdoord ready"/p' "$tmp/d.log"
wait_log "$tmp/notify.log" ' STATUS=running: ' 10 && pass || fail "no STATUS=running: $(cat "$tmp/notify.log")"

# The watchdog, over 13 s: every 4 s (half of WATCHDOG_USEC), so 3 pings, 2 to 4 allowing
# for a loaded machine; never 8 s (the whole interval) apart, and not every second.
sleep 13
python3 - "$tmp/notify.log" <<'PY' >"$tmp/wd"
import sys
t = [float(l.split()[0]) for l in open(sys.argv[1]) if l.rstrip().endswith(" WATCHDOG=1")]
start = t[0] if t else 0
window = [x for x in t if x > start and x <= start + 13]
gaps = [b - a for a, b in zip(t, t[1:])]
print(("PASS" if 2 <= len(window) <= 4 else "FAIL") + " watchdog pings in 13 s after the first: %d" % len(window))
print(("PASS" if gaps and max(gaps) < 8 else "FAIL") + " longest gap between pings %.2f s < 8 s" % max(gaps or [99]))
print(("PASS" if gaps and min(gaps) > 2 else "FAIL") + " shortest gap %.2f s > 2 s (half the interval, not every second)" % min(gaps or [0]))
PY
run_checks cat "$tmp/wd"

# route REF N SEQ: produce referral N of the examples as REF (a child and family of its
# own, so no history rule applies); wait for its decision row's route
route() {
    sed -n "$2p" "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" | python3 -c '
import json, sys
e = json.load(sys.stdin)
e["referral"]["id"] = sys.argv[1]
e["event_id"] = "00000000-0000-4000-9000-%012d" % int(sys.argv[2])
e["referral"]["child"]["id"] = "C-" + sys.argv[1]
e["referral"]["family"]["id"] = "F-" + sys.argv[1]
print(json.dumps(e))' "$1" "$3" >"$tmp/ref"
    produce "$EB" frontdoor.referrals "$1" "$tmp/ref"
    local deadline=$((SECONDS + 20)) r=
    until r=$(sql "SELECT route FROM decisions WHERE referral_id = '$1'") && [ -n "$r" ]; do
        [ $SECONDS -ge $deadline ] && break
        sleep 0.2
    done
    echo "$r"
}
# hup PATTERN WHAT: SIGHUP, then wait for the log line; RELOADING=1 and READY=1 follow
reloads=0
hup() {
    local before
    before=$(grep -c '' "$tmp/notify.log")
    kill -HUP "$FD_PID"
    reloads=$((reloads + 1))
    if wait_log "$tmp/d.log" "$1" 10; then pass; else fail "$2: $(tail -n 5 "$tmp/d.log")"; fi
    local deadline=$((SECONDS + 10))
    until [ "$(grep -c ' READY=1$' "$tmp/notify.log")" -gt "$reloads" ] || [ $SECONDS -ge $deadline ]; do
        sleep 0.1
    done
    tail -n +"$((before + 1))" "$tmp/notify.log" | grep -E ' (RELOADING|READY)=1' | cut -d' ' -f2- |
        sed 's/MONOTONIC_USEC=[0-9]*/MONOTONIC_USEC=N/' >"$tmp/seq"
    expect_eq $'RELOADING=1\\nMONOTONIC_USEC=N\nREADY=1' "$(cat "$tmp/seq")" "$2: notifications"
}

expect_eq school "$(route REF-HUP-1 1 1)" "referral 1 before the reload"

# 1. New rules: without the school rule, referral 1 goes to its family hub.
awk '/^rule school$/ {skip = 1} skip && /^$/ {skip = 0; next} !skip' "$src/frontdoor.rules" >"$tmp/frontdoor.rules"
want=$("$FD_BIN" --config "$tmp/fd.conf" --explain <(sed -n 1p "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl") |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["route"])')
expect_eq family_hub "$want" "--explain with the new rules"
hup 'msg="configuration reloaded"' "reload with new rules"
expect_eq "$want" "$(route REF-HUP-2 1 2)" "referral 1 after the reload"

# 2. Broken files are refused, naming file and line; the last good policy routes on.
ok_rules=$(cat "$tmp/frontdoor.rules")
echo "rule half_written" >>"$tmp/frontdoor.rules"
hup 'msg="reload refused" problem=".*frontdoor\.rules:[0-9]+:' "broken rule file refused"
printf '%s\n' "$ok_rules" >"$tmp/frontdoor.rules"
cp "$tmp/directory.json" "$tmp/directory.ok"
printf '{"version": 1, "teams": [' >"$tmp/directory.json"
hup 'msg="reload refused" problem=".*directory\.json:[0-9]+:' "broken directory refused"
cp "$tmp/directory.ok" "$tmp/directory.json"
cp "$tmp/templates/case_allocated.en.email" "$tmp/case_allocated.ok"
echo "Child: ((child_name))" >>"$tmp/templates/case_allocated.en.email"
hup 'msg="reload refused" problem=".*templates/case_allocated\.en\.email:[0-9]+: unknown placeholder' \
    "broken template refused"
cp "$tmp/case_allocated.ok" "$tmp/templates/case_allocated.en.email"
cp "$tmp/fd.conf" "$tmp/fd.conf.ok"
echo "this is not a key" >>"$tmp/fd.conf"
hup 'msg="reload refused" problem=".*fd\.conf:[0-9]+: syntax error' "broken main file refused"
cp "$tmp/fd.conf.ok" "$tmp/fd.conf"
expect_eq "$want" "$(route REF-HUP-3 1 3)" "after four refused reloads: still the new rules"
kill -0 "$FD_PID" 2>/dev/null
expect_eq 0 $? "alive after refused reloads"

# 3. Settings: the log level applies at once; a group change waits for the next start.
config
sed -i 's/^level = info$/level = debug/' "$tmp/fd.conf"
sed -i 's/^embedded_partitions = 2$/embedded_partitions = 2\ngroup_id = other-group/' "$tmp/fd.conf"
hup 'msg="configuration reloaded"' "reload with a new log level"
expect_output 'msg="setting changed; it takes effect at the next start" key=kafka.group_id' cat "$tmp/d.log"
expect_eq 0 "$(grep -c 'key=log.level' "$tmp/d.log")" "the log level is not reported as waiting"
route REF-HUP-4 1 4 >/dev/null
expect_output 'level=debug msg="event accepted" type=referral.received event_id=00000000-0000-4000-9000-000000000004' \
    cat "$tmp/d.log"

# 4. SIGTERM: STOPPING=1, exit 0.
kill -TERM "$FD_PID"
wait "$FD_PID"
expect_eq 0 $? "exit status after SIGTERM"
FD_PID=
expect_output ' STOPPING=1$' cat "$tmp/notify.log"
finish
