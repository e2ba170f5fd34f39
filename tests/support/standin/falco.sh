#!/bin/bash
# Stand-in for /usr/bin/falco. It picks its engine as the Falco of this image's version
# does, opens that driver (a kmod through the stand-in kernel, which refuses it unless it
# is loaded; a probe from its file, which must be built for the running kernel), refuses
# a driver whose API or schema version its libscap does not accept, and then stays up.
#   engine, <= 0.36: --modern-bpf (0.35+), else FALCO_BPF_PROBE set (empty: the default
#     probe path), else kmod;
#   engine, 0.37+: engine.kind from -o (last wins) > /etc/falco/config.d/*.yaml (0.38+,
#     in name order) > /etc/falco/falco.yaml; the probe from engine.ebpf.probe likewise.
#   web server: webserver.enabled/listen_port from falco.yaml (> config.d, 0.38+) > -o, as
#     the engine; started after the rules load and before the driver opens, as Falco
#     does; it answers GET /healthz with {"status": "ok"}, and Falco exits when it cannot
#     listen.
#   STANDIN_CRASH=1: exit with an error once running (a test's rollback knob).
#   STANDIN_RULES_SECONDS=N: loading the rules takes N seconds (a slow start's knob).
set -u
. /usr/local/lib/falco-standin/lib.sh
say() { echo "falco-standin: $*"; }
fail() { say "error: $*"; exit 1; }

overrides=() modern_flag=''
while [ $# -gt 0 ]; do
  case "$1" in
    -o) overrides+=("${2:-}"); shift ;;
    --option=*) overrides+=("${1#--option=}") ;;
    --modern-bpf)
      falco_ge 0.35.0 && ! falco_ge 0.38.0 || fail "unrecognised option '--modern-bpf'"
      modern_flag=1 ;;
    *) ;;
  esac
  shift
done

# yaml_get FILE SECTION KEY: SECTION.KEY of a Falco config file (two levels).
yaml_get() {
  awk -v section="$2" -v want="$3" '
    /^[^ #]/ { top = $1; sub(":.*", "", top) }
    top == section && /^  [a-z_]+:/ { key = $1; sub(":.*", "", key)
      if (key == want && $2 != "") { print $2; exit } }
  ' "$1" 2>/dev/null
}

# yaml_engine FILE KEY: engine.KEY (kind, or ebpf.probe) of a Falco config file.
yaml_engine() {
  awk -v want="$2" '
    /^[^ #]/ { top = $1; sub(":.*", "", top); sub_ = "" }
    top == "engine" && /^  [a-z_]+:/ { sub_ = $1; sub(":.*", "", sub_)
      if (want == sub_ && $2 != "") { print $2; exit } }
    top == "engine" && sub_ == "ebpf" && /^    probe:/ && want == "ebpf.probe" { print $2; exit }
  ' "$1" 2>/dev/null
}

if ! falco_ge 0.37.0; then
  if [ -n "$modern_flag" ]; then engine=modern_ebpf
  elif [ -n "${FALCO_BPF_PROBE+set}" ]; then engine=ebpf probe="${FALCO_BPF_PROBE:-$HOME/.falco/falco-bpf.o}"
  else engine=kmod
  fi
else
  engine="$(yaml_engine /etc/falco/falco.yaml kind)"
  probe="$(yaml_engine /etc/falco/falco.yaml ebpf.probe)"
  if falco_ge 0.38.0; then
    for file in /etc/falco/config.d/*.yaml; do
      [ -f "$file" ] || continue
      found="$(yaml_engine "$file" kind)"; [ -n "$found" ] && engine=$found
      found="$(yaml_engine "$file" ebpf.probe)"; [ -n "$found" ] && probe=$found
    done
  fi
  for item in "${overrides[@]}"; do
    case "$item" in
      engine.kind=*) engine="${item#engine.kind=}" ;;
      engine.ebpf.probe=*) probe="${item#engine.ebpf.probe=}" ;;
    esac
  done
  [ -n "$modern_flag" ] && engine=modern_ebpf  # 0.37 still takes the deprecated flag
  probe="${probe//\$\{HOME\}/$HOME}"
fi
web_on="$(yaml_get /etc/falco/falco.yaml webserver enabled)"
web_port="$(yaml_get /etc/falco/falco.yaml webserver listen_port)"
if falco_ge 0.38.0; then
  for file in /etc/falco/config.d/*.yaml; do
    [ -f "$file" ] || continue
    found="$(yaml_get "$file" webserver enabled)"; [ -n "$found" ] && web_on=$found
    found="$(yaml_get "$file" webserver listen_port)"; [ -n "$found" ] && web_port=$found
  done
fi
for item in "${overrides[@]}"; do
  case "$item" in
    webserver.enabled=*) web_on="${item#webserver.enabled=}" ;;
    webserver.listen_port=*) web_port="${item#webserver.listen_port=}" ;;
  esac
done

say "Falco $FALCO_VERSION: loading rules"
sleep "${STANDIN_RULES_SECONDS:-0}"
if [ "$web_on" = true ]; then
  www=/run/falco-standin-www
  mkdir -p "$www" && printf '{"status": "ok"}' > "$www/healthz"
  busybox httpd -f -p "0.0.0.0:${web_port:-8765}" -h "$www" 3<&- &
  web=$!
  sleep 0.2
  kill -0 "$web" 2>/dev/null || fail "an error occurred while starting webserver (port ${web_port:-8765})"
  say "web server listening on ${web_port:-8765}"
fi
say "Falco $FALCO_VERSION (driver $DRIVER_VERSION, needs API $NEED_API, schema $NEED_SCHEMA): opening engine $engine"

case "$engine" in
  kmod)
    exec 3<>"/dev/tcp/$KERNEL_HOST/$KERNEL_PORT" || fail "cannot reach the kernel"
    echo "OPEN falco" >&3
    IFS='' read -r reply <&3
    [ "${reply%% *}" = OK ] || fail "error opening device /host/dev/falco0: the falco kernel module is not loaded"
    read -r _ version api schema <<< "$reply"
    why="$(driver_accepted "$api" "$schema")" || fail "kmod $version refused: $why"
    opened="kmod $version (API $api, schema $schema)" ;;
  ebpf)
    falco_ge 0.44.0 && fail "engine.kind ebpf is not supported any more"
    [ -r "$probe" ] || fail "cannot open the BPF probe $probe"
    built_for="$(modinfo_field "$probe" kernel_version)"
    running="$(kernel_uname -r)"
    [ "$built_for" = "$running" ] || fail "BPF probe is built for '$built_for', but the running kernel is $running"
    api="$(modinfo_field "$probe" api_version)"; schema="$(modinfo_field "$probe" schema_version)"
    version="$(modinfo_field "$probe" version)"
    why="$(driver_accepted "$api" "$schema")" || fail "probe $probe refused: $why"
    opened="ebpf probe $probe, $version (API $api, schema $schema)" ;;
  modern_ebpf)
    falco_ge 0.35.0 || fail "no modern eBPF engine before 0.35"
    [ -e /sys/kernel/btf/vmlinux ] || fail "the kernel has no BTF: modern eBPF cannot run"
    opened="modern_ebpf (the probe is built in)" ;;
  *) fail "unknown engine.kind '$engine'" ;;
esac
say "running with $opened"
if [ -n "${STANDIN_CRASH:-}" ]; then say "crashing as asked"; exit 3; fi
# Like Falco, stop promptly on SIGTERM (as PID 1, a bare `sleep` would ignore it).
trap 'say "SIGTERM: stopping"; [ -n "${web:-}" ] && kill "$web"; exit 0' TERM
sleep infinity 3<&- &
wait
