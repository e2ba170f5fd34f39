#!/bin/sh
# Install the build toolchain ($PACKAGES, space-separated) into the base image's container;
# the container is then committed as the builder image.
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word per package, on purpose
apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
