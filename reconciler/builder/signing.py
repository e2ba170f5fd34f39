"""The sign step: sign the built module for hosts that enforce module signatures, and prove
the signature before anything is published.

The key is the build host's, never the repository's: a manifest names a key of the host's
keyring (``signing_keys``), and the module is signed in this process
(``edges.host.crypto``), exactly as the kernel's ``scripts/sign-file`` would (a detached
DER PKCS#7 without signed attributes, the signer named by issuer and serial, then the
module-signature trailer), with the hash the kernel was configured with
(``CONFIG_MODULE_SIG_HASH`` of the headers' ``.config``). Nothing from the headers runs:
their ``sign-file`` is code whoever supplies the headers (a manifest's ``kernelUrls``)
wrote, and no container that ran such code ever has the key in reach.

Then: the appended signature must name the certificate's issuer and serial and the
kernel's hash (``model.modsig``), the signed file must be the unsigned one plus the
signature, and the host's openssl must find the signature genuine for the certificate
(``edges.host.openssl``). Any failure stops the build before publishing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reconciler.builder import headers, steps
from reconciler.edges.host import crypto
from reconciler.edges.host import openssl as modsign
from reconciler.errors import CertificateUnreadable, InvalidSignature, KeyUnusable, StepFailed
from reconciler.model import modsig

_SIG_HASH = re.compile(r'^CONFIG_MODULE_SIG_HASH="?([A-Za-z0-9-]+)"?\s*$', re.MULTILINE)


@dataclass(frozen=True)
class Signed:
    """A module signed and checked: what the log and the outcome say of it."""

    path: Path
    signer: modsig.Signer
    hash_algo: str
    certificate_sha256: str


def sig_hash(config_text: str) -> str | None:
    """The hash a kernel ``.config`` signs modules with, or None if it names none."""
    found = _SIG_HASH.search(config_text)
    return found[1] if found else None


def kernel_sig_hash(hdrs: headers.Headers) -> str:
    """``CONFIG_MODULE_SIG_HASH`` of the headers' kernel configuration."""
    tree = hdrs.root / hdrs.kernel_dir.lstrip("/")
    for name in ("include/config/auto.conf", ".config"):
        try:
            found = sig_hash((tree / name).read_text("utf-8", "replace"))
        except OSError:
            continue
        if found:
            return found
    raise StepFailed(
        f"the kernel configuration of {hdrs.release} names no CONFIG_MODULE_SIG_HASH: "
        "its kernel was built without module signing, so there is nothing to sign for")


def sign(
    *, module: Path, hdrs: headers.Headers, signing: modsig.Signing, log: steps.BuildLog,
) -> Signed:
    """Sign ``module`` in place, once the signed bytes pass the check."""
    if not signing.known:
        raise StepFailed(
            f"the signing key {signing.name!r} is not in this build host's keyring "
            "(the signing_keys setting): nothing is signed with a key the host does not name")
    certificate = Path(signing.certificate)
    try:
        cert = modsign.read_certificate(certificate)
    except CertificateUnreadable as exc:
        raise StepFailed(str(exc)) from exc
    hash_algo = kernel_sig_hash(hdrs)
    log.note(f"signing {module.name} in-process with key {signing.name or '(given)'} "
             f"({hash_algo}) for {cert.signer}, certificate sha256 {cert.sha256}")
    built = module.read_bytes()
    try:
        data = crypto.sign_module(built, Path(signing.key), certificate, hash_algo)
    except KeyUnusable as exc:
        raise StepFailed(str(exc)) from exc
    signed = module.with_name(f".{module.name}.signed")
    signed.write_bytes(data)
    check(signed, built, module, cert, hash_algo=hash_algo, certificate=certificate)
    signed.replace(module)
    log.note(f"signature checked: {cert.signer}, {hash_algo}, genuine for the certificate")
    return Signed(module, cert.signer, hash_algo, cert.sha256)


def check(
    signed: Path, built: bytes, unsigned: Path, cert: modsig.Certificate, *, hash_algo: str,
    certificate: Path,
) -> None:
    """Raise ``StepFailed`` unless ``signed`` is ``built`` (the bytes of ``unsigned``, read
    before signing) signed by ``cert``'s key with ``hash_algo``."""
    data = signed.read_bytes()
    try:
        found = modsig.signature_of(data)
    except InvalidSignature as exc:
        raise StepFailed(f"the signed module's signature cannot be read: {exc}") from exc
    if found is None:
        raise StepFailed("the signed module carries no appended signature")
    if found.signer != cert.signer:
        named = found.signer or f"subject key id {found.key_id}"
        raise StepFailed(f"the module is signed by {named}, not by the certificate's "
                               f"{cert.signer}")
    if found.hash_algo != hash_algo:
        raise StepFailed(f"the module is signed with {found.hash_algo}, but its kernel "
                               f"checks {hash_algo}")
    if data[:found.unsigned_size] != built or unsigned.read_bytes() != built:
        raise StepFailed("the signed module is not the built module plus a signature")
    verdict = modsign.verify(found.signature, unsigned, certificate)
    if not verdict.ok:
        raise StepFailed(f"the module's signature does not verify against the "
                               f"certificate {certificate}: {verdict.detail}")
