#!/bin/sh
# Sign the built module with the kernel's own scripts/sign-file, as the kernel's
# modules_sign does: $SIGN_FILE $HASH $KEY_FILE $CERT_FILE /build/in/$MODULE, written to
# /build/signed/$MODULE. The built module is mounted read-only (it stays as built, for the
# check that follows); the key and certificate are mounted read-only under /run/signing/
# for this container only; nothing here prints them.
set -eu
"$SIGN_FILE" "$HASH" "$KEY_FILE" "$CERT_FILE" \
  "/build/in/$MODULE" "/build/signed/$MODULE"
echo "### signed $MODULE with $HASH"
