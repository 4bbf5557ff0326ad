#!/usr/bin/env bash
# Runs a command with PostgreSQL and Redis available to the tests, and says loudly what
# it used. For each service, in order:
#   1. the URL in GATEHOUSE_TEST_POSTGRES_URL / GATEHOUSE_TEST_REDIS_URL, if set;
#   2. a server already listening on 127.0.0.1:5432 / 127.0.0.1:6379;
#   3. a throwaway server started from the installed binaries (initdb + postgres,
#      redis-server) in a temp dir, stopped when the command ends.
# If none can be had, the variable stays unset and the tests skip those suites with a
# loud line — or, under CI=true or GATEHOUSE_TEST_REQUIRE_SERVICES=1, the script stops
# there with that line instead of running the command (make bench sets it).
set -euo pipefail

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-test.XXXXXX")
pids=()
pgdata=""
cleanup() {
  if [ -n "$pgdata" ]; then as_pg pg_ctl -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

say() { echo "test-services: $*" >&2; }
# missing reports a service that cannot be had; when services are required it stops.
missing() {
  say "$*"
  if [ "${CI:-}" = true ] || [ "${GATEHOUSE_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
    say "stopping: the services are required (CI=true or GATEHOUSE_TEST_REQUIRE_SERVICES=1)"
    exit 1
  fi
}
open_port() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    open_port "$p" || { echo "$p"; return; }
  done
  return 1
}
# PostgreSQL refuses to run as root; run its binaries as an unprivileged user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    local u=postgres
    id "$u" >/dev/null 2>&1 || u=nobody
    runuser -u "$u" -- "$@"
  else
    "$@"
  fi
}
find_bin() {
  command -v "$1" 2>/dev/null && return
  ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1
}

if [ -n "${GATEHOUSE_TEST_POSTGRES_URL:-}" ]; then
  say "PostgreSQL: using GATEHOUSE_TEST_POSTGRES_URL"
elif open_port 5432; then
  export GATEHOUSE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
  say "PostgreSQL: using the server on 127.0.0.1:5432"
elif initdb=$(find_bin initdb) && [ -n "$initdb" ] && pgctl=$(find_bin pg_ctl) && [ -n "$pgctl" ]; then
  port=$(free_port)
  pgdata="$tmp/pg"
  mkdir -p "$pgdata" && chmod 700 "$tmp" "$pgdata"
  [ "$(id -u)" = 0 ] && chown -R "$(id -u postgres 2>/dev/null || id -u nobody)" "$tmp"
  chmod 755 "$tmp"
  as_pg "$initdb" -D "$pgdata" -U postgres --auth=trust --no-sync >/dev/null
  as_pg "$pgctl" -D "$pgdata" -w -l "$pgdata/log" \
    -o "-p $port -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  export GATEHOUSE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  say "PostgreSQL: started a throwaway server on 127.0.0.1:$port"
else
  missing "!!! PostgreSQL: none running on 127.0.0.1:5432 and no initdb/pg_ctl installed (Debian: apt-get install postgresql)"
fi

if [ -n "${GATEHOUSE_TEST_REDIS_URL:-}" ]; then
  say "Redis: using GATEHOUSE_TEST_REDIS_URL"
elif open_port 6379; then
  export GATEHOUSE_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
  say "Redis: using the server on 127.0.0.1:6379"
elif command -v redis-server >/dev/null; then
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do open_port "$port" && break; sleep 0.1; done
  export GATEHOUSE_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  say "Redis: started a throwaway server on 127.0.0.1:$port"
else
  missing "!!! Redis: none running on 127.0.0.1:6379 and no redis-server installed (Debian: apt-get install redis-server)"
fi

"$@"
