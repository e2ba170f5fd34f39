#!/bin/sh
# Download the Debian package $PACKAGE (apt's syntax: name, name=version or name/suite)
# and unpack it into /out/root. $SUITE, when set, is added to the apt sources first if
# the image does not have it.
set -e
# add_suite: apt-suite.sh, which the builder runs before this script.
refresh=""
if [ -n "${SUITE:-}" ]; then
  refresh=$(add_suite "$SUITE")
fi
if [ -n "$refresh" ]; then apt-get update -qq; fi
mkdir -p /out/debs && cd /out/debs
apt-get download "$PACKAGE" 2>&1 || { apt-get update -qq && apt-get download "$PACKAGE" 2>&1; }
for f in *.deb; do dpkg-deb -x "$f" /out/root; done
cd / && rm -rf /out/debs
