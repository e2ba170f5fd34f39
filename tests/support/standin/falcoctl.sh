#!/bin/bash
# Stand-in for falcoctl's `driver` commands (falcosecurity/falcoctl cmd/driver), in the
# version this image ships (FALCOCTL_VERSION: 0.7 for Falco 0.37, 0.8 for 0.38, 0.10 for
# 0.39, 0.11+ for 0.40+):
# - the driver type comes from --type flags, else FALCOCTL_DRIVER_TYPE, else the type
#   `driver config` stored in falcoctl's own config (flag > env > config); from 0.8 the
#   types are a list and the first one the kernel supports is taken (modern_ebpf where the
#   kernel has BTF: the real one loads a test program, which this one cannot);
# - repos likewise: --repo > FALCOCTL_DRIVER_REPOS > config > download.falco.org; the
#   driver version: FALCOCTL_DRIVER_VERSION > config > the newest /usr/src/falco-*;
# - `driver config` writes engine.kind: into /etc/falco/falco.yaml (replacing its first
#   `kind: ` if that is a driver kind) up to 0.8, into
#   /etc/falco/config.d/engine-kind-falcoctl.yaml from 0.10; then stores the type;
# - `driver install`: nothing for modern_ebpf; else removes the probe link (ebpf) or
#   unloads a loaded module (kmod, a few tries), names the file with falcoctl's rules
#   (ID from os-release; Debian: the release rebuilt from the package version in `uname
#   -v` with the flavour kept, kernel version 1; others: `uname -v`'s #N), reuses
#   ~/.falco/<version>/<arch>/<file> unchecked if it exists, else GETs
#   <repo>/<version, + as %2B>/<arch>/<file> from each repo until one answers 200, then
#   insmods it (kmod) or links it at ~/.falco/falco-bpf.o (ebpf). A failed download with
#   compile disabled exits 1; a failed insmod is only a warning (exit 0).
# It cannot compile (no headers or toolchain here): compiling always fails.
set -u
. /usr/local/lib/falco-standin/lib.sh
CONFIG=/etc/falcoctl/falcoctl.yaml
log() { echo "$(date -u +%F\ %T) $1 $2"; }

[ "${1:-}" = driver ] || { echo "falcoctl stand-in: only 'driver' is implemented" >&2; exit 1; }
command="${2:-}"; shift 2
types=() repo_flag='' download=true compile=true kr='' kv=''
while [ $# -gt 0 ]; do
  case "$1" in
    --type) types+=("$2"); shift ;;
    --type=*) types+=("${1#--type=}") ;;
    --repo) repo_flag=$2; shift ;;
    --repo=*) repo_flag=${1#--repo=} ;;
    --download=*) download=${1#--download=} ;;
    --compile=*) compile=${1#--compile=} ;;
    --kernelrelease=*) kr=${1#--kernelrelease=} ;;
    --kernelversion=*) kv=${1#--kernelversion=} ;;
    --http-insecure=*|--http-headers=*|--http-timeout=*) ;;
    *) echo "Error: unknown flag: $1" >&2; exit 1 ;;
  esac
  shift
done
stored() { sed -n "s/^  $1: //p" "$CONFIG" 2>/dev/null | head -n1; }

# -- the type (PersistentPreRunE) --------------------------------------------------------
if [ ${#types[@]} -gt 0 ]; then source_of_type='flag'
elif [ -n "${FALCOCTL_DRIVER_TYPE:-}" ]; then IFS=, read -r -a types <<< "$FALCOCTL_DRIVER_TYPE"; source_of_type='env'
elif [ -n "$(stored type)" ]; then IFS=, read -r -a types <<< "$(stored type)"; source_of_type='config'
else types=(kmod); source_of_type='default'
fi
for t in "${types[@]}"; do
  case "$t" in kmod|ebpf|modern_ebpf) ;; *) echo "Error: invalid argument \"$t\" for \"--type\" flag" >&2; exit 1 ;; esac
done
supported() {
  case "$1" in modern_ebpf) [ -e /sys/kernel/btf/vmlinux ] ;; *) return 0 ;; esac
}
if falcoctl_ge 0.8.0; then
  type=''
  for t in "${types[@]}"; do supported "$t" && { type=$t; break; }; done
  [ -n "$type" ] || { echo "Error: no supported driver found" >&2; exit 1; }
else
  type="${types[-1]}"
fi
repos="${repo_flag:-${FALCOCTL_DRIVER_REPOS:-$(stored repos)}}"
repos="${repos:-https://download.falco.org/driver}"
version="${FALCOCTL_DRIVER_VERSION:-$(stored version)}"
if [ -z "$version" ]; then
  version="$(find /usr/src -maxdepth 1 -name 'falco-*' -type d -printf '%f\n' | sed 's/^falco-//' | sort -V | tail -n1)"
fi
[ -n "$version" ] || { echo "Error: version is mandatory and cannot be empty" >&2; exit 1; }

case "$command" in
config)
  log INFO "Running falcoctl driver config (type $type from $source_of_type, version $version, repos $repos)"
  if falcoctl_ge 0.10.0; then
    mkdir -p /etc/falco/config.d
    printf 'engine:\n  kind: %s\n' "$type" > /etc/falco/config.d/engine-kind-falcoctl.yaml
    log INFO "Committing driver config to /etc/falco/config.d/engine-kind-falcoctl.yaml"
  else
    current="$(sed -n 's/^  kind: //p' /etc/falco/falco.yaml | head -n1)"
    case "$current" in
      kmod|ebpf|modern_ebpf)
        sed -i "0,/^  kind: $current\$/s//  kind: $type/" /etc/falco/falco.yaml
        log INFO "Committing driver config to /etc/falco/falco.yaml" ;;
      *) log WARN "Avoid updating Falco configuration: engine.kind is not driver driven: $current" ;;
    esac
  fi
  mkdir -p "$(dirname "$CONFIG")"
  printf 'driver:\n  type: %s\n  repos: %s\n  version: %s\n  name: falco\n' \
    "$type" "$repos" "$version" > "$CONFIG"
  exit 0 ;;
install) ;;
*) echo "falcoctl stand-in: 'driver $command' is not implemented" >&2; exit 1 ;;
esac

# -- driver install ----------------------------------------------------------------------
release="${kr:-$(kernel_uname -r)}"
kversion="${kv:-$(kernel_uname -v)}"
arch="$(uname -m)"
log INFO "Running falcoctl driver install (type $type from $source_of_type, driver version $version, kernel release $release)"
if [ "$type" = modern_ebpf ]; then log INFO "No artifacts needed for the selected driver."; exit 0; fi
if [ "$download" != true ] && [ "$compile" != true ]; then
  log INFO "Nothing to do: download and compile disabled."; exit 0
fi
target="$(os_release_id)"
[ -n "$target" ] || { log ERROR "detected an unsupported target system"; exit 1; }
fixed_release=$release fixed_version=''
if [ "$target" = debian ]; then
  extra=''
  [[ $release =~ -?(rt-|cloud-|)(amd64|arm64) ]] && extra="-${BASH_REMATCH[1]}${BASH_REMATCH[2]}"
  if [[ $kversion =~ [0-9]+\.[0-9]+\.[0-9]+-[0-9]+ ]]; then
    fixed_release="${BASH_REMATCH[0]}${extra}" fixed_version=1
  fi
fi
if [ -z "$fixed_version" ]; then
  fixed_version="$kversion"
  [[ $kversion =~ ^#?([0-9]+) ]] && fixed_version="${BASH_REMATCH[1]}"
fi
ext=ko; [ "$type" = ebpf ] && ext=o
file="falco_${target}_${fixed_release}_${fixed_version}.${ext}"
dest="$HOME/.falco/$version/$arch/$file"
log INFO "Found distro target $target"

if [ "$type" = ebpf ]; then
  log INFO "Removing eBPF probe symlink $HOME/.falco/falco-bpf.o"; rm -f "$HOME/.falco/falco-bpf.o"
elif lsmod | cut -d' ' -f1 | grep -qx falco; then
  for _ in 1 2 3; do  # falcoctl waits 10 x 5 s; the stand-in keeps it short
    log INFO "Kernel module is still loaded; trying to unload it with 'rmmod'."
    rmmod falco && { log INFO "OK! Unloading module succeeded."; break; }
    sleep 1
  done
fi

result=1
if [ "$download" = true ]; then
  if [ -f "$dest" ]; then
    log INFO "Skipping download, driver already present. path $dest"; result=0
  else
    IFS=, read -r -a list <<< "$repos"
    for repo in "${list[@]}"; do
      url="$repo/${version//+/%2B}/$arch/$file"
      log INFO "Trying to download a driver. url $url"
      code="$(curl -sS --max-time 30 -o "/tmp/falcoctl-download" -w '%{http_code}' "$url")" || code=000
      if [ "$code" = 200 ]; then
        mkdir -p "$(dirname "$dest")" && mv /tmp/falcoctl-download "$dest"
        log INFO "Driver downloaded. path $dest"; result=0; break
      fi
      rm -f /tmp/falcoctl-download
      log WARN "Non-200 response from url. code $code"
    done
  fi
fi
if [ $result -ne 0 ] && [ "$compile" = true ]; then
  log WARN "unable to find a prebuilt driver"
  log INFO "Trying to build the driver: impossible here (no kernel headers)"
fi
if [ $result -ne 0 ]; then
  [ "$type" = kmod ] && { modprobe falco 2>/dev/null || log WARN "Consider compiling your own driver and loading it or getting in touch with the Falco community."; }
  log ERROR "failed: unable to find a prebuilt driver"; exit 1
fi
if [ "$type" = kmod ]; then
  if out="$(insmod "$dest" 2>&1)"; then log INFO "Success: module found and loaded. driver $dest"
  else log WARN "Unable to insmod module. driver $dest err $out"
  fi
else
  ln -s "$dest" "$HOME/.falco/falco-bpf.o" && log INFO "eBPF probe symlinked $dest -> $HOME/.falco/falco-bpf.o"
fi
exit 0
