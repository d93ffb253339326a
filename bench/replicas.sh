#!/usr/bin/env bash
# Two tonearm replicas behind HAProxy over one PostgreSQL, by hand (not run
# by `make test`): needs Go, PostgreSQL's server binaries and Debian's
# haproxy (apt-get install postgresql haproxy). It measures, through the
# load balancer:
#   1. kill -9 of one replica mid-run: which requests fail (only those in
#      flight on the dead replica may), and that every acknowledged user and
#      token is in the database afterwards;
#   2. a rolling restart with SIGTERM (each replica goes unready, drains,
#      stops, starts again): zero failed requests.
# Usage: bench/replicas.sh [seconds per phase, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
work=$(mktemp -d /tmp/tonearm-replicas.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  # Replicas restarted in a background subshell are not in pids.
  pkill -f "$work/tonearm serve" 2>/dev/null || true
  [ -n "${pg_ctl:-}" ] && su postgres -c "$pg_ctl -D $work/pg stop -m fast" >/dev/null 2>&1 || $pg_ctl -D "$work/pg" stop -m fast >/dev/null 2>&1 || true
}
trap cleanup EXIT

pgbin=$(dirname "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
pg_ctl="$pgbin/pg_ctl"
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else eval "$*"; fi; }
mkdir "$work/pg"; [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_pg "$pgbin/initdb -D $work/pg -A trust -U postgres" >/dev/null
as_pg "$pg_ctl -D $work/pg -o '-p 55439 -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200' -l $work/pg/log start" >/dev/null
sleep 2
psql -q -h 127.0.0.1 -p 55439 -U postgres -c "create database tonearm"

go build -o "$work/tonearm" ./cmd/tonearm
go build -o "$work/load" ./cmd/tonearm-load
export TONEARM_DATABASE_URL="postgres://postgres@127.0.0.1:55439/tonearm?sslmode=disable"
export TONEARM_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export TONEARM_ISSUER=http://127.0.0.1:18080 TONEARM_TRUSTED_PROXIES=127.0.0.1/32
"$work/tonearm" migrate >/dev/null 2>&1
secret=$("$work/tonearm" clients create --id svc --grant-type client_credentials --scope admin --json | sed -E 's/.*"client_secret":"([^"]+)".*/\1/')

declare -A replica_pid
start_replica() { # name port
  TONEARM_LISTEN=127.0.0.1:$2 "$work/tonearm" serve >>"$work/$1.log" 2>&1 &
  replica_pid[$1]=$!; pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && return; sleep 0.1; done
  echo "replica $1 did not become ready" >&2; exit 1
}
start_replica a 18081
start_replica b 18082

cat >"$work/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 2
  option redispatch
  option forwardfor
frontend fe
  bind 127.0.0.1:18080
  default_backend be
backend be
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 500ms fall 1 rise 2
  server a 127.0.0.1:18081 check
  server b 127.0.0.1:18082 check
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
sleep 2

# Users created through the balancer during a phase; each acknowledged ID is
# kept and looked up in the database afterwards.
create_users() { # file seconds
  local end=$((SECONDS + $2)) i=0
  while [ $SECONDS -lt $end ]; do
    i=$((i + 1))
    out=$(curl -s -m 5 -X POST http://127.0.0.1:18080/api/User/createUser -H 'Content-Type: application/json' \
      -d "{\"username\":\"r$RANDOM$i\",\"password\":\"replica-pass-1\"}" || true)
    case $out in *'"user":"'*) echo "$out" | sed -E 's/.*"user":"([^"]+)".*/\1/' >>"$1";; esac
  done
}
check_users() { # file
  local n=0 missing=0
  while read -r id; do
    n=$((n + 1))
    [ "$(psql -Atq -h 127.0.0.1 -p 55439 -U postgres tonearm -c "select count(*) from users where id='$id'")" = 1 ] || missing=$((missing + 1))
  done <"$1"
  echo "  acknowledged users: $n, missing from the database: $missing"
}
tokens_in_db() { psql -Atq -h 127.0.0.1 -p 55439 -U postgres tonearm -c "select count(*) from access_tokens where client_id='svc'"; }

echo "== 1. kill -9 of replica a after $((secs / 4)) s of a ${secs} s run"
before=$(tokens_in_db)
create_users "$work/users1" "$secs" & users_pid=$!
( sleep $((secs / 4)); kill -9 "${replica_pid[a]}"; echo "  killed replica a" ) &
"$work/load" run -target cc -issuer http://127.0.0.1:18080 -client svc -secret "$secret" -scope admin -c 32 -d "${secs}s" | grep -v '^$' | tail -2 | tee "$work/run1" | sed 's/^/  /'
wait $users_pid
after=$(tokens_in_db)
total=$(sed -n 's/.*(\([0-9]*\) requests.*/\1/p' "$work/run1"); failed=$(sed -n 's/.*ok, \([0-9]*\) failed.*/\1/p' "$work/run1")
acked=$((total - failed)); stored=$((after - before))
verdict="ok"; [ "$stored" -lt "$acked" ] && verdict="LOST $((acked - stored))"
echo "  access tokens acknowledged: $acked, stored during the run: $stored ($verdict: every acknowledged one must be stored)"
check_users "$work/users1"
start_replica a 18081
sleep 3

echo "== 2. rolling restart with SIGTERM during a ${secs} s run"
create_users "$work/users2" "$secs" & users_pid=$!
(
  sleep $((secs / 5))
  for r in a b; do
    port=18081; [ $r = b ] && port=18082
    kill -TERM "${replica_pid[$r]}"
    while kill -0 "${replica_pid[$r]}" 2>/dev/null; do sleep 0.1; done
    echo "  replica $r drained and stopped; starting it again"
    start_replica $r $port
    sleep 2
  done
) &
"$work/load" run -target cc -issuer http://127.0.0.1:18080 -client svc -secret "$secret" -scope admin -c 32 -d "${secs}s" | grep -v '^$' | tail -2 | sed 's/^/  /'
wait $users_pid
check_users "$work/users2"
echo "logs in $work"
