#!/usr/bin/env bash
# Runs hotline's whole test suite, installing the real peers the tests use
# (redis-server, sipp, baresip, sox, espeak-ng, Debian's hold music, promtool,
# systemd-analyze, chromium and firefox-esr for the console's browser tests,
# and Asterisk 22 from third_party/asterisk) when they are missing.
set -euo pipefail
cd "$(dirname "$0")"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
need=()
for pair in redis-server:redis-server sipp:sip-tester baresip:baresip-core sox:sox espeak-ng:espeak-ng promtool:prometheus systemd-analyze:systemd chromium:chromium firefox-esr:firefox-esr; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# Hold music for the DTMF talk-off tests (media/dtmf/talkoff).
[ -d /usr/share/asterisk/moh ] || need+=(asterisk-moh-opsound-wav)
if [ "${#need[@]}" -gt 0 ]; then
	echo "installing ${need[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Does nothing when Asterisk 22.10.1 is there already; seconds otherwise.
$sudo third_party/asterisk/install.sh

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt needed:"; echo "$unformatted"; exit 1
fi
go vet ./...
go tool staticcheck ./...
# Most tests wait on real-time audio: let many run at once.
go test -race -timeout 15m -parallel 16 "$@" ./...
