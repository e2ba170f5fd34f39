#!/bin/sh
# Compile the kernel module (kbuild) and/or the eBPF probe in the builder container.
# The private build folder is /build: src holds this build's copy of the driver tree,
# out receives the results. Both kinds compile at the same time (the probe is one long
# clang run, the module a parallel make); the failing part's output is printed last, so
# the tail of the log shows the compiler's complaint.
# Environment: TREE_KIND (libs|dkms), KINDS ("kmod", "probe" or "kmod probe"),
# KERNEL_DIR, MODULE_NAME, DEVICE_NAME, DRIVER_VERSION, JOBS.
set -u
mkdir -p /build/out
if [ "$TREE_KIND" = libs ]; then
  # A falcosecurity/libs tree: cmake writes the module tree (driver_config.h, Makefile)
  # into its build folder. Only driver/ is configured: the top level would want libscap's
  # dependencies (USE_BUNDLED_DEPS=ON downloads them, and this container has no network),
  # while driver/ needs no more than the top level's cmake modules (compute_versions).
  # The probe's folder is configured only when asked for: driver 10.x has no bpf/.
  case " $KINDS " in *" probe "*) bpf=ON ;; *) bpf=OFF ;; esac
  mkdir -p /build/cmake && cd /build/cmake || exit 1
  cmake -Wno-dev -DCMAKE_MODULE_PATH=/build/src/cmake/modules -DENABLE_DKMS=OFF \
    -DBUILD_BPF="$bpf" \
    -DDRIVER_NAME="$MODULE_NAME" -DDRIVER_DEVICE_NAME="$DEVICE_NAME" \
    -DPROBE_NAME="$MODULE_NAME" -DPROBE_DEVICE_NAME="$DEVICE_NAME" \
    -DDRIVER_VERSION="$DRIVER_VERSION" /build/src/driver || exit 1
  KMOD_DIR=/build/cmake/src
  BPF_DIR=/build/cmake/bpf/src
else
  KMOD_DIR=/build/src
  BPF_DIR=/build/src/bpf
fi

build_kmod() {
  cd "$KMOD_DIR" && make -j"$JOBS" KERNELDIR="$KERNEL_DIR" \
    && strip -g "$MODULE_NAME.ko" && cp "$MODULE_NAME.ko" "/build/out/$MODULE_NAME.ko"
}

build_probe() {
  cd "$BPF_DIR" && make KERNELDIR="$KERNEL_DIR" && cp probe.o /build/out/probe.o
}

pids=""
for kind in $KINDS; do
  case "$kind" in
    kmod) build_kmod >/build/kmod.log 2>&1 & ;;
    probe) build_probe >/build/probe.log 2>&1 & ;;
    *) echo "### unknown kind $kind"; exit 1 ;;
  esac
  pids="$pids $kind:$!"
done

failed=""
for entry in $pids; do
  kind="${entry%%:*}"
  if wait "${entry#*:}"; then
    echo "### $kind: ok"
    cat "/build/$kind.log"
  else
    failed="$failed $kind:$?"
  fi
done
for entry in $failed; do
  kind="${entry%%:*}"
  echo "### $kind: failed (exit ${entry#*:})"
  cat "/build/$kind.log"
done
[ -z "$failed" ]
