"""Who signed a kernel module, read from the signature appended to it (what ``modinfo``
shows as ``signer``, ``sig_key`` and ``sig_hashalgo``), and who a certificate names.

A signed module is the unsigned file, then the signature, then a 12-byte
``struct module_signature`` (algo, hash, id_type, signer_len, key_id_len, three bytes of
padding, and the signature's length as a big-endian u32), then the marker
``~Module signature appended~\\n``. Since Linux 4.3 the signature is a detached PKCS#7
SignedData (id_type 2) whose one SignerInfo names the signing certificate by its issuer
and serial number (or, signed with ``sign-file -k``, by its subject key identifier) and
the digest algorithm; the certificate itself is not included. So a signer is known by
(issuer, serial), which is also what a certificate says of itself: that pair is what the
store compares with the certificate a manifest names.

Pure functions over bytes, with a DER reader just large enough for these two structures:
no cryptography here. Whether the signature is genuine is the builder's check, against
the certificate, before publishing (``builder.signing``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from dataclasses import dataclass

from reconciler.errors import InvalidSignature

MARKER = b"~Module signature appended~\n"
_INFO = struct.Struct(">BBBBB3xI")  # struct module_signature
PKEY_ID_PKCS7 = 2
MAX_SIGNATURE = 1 << 16  # an RSA-16384 PKCS#7 is far smaller

_DIGESTS = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "2.16.840.1.101.3.4.2.8": "sha3-256",
    "2.16.840.1.101.3.4.2.9": "sha3-384",
    "2.16.840.1.101.3.4.2.10": "sha3-512",
    "1.2.156.10197.1.401": "sm3",
}
_NAME_ATTRS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "1.2.840.113549.1.9.1": "emailAddress",
}
_SIGNED_DATA = "1.2.840.113549.1.7.2"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)




@dataclass(frozen=True, order=True)
class Signer:
    """Who signed: the certificate's issuer (as ``CN=...,O=...``) and serial number
    (upper-case hex pairs with colons, as ``modinfo`` prints ``sig_key``)."""

    issuer: str
    serial: str

    @property
    def name(self) -> str:
        """The issuer's common name (``modinfo``'s ``signer``), else the whole issuer."""
        for part in self.issuer.split(","):
            if part.startswith("CN="):
                return part[3:]
        return self.issuer

    def __str__(self) -> str:
        return f"{self.name!r} (serial {self.serial})"


@dataclass(frozen=True, order=True)
class Signing:
    """Sign kernel modules with this key and certificate: absolute paths on the build host
    (an enrolled MOK, say), named ``name`` in its keyring (``signing_keys``); a manifest
    names the key only, never a path. The key is read by this process only
    (``edges.host.crypto``). A name the keyring lacks has empty paths: nothing is signed
    with it, and the sign step says why."""

    key: str
    certificate: str
    name: str = ""

    @property
    def known(self) -> bool:
        return bool(self.key and self.certificate)


@dataclass(frozen=True)
class ModuleSignature:
    """What the appended signature says, and where the unsigned module ends."""

    signer: Signer | None  # None: signed by subject key identifier (``key_id`` holds it)
    hash_algo: str
    key_id: str  # the subject key identifier, hex, when ``signer`` is None
    unsigned_size: int  # bytes before the signature: the content that was signed
    signature: bytes  # the DER PKCS#7 SignedData


@dataclass(frozen=True)
class Certificate:
    """What a module-signing certificate says of itself."""

    signer: Signer  # its issuer and serial: how a signature made with its key names it
    subject: str
    sha256: str  # fingerprint of the DER certificate
    der: bytes


def trailer(signature_length: int) -> bytes:
    """What follows a PKCS#7 signature of ``signature_length`` bytes: the struct and marker."""
    return _INFO.pack(0, 0, PKEY_ID_PKCS7, 0, 0, signature_length) + MARKER


def signature_of(data: bytes) -> ModuleSignature | None:
    """The appended signature of a module held in memory; None if it carries none."""
    return read_signature(data[-(MAX_SIGNATURE + 64):], len(data))


def read_signature(tail: bytes, size: int) -> ModuleSignature | None:
    """As ``signature_of``, from the last bytes of a ``size``-byte file (at least the
    signature, its struct and the marker; ``MAX_SIGNATURE + 64`` is always enough)."""
    if not tail.endswith(MARKER):
        return None
    end = len(tail) - len(MARKER)
    if end < _INFO.size:
        raise InvalidSignature("the signature marker is not preceded by its header")
    algo, hash_, id_type, signer_len, key_id_len, sig_len = _INFO.unpack_from(
        tail, end - _INFO.size)
    if id_type != PKEY_ID_PKCS7:
        raise InvalidSignature(f"signature type {id_type} is not PKCS#7 ({PKEY_ID_PKCS7})")
    if algo or hash_ or signer_len or key_id_len:
        raise InvalidSignature("a PKCS#7 module signature must leave algo, hash, signer "
                               "and key id lengths zero")
    start = end - _INFO.size - sig_len
    if sig_len == 0 or start < 0:
        raise InvalidSignature(f"a signature of {sig_len} bytes does not fit in the file")
    der = bytes(tail[start:end - _INFO.size])
    signer, key_id, hash_algo = _signer_info(der)
    return ModuleSignature(signer, hash_algo, key_id, size - (len(tail) - start), der)


def certificate(data: bytes) -> Certificate:
    """A certificate from PEM (the first one) or DER bytes."""
    pem = _PEM.search(data)
    try:
        der = base64.b64decode(b"".join(pem[1].split()), validate=True) if pem else data
    except ValueError as exc:
        raise InvalidSignature("the PEM certificate is not valid base64") from exc
    tag, cert, _ = _read(der, 0)
    _expect(tag, 0x30, "certificate")
    tag, tbs, _ = _read(cert, 0)
    _expect(tag, 0x30, "tbsCertificate")
    fields = _children(tbs)
    if fields and fields[0][0] == 0xA0:  # [0] EXPLICIT version
        fields = fields[1:]
    if len(fields) < 5:
        raise InvalidSignature("the certificate is truncated")
    (serial_tag, serial), _alg, (issuer_tag, issuer), _validity, (subject_tag, subject) = (
        fields[:5])
    _expect(serial_tag, 0x02, "serial number")
    _expect(issuer_tag, 0x30, "issuer")
    _expect(subject_tag, 0x30, "subject")
    return Certificate(Signer(_name(issuer), _serial(serial)), _name(subject),
                       hashlib.sha256(der).hexdigest(), der)


# -- the DER inside --------------------------------------------------------------------------


def _signer_info(der: bytes) -> tuple[Signer | None, str, str]:
    """(signer or None, subject key id, digest algorithm) of a PKCS#7 SignedData."""
    tag, content_info, _ = _read(der, 0)
    _expect(tag, 0x30, "PKCS#7 ContentInfo")
    (oid_tag, oid), (wrap_tag, wrapped), *_ = _children(content_info) + [(0, b"")] * 2
    if oid_tag != 0x06 or _oid(oid) != _SIGNED_DATA or wrap_tag != 0xA0:
        raise InvalidSignature("the signature is not a PKCS#7 SignedData")
    tag, signed_data, _ = _read(wrapped, 0)
    _expect(tag, 0x30, "SignedData")
    parts = _children(signed_data)
    infos = [content for tag, content in parts[3:] if tag == 0x31]  # after certs/crls
    signer_infos = _children(infos[-1]) if infos else []
    if len(signer_infos) != 1 or signer_infos[0][0] != 0x30:
        raise InvalidSignature(f"expected one SignerInfo, found {len(signer_infos)}")
    fields = _children(signer_infos[0][1])
    if len(fields) < 3:
        raise InvalidSignature("the SignerInfo is truncated")
    (sid_tag, sid), (alg_tag, alg) = fields[1], fields[2]
    _expect(alg_tag, 0x30, "digest algorithm")
    alg_fields = _children(alg)
    if not alg_fields or alg_fields[0][0] != 0x06:
        raise InvalidSignature("the digest algorithm has no OID")
    digest_oid = _oid(alg_fields[0][1])
    hash_algo = _DIGESTS.get(digest_oid, digest_oid)
    if sid_tag == 0x30:  # IssuerAndSerialNumber
        sid_fields = _children(sid)
        if len(sid_fields) != 2 or sid_fields[0][0] != 0x30 or sid_fields[1][0] != 0x02:
            raise InvalidSignature("the signer's issuer and serial number cannot be read")
        return Signer(_name(sid_fields[0][1]), _serial(sid_fields[1][1])), "", hash_algo
    if sid_tag == 0x80:  # [0] IMPLICIT SubjectKeyIdentifier
        return None, sid.hex(), hash_algo
    raise InvalidSignature(f"unknown signer identifier (tag {sid_tag:#x})")


def _read(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, content, offset after it) of the DER element at ``offset``."""
    if offset + 2 > len(data):
        raise InvalidSignature("truncated DER")
    tag, length = data[offset], data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise InvalidSignature("unsupported DER length")
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
    if offset + length > len(data):
        raise InvalidSignature("truncated DER")
    return tag, data[offset:offset + length], offset + length


def _children(data: bytes) -> list[tuple[int, bytes]]:
    found: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        tag, content, offset = _read(data, offset)
        found.append((tag, content))
    return found


def _expect(tag: int, wanted: int, what: str) -> None:
    if tag != wanted:
        raise InvalidSignature(f"the {what} is not where DER puts it (tag {tag:#x})")


def _oid(data: bytes) -> str:
    if not data:
        raise InvalidSignature("an empty OID")
    parts = [min(data[0] // 40, 2), data[0] - 40 * min(data[0] // 40, 2)]
    value = 0
    for byte in data[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _serial(data: bytes) -> str:
    # DER keeps a leading zero byte for a positive number with its top bit set; modinfo
    # and openssl print the number, so it is dropped.
    if len(data) > 1 and data[0] == 0:
        data = data[1:]
    return ":".join(f"{b:02X}" for b in data)


def _name(data: bytes) -> str:
    """An X.501 Name as ``CN=...,O=...`` (most specific first, as openssl's RFC 2253)."""
    parts: list[str] = []
    for set_tag, rdn in _children(data):
        _expect(set_tag, 0x31, "name component")
        for seq_tag, attr in _children(rdn):
            _expect(seq_tag, 0x30, "name attribute")
            (oid_tag, raw_oid), (_value_tag, value) = (_children(attr) + [(0, b"")] * 2)[:2]
            _expect(oid_tag, 0x06, "name attribute type")
            dotted = _oid(raw_oid)
            parts.append(f"{_NAME_ATTRS.get(dotted, dotted)}="
                         f"{value.decode('utf-8', 'replace')}")
    return ",".join(reversed(parts))
