# shellcheck shell=bash
# Shared helpers for hack/conformance.sh and hack/bench-tcp.sh: pick free
# ports, start and stop goiserd and tgtd on 127.0.0.1, wait for listeners.
# Sourced, not executed. Every process started here is recorded in PIDS_TO_STOP;
# the caller's EXIT trap runs stop_all, so nothing is left behind.

GOISER_IQN=${GOISER_IQN:-iqn.2026-11.dev.goiser:conformance}
TGT_IQN=${TGT_IQN:-iqn.2026-11.dev.goiser:tgt}
PIDS_TO_STOP=() # "pid:seconds to wait after SIGTERM" entries
CLEANUP_PATHS=()

log() { echo "$(basename "$0"): $*" >&2; }
die() { log "$*"; exit 2; }

# port_busy PORT: true when something listens on 127.0.0.1:PORT (or any address).
port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# free_port: prints a TCP port that nothing listens on.
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 30000))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  die "no free TCP port found"
}

# wait_listen PORT PID SECONDS: waits until PORT listens; fails if PID exits first.
wait_listen() {
  local port=$1 pid=$2 n=$(( $3 * 10 ))
  while [ $n -gt 0 ]; do
    port_busy "$port" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1; n=$((n - 1))
  done
  return 1
}

# wait_addr_file FILE PID SECONDS: waits until goiserd (PID) has written its
# -addr-file FILE and prints the port of its first portal; fails if PID
# exits first. goiserd writes the file once every portal listens, so a
# daemon started on port 0 needs no guessing.
wait_addr_file() {
  local file=$1 pid=$2 n=$(( $3 * 10 )) addr
  while [ $n -gt 0 ]; do
    if [ -s "$file" ]; then
      addr=$(awk 'NR == 1 { print $2 }' "$file")
      echo "${addr##*:}"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1; n=$((n - 1))
  done
  return 1
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10), then SIGKILL.
stop_pid() {
  local pid=$1 n=$(( ${2:-10} * 10 ))
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  while [ $n -gt 0 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    [ "$2" -gt 1 ] && log "pid $pid did not stop on SIGTERM within $2 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  local e p
  for e in "${PIDS_TO_STOP[@]}"; do stop_pid "${e%:*}" "${e#*:}"; done
  PIDS_TO_STOP=()
  for p in "${CLEANUP_PATHS[@]}"; do rm -rf -- "$p"; done
  CLEANUP_PATHS=()
}

# start_goiser DIR PORT [SIZE [FILE]]: starts bin/goiserd (PORT 0: a free
# port, read back from its -addr-file) from a config file
# written to DIR with one LUN 0 of SIZE (default 1G) under $GOISER_IQN: in
# memory, or backed by FILE (created with that size) when FILE is given.
# GOISER_LUNS, when set, replaces that LUN list (JSON objects separated by
# commas). Sets GOISER_PID, GOISER_PORT, GOISER_URL (LUN 0) and
# GOISER_BASE (the URL without the LUN). Logs go to DIR/goiserd.log.
start_goiser() {
  local dir=$1 port=$2 size=${3:-1G} file=${4:-} bin=${GOISERD:-bin/goiserd} lun
  [ -x "$bin" ] || die "$bin is missing: run make build first"
  lun="{\"lun\": 0, \"backend\": \"mem\", \"size\": \"$size\"}"
  [ -z "$file" ] || lun="{\"lun\": 0, \"backend\": \"file\", \"path\": \"$file\", \"size\": \"$size\"}"
  cat >"$dir/goiserd.json" <<EOF
{
  "portals": ["127.0.0.1:$port"],
  "targets": [
    {
      "name": "$GOISER_IQN",
      "luns": [${GOISER_LUNS:-$lun}]
    }
  ]
}
EOF
  rm -f "$dir/goiserd.addr"
  "$bin" -config "$dir/goiserd.json" -log-level "${GOISER_LOG_LEVEL:-warn}" -addr-file "$dir/goiserd.addr" \
    </dev/null >>"$dir/goiserd.log" 2>&1 &
  GOISER_PID=$!
  PIDS_TO_STOP+=("$GOISER_PID:15")
  if ! port=$(wait_addr_file "$dir/goiserd.addr" "$GOISER_PID" 20); then
    tail -20 "$dir/goiserd.log" >&2
    die "goiserd did not start listening on 127.0.0.1:$2 (log: $dir/goiserd.log)"
  fi
  # shellcheck disable=SC2034 # used by the scripts that source this file
  GOISER_PORT=$port
  GOISER_BASE="iscsi://127.0.0.1:$port/$GOISER_IQN"
  # shellcheck disable=SC2034 # used by the scripts that source this file
  GOISER_URL="$GOISER_BASE/0"
}

# build_of BINARY: which code a Go binary was built from: its VCS stamp (go
# build in a checkout), else $GOISER_BUILD, else "unknown".
build_of() {
  local r
  # go version -m prints "build<TAB>vcs.revision=<sha>" (one field per setting).
  r=$(go version -m "$1" 2>/dev/null | awk '$1 == "build" { split($2, kv, "=") }
    $1 == "build" && kv[1] == "vcs.revision" { r = substr(kv[2], 1, 7) }
    $1 == "build" && kv[1] == "vcs.modified" { m = kv[2] }
    END { if (r != "") print "commit " r (m == "true" ? " plus uncommitted changes" : "") }')
  echo "${r:-${GOISER_BUILD:-unknown}}"
}

# start_tgt DIR PORT [SIZE]: starts Debian's tgtd in the foreground on a private
# control port with a portal on 127.0.0.1:PORT, and one LUN 1 (tgt's LUN 0 is
# its controller) of SIZE (default 1G) backed by a file on /dev/shm with the
# rdwr backing store, open to every initiator. Sets TGT_PID and TGT_URL.
start_tgt() {
  local dir=$1 port=$2 size=${3:-1G} cp img
  command -v tgtd >/dev/null || die "tgtd is missing: run make deps"
  for _ in $(seq 1 50); do
    cp=$((1000 + RANDOM % 30000)) # tgtd takes at most 32767
    [ -e "/var/run/tgtd/socket.$cp" ] || [ -e "/var/run/tgtd/socket.$cp.lock" ] || break
  done
  img=$(mktemp /dev/shm/goiser-tgt.XXXXXX)
  CLEANUP_PATHS+=("$img" "/var/run/tgtd/socket.$cp" "/var/run/tgtd/socket.$cp.lock")
  truncate -s "$size" "$img"
  tgtd -f -C "$cp" --iscsi "portal=127.0.0.1:$port" </dev/null >>"$dir/tgtd.log" 2>&1 &
  TGT_PID=$!
  # tgtd ignores SIGTERM while it has targets: give it a moment, then SIGKILL
  # (its backing file is scratch space on /dev/shm).
  PIDS_TO_STOP+=("$TGT_PID:1")
  wait_listen "$port" "$TGT_PID" 20 || die "tgtd did not start listening on 127.0.0.1:$port (log: $dir/tgtd.log)"
  for _ in $(seq 1 50); do [ -S "/var/run/tgtd/socket.$cp" ] && break; sleep 0.1; done
  tgtadm -C "$cp" --lld iscsi --mode target --op new --tid 1 --targetname "$TGT_IQN" &&
  tgtadm -C "$cp" --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 \
    --backing-store "$img" --bstype rdwr &&
  tgtadm -C "$cp" --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL ||
    die "tgtadm could not configure tgtd (log: $dir/tgtd.log)"
  # shellcheck disable=SC2034 # used by the scripts that source this file
  TGT_URL="iscsi://127.0.0.1:$port/$TGT_IQN/1"
}
