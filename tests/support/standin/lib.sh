# Shared by the stand-in scripts: the image's facts and the stand-in kernel's wire.
# Sourced, never run. /etc/falco-standin/facts is written when the image is made:
# FALCO_VERSION, DRIVER_VERSION, NEED_API, NEED_SCHEMA (what this Falco's libscap needs),
# FALCOCTL_VERSION (0.37+) and KERNEL_HOST/KERNEL_PORT (the stand-in kernel service).
# shellcheck disable=SC1091  # written at image build time
. /etc/falco-standin/facts

# version_ge A B: A >= B, comparing dotted numbers (a "+driver" or "-x" suffix is ignored).
version_ge() {
  local a b i
  IFS=. read -r -a a <<< "${1%%[-+]*}"
  IFS=. read -r -a b <<< "${2%%[-+]*}"
  for i in 0 1 2; do
    if (( ${a[i]:-0} != ${b[i]:-0} )); then (( ${a[i]:-0} > ${b[i]:-0} )); return; fi
  done
  return 0
}
falco_ge() { version_ge "$FALCO_VERSION" "$1"; }
falcoctl_ge() { version_ge "${FALCOCTL_VERSION:-0}" "$1"; }

# kernel_call LINE: one request to the stand-in kernel; its answer on stdout.
kernel_call() {
  local reply
  exec 9<>"/dev/tcp/$KERNEL_HOST/$KERNEL_PORT" || { echo "ERR stand-in kernel unreachable"; return; }
  printf '%s\n' "$1" >&9
  while IFS='' read -r reply <&9; do
    echo "$reply"
    [ "$1" = LSMOD ] && [ "$reply" != . ] && continue
    break
  done
  exec 9<&-
}

# kernel_uname -r|-v: what uname says in a container on the stand-in kernel (its UNAME),
# this container's own uname if it does not answer.
kernel_uname() {
  local reply
  reply="$(kernel_call UNAME)"
  case "$reply" in
    ERR*|'') uname "$1" ;;
    *) if [ "$1" = -r ]; then echo "${reply%% *}"; else echo "${reply#* }"; fi ;;
  esac
}

# kernel_insmod FILE: the kernel's answer ("OK" or "ERR <why>").
kernel_insmod() {
  local reply
  exec 9<>"/dev/tcp/$KERNEL_HOST/$KERNEL_PORT" || { echo "ERR stand-in kernel unreachable"; return; }
  { printf 'INSMOD %s\n' "$(stat -L -c %s "$1")"; cat "$1"; } >&9
  IFS='' read -r reply <&9
  exec 9<&-
  echo "$reply"
}

# driver_accepted API SCHEMA: libscap's check of a driver's identity against what it needs
# (same major, minor.patch not lower), for both the API and the schema version.
driver_accepted() {
  local have need field
  for field in api schema; do
    if [ "$field" = api ]; then have=$1 need=$NEED_API; else have=$2 need=$NEED_SCHEMA; fi
    [[ $have =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "no $field version"; return 1; }
    if [ "${have%%.*}" != "${need%%.*}" ] || ! version_ge "$have" "$need"; then
      echo "driver $field version $have is not compatible with the required $need"
      return 1
    fi
  done
}

# modinfo_field FILE KEY: a .modinfo-style "key=value" string embedded in a driver file.
modinfo_field() {
  tr '\0' '\n' < "$1" 2>/dev/null | sed -n "s/^$2=//p" | head -n1
}

# os_release_id: ID from the host's os-release, lower case, as both loaders read it.
os_release_id() {
  local id
  id="$(sed -n 's/^ID=//p' "${HOST_ROOT:-/host}/etc/os-release" 2>/dev/null | tr -d '"' | head -n1)"
  echo "${id,,}"
}
