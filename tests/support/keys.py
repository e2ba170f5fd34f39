"""Real keys for tests, made with the host's openssl: a module-signing key and certificate
as the kernel's ``certs/Makefile`` makes its own (codeSigning, not a CA), the lines of a
key's PEM body to search for wherever it must never appear, and a header cache whose
``scripts/sign-file`` is hostile (what a pusher's ``kernelUrls`` could supply)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from reconciler.edges.host import openssl as modsign
from reconciler.model import modsig


def make_signing_pair(folder: Path, name: str, *, serial: str | None = None) -> modsig.Signing:
    """A module-signing key and self-signed certificate, named ``name`` in a keyring."""
    folder.mkdir(parents=True, exist_ok=True)
    key, cert = folder / f"{name}.key.pem", folder / f"{name}.crt.pem"
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
         "-sha256", "-keyout", str(key), "-out", str(cert),
         "-subj", f"/O=falco-reconciler tests/CN={name}",
         "-addext", "basicConstraints=critical,CA:FALSE",
         "-addext", "keyUsage=digitalSignature",
         "-addext", "extendedKeyUsage=codeSigning",
         "-addext", "subjectKeyIdentifier=hash",
         *(["-set_serial", serial] if serial else [])],
        check=True, capture_output=True,
    )
    key.chmod(0o600)
    return modsig.Signing(str(key), str(cert), name.replace(" ", "-"))


def signed_by(data: bytes, pair: modsig.Signing, tmp: Path) -> modsig.ModuleSignature:
    """The appended signature of module ``data``, asserted to name ``pair``'s certificate
    and to be genuine for it by the host's openssl."""
    found = modsig.signature_of(data)
    assert found is not None
    assert found.signer == modsign.read_certificate(Path(pair.certificate)).signer
    unsigned = tmp / "unsigned.ko"
    unsigned.write_bytes(data[:found.unsigned_size])
    assert modsign.verify(found.signature, unsigned, Path(pair.certificate)).ok
    return found


def key_lines(signing_pair: modsig.Signing) -> list[str]:
    """Lines of the private key's PEM body: what would show if the key leaked anywhere."""
    body = Path(signing_pair.key).read_text().splitlines()[1:-1]
    return [body[1], body[len(body) // 2], body[-2]]


def files_holding(lines: list[str], *roots: Path) -> list[str]:
    patterns = [arg for line in lines for arg in ("-e", line)]
    found = subprocess.run(["grep", "-rlF", *patterns,
                            *(str(r) for r in roots if r.exists())],
                           capture_output=True, text=True, check=False)
    return found.stdout.split()


HOSTILE_SIGN_FILE = """#!/bin/sh
# Stands in for a sign-file a pusher supplied through kernelUrls: it would print the key it
# is given and every key and secret it can find, and sign with nothing.
echo HOSTILE-SIGN-FILE-RAN
cat "$2" "$3" 2>/dev/null
find / -name '*.pem' -o -name '*.secret' 2>/dev/null | xargs cat 2>/dev/null
cp "$4" "${5:-$4.signed}" 2>/dev/null
exit 0
"""


def hostile_headers(shared: Path, own: Path, release: str) -> int:
    """``own``'s header cache: the shared headers of ``release`` (hard links), every
    ``scripts/sign-file`` replaced by the hostile one; the number replaced."""
    source = shared / "headers/x86_64/debian" / release
    target = own / "headers/x86_64/debian" / release
    target.parent.mkdir(parents=True)
    shutil.copytree(source, target, symlinks=True, copy_function=os.link)
    replaced = 0
    for path in target.rglob("sign-file"):
        if path.is_file() and not path.is_symlink() and path.parent.name == "scripts":
            path.unlink()  # a hard link: the shared copy stays as it was
            path.write_text(HOSTILE_SIGN_FILE)
            path.chmod(0o755)
            replaced += 1
    for name in ("sources", "locks"):
        (own / name).symlink_to(shared / name)
    return replaced
