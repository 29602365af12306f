# Helpers for the Kafka integration tests (sourced after lib.sh).
#
# Each test uses its own topics and consumer group on the shared mock cluster, so tests
# never see each other's messages. The mock coordinator holds a rejoin for about
# session.timeout.ms after a member leaves, so the tests run the daemon with a short one.
FD_BIN="$FRONTDOOR_BUILD_DIR/frontdoord"
KAFKA_READ="$FRONTDOOR_SOURCE_DIR/tests/integration/kafka_read.py"

# write_config FILE BROKERS RUN [extra [kafka] lines...]: topics and group named after RUN;
# the database of make_database when there is one.
write_config() {
    local file=$1 brokers=$2 run=$3
    shift 3
    {
        echo "[kafka]"
        echo "brokers = $brokers"
        echo "group_id = $run-group"
        echo "referrals_topic = $run.referrals"
        echo "case_events_topic = $run.case-events"
        echo "decisions_topic = $run.decisions"
        echo "dlq_topic = $run.dlq"
        echo "rdkafka.session.timeout.ms = 6000"
        echo "rdkafka.heartbeat.interval.ms = 500"
        for line in "$@"; do echo "$line"; done
        if [ -n "${FD_DB_CONNINFO:-}" ]; then
            echo "[database]"
            echo "conninfo = $FD_DB_CONNINFO"
        fi
        # any free port: tests (and developers) run side by side
        echo "[http]"
        echo "listen = ${FD_HTTP_LISTEN:-127.0.0.1:0}"
        echo "[routing]"
        echo "rules = ${FD_RULES:-$FRONTDOOR_SOURCE_DIR/config/frontdoor.rules}"
        echo "directory = $FRONTDOOR_SOURCE_DIR/config/directory.json"
        echo "templates = $FRONTDOOR_SOURCE_DIR/config/templates"
        echo "[log]"
        echo "level = info"
    } >"$file"
    chmod 0600 "$file"
}

# create_topics BROKERS RUN: the mock cluster creates a topic when asked for its metadata.
create_topics() {
    local t
    for t in referrals case-events decisions dlq; do
        kcat -b "$1" -L -t "$2.$t" >/dev/null 2>&1
    done
}

# produce BROKERS TOPIC KEY FILE [null]: the file's bytes as one message; an empty file
# gives an empty value, or a null one with `null` (kcat skips empty files and lines, so
# these go through its key:value input).
produce() {
    if [ -s "$4" ]; then
        kcat -b "$1" -P -t "$2" -k "$3" "$4" 2>/dev/null
    else
        printf '%s\t\n' "$3" | kcat -b "$1" -P -t "$2" -K $'\t' ${5:+-Z} 2>/dev/null
    fi
}

# wait_log FILE REGEX SECONDS: until a line of the daemon's log matches.
wait_log() {
    local deadline=$((SECONDS + $3))
    until grep -Eq -- "$2" "$1" 2>/dev/null; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}

# start_daemon CONFIG LOG: runs frontdoord in the background (pid in FD_PID) and waits
# until it has partitions assigned; FD_HTTP is the address its HTTP listener took.
start_daemon() {
    "$FD_BIN" --config "$1" 2>"$2" &
    FD_PID=$!
    if wait_log "$2" 'msg="partitions assigned"' 40; then pass; else
        fail "daemon did not get partitions: $(tail -n 20 "$2")"
    fi
    FD_HTTP=$(sed -n 's/.*msg="http listening" address=\([^ ]*\).*/\1/p' "$2" | tail -n 1)
}

# stop_daemon: SIGTERM, wait; sets FD_RC (exit status) and FD_STOP_S (seconds taken).
stop_daemon() {
    local t0=$SECONDS
    kill -TERM "$FD_PID" 2>/dev/null
    # the daemon ends itself within 30 s; past 60 s it is a failure, not a hung test
    local deadline=$((SECONDS + 60))
    while kill -0 "$FD_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$FD_PID" 2>/dev/null; then
        fail "daemon $FD_PID still running 60 s after SIGTERM"
        kill -ABRT "$FD_PID" 2>/dev/null
        sleep 1
        kill -KILL "$FD_PID" 2>/dev/null
    fi
    wait "$FD_PID"
    FD_RC=$?
    FD_STOP_S=$((SECONDS - t0))
}

# count BROKERS TOPIC [MIN [TIMEOUT]]: messages on a topic (waits for MIN).
count_messages() {
    python3 "$KAFKA_READ" "$1" "$2" "${3:-0}" "${4:-20}" | wc -l
}

# run_checks CMD...: a checker printing "PASS what" / "FAIL what" lines.
run_checks() {
    local line
    while IFS= read -r line; do
        case "$line" in
        PASS*) pass ;;
        FAIL*) fail "${line#FAIL }" ;;
        *) echo "$line" ;;
        esac
    done < <("$@")
}

# The case store's database (postgres fixture): the daemon needs one, migrated.
#
# make_database RUN: create a fresh database named after RUN on the fixture server and
# set FD_DB_NAME and FD_DB_CONNINFO (write_config puts it in [database]).
make_database() {
    service_env postgres
    FD_DB_NAME=$(printf 'fd_%s' "$1" | tr -c 'A-Za-z0-9_' '_' | tr 'A-Z' 'a-z' | cut -c1-60)
    FD_DB_CONNINFO="host=127.0.0.1 port=$FD_PG_PORT user=postgres dbname=$FD_DB_NAME"
    if "$FD_PG_BIN/psql" -XAtq "$FD_PG_CONNINFO" -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $FD_DB_NAME" >/dev/null; then pass; else
        fail "cannot create database $FD_DB_NAME"
    fi
}

# migrate CONFIG: frontdoord --migrate against the configuration's database.
migrate() {
    local out
    if out=$("$FD_BIN" --config "$1" --migrate 2>&1); then pass; else
        fail "frontdoord --migrate failed: $out"
    fi
}

# sql QUERY: one value (or rows, |-separated) from the test's database.
sql() {
    "$FD_PG_BIN/psql" -XAtq "$FD_DB_CONNINFO" -v ON_ERROR_STOP=1 -c "$1"
}

# drop_database: at the end of a test (the fixture server is shared).
drop_database() {
    [ -n "${FD_DB_NAME:-}" ] || return 0
    "$FD_PG_BIN/psql" -XAtq "$FD_PG_CONNINFO" \
        -c "DROP DATABASE IF EXISTS $FD_DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
}

# stop_pid PID: SIGTERM, then SIGKILL after 10 s; never waits longer.
stop_pid() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || return 0
    local deadline=$((SECONDS + 10))
    while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}
