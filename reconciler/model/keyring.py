"""The host's own trust settings, parsed: its module-signing keyring, the address ranges a
``kernelUrls`` download may reach, and the index keys it trusts.

- ``signing_keys``: ``{name: {key: /abs/path, certificate: /abs/path}}``. A manifest names
  a key (``signing: {key: mok}``); only the host says where its files are.
- ``kernel_url_allow``: CIDR ranges a ``kernelUrls`` download may reach although they are
  loopback, link-local, private-use or cloud metadata (``model.netpolicy``).
- ``trusted_keys``: pinned ``ed25519:<base64>`` public keys whose signed indexes make
  fetched bytes publishable (``model.trustindex``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from reconciler.errors import FleetSettingError
from reconciler.model.modsig import Signing

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_signing_keys(value: Any, origin: str) -> tuple[Signing, ...]:
    """``{name: {key, certificate}}`` (absolute paths) as named ``Signing`` pairs."""
    if not isinstance(value, Mapping):
        raise FleetSettingError(f"{origin}: signing_keys must map key names to "
                                "{key: /path, certificate: /path}")
    found = []
    for name, entry in value.items():
        where = f"{origin}: signing_keys.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise FleetSettingError(f"{where}: a key name is letters, digits and . _ -, "
                                    "a letter or digit first, at most 64 characters")
        if not isinstance(entry, Mapping) or set(entry) != {"key", "certificate"}:
            raise FleetSettingError(f"{where}: expected {{key: /path, certificate: /path}}")
        paths = [entry["key"], entry["certificate"]]
        if not all(isinstance(p, str) and p.startswith("/") for p in paths):
            raise FleetSettingError(f"{where}: key and certificate must be absolute paths")
        found.append(Signing(paths[0], paths[1], name))
    return tuple(found)


def parse_networks(value: Any, origin: str) -> tuple[Network, ...]:
    """A list (or comma-separated text) of CIDR ranges."""
    entries = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) \
        else value
    if not isinstance(entries, list | tuple):
        raise FleetSettingError(f"{origin}: expected a list of CIDR ranges, got {value!r}")
    try:
        return tuple(ipaddress.ip_network(str(e), strict=False) for e in entries)
    except ValueError as exc:
        raise FleetSettingError(f"{origin}: {exc}") from exc


def parse_public_keys(value: Any, origin: str) -> tuple[str, ...]:
    """A list (or comma-separated text) of ``ed25519:<base64 of 32 bytes>`` keys."""
    entries = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) \
        else value
    if not isinstance(entries, list | tuple):
        raise FleetSettingError(f"{origin}: trusted_keys must be a list, got {value!r}")
    for entry in entries:
        kind, _, body = str(entry).partition(":")
        try:
            raw = base64.b64decode(body, validate=True)
        except binascii.Error:
            raw = b""
        if kind != "ed25519" or len(raw) != 32:
            raise FleetSettingError(f"{origin}: trusted_keys: expected ed25519:<base64 of 32 "
                                    f"bytes>, got {entry!r}")
    return tuple(str(e) for e in entries)
