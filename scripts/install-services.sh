#!/usr/bin/env bash
# Installs the real services the tests start (mosquitto, influxd, chromium) when they
# are missing and apt can be used; otherwise says what is missing and carries on, so
# the test fixtures can skip (or fail, under GRIDPILOT_REQUIRE_SERVICES=1).
set -euo pipefail

declare -A package_of=([mosquitto]=mosquitto [influxd]=influxdb [chromium]=chromium [npx]=npm)
missing=()
for binary in "${!package_of[@]}"; do
  command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ] || missing+=("${package_of[$binary]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (apt)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "missing: ${missing[*]}; install them (apt-get install ${missing[*]}) or the tests that need them skip" >&2
fi
