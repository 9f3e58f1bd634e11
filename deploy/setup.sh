#!/usr/bin/env bash
# Makes the secrets docker-compose.yml needs, once per installation:
#   deploy/secrets/passwd      Mosquitto password file (gateway, simulator, observer, each device)
#   deploy/secrets/site.toml   deploy/site.toml.in with the passwords and token hashes filled in
#   deploy/secrets/devices.env the MQTT password of each device (flash it onto the board)
#   deploy/secrets/tokens.env  the bearer token of each principal (hand them out; keep them out of git)
#   .env                       what compose interpolates: InfluxDB, Grafana, simulator, daemon secrets
# Needs mosquitto_passwd (apt-get install mosquitto) and sha256sum. Refuses to overwrite
# existing secrets; set SECRETS=dir and ENV_FILE=path to write elsewhere (the tests do).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
secrets="${SECRETS:-$here/secrets}"
env_file="${ENV_FILE:-$here/../.env}"
template="${TEMPLATE:-$here/site.toml.in}"

if [ -e "$secrets/passwd" ] || [ -e "$env_file" ]; then
  echo "secrets exist already ($secrets/passwd or $env_file); remove them to start over" >&2
  exit 1
fi
command -v mosquitto_passwd >/dev/null || { echo "mosquitto_passwd is missing (apt-get install mosquitto)" >&2; exit 1; }
mkdir -p "$secrets"
chmod 700 "$secrets"
umask 077

secret() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }
sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

: > "$secrets/passwd"
: > "$secrets/devices.env"
: > "$secrets/tokens.env"
site="$(cat "$template")"

add_user() { mosquitto_passwd -b "$secrets/passwd" "$1" "$2"; }

gateway_pw="$(secret)"; simulator_pw="$(secret)"; observer_pw="$(secret)"
add_user gateway "$gateway_pw"
add_user simulator "$simulator_pw"
add_user observer "$observer_pw"
# Each [[devices]] id is an MQTT user whose ACL (deploy/mosquitto/acl) is its own topics.
for device in $(sed -n 's/^id = "\(.*\)"$/\1/p' <<< "$(awk '/^\[\[devices\]\]/{d=1;next} /^\[/{d=0} d' "$template")"); do
  pw="$(secret)"
  add_user "$device" "$pw"
  echo "MQTT_PASSWORD_$(tr 'a-z-' 'A-Z_' <<< "$device")=$pw" >> "$secrets/devices.env"
done
for name in $(sed -n 's/^name = "\(.*\)"$/\1/p' "$template"); do
  key="$(tr 'a-z-' 'A-Z_' <<< "$name")"
  token="$(secret)"
  echo "GRIDPILOT_TOKEN_$key=$token" >> "$secrets/tokens.env"
  site="${site//@TOKEN_SHA256_${key}@/$(sha256 "$token")}"
done

influx_admin_pw="$(secret)"; influx_user_pw="$(secret)"; influx_read_pw="$(secret)"
site="${site//@INFLUXDB_USER_PASSWORD@/$influx_user_pw}"
site="${site//@MQTT_GATEWAY_PASSWORD@/$gateway_pw}"
printf '%s\n' "$site" > "$secrets/site.toml"
# the containers run as an unprivileged user: let them read what they mount
chmod 755 "$secrets"
chmod 644 "$secrets/site.toml" "$secrets/passwd"

{
  echo "INFLUXDB_ADMIN_PASSWORD=$influx_admin_pw"
  echo "INFLUXDB_USER_PASSWORD=$influx_user_pw"
  echo "INFLUXDB_READ_USER_PASSWORD=$influx_read_pw"
  echo "GRAFANA_ADMIN_PASSWORD=$(secret)"
  echo "MQTT_SIMULATOR_PASSWORD=$simulator_pw"
  grep -E '^GRIDPILOT_TOKEN_(GRID_RESPONSE|ARBITRAGE|PEAK_SHAVING)=' "$secrets/tokens.env"
} > "$env_file"
echo "wrote $secrets/{passwd,site.toml,devices.env,tokens.env} and $env_file"
