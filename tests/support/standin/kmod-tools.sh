#!/bin/bash
# insmod, rmmod, lsmod and modprobe of the stand-in images: they ask the stand-in kernel,
# which keeps the module state the real kernel would (see tests/support/standin_kernel.py).
set -u
. /usr/local/lib/falco-standin/lib.sh
case "$(basename "$0")" in
  insmod)
    [ -r "${1:-}" ] || { echo "insmod: ERROR: could not load module ${1:-}: No such file or directory" >&2; exit 1; }
    reply="$(kernel_insmod "$1")"
    [ "$reply" = OK ] && exit 0
    echo "insmod: ERROR: could not insert module $1: ${reply#ERR }" >&2; exit 1 ;;
  rmmod)
    reply="$(kernel_call "RMMOD ${1:-}")"
    [ "$reply" = OK ] && exit 0
    echo "rmmod: ERROR: ${reply#ERR }" >&2; exit 1 ;;
  lsmod)
    echo "Module                  Size  Used by"
    kernel_call LSMOD | while read -r name size used _; do
      [ "$name" = . ] || printf '%-24s%s  %s\n' "$name" "$size" "$used"
    done ;;
  modprobe)
    # No module is installed under /lib/modules here: modprobe finds nothing.
    echo "modprobe: FATAL: Module ${*: -1} not found in directory /lib/modules/$(uname -r)" >&2
    exit 1 ;;
esac
