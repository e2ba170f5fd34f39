#!/bin/bash
# Stand-in for the docker-entrypoint.sh of Falco's image up to 0.36: unless
# SKIP_DRIVER_LOADER is set, run falco-driver-loader with FALCO_DRIVER_LOADER_OPTIONS
# split into words (its failure does not stop Falco), then exec the command.
if [[ -z "${SKIP_DRIVER_LOADER:-}" ]]; then
  read -r -a options <<< "${FALCO_DRIVER_LOADER_OPTIONS:-}"
  /usr/bin/falco-driver-loader "${options[@]}"
else
  echo "falco-standin: SKIP_DRIVER_LOADER is set: no driver loader"
fi
exec "$@"
