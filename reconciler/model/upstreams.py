"""Where drivers come from besides our own builds, and where events go: fleet settings.

``Upstream``: a driver repository to fetch from, in order: another reconciler (its
``index.json`` states each artifact's sha256, apiVersion and schemaVersion) or any Falco
driver repository in the store layout (download.falco.org, a mirror behind nginx). An
upstream that is a build host may also take build requests (``build_requests``), signed
with the shared secret in ``secret_file``. ``BuildPolicy``: whether this host builds what
no upstream has. ``AlertTarget``: a URL that gets a JSON event when something needs a
person. Parsed from the config file's lists (``parse_upstreams``, ``parse_alerts``), or
from a comma-separated ``--upstreams``/``--alerts`` text.
"""

from __future__ import annotations

import enum
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from reconciler.errors import FleetSettingError
from reconciler.model.urls import has_credentials, redacted


class UpstreamKind(enum.StrEnum):
    RECONCILER = "reconciler"  # another reconciler: its index.json gives sha256 and identity
    REPOSITORY = "repository"  # any Falco driver repository in the store layout


class Trust(enum.StrEnum):
    """What makes an upstream's bytes publishable (``model.trustindex``)."""

    SIGNED = "signed"  # a trusted, unexpired signed index covers its path and sha256 (default)
    CHECKSUM = "checksum"  # an upstream that signs nothing: its own .sha256 and ELF checks


class BuildPolicy(enum.StrEnum):
    MISSING = "missing"  # build what no upstream has (default)
    NEVER = "never"  # hosts without a builder: the plan reports what no upstream has
    ALWAYS = "always"  # build hosts: never fetch


class AlertFormat(enum.StrEnum):
    GENERIC = "generic"  # {"event": ..., "host": ..., "message": ..., ...}
    SLACK = "slack"  # Slack's incoming webhook: {"text": ...}


DEFAULT_TIMEOUT = 10.0
# A module is a few MB: five minutes is a slow link's worth, not a dripping server's.
DEFAULT_DEADLINE = 300.0




@dataclass(frozen=True)
class Upstream:
    url: str  # the repository's base URL, http(s), without a trailing slash
    kind: UpstreamKind = UpstreamKind.REPOSITORY
    headers: tuple[tuple[str, str], ...] = ()  # extra HTTP headers on every request
    basic_auth_file: Path | None = None  # a file holding "user:password"
    ca_bundle: Path | None = None  # PEM file of the CAs to trust for https
    timeout: float = DEFAULT_TIMEOUT  # seconds per connect/read
    deadline: float = DEFAULT_DEADLINE  # seconds for each whole request, body included
    build_requests: bool = False  # a build host that takes our build requests
    secret_file: Path | None = None  # the HMAC secret those requests are signed with
    trust: Trust = Trust.SIGNED
    # fetch only what its index says passed a load test on the host that ran it
    require_tested: bool = False

    @property
    def name(self) -> str:
        """How plans and logs name it: its host[:port] and path."""
        parts = urllib.parse.urlsplit(self.url)
        return parts.netloc.rpartition("@")[2] + parts.path  # never a password


@dataclass(frozen=True)
class AlertTarget:
    url: str
    format: AlertFormat = AlertFormat.GENERIC


_UPSTREAM_KEYS = {"url", "kind", "headers", "basic_auth_file", "ca_bundle", "timeout",
                  "deadline", "build_requests", "secret_file", "trust",
                  "require_tested"}


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise FleetSettingError(f"{where}: url must be text, got {value!r}")
    parts = urllib.parse.urlsplit(value.strip())
    shown = redacted(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FleetSettingError(f"{where}: url must be http(s)://host[:port][/path], got {shown!r}")
    if has_credentials(value):
        raise FleetSettingError(f"{where}: url must hold no user or password, got {shown!r}; "
                                "give them as basic_auth_file (or a header) instead")
    if parts.query or parts.fragment:
        raise FleetSettingError(f"{where}: url must have no query or fragment, got {shown!r}")
    return value.strip().rstrip("/")


_E = TypeVar("_E", bound=enum.StrEnum)


def _choice(kind: type[_E], value: Any, where: str) -> _E:
    """One of ``kind``'s values, or an error naming them (``where`` must be ...)."""
    try:
        return kind(value)
    except ValueError:
        names = [str(v) for v in kind]
        raise FleetSettingError(f"{where} must be {', '.join(names[:-1])} or {names[-1]}, "
                                f"got {value!r}") from None


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise FleetSettingError(f"{where} must be true or false, got {value!r}")


def _upstream(entry: Any, where: str) -> Upstream:
    if isinstance(entry, str):
        return Upstream(_url(entry, where))
    if not isinstance(entry, Mapping):
        raise FleetSettingError(f"{where}: expected a URL or a mapping with url, got "
                                f"{redacted(repr(entry))}")
    unknown = sorted(set(entry) - _UPSTREAM_KEYS)
    if unknown:
        raise FleetSettingError(f"{where}: unknown key {unknown[0]!r}; known: "
                                f"{', '.join(sorted(_UPSTREAM_KEYS))}")
    if "url" not in entry:
        raise FleetSettingError(f"{where}: url is required")
    kind = _choice(UpstreamKind, entry.get("kind", UpstreamKind.REPOSITORY), f"{where}: kind")
    headers = entry.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and "\n" not in k + v and "\r" not in k + v
            and k.strip() and ":" not in k for k, v in headers.items()):
        raise FleetSettingError(f"{where}: headers must map header names to one-line text values")
    timeout = entry.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise FleetSettingError(f"{where}: timeout must be seconds in (0, 3600], got {timeout!r}")
    deadline = entry.get("deadline", DEFAULT_DEADLINE)
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) or not (
            timeout <= deadline <= 86400):
        raise FleetSettingError(f"{where}: deadline must be seconds in [timeout, 86400], got "
                                f"{deadline!r}")
    paths = {}
    for key in ("basic_auth_file", "ca_bundle", "secret_file"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value.startswith("/")):
            raise FleetSettingError(f"{where}: {key} must be an absolute path, got {value!r}")
        paths[key] = Path(value) if value else None
    build_requests = _bool(entry.get("build_requests", False), f"{where}: build_requests")
    if build_requests and paths["secret_file"] is None:
        raise FleetSettingError(f"{where}: build_requests needs secret_file (the build "
                                "host's shared secret)")
    return Upstream(
        url=_url(entry["url"], where), kind=kind,
        headers=tuple(sorted((str(k), str(v)) for k, v in headers.items())),
        basic_auth_file=paths["basic_auth_file"], ca_bundle=paths["ca_bundle"],
        timeout=float(timeout), deadline=float(deadline), build_requests=build_requests,
        secret_file=paths["secret_file"],
        trust=_choice(Trust, entry.get("trust", Trust.SIGNED), f"{where}: trust"),
        require_tested=_bool(entry.get("require_tested", False), f"{where}: require_tested"),
    )


def falco_mirrors(upstreams: tuple[Upstream, ...]) -> tuple[str, ...]:
    """The upstreams Falco's own loader can download from after our server
    (``falco_upstreams``): repositories it reaches as they are. Falco's loaders send no
    headers or basic auth of ours and trust only the image's CAs, and they split the list
    on commas (the bash loader on spaces too), so an upstream that needs any of that, or
    whose URL holds such a character, is ours to fetch from, never Falco's."""
    return tuple(
        u.url for u in upstreams
        if u.kind is UpstreamKind.REPOSITORY and not u.headers and u.basic_auth_file is None
        and u.ca_bundle is None and not any(c in u.url for c in ", \t"))


def parse_upstreams(value: Any, origin: str) -> tuple[Upstream, ...]:
    """A list of URLs or mappings (the config file), or comma-separated URLs (a flag or a
    variable); raises ValueError naming ``origin`` and the entry."""
    entries = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(entries, list | tuple):
        raise FleetSettingError(f"{origin}: upstreams must be a list, got {redacted(repr(value))}")
    return tuple(_upstream(e, f"{origin}: upstreams[{i}]") for i, e in enumerate(entries))


def parse_alerts(value: Any, origin: str) -> tuple[AlertTarget, ...]:
    """A list of URLs or ``{url, format: generic|slack}`` mappings, or comma-separated URLs."""
    entries = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(entries, list | tuple):
        raise FleetSettingError(f"{origin}: alerts must be a list, got {redacted(repr(value))}")
    found = []
    for i, entry in enumerate(entries):
        where = f"{origin}: alerts[{i}]"
        if isinstance(entry, str):
            found.append(AlertTarget(_url(entry, where)))
            continue
        if not isinstance(entry, Mapping) or "url" not in entry or set(entry) - {"url", "format"}:
            raise FleetSettingError(f"{where}: expected a URL or {{url, format}}, got "
                                    f"{redacted(repr(entry))}")
        form = _choice(AlertFormat, entry.get("format", AlertFormat.GENERIC),
                       f"{where}: format")
        found.append(AlertTarget(_url(entry["url"], where), form))
    return tuple(found)
