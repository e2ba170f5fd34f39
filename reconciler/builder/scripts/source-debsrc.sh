#!/bin/sh
# Unpack Debian's source package of the binary package $PACKAGE (apt's syntax: name,
# name=version or name/suite) at that binary's exact version into /out/root, with
# Debian's patches applied (dpkg-source -x). $SUITE, when set, gets deb-src lines (and
# deb lines if the image lacks the suite). Prints "### source <name> <version>".
set -e
# add_suite: apt-suite.sh, which the builder runs before this script.
if [ -n "${SUITE:-}" ]; then add_suite "$SUITE" >/dev/null; fi
uri=$(grep -rhsE '^URIs:' /etc/apt/sources.list.d/ | head -n1 | sed -E 's/^URIs: *//; s/ .*//')
key=$(grep -rhsE '^Signed-By:' /etc/apt/sources.list.d/ | head -n1 | sed -E 's/^Signed-By: *//')
{
  echo "Types: deb-src"
  echo "URIs: $uri"
  echo "Suites: ${SUITE:-$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)}"
  echo "Components: main"
  [ -n "$key" ] && echo "Signed-By: $key"
  echo "Check-Valid-Until: no"
} >/etc/apt/sources.list.d/reconciler-source.sources
apt-get update -qq
# the binary's own source package and version: "Source: name" or "Source: name (version)"
fields=$(apt-cache show --no-all-versions "$PACKAGE")
binary_version=$(echo "$fields" | sed -nE 's/^Version: *//p' | head -n1)
source_line=$(echo "$fields" | sed -nE 's/^Source: *//p' | head -n1)
name=$(echo "$source_line" | cut -d' ' -f1)
version=$(echo "$source_line" | sed -nE 's/.*\((.*)\).*/\1/p')
[ -n "$name" ] || name=$(echo "$fields" | sed -nE 's/^Package: *//p' | head -n1)
[ -n "$version" ] || version="$binary_version"
# dpkg-source applies Debian's patches; the builder image does not have it
command -v dpkg-source >/dev/null || DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
mkdir -p /out/src && cd /out/src
apt-get source -q --download-only --only-source "$name=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
dsc=$(ls ./*.dsc)
rm -rf /out/root && dpkg-source -q -x "$dsc" /out/root
cd / && rm -rf /out/src
echo "### source $name $version"
echo "$version" > /out/root/.debian-source-version
