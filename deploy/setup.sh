#!/usr/bin/env bash
# Makes the secrets docker-compose.yml needs, once per installation, from a site file
# (SITE=path, default examples/site.toml: edit a copy for your own site):
#   deploy/secrets/site.toml   the site file with fresh token hashes and [settings] for
#                              the compose services (InfluxDB, Mosquitto, state volume)
#   deploy/secrets/passwd      Mosquitto password file (gateway, simulator, observer, each device)
#   deploy/secrets/devices.env the MQTT password of each device (flash it onto the board)
#   deploy/secrets/tokens.env  the bearer token of each principal (hand them out; keep them out of git)
#   .env                       what compose interpolates: InfluxDB, Grafana, simulator, daemon secrets
# Needs mosquitto_passwd (apt-get install mosquitto), awk and sha256sum. Refuses to
# overwrite existing secrets; SECRETS=dir and ENV_FILE=path write elsewhere (the tests do).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
site_in="${SITE:-$here/../examples/site.toml}"
secrets="${SECRETS:-$here/secrets}"
env_file="${ENV_FILE:-$here/../.env}"

if [ -e "$secrets/passwd" ] || [ -e "$env_file" ]; then
  echo "secrets exist already ($secrets/passwd or $env_file); remove them to start over" >&2
  exit 1
fi
command -v mosquitto_passwd >/dev/null || { echo "mosquitto_passwd is missing (apt-get install mosquitto)" >&2; exit 1; }
mkdir -p "$secrets"
umask 077

secret() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }
sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
env_key() { tr 'a-z-' 'A-Z_' <<< "$1"; }
# the values of `key = "..."` lines inside the [[table]] sections of the site file
values_in() { awk -v table="[[$1]]" -v key="$2" '
  /^\[/ { inside = ($0 == table) }
  inside && $0 ~ "^" key " *= *\"" { sub(/^[^"]*"/, ""); sub(/".*/, ""); print }' "$site_in"; }

: > "$secrets/passwd"
: > "$secrets/devices.env"
: > "$secrets/tokens.env"
hashes="$(mktemp)"
trap 'rm -f "$hashes"' EXIT

gateway_pw="$(secret)"; simulator_pw="$(secret)"
mosquitto_passwd -b "$secrets/passwd" gateway "$gateway_pw"
mosquitto_passwd -b "$secrets/passwd" simulator "$simulator_pw"
mosquitto_passwd -b "$secrets/passwd" observer "$(secret)"
# Each device id is an MQTT user whose ACL (deploy/mosquitto/acl) is its own topics.
for device in $(values_in devices id); do
  pw="$(secret)"
  mosquitto_passwd -b "$secrets/passwd" "$device" "$pw"
  echo "MQTT_PASSWORD_$(env_key "$device")=$pw" >> "$secrets/devices.env"
done
for name in $(values_in principals name); do
  token="$(secret)"
  echo "GRIDPILOT_TOKEN_$(env_key "$name")=$token" >> "$secrets/tokens.env"
  echo "$name $(sha256 "$token")" >> "$hashes"
done

influx_user_pw="$(secret)"
# New token hashes in place of the old; [settings] replaced by the compose services'
# (stdio_principal kept).
awk -v hashes="$hashes" \
    -v store="influxdb://gridpilot:$influx_user_pw@influxdb:8086/gridpilot" \
    -v broker="mqtt://gateway:$gateway_pw@mosquitto:1883" '
  BEGIN { while ((getline line < hashes) > 0) { split(line, kv, " "); hash[kv[1]] = kv[2] } }
  /^\[/ { principals = /^\[\[principals\]\]/; settings = /^\[settings\]/; principal = "" }
  principals && /^name *= *"/ { principal = $0; sub(/^[^"]*"/, "", principal); sub(/".*/, "", principal) }
  principals && /^token_sha256 *=/ {
    if (principal == "") { print "setup.sh: put name before token_sha256 in [[principals]]" > "/dev/stderr"; exit 1 }
    print "token_sha256 = \"" hash[principal] "\""; next }
  settings { if (/^stdio_principal/) stdio = $0; next }
  { print }
  END {
    print "[settings]   # written by deploy/setup.sh: the docker-compose.yml services"
    print "store_url = \"" store "\""
    print "broker_url = \"" broker "\""
    print "state_dir = \"/var/lib/gridpilot\"   # a volume: audit log, pending commands, models"
    if (stdio != "") print stdio
  }' "$site_in" > "$secrets/site.toml"
# the containers run as an unprivileged user: let them read what they mount
chmod 755 "$secrets"
chmod 644 "$secrets/site.toml" "$secrets/passwd"

{
  echo "INFLUXDB_ADMIN_PASSWORD=$(secret)"
  echo "INFLUXDB_USER_PASSWORD=$influx_user_pw"
  echo "INFLUXDB_READ_USER_PASSWORD=$(secret)"
  echo "GRAFANA_ADMIN_PASSWORD=$(secret)"
  echo "MQTT_SIMULATOR_PASSWORD=$simulator_pw"
  grep -E '^GRIDPILOT_TOKEN_(GRID_RESPONSE|ARBITRAGE|PEAK_SHAVING)=' "$secrets/tokens.env"
} > "$env_file"
echo "wrote $secrets/{site.toml,passwd,devices.env,tokens.env} and $env_file"
