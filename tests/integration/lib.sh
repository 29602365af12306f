# Helpers for integration test scripts: assertions that count, and service addresses.
# Each failed assertion prints what was expected and what happened; finish() exits
# non-zero when any failed, so a test can never pass by skipping a check.
FD_PASSED=0
FD_FAILED=0

pass() { FD_PASSED=$((FD_PASSED + 1)); }
fail() {
    FD_FAILED=$((FD_FAILED + 1))
    echo "FAIL: $*" >&2
}

# expect_exit CODE CMD...: the command exits with CODE.
expect_exit() {
    local want=$1
    shift
    "$@" >/dev/null 2>&1
    local got=$?
    if [ "$got" -eq "$want" ]; then pass; else fail "exit $got, want $want: $*"; fi
}

# expect_output REGEX CMD...: stdout+stderr of the command matches REGEX (grep -E).
expect_output() {
    local re=$1
    shift
    local out
    out=$("$@" 2>&1)
    if printf '%s\n' "$out" | grep -Eq -- "$re"; then pass; else fail "output of '$*' lacks /$re/: $out"; fi
}

# expect_eq WANT GOT WHAT
expect_eq() {
    if [ "$1" = "$2" ]; then pass; else fail "$3: got '$2', want '$1'"; fi
}

# Load a started service's address (postgres, smtp, kafka), written by scripts/services.
service_env() {
    local f="$FRONTDOOR_SERVICES_DIR/$1.env"
    if [ ! -f "$f" ]; then
        fail "service $1 is not running ($f missing)"
        finish
    fi
    . "$f"
}

finish() {
    echo "$(basename "$0"): $FD_PASSED passed, $FD_FAILED failed"
    [ "$FD_FAILED" -eq 0 ] && [ "$FD_PASSED" -gt 0 ]
    exit $?
}
