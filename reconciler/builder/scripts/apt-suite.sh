#!/bin/sh
# Run before the deb scripts (steps.script joins them): add_suite SUITE makes sure apt knows SUITE, adding it in its
# own file beside the image's entries, with the same mirror URI and keyring as the
# image's first entry (so the archive signature is checked exactly as for the image's
# own suites). Prints "added" when it added one (the package lists then need a refresh).
# The added entry does not check Valid-Until: mirror snapshots of unstable outlive the
# week its Release file is valid for, and the signature is still verified.
add_suite() {
  suite="$1"
  if grep -rhsE '^(Suites:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ \
      | sed -E 's/^Suites://; s/^deb +(\[[^]]*\] +)?[^ ]+ +([^ ]+).*/\2/' \
      | tr ' ' '\n' | grep -qxF "$suite"; then
    return 0
  fi
  uri=$(grep -rhsE '^URIs:' /etc/apt/sources.list.d/ | head -n1 | sed -E 's/^URIs: *//; s/ .*//')
  key=$(grep -rhsE '^Signed-By:' /etc/apt/sources.list.d/ | head -n1 | sed -E 's/^Signed-By: *//')
  if [ -z "$uri" ]; then
    line=$(grep -hsE '^deb ' /etc/apt/sources.list | head -n1)
    uri=$(echo "$line" | sed -E 's/^deb +(\[[^]]*\] +)?([^ ]+).*/\2/')
    key=$(echo "$line" | sed -nE 's/.*signed-by=([^] ]+).*/\1/p')
  fi
  if [ -z "$uri" ]; then
    echo "### no apt source to take the mirror of suite $suite from"
    return 1
  fi
  {
    echo "Types: deb"
    echo "URIs: $uri"
    echo "Suites: $suite"
    echo "Components: main"
    [ -n "$key" ] && echo "Signed-By: $key"
    echo "Check-Valid-Until: no"
  } >"/etc/apt/sources.list.d/reconciler-$suite.sources"
  echo "### added suite $suite from $uri${key:+ (keyring $key)}" >&2
  echo added
}
