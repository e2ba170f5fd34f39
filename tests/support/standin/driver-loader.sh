#!/bin/bash
# Stand-in for the entrypoint of falcosecurity/falco-driver-loader (0.40+), a container run
# to completion before Falco: args [auto|kmod|ebpf|modern_ebpf] (0.44: no ebpf)
# [--compile] [--download] [--http-insecure] [--kernel-release R] [--kernel-version V];
# neither --compile nor --download: both; no driver: auto (`--type modern_ebpf --type kmod`
# plus `--type ebpf` before 0.44); any other argument exits 1. It runs
# `falcoctl driver config` then `falcoctl driver install`, whose exit code is its own.
. /usr/local/lib/falco-standin/lib.sh
usage() { >&2 echo "Usage: falco-driver-loader [driver] [--compile] [--download] [--http-insecure]"; }
if falco_ge 0.44.0; then drivers="auto kmod modern_ebpf"; else drivers="auto kmod ebpf modern_ebpf"; fi
compile=false download=false insecure=false driver='' has_opts='' extra=()
while [ $# -gt 0 ]; do
  if [[ " $drivers " == *" $1 "* ]]; then
    [ -n "$driver" ] && { >&2 echo "Only one driver per invocation"; usage; exit 1; }
    driver=$1; shift; continue
  fi
  case "$1" in
    --compile) compile=true has_opts=1 ;;
    --download) download=true has_opts=1 ;;
    --http-insecure) insecure=true ;;
    --kernel-release) extra+=("--kernelrelease=$2"); shift ;;
    --kernel-version) extra+=("--kernelversion=$2"); shift ;;
    --*) >&2 echo "Unknown option: $1"; usage; exit 1 ;;
    *) >&2 echo "Unknown driver: $1"; usage; exit 1 ;;
  esac
  shift
done
[ -z "$has_opts" ] && compile=true download=true
if [ -n "$driver" ] && [ "$driver" != auto ]; then
  /usr/bin/falcoctl driver config --type "$driver"
elif falco_ge 0.44.0; then
  /usr/bin/falcoctl driver config --type modern_ebpf --type kmod
else
  /usr/bin/falcoctl driver config --type modern_ebpf --type kmod --type ebpf
fi
/usr/bin/falcoctl driver install --compile=$compile --download=$download \
  --http-insecure=$insecure "${extra[@]}"
