#!/usr/bin/env bash
# Database errors and notices reach the log by SQLSTATE and constraint name only, never
# with PostgreSQL's text (its DETAIL echoes the failing row: the referral's personal data).
# On the embedded cluster and a fresh database on the postgres fixture:
#  - a CHECK constraint added to the cases table refuses a referral whose child carries
#    canary personal data: the log names SQLSTATE 23514 and the constraint, the batch is
#    retried, and once the constraint goes the referral is decided (nothing lost);
#  - a trigger raising a NOTICE that quotes the row: logged as a notice with its SQLSTATE;
#  - no canary value (names, mobile, email, postcode, date of birth, free text) appears
#    anywhere in the log, in logfmt or in JSON.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
. "$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_lib.sh"
tmp=$(mktemp -d)
FD_PID=
trap '[ -n "$FD_PID" ] && kill -KILL "$FD_PID" 2>/dev/null; drop_database; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
make_database "logs-$$-$RANDOM"

canaries=(Zebediah Quillfeather "Wenonah Brackenbury" "07700 913572" 913572 wenonah.canary@example.org
    "LA9 7QX" 2016-02-29 "canary free text about the family")

# config FORMAT
config() {
    {
        printf '[kafka]\nbrokers = embedded\nembedded_partitions = 1\n'
        printf '[database]\nconninfo = %s\n' "$FD_DB_CONNINFO"
        printf '[http]\nlisten = 127.0.0.1:0\n'
        printf '[routing]\nrules = %s/config/frontdoor.rules\n' "$FRONTDOOR_SOURCE_DIR"
        printf 'directory = %s/config/directory.json\n' "$FRONTDOOR_SOURCE_DIR"
        printf 'templates = %s/config/templates\n' "$FRONTDOOR_SOURCE_DIR"
        printf '[log]\nlevel = debug\nformat = %s\n' "$1"
    } >"$tmp/fd.conf"
    chmod 0600 "$tmp/fd.conf"
}
# referral N: sample referral 1 with the canary values, ids of its own
referral() {
    sed -n 1p "$FRONTDOOR_SPEC_DIR/examples/referrals.jsonl" | python3 -c '
import json, sys
n = sys.argv[1]
e = json.load(sys.stdin)
e["event_id"] = "00000000-0000-4000-a000-%012d" % int(n)
r = e["referral"]
r["id"] = "REF-LOG-" + n
r["child"].update(id="C-CANARY-" + n, first_name="Zebediah", last_name="Quillfeather",
                  date_of_birth="2016-02-29", postcode="LA9 7QX")
r["family"]["id"] = "F-LOG-" + n
r["family"]["contact"].update(name="Wenonah Brackenbury", mobile="07700 913572",
                              email="wenonah.canary@example.org")
r["summary"] = "canary free text about the family"
print(json.dumps(e))' "$1" >"$tmp/ref$1"
}

# run FORMAT N: one daemon run that meets the constraint and the notice, then has both
# removed; the referral must be decided in the end.
run() {
    local fmt=$1 n=$2 log=$tmp/d-$1.log
    config "$fmt"
    sql "ALTER TABLE cases ADD CONSTRAINT canary_guard CHECK (child_id NOT LIKE 'C-CANARY-%') NOT VALID" >/dev/null &&
        sql "CREATE FUNCTION canary_notice() RETURNS trigger LANGUAGE plpgsql AS
         \$\$ BEGIN RAISE NOTICE 'row for % %', NEW.referral_id, NEW.referral_body; RETURN NEW; END \$\$;
         CREATE TRIGGER canary_notice BEFORE INSERT ON cases FOR EACH ROW EXECUTE FUNCTION canary_notice()" >/dev/null
    expect_eq 0 $? "$fmt: constraint and trigger added"
    "$FD_BIN" --config "$tmp/fd.conf" 2>"$log" &
    FD_PID=$!
    wait_log "$log" 'partitions assigned' 40 || fail "$fmt: no partitions: $(tail -n 5 "$log")"
    local eb
    eb=$(grep -o '"\?bootstrap"\?[=:]"\?127\.0\.0\.1:[0-9]*' "$log" | head -n 1 | grep -o '127\.0\.0\.1:[0-9]*')
    referral "$n"
    produce "$eb" frontdoor.referrals "REF-LOG-$n" "$tmp/ref$n"
    if [ "$fmt" = json ]; then
        wait_log "$log" '"msg":"database statement failed".*"sqlstate":"23514","constraint":"canary_guard"' 20 &&
            pass || fail "$fmt: constraint failure not logged by SQLSTATE: $(tail -n 5 "$log")"
        wait_log "$log" '"msg":"database notice".*"severity":"NOTICE","sqlstate":"00000"' 20 &&
            pass || fail "$fmt: notice not logged: $(tail -n 5 "$log")"
    else
        wait_log "$log" 'msg="database statement failed" .*sqlstate=23514 constraint=canary_guard' 20 &&
            pass || fail "$fmt: constraint failure not logged by SQLSTATE: $(tail -n 5 "$log")"
        wait_log "$log" 'msg="database notice" .*severity=NOTICE sqlstate=00000' 20 &&
            pass || fail "$fmt: notice not logged: $(tail -n 5 "$log")"
    fi
    sql "ALTER TABLE cases DROP CONSTRAINT canary_guard; DROP TRIGGER canary_notice ON cases;
         DROP FUNCTION canary_notice()" >/dev/null
    expect_eq 0 $? "$fmt: constraint and trigger removed"
    local deadline=$((SECONDS + 60))
    until [ "$(sql "SELECT count(*) FROM cases WHERE referral_id = 'REF-LOG-$n'")" = 1 ] || [ $SECONDS -ge $deadline ]; do
        sleep 0.3
    done
    expect_eq 1 "$(sql "SELECT count(*) FROM cases WHERE referral_id = 'REF-LOG-$n'")" \
        "$fmt: referral decided once the constraint went"
    kill -TERM "$FD_PID"
    wait "$FD_PID"
    expect_eq 0 $? "$fmt: exit status"
    FD_PID=
    expect_eq 0 "$(grep -c -e 'Failing row' -e 'DETAIL:' -e 'violates check constraint' "$log")" \
        "$fmt: no PostgreSQL message text in the log"
    local c
    for c in "${canaries[@]}"; do
        if grep -qiF -- "$c" "$log"; then fail "$fmt: canary '$c' in the log: $(grep -iF -- "$c" "$log" | head -n 2)"; else pass; fi
    done
    # the canaries did reach the database: the check above could not pass by accident
    expect_eq 1 "$(sql "SELECT count(*) FROM cases WHERE referral_id = 'REF-LOG-$n' AND
                        convert_from(referral_body, 'UTF8') LIKE '%Quillfeather%'")" "$fmt: canary stored"
}
config logfmt
migrate "$tmp/fd.conf"
run logfmt 1
run json 2
finish
