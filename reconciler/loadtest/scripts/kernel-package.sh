#!/bin/sh
# Download the kernel image package of release $RELEASE (linux-image-$RELEASE, the package
# its headers came from) from the builder's apt sources into /out, for a load test.
# Exit 42 when no source has it.
set -e
pkg="linux-image-$RELEASE"
have() { apt-cache show --no-all-versions "$1" >/dev/null 2>&1; }
if ! have "$pkg"; then
  apt-get update -qq || true
fi
if ! have "$pkg"; then
  # a signed kernel's image package is named linux-image-$RELEASE; an unsigned one -unsigned
  pkg="linux-image-$RELEASE-unsigned"
  have "$pkg" || { echo "### no package linux-image-$RELEASE in the apt sources"; exit 42; }
fi
cd /out
apt-get download -q "$pkg"
ls /out/*.deb
