#!/usr/bin/env bash
# Run one libFuzzer target from its seed corpus:
#
#   tests/fuzz/run.sh NAME SECONDS [libFuzzer flags...]
#
# with FRONTDOOR_SOURCE_DIR and FRONTDOOR_BUILD_DIR (a -DFRONTDOOR_FUZZ=ON build) set, as
# CTest does. Inputs the fuzzer finds go to $FRONTDOOR_BUILD_DIR/fuzz-work/NAME (the seed
# folder in the source tree is only read); a crash, leak, timeout or broken invariant
# saves its input in $FRONTDOOR_BUILD_DIR/fuzz-artifacts/ and fails the run. The last
# lines printed are libFuzzer's final statistics (executions, seconds).
set -euo pipefail
name=${1:?usage: run.sh NAME SECONDS [flags]}
secs=${2:?usage: run.sh NAME SECONDS [flags]}
shift 2
bin="$FRONTDOOR_BUILD_DIR/tests/fuzz/fuzz_$name"
seeds="$FRONTDOOR_SOURCE_DIR/tests/fuzz/corpus/$name"
work="$FRONTDOOR_BUILD_DIR/fuzz-work/$name"
artifacts="$FRONTDOOR_BUILD_DIR/fuzz-artifacts"
mkdir -p "$work" "$artifacts"
flags=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$artifacts/$name-")
dirs=("$work" "$seeds")
case $name in
# messages up to the 64 KiB limit and a little over; the hostile corpus seeds it too
event) flags+=(-max_len=70000) dirs+=("$FRONTDOOR_SOURCE_DIR/tests/hostile/events") ;;
rules | directory | template | config) flags+=(-max_len=32768) ;;
esac
# the targets write their scratch files under TMPDIR: one private folder per run, in
# memory when the machine has /dev/shm (the template and config targets write a file
# per input)
shm=
[ -d /dev/shm ] && [ -w /dev/shm ] && shm=/dev/shm
TMPDIR=$(mktemp -d ${shm:+-p "$shm"})
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
# stdin is never a terminal or pipe a fuzzed file name could block on
"$bin" "${flags[@]}" "$@" "${dirs[@]}" </dev/null
