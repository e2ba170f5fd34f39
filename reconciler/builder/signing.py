"""The sign step: sign the built module for hosts that enforce module signatures, and prove
the signature before anything is published.

The module is signed with the kernel's own ``scripts/sign-file`` (Debian ships it in
``linux-kbuild-<version>``, which the headers step unpacks with the headers; the build
tree's ``scripts`` links to it) and the hash the kernel was configured with
(``CONFIG_MODULE_SIG_HASH`` of the headers' ``.config``), in a container without network
that alone sees the key, mounted read-only from the build host for that container only:
the key is never copied into the build folder, a cache, an image or the log. The built
module is mounted read-only too, and the signed one written to a folder of its own, so
what the check below compares with is the module as compiled.

``sign-file`` is the headers' own, so whoever supplies the headers (the apt sources, or
the ``kernelUrls`` of a manifest) is trusted with running code that sees the key; the
container has no network, and what leaves it is checked: the signed file must be the
compiled module byte for byte plus one PKCS#7 signature that verifies.

Then, on this side: the appended signature must name the certificate's issuer and serial
and the kernel's hash (``model.modsig``), the signed file must be the unsigned one plus
the signature, and openssl must find the signature genuine for the certificate
(``edges.host.openssl``). Any failure stops the build before publishing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from reconciler.builder import headers, steps
from reconciler.edges.docker import jobs
from reconciler.edges.host import openssl as modsign
from reconciler.errors import CertificateUnreadable, InvalidSignature, StepFailed
from reconciler.model import modsig
from reconciler.model.container import BindMount

KEY_MOUNT = "/run/signing/key"
CERTIFICATE_MOUNT = "/run/signing/certificate"
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


def sign_file(hdrs: headers.Headers) -> str:
    """Where ``scripts/sign-file`` is in the build container (the tree's ``scripts`` is a
    link into linux-kbuild on Debian); it must resolve inside the unpacked headers."""
    root = hdrs.root.resolve()
    candidates = [root / hdrs.kernel_dir.lstrip("/") / "scripts/sign-file",
                  *sorted(root.glob("usr/lib/linux-kbuild-*/scripts/sign-file")),
                  *sorted(root.glob("usr/src/*/scripts/sign-file"))]
    for candidate in candidates:
        real = Path(os.path.realpath(candidate))
        if real.is_relative_to(root) and real.is_file():
            return "/" + real.relative_to(root).as_posix()
    raise StepFailed(
        f"the header packages of {hdrs.release} hold no scripts/sign-file (Debian ships it "
        "in linux-kbuild-<version>): the module cannot be signed")


def sign(
    eng: jobs.Jobs, builder_image: str, *, module: Path, hdrs: headers.Headers,
    key: Path, certificate: Path, artifact: str, log: steps.BuildLog,
    timeout: float | None = None,
) -> Signed:
    """Sign ``module`` (replacing it once the signed file passes the check)."""
    try:
        cert = modsign.read_certificate(certificate)
    except CertificateUnreadable as exc:
        raise StepFailed(str(exc)) from exc
    if not key.is_file():
        raise StepFailed(f"the signing key {key} is not a file on this build host")
    if ":" in f"{key}{certificate}":
        # Docker's bind syntax is source:target:mode; the manifests refuse these already.
        raise StepFailed("a signing key or certificate path with ':' cannot be mounted")
    mounts = [BindMount(str(key), KEY_MOUNT, read_only=True)]
    if certificate != key:  # one PEM may hold both, and is mounted once
        mounts.append(BindMount(str(certificate), CERTIFICATE_MOUNT, read_only=True))
    hash_algo = kernel_sig_hash(hdrs)
    tool = sign_file(hdrs)
    log.note(f"signing {module.name} with {tool} ({hash_algo}) for {cert.signer}, "
             f"certificate sha256 {cert.sha256}")
    built = module.read_bytes()
    out = module.parent.parent / "signed"
    out.mkdir(exist_ok=True)
    result = eng.run(
        builder_image, steps.script("sign.sh"),
        mounts=[*hdrs.mounts, BindMount(str(module), f"/build/in/{module.name}", read_only=True),
                BindMount(str(out), "/build/signed", read_only=False), *mounts],
        environment={"SIGN_FILE": tool, "HASH": hash_algo, "MODULE": module.name,
                     "KEY_FILE": KEY_MOUNT, "CERT_FILE": mounts[-1].target},
        timeout=timeout,
        labels={jobs.LABEL_STEP: steps.Step.SIGN, jobs.LABEL_ARTIFACT: artifact},
    )
    steps.check(result, f"signing {module.name}", log)
    signed = out / module.name
    if not signed.is_file() or signed.is_symlink():
        raise StepFailed("sign-file reported success but left no signed module")
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
