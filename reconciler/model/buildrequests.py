"""Build requests on the wire: what a host that may not build asks of a build host.

``POST /v1/build-requests`` with a JSON body ``{"host": <asking host>, "artifacts": [...]}``,
each artifact a store path (``8.0.0+driver/x86_64/falco_debian_..._1.ko``) or
``{"path": ..., "unameRelease": ...}``. A requested key names the kernel only as the
loader does; where that differs from the kernel's ``uname -r`` (Debian from Falco 0.35
on rebuilds the release from ``uname -v``), the builder needs the real release for the
headers and the vermagic check, so the asking host sends it.

The body is signed with the shared secret (``model.hmacsig``) in ``X-Reconciler-Signature``,
and carries inside the signed bytes the time it was sent (``time``, Unix seconds) and a
random ``nonce``: a build host refuses a body older or newer than ``FRESHNESS`` seconds,
and one whose nonce it has seen, so a captured request cannot be replayed.
The answer gives one verdict per artifact. Parsing here is pure and strict: the body is
attacker-controlled until the signature is checked, and the signature proves only who
sent it, never that its contents are sane.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

# Re-exported: httpd.intake (engineer httpd's) names it as buildrequests.BodyError.
from reconciler.errors import BodyError as BodyError  # noqa: PLC0414 - see above
from reconciler.errors import JsonError
from reconciler.model import artifacts, jsondoc
from reconciler.model.artifacts import ArtifactKey

PATH = "/v1/build-requests"
SIGNATURE_HEADER = "X-Reconciler-Signature"
MAX_BODY = 64 * 1024
MAX_ARTIFACTS = 256
FRESHNESS = 300  # seconds a signed request is taken either side of the build host's clock
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# A host name as the asking daemon knows it (a DNS name, or what --hostname says).
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})$")
# `uname -r`: utsname's 64 characters, the store's name-part characters.
_UNAME = re.compile(r"^[A-Za-z0-9](?:\.?[A-Za-z0-9_+~-]){0,63}$")




class Verdict(enum.StrEnum):
    QUEUED = "queued"  # taken: it will be built and served
    ALREADY_QUEUED = "already queued"  # someone asked already; this host is noted too
    AVAILABLE = "available"  # it is in the store now: fetch it
    REJECTED = "rejected"  # not taken; ``reason`` says why


@dataclass(frozen=True)
class Requested:
    """One artifact asked for, and the kernel's ``uname -r`` where the key names it
    otherwise ("" when they agree)."""

    key: ArtifactKey
    uname_release: str = ""

    def to_json(self) -> str | dict[str, str]:
        if not self.uname_release:
            return self.key.relpath
        return {"path": self.key.relpath, "unameRelease": self.uname_release}


@dataclass(frozen=True)
class KeyVerdict:
    path: str
    verdict: Verdict
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        found = {"path": self.path, "verdict": self.verdict.value}
        if self.reason:
            found["reason"] = self.reason
        return found


@dataclass(frozen=True)
class BuildRequestBody:
    host: str
    artifacts: tuple[Requested, ...]
    sent_at: int  # Unix seconds (module docstring)
    nonce: str  # random, 16-64 URL-safe characters

    def encode(self) -> bytes:
        """The exact bytes that are signed and sent."""
        doc = {"host": self.host, "artifacts": [a.to_json() for a in self.artifacts],
               "time": self.sent_at, "nonce": self.nonce}
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Stamp:
    """When a signed body says it was sent, and its nonce."""

    sent_at: int
    nonce: str


def _entry(value: Any) -> Requested | KeyVerdict:
    """One entry of ``artifacts``: the artifact asked for, or why it is not one."""
    release = ""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"path", "unameRelease"})
        path = value.get("path")
        release = value.get("unameRelease", "")
        shown = path if isinstance(path, str) else repr(path)[:80]
        if unknown:
            return KeyVerdict(shown, Verdict.REJECTED, f"unknown field {unknown[0]!r}")
        if not isinstance(release, str) or (release and not _UNAME.fullmatch(release)):
            return KeyVerdict(shown, Verdict.REJECTED,
                              "unameRelease is not a kernel release (uname -r)")
        value = path
    if not isinstance(value, str):
        return KeyVerdict(repr(value)[:80], Verdict.REJECTED,
                          "not a store path or {path, unameRelease}")
    key = artifacts.parse_relpath(value)
    if key is None:
        return KeyVerdict(value[:300], Verdict.REJECTED,
                          "not a store path <driverVersion>/<arch>/falco_<target>_"
                          "<release>_<version>.ko|.o")
    return Requested(key, "" if release == key.kernel_release else release)


def _document(body: bytes) -> dict[str, Any]:
    try:
        doc = jsondoc.loads(body)
    except JsonError as exc:
        raise BodyError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BodyError("expected an object {host, artifacts, time, nonce}")
    return doc


def stamp_of(body: bytes) -> Stamp:
    """The ``time`` and ``nonce`` of a body; ``BodyError`` if either is missing or not
    one (a body without them cannot be told from a replay)."""
    doc = _document(body)
    sent_at, nonce = doc.get("time"), doc.get("nonce")
    if not isinstance(sent_at, int) or isinstance(sent_at, bool) or not 0 < sent_at < 1 << 40:
        raise BodyError("time must be the Unix time the request was sent, signed with it")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise BodyError("nonce must be 16-64 random URL-safe characters, signed with it")
    return Stamp(sent_at, nonce)


def parse(body: bytes) -> tuple[str, tuple[Requested | KeyVerdict, ...]]:
    """The asking host and each entry (an artifact, or a verdict refusing it); raises
    ``BodyError`` for a body that is no build request."""
    doc = _document(body)
    unknown = sorted(set(doc) - {"host", "artifacts", "time", "nonce"})
    if unknown:
        raise BodyError(f"unknown field {unknown[0]!r}")
    host, entries = doc.get("host"), doc.get("artifacts")
    if not isinstance(host, str) or not _HOST.fullmatch(host):
        raise BodyError("host must be the asking host's name")
    if not isinstance(entries, list) or not entries:
        raise BodyError("artifacts must be a non-empty list")
    if len(entries) > MAX_ARTIFACTS:
        raise BodyError(f"at most {MAX_ARTIFACTS} artifacts per request")
    return host, tuple(_entry(e) for e in entries)


def parse_answer(body: bytes) -> tuple[KeyVerdict, ...]:
    """The verdicts of a build host's answer; unreadable parts are left out."""
    try:
        doc = jsondoc.loads(body)
    except JsonError:
        return ()
    found = []
    for item in doc.get("artifacts", []) if isinstance(doc, dict) else []:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            continue
        try:
            verdict = Verdict(str(item.get("verdict")))
        except ValueError:
            continue
        found.append(KeyVerdict(item["path"], verdict, str(item.get("reason", ""))))
    return tuple(found)
