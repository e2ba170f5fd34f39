#!/bin/bash
# Stand-in for the docker-entrypoint.sh of Falco's image 0.37-0.39, which hands the driver
# to falcoctl. Unless SKIP_DRIVER_LOADER is set, FALCO_DRIVER_LOADER_OPTIONS is split into
# words and parsed as the real one does: one driver word (0.37: kmod|ebpf, and 0.37 runs
# `falcoctl driver config --type <it>` as soon as it reads it; 0.38+:
# auto|kmod|ebpf|modern_ebpf, default auto, which configures
# `--type modern_ebpf --type kmod --type ebpf`), --compile, --download (neither given:
# both), --http-insecure (0.38+); any other word exits 1. Then `falcoctl driver install`
# (its failure does not stop Falco) and exec the command.
. /usr/local/lib/falco-standin/lib.sh
usage() { >&2 echo "Usage: FALCO_DRIVER_LOADER_OPTIONS='[driver] [--compile] [--download]'"; }
if [[ -n "${SKIP_DRIVER_LOADER:-}" ]]; then
  echo "falco-standin: SKIP_DRIVER_LOADER is set: no driver loader"
  exec "$@"
fi
read -r -a words <<< "${FALCO_DRIVER_LOADER_OPTIONS:-}"
compile=false download=false insecure=false driver='' has_opts=''
if falco_ge 0.38.0; then drivers="auto kmod ebpf modern_ebpf"; else drivers="kmod ebpf"; fi
for opt in "${words[@]}"; do
  if [[ " $drivers " == *" $opt "* ]]; then
    [ -n "$driver" ] && { >&2 echo "Only one driver per invocation"; usage; exit 1; }
    driver=$opt
    falco_ge 0.38.0 || /usr/bin/falcoctl driver config --type "$opt"
    continue
  fi
  case "$opt" in
    --compile) compile=true has_opts=1 ;;
    --download) download=true has_opts=1 ;;
    --http-insecure) falco_ge 0.38.0 || { >&2 echo "Unknown option: $opt"; usage; exit 1; }
      insecure=true ;;
    --*) >&2 echo "Unknown option: $opt"; usage; exit 1 ;;
    *) >&2 echo "Unknown driver: $opt"; usage; exit 1 ;;
  esac
done
[ -z "$has_opts" ] && compile=true download=true
if falco_ge 0.38.0; then
  if [ -z "$driver" ] || [ "$driver" = auto ]; then
    /usr/bin/falcoctl driver config --type modern_ebpf --type kmod --type ebpf
  else
    /usr/bin/falcoctl driver config --type "$driver"
  fi
  /usr/bin/falcoctl driver install --compile=$compile --download=$download --http-insecure=$insecure
else
  /usr/bin/falcoctl driver install --compile=$compile --download=$download
fi
exec "$@"
