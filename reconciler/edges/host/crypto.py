"""The host's keys: the only module that imports ``cryptography``.

Two jobs, both in this process, so no container and no code from headers or manifests
ever has a key in reach:

- ``sign_module``: what the kernel's ``scripts/sign-file`` appends to a module, made here:
  a detached PKCS#7 SignedData in DER, no signed attributes, no certificates, the signer
  named by its certificate's issuer and serial number, sha256/sha384/sha512, then
  ``struct module_signature`` (id_type PKCS#7, the signature's length) and the marker
  (``model.modsig``). The result is still checked by the host's ``openssl``
  (``edges.host.openssl``) before anything is published.
- Ed25519 for signed indexes (``model.trustindex``): ``SigningKey.sign`` over the canonical
  bytes, ``verify`` against a pinned public key.

Errors become ``KeyUnusable`` (one sentence, never a key's bytes) once, here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

from reconciler.edges import capped
from reconciler.errors import KeyUnusable
from reconciler.model import modsig

MAX_KEY_FILE = 1 << 16
_HASHES: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
    "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


def _private_key(path: Path) -> PrivateKeyTypes:
    data = capped.read(path, MAX_KEY_FILE, "the signing key", KeyUnusable)
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The library's message may quote the input: say only what is wrong.
        raise KeyUnusable(f"the signing key {path} is not an unencrypted private key "
                          "(PEM or DER)") from None


def _certificate(path: Path) -> x509.Certificate:
    data = capped.read(path, MAX_KEY_FILE, "the signing certificate", KeyUnusable)
    try:
        if b"-----BEGIN CERTIFICATE" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise KeyUnusable(f"the signing certificate {path} is not an X.509 certificate: "
                          f"{exc}") from exc


def sign_module(module: bytes, key: Path, certificate: Path, hash_algo: str) -> bytes:
    """``module`` with a kernel module signature appended, made with ``key`` for
    ``certificate`` (what ``sign-file <hash> <key> <cert> <module>`` writes)."""
    digest = _HASHES.get(hash_algo)
    if digest is None:
        raise KeyUnusable(f"the kernel signs modules with {hash_algo}; this host signs with "
                          f"{', '.join(_HASHES)} only")
    private = _private_key(key)
    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyUnusable(f"the signing key {key} is neither RSA nor ECDSA: the kernel "
                          "verifies module signatures made with those")
    cert = _certificate(certificate)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise KeyUnusable(f"the signing key {key} is not the key of the certificate "
                          f"{certificate}")
    options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.NoAttributes,
               pkcs7.PKCS7Options.NoCerts, pkcs7.PKCS7Options.Binary]
    try:
        der = (pkcs7.PKCS7SignatureBuilder().set_data(module)
               .add_signer(cert, private, digest).sign(serialization.Encoding.DER, options))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyUnusable(f"cannot sign with the key {key}: {exc}") from None
    return module + der + modsig.trailer(len(der))


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key that signs indexes; ``key_id`` names its public half."""

    private: ed25519.Ed25519PrivateKey

    @property
    def public(self) -> str:
        return public_text(self.private.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.private.sign(data)).decode("ascii")


def public_text(key: ed25519.Ed25519PublicKey) -> str:
    """How a public key is pinned in settings: ``ed25519:<base64 of its 32 bytes>``."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + base64.b64encode(raw).decode("ascii")


def key_id(public: str) -> str:
    """A public key's id: the sha256 of its pinned text, hex (as TUF names keys by hash)."""
    return hashlib.sha256(public.encode("ascii")).hexdigest()


def load_signing_key(path: Path) -> SigningKey:
    """An Ed25519 private key from a PEM file (``openssl genpkey -algorithm ed25519``)."""
    private = _private_key(path)
    if not isinstance(private, ed25519.Ed25519PrivateKey):
        raise KeyUnusable(f"the index signing key {path} is not an Ed25519 private key "
                          "(openssl genpkey -algorithm ed25519)")
    return SigningKey(private)


def new_signing_key(path: Path) -> SigningKey:
    """Make an Ed25519 key, written as PKCS#8 PEM with mode 0600 (a new file only)."""
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        with path.open("xb") as handle:
            path.chmod(0o600)
            handle.write(pem)
    except OSError as exc:
        raise KeyUnusable(f"cannot write the index signing key {path}: "
                          f"{exc.strerror or exc}") from exc
    return SigningKey(private)


def parse_public(text: str) -> ed25519.Ed25519PublicKey:
    """A pinned ``ed25519:<base64>`` public key; ``ValueError`` if it is not one."""
    kind, _, body = text.partition(":")
    if kind != "ed25519":
        raise ValueError(f"expected ed25519:<base64 of 32 bytes>, got {text!r}")
    try:
        raw = base64.b64decode(body, validate=True)
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ValueError(f"expected ed25519:<base64 of 32 bytes>, got {text!r}") from None


def verify(public: str, signature: str, data: bytes) -> bool:
    """Whether ``signature`` (base64) is ``public``'s over ``data``."""
    try:
        parse_public(public).verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
