#!/usr/bin/env bash
# services.sh - PostgreSQL + Redis on loopback for klepto-cache's server tests.
#
# Debian (12+), run as root, no systemd needed (uses postgresql-common's
# pg_createcluster/pg_ctlcluster and a daemonized redis-server). Idempotent.
#
# Usage: scripts/services.sh <command>
#   start        install missing packages, start both servers, print the URLs
#   stop         stop both servers (fine if they are not running)
#   env          print `export KLEPTO_PG_URL=...` / `export KLEPTO_REDIS_URL=...`
#                for `eval "$(scripts/services.sh env)"`
#   status       say whether each server is up (exit 0 if both are, else 3)
#   start-pg     start only PostgreSQL   } packages must already be installed;
#   stop-pg      stop only PostgreSQL    } quick and idempotent, meant for
#   start-redis  start only Redis        } tests that restart a server
#   stop-redis   stop only Redis         } mid-run
#
# Environment overrides (use the same values for every command):
#   PG_PORT (5432)  PG_CLUSTER (main)  PG_VERSION (newest installed)
#   REDIS_PORT (6379)  KLEPTO_SERVICES_DIR (/var/tmp/klepto-services)
set -Eeuo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."

PROG=services.sh
PG_PORT=${PG_PORT:-5432}
PG_CLUSTER=${PG_CLUSTER:-main}
REDIS_PORT=${REDIS_PORT:-6379}
STATE_DIR=${KLEPTO_SERVICES_DIR:-/var/tmp/klepto-services}
REDIS_DIR=$STATE_DIR/redis-$REDIS_PORT # pidfile, logfile, working dir
REDIS_PIDFILE=$REDIS_DIR/redis.pid
REDIS_LOG=$REDIS_DIR/redis.log
# Test credentials; they only ever appear in the URL lines.
DB_USER=klepto
DB_PASS=klepto
DB_NAME=klepto
PG_WAIT_SECS=30
REDIS_WAIT_SECS=10

# Exactly one "error:" line per failure: die() prints it; the ERR trap prints
# one for any other failing command. Exit status 86 from a subshell means
# "already reported", so the enclosing shell exits quietly.
REPORTED=86
die() {
  echo "$PROG: error: $*" >&2
  exit $((BASH_SUBSHELL > 0 ? REPORTED : 1))
}
on_err() {
  local rc=$1 cmd=$2 line=$3
  ((rc == REPORTED)) || echo "$PROG: error: '$cmd' failed (exit $rc, line $line)" >&2
  exit $((BASH_SUBSHELL > 0 ? REPORTED : 1))
}
trap 'on_err $? "$BASH_COMMAND" $LINENO' ERR
info() { echo "$PROG: $*" >&2; }

valid_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)); }
valid_port "$PG_PORT" || die "PG_PORT must be a TCP port number, got '$PG_PORT'"
valid_port "$REDIS_PORT" || die "REDIS_PORT must be a TCP port number, got '$REDIS_PORT'"
[[ $PG_CLUSTER =~ ^[A-Za-z0-9_-]+$ ]] || die "invalid PG_CLUSTER '$PG_CLUSTER'"

PG_URL="postgres://$DB_USER:$DB_PASS@127.0.0.1:$PG_PORT/$DB_NAME"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

need_root() { [[ $(id -u) -eq 0 ]] || die "'$1' must run as root"; }

# Serialise commands that change state (tests may restart servers in parallel).
lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/lock"
  flock -w 120 9 || die "timed out waiting for $STATE_DIR/lock"
}

# ---------------------------------------------------------------- packages --

pg_installed() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && command -v pg_ctlcluster >/dev/null; }
redis_installed() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null; }

install_packages() {
  local -a need=()
  pg_installed || need+=(postgresql)
  redis_installed || need+=(redis-server)
  ((${#need[@]})) || return 0

  info "installing ${need[*]} (log: $STATE_DIR/apt.log)"
  # Keep the packages' init scripts from starting their default instances
  # (which would listen on ::1 too, and the Redis one with persistence):
  # everything is started below with our own settings.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT # even if we get interrupted
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  } >"$STATE_DIR/apt.log" 2>&1 || rc=$?
  if ((own_policy)); then
    rm -f "$policy"
    trap - EXIT
  fi
  if ((rc)); then
    tail -n 15 "$STATE_DIR/apt.log" >&2
    die "apt-get failed installing ${need[*]} (exit $rc); full log: $STATE_DIR/apt.log"
  fi
  pg_installed || die "postgresql installed but no server binary under /usr/lib/postgresql"
  redis_installed || die "redis-server installed but redis-server/redis-cli not found"
}

# -------------------------------------------------------------- postgresql --

pg_version() { # PG_VERSION, or the newest installed server
  if [[ -n ${PG_VERSION:-} ]]; then
    echo "$PG_VERSION"
  else
    find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null |
      awk -F/ '{print $5}' | sort -V | tail -n 1
  fi
}

# Field $1 of our cluster's pg_lsclusters line (2=name 3=port 6=datadir 7=log).
pg_cluster_field() {
  pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VER" -v c="$PG_CLUSTER" -v f="$1" '$1==v && $2==c {print $f}'
}

pg_running() { pg_ctlcluster "$PG_VER" "$PG_CLUSTER" status >/dev/null 2>&1; }

pg_psql() { # superuser psql over the unix socket; SQL on stdin
  (cd /tmp && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p "$1" -d postgres)
}

# Does the running server listen on exactly 127.0.0.1:$PG_PORT? (The config
# file may have been changed after it started.)
pg_running_as_wanted() {
  local pidfile port listen
  pidfile="$(pg_cluster_field 6)/postmaster.pid"
  port=$(sed -n 4p "$pidfile" 2>/dev/null) || return 1
  [[ $port == "$PG_PORT" ]] || return 1
  listen=$(pg_psql "$port" <<<'SHOW listen_addresses' 2>/dev/null) || return 1
  [[ $listen == 127.0.0.1 ]]
}

pg_init() {
  pg_installed || die "PostgreSQL is not installed; run '$PROG start' first"
  PG_VER=$(pg_version)
  [[ -n $PG_VER ]] || die "no PostgreSQL server found under /usr/lib/postgresql"
  [[ -x /usr/lib/postgresql/$PG_VER/bin/postgres ]] || die "PostgreSQL $PG_VER is not installed"
}

start_pg() {
  pg_init
  if [[ -z $(pg_cluster_field 2) ]]; then
    info "creating PostgreSQL cluster $PG_VER/$PG_CLUSTER on 127.0.0.1:$PG_PORT"
    pg_createcluster "$PG_VER" "$PG_CLUSTER" --port "$PG_PORT" \
      >"$STATE_DIR/pg_createcluster.log" 2>&1 9>&- ||
      die "pg_createcluster $PG_VER $PG_CLUSTER failed; see $STATE_DIR/pg_createcluster.log"
  fi
  # Listen address and port go into a conf.d drop-in (Debian's postgresql.conf
  # ends with include_dir = 'conf.d', so it wins, and pg_lsclusters reads it
  # too). This also covers an existing cluster, e.g. the 'main' one Debian's
  # package creates, which listens on localhost = 127.0.0.1 *and* ::1.
  # Not `pg_conftool set listen_addresses 127.0.0.1` / `pg_createcluster -o`:
  # postgresql-common 248 takes 127.0.0.1 for a number and writes it unquoted,
  # which postgres then rejects as a syntax error.
  local dropin="/etc/postgresql/$PG_VER/$PG_CLUSTER/conf.d/90-klepto-services.conf"
  local want
  want=$(printf '%s\n' "# written by klepto-cache scripts/services.sh" \
    "listen_addresses = '127.0.0.1'" "port = $PG_PORT")
  if [[ ! -f $dropin || $(<"$dropin") != "$want" ]]; then
    install -d -o postgres -g postgres "${dropin%/*}"
    printf '%s\n' "$want" >"$dropin"
    chown postgres:postgres "$dropin"
  fi
  [[ $(pg_conftool -s "$PG_VER" "$PG_CLUSTER" show listen_addresses 2>/dev/null) == 127.0.0.1 &&
    $(pg_cluster_field 3) == "$PG_PORT" ]] ||
    die "$dropin is not in effect (no include_dir = 'conf.d' in postgresql.conf?)"

  # /run is a tmpfs on real machines: the socket directory may be gone.
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql

  # (9>&-: the servers must not inherit our lock's file descriptor.)
  if pg_running && ! pg_running_as_wanted; then
    info "restarting PostgreSQL $PG_VER/$PG_CLUSTER to apply listen_addresses/port"
    pg_ctlcluster "$PG_VER" "$PG_CLUSTER" restart -m fast 9>&- ||
      die "pg_ctlcluster $PG_VER $PG_CLUSTER restart failed; see $(pg_cluster_field 7)"
  elif ! pg_running; then
    local rc=0
    pg_ctlcluster "$PG_VER" "$PG_CLUSTER" start 9>&- || rc=$?
    # exit 2 = already running (we lost a race with another start): fine.
    ((rc == 0 || rc == 2)) ||
      die "pg_ctlcluster $PG_VER $PG_CLUSTER start failed (exit $rc); see $(pg_cluster_field 7)"
  fi

  local deadline=$((SECONDS + PG_WAIT_SECS))
  until pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; do
    ((SECONDS < deadline)) || die "PostgreSQL not ready on 127.0.0.1:$PG_PORT after ${PG_WAIT_SECS}s; see $(pg_cluster_field 7)"
    sleep 0.2
  done

  # Role and database (the password is set on every start, so it is always
  # the expected one). format() does the quoting.
  pg_psql "$PG_PORT" >/dev/null <<SQL || die "could not create role/database '$DB_USER'/'$DB_NAME'"
SELECT format('CREATE ROLE %I LOGIN', '$DB_USER')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', '$DB_USER', '$DB_PASS') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$DB_NAME', '$DB_USER')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', '$DB_NAME', '$DB_USER') \gexec
SQL
  info "PostgreSQL $PG_VER/$PG_CLUSTER up on 127.0.0.1:$PG_PORT"
}

stop_pg() {
  pg_installed || return 0
  PG_VER=$(pg_version)
  [[ -n $PG_VER && -n $(pg_cluster_field 2) ]] || return 0
  pg_running || return 0
  local rc=0
  pg_ctlcluster "$PG_VER" "$PG_CLUSTER" stop -m fast || rc=$?
  # exit 2 = was not running (raced with another stop): fine.
  ((rc == 0 || rc == 2)) || die "pg_ctlcluster $PG_VER $PG_CLUSTER stop failed (exit $rc)"
  info "PostgreSQL $PG_VER/$PG_CLUSTER stopped"
}

# ------------------------------------------------------------------- redis --

# Is process $1 alive? A zombie is not: it has exited and merely waits for
# PID 1 to reap it, which can take a second (e.g. in containers).
proc_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # fields after "pid (comm) "; field 1 is the state
  [[ ${stat:0:1} != Z ]]
}

redis_ping() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

# Pid from our pidfile, only if that process is alive and is a redis-server.
redis_pid() {
  local pid
  [[ -r $REDIS_PIDFILE ]] || return 1
  pid=$(<"$REDIS_PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server ]] && proc_alive "$pid" || return 1
  echo "$pid"
}

start_redis() {
  redis_installed || die "Redis is not installed; run '$PROG start' first"
  local pid
  if pid=$(redis_pid) && redis_ping; then
    return 0
  fi
  if redis_ping; then
    local other
    other=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')
    die "port $REDIS_PORT already has a Redis (pid ${other:-?}) not started by this script; stop it or set REDIS_PORT"
  fi
  if pid=$(redis_pid); then # alive but not answering (yet): replace it
    stop_redis
  fi
  rm -f "$REDIS_PIDFILE"
  local -a as_user=()
  if id redis >/dev/null 2>&1; then # the package's user: don't run as root
    install -d -o redis -g redis -m 0750 "$REDIS_DIR"
    as_user=(runuser -u redis --)
  else
    install -d -m 0750 "$REDIS_DIR"
  fi
  # (9>&-: the server must not inherit our lock's file descriptor.)
  "${as_user[@]}" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
    --daemonize yes --save '' --appendonly no --protected-mode yes \
    --dir "$REDIS_DIR" --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" 9>&- ||
    die "redis-server failed to start; see $REDIS_LOG"
  local deadline=$((SECONDS + REDIS_WAIT_SECS))
  until redis_ping; do
    if ((SECONDS >= deadline)); then
      tail -n 5 "$REDIS_LOG" >&2 || true
      die "Redis not answering PING on 127.0.0.1:$REDIS_PORT after ${REDIS_WAIT_SECS}s; see $REDIS_LOG"
    fi
    sleep 0.1
  done
  info "Redis up on 127.0.0.1:$REDIS_PORT (pid $(redis_pid || echo '?'))"
}

stop_redis() {
  local pid
  if ! pid=$(redis_pid); then
    rm -f "$REDIS_PIDFILE"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while proc_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      info "Redis (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while proc_alive "$pid"; do
        ((SECONDS < deadline)) || die "could not stop Redis (pid $pid)"
        sleep 0.1
      done
      break
    fi
    sleep 0.05
  done
  rm -f "$REDIS_PIDFILE"
  info "Redis stopped"
}

# ---------------------------------------------------------------- commands --

print_urls() { printf 'KLEPTO_PG_URL=%s\nKLEPTO_REDIS_URL=%s\n' "$PG_URL" "$REDIS_URL"; }

status() {
  local rc=0
  if pg_installed && PG_VER=$(pg_version) && [[ -n $PG_VER ]] &&
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
    echo "postgresql: up ($PG_VER/$PG_CLUSTER, 127.0.0.1:$PG_PORT)"
  else
    echo "postgresql: down (127.0.0.1:$PG_PORT)"
    rc=3
  fi
  if redis_installed && redis_ping; then
    local pid
    if pid=$(redis_pid); then
      echo "redis: up (127.0.0.1:$REDIS_PORT, pid $pid)"
    else
      echo "redis: up (127.0.0.1:$REDIS_PORT, not started by this script)"
    fi
  else
    echo "redis: down (127.0.0.1:$REDIS_PORT)"
    rc=3
  fi
  return "$rc"
}

usage() {
  sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p}' "$SELF" >&2
  exit 2
}

cmd=${1:-}
[[ $# -le 1 ]] || usage
case $cmd in
  start)
    need_root start
    lock
    install_packages
    start_pg
    start_redis
    print_urls
    ;;
  stop)
    need_root stop
    lock
    stop_redis
    stop_pg
    ;;
  start-pg) need_root "$cmd"; lock; start_pg ;;
  stop-pg) need_root "$cmd"; lock; stop_pg ;;
  start-redis) need_root "$cmd"; lock; start_redis ;;
  stop-redis) need_root "$cmd"; lock; stop_redis ;;
  env) print_urls | sed 's/^/export /' ;;
  status)
    rc=0
    status || rc=$?
    exit "$rc"
    ;;
  -h | --help | help) usage ;;
  *) usage ;;
esac
