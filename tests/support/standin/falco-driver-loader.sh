#!/bin/bash
# Stand-in for the bash falco-driver-loader of Falco <= 0.36 (scripts/falco-driver-loader).
# As the real one: the driver is "module" unless FALCO_BPF_PROBE is set (even empty);
# args module|bpf, --download, --compile; DRIVERS_REPO is one URL up to 0.32 and a list
# split on commas and spaces from 0.33; the file is named
# falco_<ID>_<uname -r>_<uname -v's #N>.<ko|o> (Debian from 0.35: the release rebuilt from
# the package version in `uname -v`, the -cloud/-rt flavour and arch kept); a file already
# in ~/.falco/<driver version>/<arch>/ is used without any check; a module is inserted with
# insmod (after removing one still loaded), a probe is linked at ~/.falco/falco-bpf.o.
# It verifies nothing it downloads. It cannot compile (no headers, no toolchain here).
set -u
. /usr/local/lib/falco-standin/lib.sh

DRIVER=module
[ -n "${FALCO_BPF_PROBE+set}" ] && DRIVER=bpf
ENABLE_DOWNLOAD='' ENABLE_COMPILE='' has_opts=''
while [ $# -gt 0 ]; do
  case "$1" in
    module|bpf) DRIVER=$1 ;;
    --download) ENABLE_DOWNLOAD=1 has_opts=1 ;;
    --compile) ENABLE_COMPILE=1 has_opts=1 ;;
    *) >&2 echo "Unknown option: $1"; exit 1 ;;
  esac
  shift
done
[ -z "$has_opts" ] && ENABLE_DOWNLOAD=1 ENABLE_COMPILE=1

ARCH="$(uname -m)"
KERNEL_RELEASE="$(kernel_uname -r)"
DRIVER_KERNEL_VERSION="$(kernel_uname -v)"
KERNEL_VERSION="$(echo "$DRIVER_KERNEL_VERSION" | sed 's/#\([[:digit:]]\+\).*/\1/')"
TARGET_ID="$(os_release_id)"
if [ "$TARGET_ID" = debian ] && falco_ge 0.35.0; then
  extra=''
  [[ $KERNEL_RELEASE =~ -?(rt-|cloud-|)(amd64|arm64) ]] && extra="-${BASH_REMATCH[1]}${BASH_REMATCH[2]}"
  [[ $DRIVER_KERNEL_VERSION =~ ([0-9]+\.[0-9]+\.[0-9]+\-[0-9]+) ]] && KERNEL_RELEASE="${BASH_REMATCH[1]}${extra}"
fi
if falco_ge 0.33.0; then IFS=", " read -r -a urls <<< "${DRIVERS_REPO:-}"; else urls=("${DRIVERS_REPO:-}"); fi
ext=ko; [ "$DRIVER" = bpf ] && ext=o
FILE="falco_${TARGET_ID}_${KERNEL_RELEASE}_${KERNEL_VERSION}.${ext}"
LOCAL="$HOME/.falco/$DRIVER_VERSION/$ARCH/$FILE"
echo "* Running falco-driver-loader (stand-in) for: falco version=$FALCO_VERSION, driver version=$DRIVER_VERSION, driver=$DRIVER"

download() {
  local url
  for repo in "${urls[@]}"; do
    [ -n "$repo" ] || continue
    url="$(echo "$repo/$DRIVER_VERSION/$ARCH/$FILE" | sed s/+/%2B/g)"
    echo "* Trying to download a prebuilt driver from $url"
    if curl -fsSL --create-dirs --max-time 30 -o "$LOCAL" "$url"; then return 0; fi
    echo "Unable to find a prebuilt driver at $url"
  done
  return 1
}

if [ "$DRIVER" = module ]; then
  if lsmod | cut -d' ' -f1 | grep -qx falco; then
    echo "* Unloading falco module, if present"
    rmmod falco || echo "* falco module is still loaded"
  fi
  if [ -f "$LOCAL" ]; then
    echo "* Found a prebuilt falco module at $LOCAL, loading it"
    insmod "$LOCAL" && echo "* Success: falco module found and inserted"
    exit $?
  fi
  if [ -n "$ENABLE_DOWNLOAD" ] && download; then
    if insmod "$LOCAL"; then echo "* Success: falco module found and inserted"; exit 0; fi
    >&2 echo "Unable to insmod the prebuilt falco module"
  fi
  [ -n "$ENABLE_COMPILE" ] && echo "* Compiling is impossible here: no kernel headers"
  echo "* Trying to load a system falco module, if present"
  modprobe falco 2>/dev/null && exit 0
  >&2 echo "Consider compiling your own falco driver and loading it or getting in touch with the Falco community"
  exit 1
fi

if [ ! -f "$LOCAL" ] && [ -n "$ENABLE_DOWNLOAD" ]; then download || rm -f "$LOCAL"; fi
if [ -f "$LOCAL" ]; then
  echo "* eBPF probe located in $LOCAL"
  ln -sf "$LOCAL" "$HOME/.falco/falco-bpf.o" && echo "* Success: eBPF probe symlinked to $HOME/.falco/falco-bpf.o"
  exit $?
fi
>&2 echo "Unable to load the falco eBPF probe"
exit 1
