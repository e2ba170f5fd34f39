#!/bin/bash
# A stand-in for Falco's image, which cannot be pulled on the test machines. It does what
# the image's driver loader does before Falco starts: reads its environment, names the
# driver from the host's kernel as the loader does (for Debian hosts), downloads it from
# the driver repository with the URL the loader builds (`+` sent as %2B), checks it
# against its .sha256, and then stays up as Falco would. Loading a kernel module is the
# one thing it cannot do here.
#   STANDIN_CRASH=1   exit with an error after loading (the rollback path)
set -u
say() { echo "falco-standin: $*"; }
# Like Falco, stop promptly on SIGTERM (as PID 1, a bare `sleep` would ignore it).
stay_up() { trap 'say "SIGTERM: stopping"; exit 0' TERM; sleep infinity & wait; }
if [ -n "${SKIP_DRIVER_LOADER:-}" ]; then
  say "SKIP_DRIVER_LOADER is set: no driver download; running $*"
  stay_up
fi
if [ -n "${FALCOCTL_DRIVER_TYPE:-}" ]; then
  kind="$FALCOCTL_DRIVER_TYPE"; repo="${FALCOCTL_DRIVER_REPOS:-}"
else
  repo="${DRIVERS_REPO:-}"; kind=kmod; [ -n "${FALCO_BPF_PROBE+set}" ] && kind=ebpf
fi
if [ "$kind" = modern_ebpf ]; then say "modern_ebpf: the probe is built in"; stay_up; fi
[ -n "$repo" ] || { say "no driver repository in the environment"; exit 2; }
. "${HOST_ROOT:-/host}/etc/os-release"
release="$(uname -r)"
version="$(uname -v | sed -E 's/#([[:digit:]]+).*/\1/')"
suffix=ko; [ "$kind" = ebpf ] && suffix=o
file="falco_${ID}_${release}_${version}.${suffix}"
url="${repo}/${DRIVER_VERSION//+/%2B}/$(uname -m)/${file}"
say "downloading $url"
curl -fsS --max-time 30 -o "/tmp/$file" "$url" || { say "download failed"; exit 1; }
curl -fsS --max-time 30 -o "/tmp/$file.sha256" "$url.sha256" || { say "no checksum"; exit 1; }
(cd /tmp && sha256sum -c "$file.sha256") || { say "checksum mismatch"; exit 1; }
say "driver $file verified ($(stat -c %s "/tmp/$file") bytes); Falco running"
if [ -n "${STANDIN_CRASH:-}" ]; then say "crashing as asked"; exit 3; fi
stay_up
