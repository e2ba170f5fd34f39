"""Retention: which stored artifacts go, once nothing has wanted them for a grace period.

Pure: the store's files, what is wanted and named, the ledger of earlier passes and the
time come in; what to delete, what is kept and until when, and the next ledger go out.

An artifact is never deleted while the desired state wants it (a Host's running or
installed kernels, a DriverBuild of this host) or while any manifest names it (every
DriverBuild's keys, whichever hosts it matches, and every Host's listed ``kernels``).
Nor while it belongs to the previous kernel: of the host kernels whose drivers were
wanted before and are no longer, the one(s) wanted most recently keep theirs, so a
fallback boot into the kernel just replaced still finds its driver. Anything else is
unwanted from the first pass that sees it so (the ledger remembers when, across
restarts) and is deleted once the grace period has passed since then; an artifact wanted
again in between starts afresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from reconciler import desired
from reconciler.manifests.models import ManifestSet
from reconciler.model.artifacts import ArtifactKey
from reconciler.model.ledger import KernelSeen, Ledger

KEEP_KERNELS = 16  # host kernels remembered: far more than GRUB's menu offers


@dataclass(frozen=True)
class Review:
    expired: tuple[tuple[ArtifactKey, dt.datetime], ...]  # delete: unwanted since
    kept: tuple[tuple[ArtifactKey, dt.datetime], ...]  # unwanted, kept until
    previous: tuple[tuple[ArtifactKey, str], ...]  # the previous kernel's (its release)
    ledger: Ledger  # to write once the pass has applied
    grace: dt.timedelta


def named(manifests: ManifestSet, keys_of: desired.KeysOf) -> frozenset[str]:
    """Store paths any manifest names itself, on whichever host it applies."""
    paths = {key.relpath for build in manifests.builds for key in keys_of(build.value)}
    paths.update(key.relpath for host in manifests.hosts
                 for key in desired.listed_artifacts(host.value))
    return frozenset(paths)


def host_kernels(want: desired.DesiredState) -> dict[str, tuple[str, ...]]:
    """The host's kernels whose drivers are wanted now: ``uname -r`` -> store paths."""
    found: dict[str, list[str]] = {}
    for release, key in want.host_kernels:
        paths = found.setdefault(release, [])
        if key.relpath not in paths:
            paths.append(key.relpath)
    return {release: tuple(paths) for release, paths in found.items()}


def review(
    *, stored: Iterable[ArtifactKey], wanted: Collection[str], named: Collection[str],
    kernels: Mapping[str, tuple[str, ...]], ledger: Ledger, now: dt.datetime,
    grace: dt.timedelta,
) -> Review:
    """Judge every stored artifact (by store path) against what is wanted, named and
    remembered; ``kernels`` are the host's kernels whose drivers are wanted now."""
    history = {k.release: k for k in ledger.kernels}
    for release, paths in kernels.items():
        history[release] = KernelSeen(release, now, paths)
    remembered = sorted(history.values(), key=lambda k: (k.last_wanted, k.release),
                        reverse=True)[:KEEP_KERNELS]
    gone = [k for k in remembered if k.release not in kernels]
    previous_of: dict[str, str] = {}
    if gone:
        latest = gone[0].last_wanted
        for kernel in gone:
            if kernel.last_wanted == latest:
                previous_of.update(dict.fromkeys(kernel.artifacts, kernel.release))
    expired: list[tuple[ArtifactKey, dt.datetime]] = []
    kept: list[tuple[ArtifactKey, dt.datetime]] = []
    previous: list[tuple[ArtifactKey, str]] = []
    unwanted: dict[str, dt.datetime] = {}
    for key in sorted(stored):
        path = key.relpath
        if path in wanted or path in named:
            continue
        if path in previous_of:
            previous.append((key, previous_of[path]))
            continue
        since = ledger.unwanted_since.get(path, now)
        unwanted[path] = since
        if now - since >= grace:
            expired.append((key, since))
        else:
            kept.append((key, since + grace))
    return Review(tuple(expired), tuple(kept), tuple(previous),
                  Ledger(unwanted, tuple(remembered)), grace)


def when(at: dt.datetime) -> str:
    """A moment as plans show it: ``2025-06-01 12:00 UTC``."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def span(grace: dt.timedelta) -> str:
    """A grace period as plans show it: ``7d``, ``36h``, ``90m``, ``45s``."""
    seconds = int(grace.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
