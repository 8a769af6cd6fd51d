# shellcheck shell=bash
# LIO (the kernel's iSCSI target) through configfs alone, for stage scripts
# in the Soft-RoCE guest. Sourced:
#   . "$RXE_REPO/hack/rxe/lio-lib.sh"
#
#   lio_load                 load target_core_mod (rd_mcp is built in),
#                            iscsi_target_mod and ib_isert; create the iscsi
#                            fabric directory in configfs
#   lio_target IQN MIB...    a target IQN with TPG 1 and one rd_mcp ramdisk
#                            LUN per MIB (LUN 0, 1, ... of that many MiB);
#                            the TPG stays disabled until lio_enable
#   lio_portal ADDR:PORT [iser]
#                            a network portal; with "iser" the same ADDR:PORT
#                            also gets an iSER portal (echo 1 > np/.../iser),
#                            next to its TCP one (discovery over TCP keeps
#                            working on it)
#   lio_demo_mode            any initiator may log in and sees every LUN
#                            (generate_node_acls=1, writable, no auth)
#   lio_acl INITIATOR_IQN    instead of demo mode: an ACL for that initiator
#                            mapping every LUN
#   lio_chap USER SECRET [MUSER MSECRET]
#                            require CHAP (and mutual CHAP with MUSER) on the
#                            ACL made by lio_acl, or on the TPG in demo mode
#   lio_enable               enable the TPG (logins are accepted from here)
#   lio_teardown             undo everything lio_target/lio_portal/lio_acl
#                            made, in reverse order (disable the TPG, unlink
#                            ACL LUNs, ACLs, portals, LUN links, LUNs, TPG,
#                            target, backstores); safe to call twice and from
#                            an EXIT trap
#
# One target at a time. Every step fails with status 1 and a message on
# stderr; every write goes through lio_w, which says what it wrote where.

LIO_CFS=/sys/kernel/config/target
LIO_IQN=
LIO_TPG=
LIO_LUNS=0
LIO_HBAS=()
LIO_NPS=()
LIO_ACLS=()

# lio_w VALUE FILE: write VALUE into a configfs attribute, without a
# newline: the 6.1 kernel keeps it as part of string attributes (a CHAP
# userid "name\n" never matches the initiator's CHAP_N).
lio_w() {
  if ! printf '%s' "$1" >"$2"; then
    echo "lio: cannot write '$1' to $2" >&2
    return 1
  fi
}

lio_load() {
  modprobe -a configfs target_core_mod iscsi_target_mod ib_isert || return 1
  mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config || return 1
  [ -d "$LIO_CFS/iscsi" ] || mkdir "$LIO_CFS/iscsi" || return 1
}

lio_target() {
  local iqn=$1 mib i n=0 hba dev
  shift
  LIO_IQN=$iqn
  LIO_TPG=$LIO_CFS/iscsi/$iqn/tpgt_1
  mkdir -p "$LIO_TPG" || return 1
  i=0
  for mib in "$@"; do
    # One HBA per LUN, rd_mcp_N with the first unused N (the kernel wants
    # a number after the last underscore).
    while [ -e "$LIO_CFS/core/rd_mcp_$n" ]; do n=$((n + 1)); done
    hba=$LIO_CFS/core/rd_mcp_$n
    dev=$hba/rd$i
    mkdir -p "$dev" || return 1
    LIO_HBAS+=("$hba")
    lio_w "rd_pages=$((mib * 256))" "$dev/control" || return 1
    lio_w 1 "$dev/enable" || return 1
    mkdir "$LIO_TPG/lun/lun_$i" || return 1
    ln -s "$dev" "$LIO_TPG/lun/lun_$i/rd$i" || return 1
    i=$((i + 1))
  done
  LIO_LUNS=$i
}

lio_portal() {
  local np=$LIO_TPG/np/$1
  mkdir "$np" || return 1
  LIO_NPS+=("$np")
  if [ "${2:-}" = iser ]; then
    lio_w 1 "$np/iser" || return 1
  fi
}

lio_demo_mode() {
  lio_w 1 "$LIO_TPG/attrib/generate_node_acls" || return 1
  lio_w 1 "$LIO_TPG/attrib/cache_dynamic_acls" || return 1
  lio_w 0 "$LIO_TPG/attrib/demo_mode_write_protect" || return 1
  lio_w 0 "$LIO_TPG/attrib/authentication" || return 1
}

lio_acl() {
  local acl=$LIO_TPG/acls/$1 i
  mkdir "$acl" || return 1
  LIO_ACLS+=("$acl")
  for ((i = 0; i < LIO_LUNS; i++)); do
    mkdir "$acl/lun_$i" || return 1
    ln -s "$LIO_TPG/lun/lun_$i" "$acl/lun_$i/map" || return 1
  done
  lio_w 0 "$LIO_TPG/attrib/generate_node_acls" || return 1
  lio_w 0 "$LIO_TPG/attrib/authentication" || return 1
}

lio_chap() {
  local auth
  if [ ${#LIO_ACLS[@]} -gt 0 ]; then
    auth=${LIO_ACLS[-1]}/auth
  else
    auth=$LIO_TPG/auth
  fi
  lio_w "$1" "$auth/userid" || return 1
  lio_w "$2" "$auth/password" || return 1
  if [ -n "${3:-}" ]; then
    lio_w "$3" "$auth/userid_mutual" || return 1
    lio_w "$4" "$auth/password_mutual" || return 1
  fi
  lio_w 1 "$LIO_TPG/attrib/authentication" || return 1
}

lio_enable() { lio_w 1 "$LIO_TPG/enable"; }

lio_teardown() {
  local acl np hba l i rc=0
  [ -n "$LIO_IQN" ] || return 0
  if [ -e "$LIO_TPG/enable" ]; then echo 0 >"$LIO_TPG/enable" 2>/dev/null || true; fi
  for ((i = ${#LIO_ACLS[@]} - 1; i >= 0; i--)); do
    acl=${LIO_ACLS[i]}
    for l in "$acl"/lun_*; do
      [ -d "$l" ] || continue
      rm -f "$l/map" && rmdir "$l" || rc=1
    done
    rmdir "$acl" || rc=1
  done
  LIO_ACLS=()
  for ((i = ${#LIO_NPS[@]} - 1; i >= 0; i--)); do
    np=${LIO_NPS[i]}
    # The iSER portal first, then the directory (its TCP portal).
    if [ -e "$np/iser" ] && [ "$(cat "$np/iser" 2>/dev/null)" = 1 ]; then echo 0 >"$np/iser" 2>/dev/null || true; fi
    rmdir "$np" || rc=1
  done
  LIO_NPS=()
  for ((i = LIO_LUNS - 1; i >= 0; i--)); do
    l=$LIO_TPG/lun/lun_$i
    [ -d "$l" ] || continue
    rm -f "$l/rd$i" && rmdir "$l" || rc=1
  done
  LIO_LUNS=0
  if [ -d "$LIO_TPG" ]; then rmdir "$LIO_TPG" || rc=1; fi
  if [ -d "$LIO_CFS/iscsi/$LIO_IQN" ]; then rmdir "$LIO_CFS/iscsi/$LIO_IQN" || rc=1; fi
  for ((i = ${#LIO_HBAS[@]} - 1; i >= 0; i--)); do
    hba=${LIO_HBAS[i]}
    for l in "$hba"/rd*; do [ -d "$l" ] && { rmdir "$l" || rc=1; }; done
    rmdir "$hba" || rc=1
  done
  LIO_HBAS=()
  LIO_IQN=
  [ $rc = 0 ] || echo "lio_teardown: some configfs entries could not be removed" >&2
  return $rc
}
