#!/bin/sh
# Build the load test's guest userspace in the builder container: scap-open (libscap's
# 01-open example) from the driver's own falcosecurity/libs tree, linked statically so the
# initramfs needs no shared libraries, and the number of mkdir's exit event in that tree.
# Environment: LIBS_SOURCE (the unpacked tree), DRIVER_NAME, DEVICE_NAME, JOBS.
# Output: /build/out/scap-open, /build/out/mkdir-event.
set -eu
# libscap's headers need uthash; static links need the .a files of libelf and zlib.
if ! [ -e /usr/include/uthash.h ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    uthash-dev zlib1g-dev libelf-dev >/dev/null
fi
mkdir -p /build/cmake /build/out /build/wrap
cp /build/scripts/guest-userspace.cmake /build/wrap/CMakeLists.txt
cp /build/scripts/event-number.c /build/scripts/line-buffered.c /build/wrap/
# driver/bpf writes driver_config.h into its own tree: configure a private copy
rm -rf /build/src && cp -a "$LIBS_SOURCE" /build/src
cd /build/cmake
cmake -Wno-dev -DLIBS_SOURCE=/build/src -DDRIVER_NAME="$DRIVER_NAME" \
  -DDRIVER_DEVICE_NAME="$DEVICE_NAME" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_EXE_LINKER_FLAGS=-static /build/wrap
make -j"$JOBS" scap-open event-number
cp libscap/examples/01-open/scap-open /build/out/scap-open
strip /build/out/scap-open
./event-number > /build/out/mkdir-event
echo "### scap-open: $(wc -c < /build/out/scap-open) bytes, mkdir exit event $(cat /build/out/mkdir-event)"
