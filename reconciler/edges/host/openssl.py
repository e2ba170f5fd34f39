"""Module signing on this host: the certificate file a manifest names, and openssl's check
that a module's signature was made by that certificate's key.

The only module that runs ``openssl``. The check is ``openssl cms -verify`` over the
detached PKCS#7 (DER) with the unsigned module as its content and the certificate given as
the signer's (``-certfile``); ``-noverify`` leaves out the certificate's chain and purpose,
which are the kernel's business (its keyring, the MOK list), not the builder's: what must
hold here is that the signature is genuine and by that key. The private key is never read
here: only the signing container sees it.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reconciler.edges import capped
from reconciler.errors import CertificateUnreadable, InvalidSignature
from reconciler.model import modsig

MAX_CERTIFICATE = 1 << 16
OPENSSL_TIMEOUT = 60.0




@dataclass(frozen=True)
class Checked:
    ok: bool
    detail: str  # openssl's own words, or why it could not run


def read_certificate(path: Path) -> modsig.Certificate:
    data = capped.read(path, MAX_CERTIFICATE, "the signing certificate",
                       CertificateUnreadable, expected="not a certificate")
    try:
        return modsig.certificate(data)
    except InvalidSignature as exc:
        raise CertificateUnreadable(
            f"the signing certificate {path} is not an X.509 certificate (PEM or DER): "
            f"{exc}") from exc


def verify(signature: bytes, content: Path, certificate: Path) -> Checked:
    """Whether ``signature`` (DER PKCS#7) signs ``content`` with ``certificate``'s key."""
    with tempfile.NamedTemporaryFile(prefix="modsig-", suffix=".p7s") as sig:
        sig.write(signature)
        sig.flush()
        try:
            done = subprocess.run(
                ["openssl",  # noqa: S607 - found on PATH, as a shell would
                 "cms", "-verify", "-binary", "-inform", "DER", "-in", sig.name,
                 "-content", str(content), "-certfile", str(certificate), "-noverify",
                 "-out", "/dev/null"],
                capture_output=True, text=True, timeout=OPENSSL_TIMEOUT, check=False,
            )
        except FileNotFoundError:
            return Checked(False, "openssl is not installed on this host: a signed module "
                           "cannot be checked, so it is not published")
        except subprocess.TimeoutExpired:
            return Checked(False, f"openssl did not answer within {OPENSSL_TIMEOUT:g}s")
    detail = " ".join((done.stderr or done.stdout).split())
    return Checked(done.returncode == 0, detail)
