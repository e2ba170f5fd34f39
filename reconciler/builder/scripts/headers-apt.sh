#!/bin/sh
# Download the headers of kernel release $RELEASE from the builder's apt sources into
# /out/root: linux-headers-$RELEASE and the linux-headers-*/linux-kbuild-* packages it
# depends on, unpacked with dpkg-deb (never installed, so nothing is tied to one
# container). Exit 42 with the sources tried (lines "source: ...") when no source has it.
set -e
pkg="linux-headers-$RELEASE"
have() { apt-cache show --no-all-versions "$1" >/dev/null 2>&1; }
if ! have "$pkg"; then
  echo "### $pkg is not in the image's package lists: refreshing them"
  apt-get update -qq || true
fi
if ! have "$pkg"; then
  echo "### no package $pkg in the apt sources:"
  grep -rhsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ \
    | sed -E 's/^(URIs:|deb) */source: /' | sort -u
  exit 42
fi
deps() {
  apt-cache show --no-all-versions "$1" | sed -n 's/^Depends: //p' | tr ',' '\n' \
    | sed -E 's/^ *//; s/[ (|].*//' | grep -E '^linux-(headers|kbuild)-' || true
}
all="$pkg"; todo="$pkg"
while [ -n "$todo" ]; do
  next=""
  for p in $todo; do
    for d in $(deps "$p"); do
      case " $all " in *" $d "*) ;; *) all="$all $d"; next="$next $d";; esac
    done
  done
  todo="$next"
done
echo "### downloading: $all"
mkdir -p /out/debs && cd /out/debs
# shellcheck disable=SC2086 # one word per package, on purpose
apt-get download $all 2>&1 || { apt-get update -qq && apt-get download $all 2>&1; }
for f in *.deb; do dpkg-deb -x "$f" /out/root; done
cd / && rm -rf /out/debs
