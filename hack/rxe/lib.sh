# shellcheck shell=bash
# Shared functions of the Soft-RoCE guest harness (sourced, never run).
#
# The harness boots Debian's stock kernel in QEMU with the host's / shared
# read-only over virtio-9p (a tmpfs overlay on top makes it writable in the
# guest) and a second, writable 9p share for the job description, results and
# the exit code. See docs/testing.md for the whole picture.
#
#   rxe_kernel      resolve, download (apt-get download) and unpack the kernel
#                   package into the cache; sets RXE_KVER, RXE_KROOT, RXE_VMLINUZ
#   rxe_initramfs   build (or reuse) the busybox initramfs; sets RXE_INITRD
#   rxe_boot        boot QEMU on a prepared job directory and wait for it
#   rxe_job_*       write and read the job directory shared with the guest
#
# Everything downloaded or built is cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/goiser-rxe/, keyed by kernel version, so a
# second run starts in seconds. Set RXE_CACHE to use another directory.

RXE_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RXE_REPO=$(cd "$RXE_HERE/../.." && pwd)
RXE_CACHE=${RXE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/goiser-rxe}
RXE_QEMU=${RXE_QEMU:-qemu-system-x86_64}
RXE_MEM=${RXE_MEM:-2048}
RXE_CPUS=${RXE_CPUS:-2}
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin:/usr/sbin:/sbin

# Modules the initramfs loads (with their dependencies, from modules.dep)
# before it can mount the host's root: virtio PCI transport, 9p, overlayfs.
RXE_INITRD_MODULES="virtio_pci 9pnet_virtio 9p overlay"

rxe_log() { echo "rxe: $*" >&2; }
rxe_die() { echo "rxe: FATAL: $*" >&2; exit 1; }

# rxe_now prints a monotonic-enough timestamp in seconds with milliseconds.
rxe_now() { date +%s.%N | cut -c1-14; }
# rxe_elapsed START prints the seconds since START with one decimal.
rxe_elapsed() { awk -v a="$1" -v b="$(rxe_now)" 'BEGIN{printf "%.1f", b-a}'; }

# rxe_check_host fails loudly when something the guest needs is missing on
# the host. The harness never skips: a missing QEMU is a failure.
rxe_check_host() {
  local missing=() t
  for t in "$RXE_QEMU" busybox cpio gzip depmod apt-get apt-cache dpkg-deb timeout flock go; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  [ -e /bin/busybox ] || missing+=("/bin/busybox (busybox-static)")
  if [ ${#missing[@]} -gt 0 ]; then
    rxe_die "cannot run the Soft-RoCE guest, missing on the host: ${missing[*]} (run: make deps)"
  fi
  if ! /bin/busybox --list 2>/dev/null | grep -qx switch_root; then
    rxe_die "/bin/busybox has no switch_root applet (install busybox-static)"
  fi
}

# rxe_resolve_kernel_pkg prints the name of the package linux-image-amd64
# depends on today (it changes with security updates).
rxe_resolve_kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# rxe_kernel makes sure the guest kernel is unpacked in the cache.
# Sets RXE_KVER (e.g. 6.1.0-56-amd64), RXE_KROOT (the unpacked package root),
# RXE_VMLINUZ and RXE_MODDIR (the modules directory, with modules.dep).
rxe_kernel() {
  local pkg ver dir tmp deb
  if [ -n "${RXE_KERNEL_PKG:-}" ]; then
    pkg=$RXE_KERNEL_PKG
  else
    pkg=$(rxe_resolve_kernel_pkg)
    if [ -z "$pkg" ]; then
      rxe_log "linux-image-amd64 does not resolve; running apt-get update"
      apt-get update -qq >&2 || rxe_die "apt-get update failed"
      pkg=$(rxe_resolve_kernel_pkg)
    fi
  fi
  [ -n "$pkg" ] || rxe_die "cannot resolve the kernel package that linux-image-amd64 depends on"
  RXE_KVER=${pkg#linux-image-}
  ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }')
  dir=$RXE_CACHE/kernel/$RXE_KVER
  mkdir -p "$RXE_CACHE/kernel"
  if [ ! -e "$dir/.complete" ] || { [ -n "$ver" ] && [ "$(cat "$dir/.complete")" != "$ver" ]; }; then
    rxe_log "fetching $pkg $ver into $dir"
    rm -rf "$dir" "$dir.tmp"
    tmp=$dir.tmp
    mkdir -p "$tmp/deb"
    if ! (cd "$tmp/deb" && apt-get download -q "$pkg" >&2 2>/dev/null); then
      rxe_log "apt-get download $pkg failed; running apt-get update and retrying"
      apt-get update -qq >&2 || rxe_die "apt-get update failed"
      (cd "$tmp/deb" && apt-get download -q "$pkg" >&2) || rxe_die "apt-get download $pkg failed"
    fi
    deb=$(find "$tmp/deb" -name '*.deb' | head -n1)
    [ -n "$deb" ] || rxe_die "apt-get download $pkg produced no .deb"
    [ -n "$ver" ] || ver=$(dpkg-deb -f "$deb" Version)
    dpkg-deb -x "$deb" "$tmp/root" || rxe_die "dpkg-deb -x $deb failed"
    rm -rf "$tmp/deb"
    # The package ships no modules.dep: compute it for the unpacked tree.
    depmod -b "$tmp/root" "$RXE_KVER" || rxe_die "depmod -b $tmp/root $RXE_KVER failed"
    echo "$ver" >"$tmp/.complete"
    mv "$tmp" "$dir"
    # Keep only the newest kernel: each unpacked tree is ~400 MB.
    local old
    for old in "$RXE_CACHE"/kernel/*/; do
      [ "${old%/}" = "$dir" ] || rm -rf "${old%/}"
    done
  fi
  RXE_KDIR=$dir
  RXE_KROOT=$dir/root
  RXE_VMLINUZ=$RXE_KROOT/boot/vmlinuz-$RXE_KVER
  RXE_MODDIR=$RXE_KROOT/lib/modules/$RXE_KVER
  [ -r "$RXE_VMLINUZ" ] || rxe_die "no kernel image at $RXE_VMLINUZ"
  [ -r "$RXE_MODDIR/modules.dep" ] || rxe_die "no modules.dep in $RXE_MODDIR"
}

# rxe_module_order MODDIR MODULE... prints the .ko paths (relative to MODDIR)
# to insmod, dependencies first, each once, computed from MODDIR/modules.dep.
# busybox insmod does not resolve dependencies, so the initramfs needs this.
rxe_module_order() {
  local moddir=$1
  shift
  awk -v want="$*" '
    function modname(p,   n, parts) {
      n = split(p, parts, "/"); p = parts[n]
      sub(/\.ko(\.[a-z]+)?$/, "", p); gsub(/-/, "_", p); return p
    }
    function visit(m,   i, n, d) {
      if (m in done) return
      if (!(m in path)) { print "rxe: module " m " not in modules.dep" > "/dev/stderr"; bad = 1; return }
      if (m in busy) return
      busy[m] = 1
      n = split(deps[m], d, " ")
      for (i = 1; i <= n; i++) visit(d[i])
      done[m] = 1
      print path[m]
    }
    {
      key = $1; sub(/:$/, "", key); m = modname(key); path[m] = key; deps[m] = ""
      for (i = 2; i <= NF; i++) deps[m] = deps[m] " " modname($i)
    }
    END {
      n = split(want, w, " ")
      for (i = 1; i <= n; i++) visit(w[i])
      exit bad
    }' "$moddir/modules.dep"
}

# rxe_initramfs builds the busybox initramfs for RXE_KVER (cached; rebuilt
# when its inputs change: the init script, busybox, the kernel, the module
# list). Sets RXE_INITRD.
rxe_initramfs() {
  local key stage out mods m
  # shellcheck disable=SC2086 # a list of module names
  mods=$(rxe_module_order "$RXE_MODDIR" $RXE_INITRD_MODULES) || rxe_die "cannot order initramfs modules"
  key=$( { cat "$RXE_HERE/initramfs-init.sh"; sha256sum /bin/busybox; echo "$RXE_KVER $(cat "$RXE_KDIR/.complete")"; echo "$mods"; } |
    sha256sum | cut -c1-16)
  out=$RXE_CACHE/initramfs/$RXE_KVER-$key.cpio.gz
  RXE_INITRD=$out
  [ -s "$out" ] && { touch "$out"; return 0; }
  rxe_log "building initramfs $out"
  mkdir -p "$RXE_CACHE/initramfs"
  stage=$(mktemp -d "$RXE_CACHE/initramfs/.stage.XXXXXX")
  mkdir -p "$stage"/{bin,dev,proc,sys,modules,share,lower,rw,newroot}
  cp /bin/busybox "$stage/bin/busybox"
  cp "$RXE_HERE/initramfs-init.sh" "$stage/init"
  chmod 0755 "$stage/init" "$stage/bin/busybox"
  : >"$stage/modules/order"
  for m in $mods; do
    cp "$RXE_MODDIR/$m" "$stage/modules/"
    basename "$m" >>"$stage/modules/order"
  done
  # /dev/console lets the kernel give init a console before devtmpfs is up;
  # without root, init reopens its stdio after mounting devtmpfs instead.
  mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
  (cd "$stage" && find . -print0 | sort -z | cpio --null -o -H newc --quiet | gzip -6 -n) >"$out.tmp" ||
    rxe_die "cpio of the initramfs failed"
  mv "$out.tmp" "$out"
  rm -rf "$stage"
  # Drop initramfs images of other keys that no run used for a day.
  find "$RXE_CACHE/initramfs" -maxdepth 1 -name '*.cpio.gz' ! -path "$out" -mtime +1 -delete
}

# rxe_accel prints QEMU's accelerator arguments: KVM when the CPU shows
# vmx/svm and /dev/kvm opens, TCG otherwise (a paravirtual /dev/kvm without
# vmx/svm cannot boot a stock kernel). RXE_ACCEL=tcg|kvm overrides.
rxe_accel() {
  local want=${RXE_ACCEL:-auto}
  if [ "$want" = auto ]; then
    want=tcg
    if grep -qE '^flags.*\b(vmx|svm)\b' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
      want=kvm
    fi
  fi
  case $want in
    kvm) echo "-accel kvm -cpu host" ;;
    tcg) echo "-accel tcg,thread=multi -cpu max,la57=off" ;;
    *) rxe_die "RXE_ACCEL must be auto, kvm or tcg, not $want" ;;
  esac
}

# rxe_job_new creates a fresh job directory and sets RXE_WORK (the console
# log), RXE_OUT (the writable share, mounted at the same path in the
# guest) and RXE_BIN (binaries built on the host for the guest; visible in
# the guest at the same path through the read-only root share).
rxe_job_new() {
  # Not under /tmp: the guest mounts a fresh tmpfs there. Work directories
  # older than a day are left-overs of killed runs.
  mkdir -p "$RXE_CACHE/work"
  find "$RXE_CACHE/work" -mindepth 1 -maxdepth 1 -type d -mtime +1 -exec rm -rf {} + 2>/dev/null
  RXE_WORK=$(mktemp -d "$RXE_CACHE/work/run.XXXXXX")
  RXE_OUT=$RXE_WORK/out
  RXE_BIN=$RXE_WORK/bin
  mkdir -p "$RXE_OUT" "$RXE_BIN"
  chmod 0777 "$RXE_OUT"
  export RXE_WORK RXE_OUT RXE_BIN RXE_REPO
}

# rxe_build_guest_tools builds the Go programs every guest runs into RXE_BIN.
rxe_build_guest_tools() {
  (cd "$RXE_REPO" && go build -o "$RXE_BIN/rxe-up" ./cmd/rxe-up) || rxe_die "go build ./cmd/rxe-up failed"
}

# rxe_job_write TIMEOUT INTERACTIVE CMD... writes the job description the
# guest reads: job.env (sourced by both init stages) and cmd.sh (the command).
rxe_job_write() {
  local timeout=$1 interactive=$2
  shift 2
  {
    printf 'RXE_KVER=%q\n' "$RXE_KVER"
    printf 'RXE_MODDIR=%q\n' "$RXE_MODDIR"
    printf 'RXE_REPO=%q\n' "$RXE_REPO"
    printf 'RXE_OUT=%q\n' "$RXE_OUT"
    printf 'RXE_BIN=%q\n' "$RXE_BIN"
    printf 'RXE_GUEST_TIMEOUT=%q\n' "$timeout"
    printf 'RXE_INTERACTIVE=%q\n' "$interactive"
    printf 'RXE_UP_ARGS=%q\n' "${RXE_UP_ARGS:-}"
    printf 'RXE_STAGE_TIMEOUT=%q\n' "${RXE_STAGE_TIMEOUT:-}"
    printf 'RXE_HOST_PATH=%q\n' "$PATH"
    printf 'RXE_TERM=%q\n' "${TERM:-linux}"
    printf 'RXE_ROWS=%q\n' "$(stty size 2>/dev/null </dev/tty | cut -d' ' -f1)"
    printf 'RXE_COLS=%q\n' "$(stty size 2>/dev/null </dev/tty | cut -d' ' -f2)"
  } >"$RXE_OUT/job.env"
  {
    echo '# written by hack/rxe/lib.sh: the command to run in the guest'
    printf '%q ' "$@"
    echo
  } >"$RXE_OUT/cmd.sh"
}

# rxe_boot HOST_TIMEOUT INTERACTIVE boots the guest on the job in RXE_OUT.
# The console goes to $RXE_WORK/console.log and, live, to stdout (or the
# terminal when INTERACTIVE=1). Returns QEMU's status (124: host timeout).
rxe_boot() {
  local host_timeout=$1 interactive=$2 accel status
  read -r -a accel <<<"$(rxe_accel)"
  # shellcheck disable=SC2054 # commas separate QEMU sub-options, not elements
  local args=(
    -nographic -no-reboot -nodefaults -no-user-config
    "${accel[@]}"
    -smp "$RXE_CPUS" -m "$RXE_MEM"
    -kernel "$RXE_VMLINUZ" -initrd "$RXE_INITRD"
    -append "console=ttyS0,115200 panic=-1 oops=panic loglevel=${RXE_LOGLEVEL:-3} mitigations=off tsc=reliable edd=off"
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
    -virtfs "local,path=$RXE_OUT,mount_tag=rxeout,security_model=none,multidevs=remap"
    -nic none
  )
  # qboot starts a -kernel much faster than SeaBIOS and prints nothing.
  [ -r /usr/share/qemu/qboot.rom ] && [ "${RXE_BIOS:-qboot}" = qboot ] && args+=(-bios /usr/share/qemu/qboot.rom)
  if [ "$interactive" = 1 ]; then
    # shellcheck disable=SC2054
    args+=(-chardev "stdio,id=con,mux=on,signal=off,logfile=$RXE_WORK/console.log"
      -serial chardev:con -mon chardev=con,mode=readline)
    # --foreground: QEMU must stay in the terminal's foreground process
    # group, or it stops (SIGTTOU) when it puts the terminal in raw mode.
    timeout --foreground -k 10 "$host_timeout" "$RXE_QEMU" "${args[@]}"
    status=$?
  else
    args+=(-chardev "stdio,id=con,signal=off,logfile=$RXE_WORK/console.log" -serial chardev:con -monitor none)
    # timeout runs QEMU in a process group of its own, which the terminal's
    # Ctrl-C does not reach: stop it ourselves if we are interrupted.
    timeout -k 10 "$host_timeout" "$RXE_QEMU" "${args[@]}" </dev/null &
    RXE_QEMU_PID=$!
    trap 'rxe_log "interrupted: stopping QEMU"; kill -TERM "$RXE_QEMU_PID" 2>/dev/null; wait "$RXE_QEMU_PID"; exit 130' INT TERM HUP
    wait "$RXE_QEMU_PID"
    status=$?
    trap - INT TERM HUP
  fi
  return $status
}

# rxe_job_status QEMU_STATUS prints the guest command's exit code from the
# writable share, or fails (status 1) with a diagnosis and the console tail
# when the guest left none: a missing exit file is a failure.
rxe_job_status() {
  local qemu_status=$1 rc
  if [ -s "$RXE_OUT/exit" ]; then
    rc=$(tr -dc '0-9' <"$RXE_OUT/exit")
    echo "${rc:-1}"
    return 0
  fi
  if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
    rxe_log "QEMU killed by the host-side timeout"
  elif [ -e "$RXE_OUT/init-failed" ]; then
    rxe_log "the initramfs failed: $(cat "$RXE_OUT/init-failed")"
  elif [ -e "$RXE_OUT/rxe-up-failed" ]; then
    rxe_log "rxe-up could not bring the Soft-RoCE device up (its error is in the console log)"
  elif [ -e "$RXE_OUT/watchdog" ]; then
    rxe_log "the guest watchdog fired: $(cat "$RXE_OUT/watchdog")"
  else
    rxe_log "the guest left no exit status (QEMU exit status $qemu_status)"
  fi
  rxe_log "last lines of the console log $RXE_WORK/console.log:"
  tail -n 40 "$RXE_WORK/console.log" 2>/dev/null | sed 's/^/  | /' >&2
  return 1
}

# rxe_prepare does everything a boot needs on the host: checks, kernel,
# initramfs, job directory, guest tools.
rxe_prepare() {
  local t0
  t0=$(rxe_now)
  rxe_check_host
  # One run at a time fills the cache; concurrent runs wait here.
  mkdir -p "$RXE_CACHE"
  exec {RXE_LOCKFD}>"$RXE_CACHE/.lock"
  flock -w 900 "$RXE_LOCKFD" || rxe_die "cannot lock $RXE_CACHE/.lock"
  rxe_kernel
  rxe_initramfs
  flock -u "$RXE_LOCKFD"
  exec {RXE_LOCKFD}>&-
  rxe_job_new
  rxe_build_guest_tools
  rxe_log "host ready in $(rxe_elapsed "$t0")s (kernel $RXE_KVER, accel: $(rxe_accel | cut -d' ' -f2), work dir $RXE_WORK)"
}
