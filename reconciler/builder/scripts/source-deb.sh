#!/bin/sh
# Download the Debian package $PACKAGE (apt's syntax) and unpack it into /out/root.
set -e
mkdir -p /out/debs && cd /out/debs
apt-get download "$PACKAGE" 2>&1 || { apt-get update -qq && apt-get download "$PACKAGE" 2>&1; }
for f in *.deb; do dpkg-deb -x "$f" /out/root; done
cd / && rm -rf /out/debs
