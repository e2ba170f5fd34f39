#!/bin/sh
# Sign the built module with the kernel's own scripts/sign-file, as the kernel's
# modules_sign does: $SIGN_FILE $HASH $KEY_FILE $CERT_FILE /build/out/$MODULE, written to
# /build/out/$MODULE.signed (the unsigned file stays, for the check that follows). The
# key and certificate are mounted read-only under /run/signing/ for this container only;
# nothing here prints them.
set -eu
"$SIGN_FILE" "$HASH" "$KEY_FILE" "$CERT_FILE" \
  "/build/out/$MODULE" "/build/out/$MODULE.signed"
echo "### signed $MODULE with $HASH"
