#!/bin/sh
# For an error message: fetch the driver_config.h of package $NAME from each suite in
# $SUITES (added to the apt sources as needed) into /out/<suite>/, and print one line
# "suite <suite> <codename>" for each suite that has the package.
set -e
# add_suite: apt-suite.sh, which the builder runs before this script.
for suite in $SUITES; do add_suite "$suite" >/dev/null; done
apt-get update -qq
for suite in $SUITES; do
  mkdir -p "/out/$suite" && cd "/out/$suite"
  if apt-get download "$NAME/$suite" >/dev/null 2>&1; then
    for f in *.deb; do
      dpkg-deb --fsys-tarfile "$f" | tar -x --wildcards '*/driver_config.h' 2>/dev/null || true
      rm -f "$f"
    done
    codename=""
    for release in /var/lib/apt/lists/*_dists_"${suite}"_InRelease; do
      [ -f "$release" ] && codename=$(sed -n 's/^Codename: *//p' "$release" | head -n1)
    done
    echo "suite $suite ${codename:-$suite}"
  fi
done
