#!/usr/bin/env bash
# The command line: exit codes (sysexits.h) and --check-config on the shipped file.
set -u
. "$FRONTDOOR_SOURCE_DIR/tests/integration/lib.sh"
fd="$FRONTDOOR_BUILD_DIR/frontdoord"
cd "$FRONTDOOR_SOURCE_DIR"

expect_exit 0 "$fd" --version
expect_output "frontdoord [0-9]+\.[0-9]+\.[0-9]+" "$fd" --version
expect_exit 0 "$fd" --help
expect_output "--check-config" "$fd" --help
expect_exit 64 "$fd" --no-such-flag
expect_exit 64 "$fd" --explain
expect_exit 64 "$fd" --check-config extra-argument
expect_exit 64 "$fd" --check-config --migrate
expect_exit 0 "$fd" --check-config --config config/frontdoord.conf
expect_exit 78 "$fd" --check-config --config /nonexistent/frontdoord.conf

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '[kafka]\ngroup_id = x\n' >"$tmp/no-brokers.conf"
expect_exit 78 "$fd" --check-config --config "$tmp/no-brokers.conf"
expect_output "no-brokers.conf: kafka.brokers is required" "$fd" --check-config --config "$tmp/no-brokers.conf"
printf '[kafka]\nbrokers = embedded\nbad key line\n' >"$tmp/syntax.conf"
expect_output "syntax.conf:3: syntax error" "$fd" --check-config --config "$tmp/syntax.conf"
cp config/frontdoord.conf "$tmp/writable.conf"
chmod 0666 "$tmp/writable.conf"
expect_exit 78 "$fd" --check-config --config "$tmp/writable.conf"
expect_output "group- or world-writable" "$fd" --check-config --config "$tmp/writable.conf"

# --check-config validates the templates too: a placeholder a staff email may not use
# is named with its file and line, next to a rule file problem in the same run.
cp -r config "$tmp/cfg"
echo "Name: ((child_name))" >>"$tmp/cfg/templates/case_allocated.en.email"
expect_exit 78 "$fd" --check-config --config "$tmp/cfg/frontdoord.conf"
expect_output "templates/case_allocated\.en\.email:[0-9]+: unknown placeholder \(\(child_name\)\)" \
    "$fd" --check-config --config "$tmp/cfg/frontdoord.conf"
echo "rule broken" >>"$tmp/cfg/frontdoor.rules"
expect_output "frontdoor\.rules:[0-9]+: .*" "$fd" --check-config --config "$tmp/cfg/frontdoord.conf"
expect_output "case_allocated\.en\.email:[0-9]+: unknown placeholder" "$fd" --check-config --config "$tmp/cfg/frontdoord.conf"
# a Kafka link off the machine without TLS is a warning, not an error
cp -r config "$tmp/cfg2"
sed -i 's/^brokers = embedded$/brokers = kafka1.example:9093/' "$tmp/cfg2/frontdoord.conf"
chmod 0600 "$tmp/cfg2/frontdoord.conf"
expect_exit 0 "$fd" --check-config --config "$tmp/cfg2/frontdoord.conf"
expect_output "frontdoord.conf: warning: kafka connection: not encrypted" "$fd" --check-config --config "$tmp/cfg2/frontdoord.conf"
sed -i 's/^\[kafka\]$/[kafka]\nrdkafka.security.protocol = sasl_ssl/' "$tmp/cfg2/frontdoord.conf"
expect_eq "" "$("$fd" --check-config --config "$tmp/cfg2/frontdoord.conf" 2>&1 | grep 'kafka connection')" "no warning with sasl_ssl"
finish
