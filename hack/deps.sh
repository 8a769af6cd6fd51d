#!/usr/bin/env bash
# Installs what the build, tests and benchmarks need on a Debian machine.
# Idempotent: when everything is present it only checks and returns (< 1 s).
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin

# Debian packages: name of the package -> a file it installs (quick presence check).
declare -A pkgs=(
  [libiscsi-bin]=/usr/bin/iscsi-test-cu
  [tgt]=/usr/sbin/tgtd
  [libibverbs-dev]=/usr/include/infiniband/verbs.h
  [librdmacm-dev]=/usr/include/rdma/rdma_cma.h
  [ibverbs-providers]=/usr/share/doc/ibverbs-providers
  [ibverbs-utils]=/usr/bin/ibv_devinfo
  [rdma-core]=/usr/share/doc/rdma-core
  [rdmacm-utils]=/usr/bin/rping
  [perftest]=/usr/bin/ib_send_lat
  [qemu-system-x86]=/usr/bin/qemu-system-x86_64
  [qemu-utils]=/usr/bin/qemu-img
  [qemu-block-extra]=/usr/share/doc/qemu-block-extra
  [shellcheck]=/usr/bin/shellcheck
  [busybox-static]=/bin/busybox
  [kmod]=/usr/bin/kmod
  [iproute2]=/usr/sbin/ip
  [open-iscsi]=/usr/sbin/iscsiadm
  [sg3-utils]=/usr/bin/sg_reset
  [fio]=/usr/bin/fio
  [jq]=/usr/bin/jq
  [e2fsprogs]=/usr/sbin/mkfs.ext4
  [cpio]=/usr/bin/cpio
  [gcc]=/usr/bin/gcc
  [pkg-config]=/usr/bin/pkg-config
)
missing=()
for p in "${!pkgs[@]}"; do
  [ -e "${pkgs[$p]}" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # tgt's package starts tgtd as a service; tests start their own instances.
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now tgt >/dev/null 2>&1 || true; fi
fi

if ! command -v staticcheck >/dev/null 2>&1; then
  echo "deps: installing staticcheck" >&2
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
