#!/usr/bin/env bash
# Runs Okta's SCIM 2.0 SPEC test (../shared/conformance/okta-scim-spec, converted to a
# Postman collection) with newman against a freshly started Gatehouse on a new SQLite
# database. Needs Node.js/npm (newman is installed into .tmp/, not globally).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
spec_dir="${OKTA_SCIM_SPEC_DIR:-$root/../shared/conformance/okta-scim-spec}"
if [ ! -f "$spec_dir/Okta-SCIM-20-SPEC-Test.json" ]; then
  echo "conformance: Okta's SPEC test not found at $spec_dir (set OKTA_SCIM_SPEC_DIR)" >&2
  exit 1
fi
command -v node >/dev/null && command -v npm >/dev/null || { echo "conformance: needs node and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }

tools="$root/.tmp/conformance"
if [ ! -x "$tools/node_modules/.bin/newman" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-save --no-audit --no-fund --loglevel=error newman@6.2.2 >/dev/null)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-conformance.XXXXXX")
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/gatehouse" "$root/cmd/gatehouse"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
export GATEHOUSE_DATABASE_URL="sqlite:$work/gatehouse.db" GATEHOUSE_LISTEN="127.0.0.1:$port" GATEHOUSE_LOG_LEVEL=warn
base="http://127.0.0.1:$port/scim/v2"

"$work/gatehouse" tenant create --slug okta-spec --name "Okta SPEC" --features user_groups >/dev/null
token=$("$work/gatehouse" scim-token issue --tenant okta-spec --name newman | sed -n 's/.*Bearer token: *//p')
"$work/gatehouse" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

# The SPEC test reads the first user and expects at least one group: seed them.
seed() { curl -fsS -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/scim+json" -d "$2" "$base/$1" >/dev/null; }
seed Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"seed.user@atko.com","name":{"givenName":"Seed","familyName":"User"},"emails":[{"value":"seed.user@atko.com","type":"work","primary":true}],"active":true}'
seed Groups '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Seed Group"}'

node "$spec_dir/runscope2postman.mjs" "$spec_dir/Okta-SCIM-20-SPEC-Test.json" "$work/okta.postman_collection.json" --no-time
sed -e "s#http://127.0.0.1:8080/scim/v2#$base#" -e "s#Bearer CHANGE_ME#Bearer $token#" \
  "$spec_dir/okta-env.template.json" >"$work/okta-env.json"
"$tools/node_modules/.bin/newman" run "$work/okta.postman_collection.json" -e "$work/okta-env.json" \
  --reporters cli --color off --bail failure
