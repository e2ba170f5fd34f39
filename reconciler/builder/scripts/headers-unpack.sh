#!/bin/sh
# Unpack every header package downloaded into /out/dl into /out/root.
set -e
cd /out/dl
for f in *; do
  echo "### unpacking $f"
  case "$f" in
    *.deb) dpkg-deb -x "$f" /out/root ;;
    *.rpm) rpm2cpio "$f" | (cd /out/root && cpio -idm --quiet) ;;
    *.tar|*.tar.*|*.tgz|*.txz) tar -xf "$f" -C /out/root ;;
    *) echo "### do not know how to unpack $f (.deb, .rpm or a tarball)"; exit 1 ;;
  esac
done
cd / && rm -rf /out/dl
