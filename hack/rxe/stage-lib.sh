# shellcheck shell=bash
# Helpers for stage scripts (hack/rxe/tests.d/*.sh), sourced in their "run"
# phase inside the guest:
#   . "$RXE_REPO/hack/rxe/stage-lib.sh"
#
#   rxe_fresh_port           print a TCP/RDMA-CM port no other caller in this
#                            boot got (counter in $RXE_OUT/.ports, from 20000)
#   rxe_wait_listen PORT [S] wait until an RDMA CM id listens on PORT
#                            ("rdma res show cm_id" shows LISTEN), at most S
#                            seconds (default 30); status 1 on timeout
#   rxe_note TEXT...         add a line under the stage's PASS/FAIL line
#   rxe_bg_wait PID [S]      wait for a background job at most S seconds
#                            (default 60), kill it after; its exit status
#   rxe_iscsid_start         load iscsi_tcp, ib_iser and sd_mod (no udev in
#                            the guest) and start open-iscsi's iscsid in a
#                            session of its own; waits until iscsiadm
#                            reaches it (log: /tmp/iscsid.log)
#   rxe_iscsid_stop          stop it with "iscsiadm -k 0" (never SIGTERM: it
#                            signals its whole process group) and wait

rxe_fresh_port() {
  local f=$RXE_OUT/.ports p
  p=$(cat "$f" 2>/dev/null || echo 20000)
  echo $((p + 1)) >"$f"
  echo "$p"
}

rxe_wait_listen() {
  local port=$1 secs=${2:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    if rdma res show cm_id 2>/dev/null | grep -E "state LISTEN" | grep -qE "src-addr [^ ]*:$port( |\$)"; then
      return 0
    fi
    sleep 0.1
  done
  echo "rxe_wait_listen: nothing listens on port $port after ${secs}s" >&2
  rdma res show cm_id >&2
  return 1
}

rxe_note() { echo "$*" >>"${RXE_NOTES:-/dev/stderr}"; }

rxe_bg_wait() {
  local pid=$1 secs=${2:-60} i
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "rxe_bg_wait: pid $pid still running after ${secs}s, killing it" >&2
    kill -9 "$pid" 2>/dev/null
  fi
  wait "$pid"
}

rxe_iscsid_start() {
  local i rc
  modprobe -a iscsi_tcp ib_iser sd_mod || return 1
  setsid iscsid -f </dev/null >/tmp/iscsid.log 2>&1 &
  for ((i = 0; i < 100; i++)); do
    iscsiadm -m session >/dev/null 2>&1
    rc=$?
    # 0: sessions listed; 21: no sessions. 20 means iscsid is not reachable yet.
    if [ $rc -eq 0 ] || [ $rc -eq 21 ]; then return 0; fi
    sleep 0.1
  done
  echo "rxe_iscsid_start: iscsid not reachable after 10s:" >&2
  cat /tmp/iscsid.log >&2
  return 1
}

rxe_iscsid_stop() {
  local i
  iscsiadm -k 0 >/dev/null 2>&1
  for ((i = 0; i < 100; i++)); do
    pgrep -x iscsid >/dev/null || return 0
    sleep 0.1
  done
  echo "rxe_iscsid_stop: iscsid still running after 10s" >&2
  return 1
}
