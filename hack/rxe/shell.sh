#!/usr/bin/env bash
# make rxe-shell: an interactive root shell in the Soft-RoCE guest, with
# rxe0 up, the repository as working directory and RXE_* exported, on this
# terminal. exit (or Ctrl-D) powers the guest off; Ctrl-A x kills QEMU.
# Same environment knobs as run.sh (e.g. RXE_UP_ARGS="-extra ib_iser,ib_isert").
# Guest watchdog: RXE_TIMEOUT seconds (default 3600).
exec "$(dirname "$0")/run.sh" --shell --timeout "${RXE_TIMEOUT:-3600}" "$@"
