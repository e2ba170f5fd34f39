"""Drivers the load test kept out of the store: ``<state_dir>/quarantine/<store path>``
holds each one with its result (``.loadtest.json``) and VM log (``.vm.log``). ``status``
lists them; a later build that passes replaces nothing here (the folder is evidence)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from reconciler.edges.store import opener
from reconciler.edges.store.local import LOAD_TEST_SUFFIX, Store
from reconciler.loadtest.result import LoadTestResult, Outcome
from reconciler.model.artifacts import ArtifactKey, DriverKind, parse_relpath


def folder(state_dir: Path) -> Path:
    return state_dir / "quarantine"


def listed(state_dir: Path) -> list[dict[str, object]]:
    """Each quarantined driver: its store path, when, and the result's reasons."""
    root = folder(state_dir)
    found: list[dict[str, object]] = []
    for path in sorted(root.rglob(f"*{LOAD_TEST_SUFFIX}")) if root.is_dir() else ():
        try:
            result = LoadTestResult.from_json(json.loads(path.read_text(encoding="utf-8")))
            at = path.stat().st_mtime
        except (OSError, ValueError, AttributeError):
            continue
        found.append({"path": path.relative_to(root).as_posix().removesuffix(LOAD_TEST_SUFFIX),
                      "at": at, "result": str(result.outcome), "reasons": list(result.reasons),
                      "vmLog": str(path.with_name(path.name.removesuffix(LOAD_TEST_SUFFIX)
                                                  + ".vm.log"))})
    return found


def _read(path: Path) -> LoadTestResult | None:
    try:
        return LoadTestResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError):
        return None


def held_back(state_dir: Path, keys: Iterable[ArtifactKey]) -> list[tuple[ArtifactKey, str]]:
    """Each of ``keys`` in quarantine, with one line saying why (the result's first reason)."""
    root = folder(state_dir)
    if not root.is_dir():
        return []
    found = []
    for key in keys:
        result = _read(root / (key.relpath + LOAD_TEST_SUFFIX))
        if result is not None:
            found.append((key, result.one_line()))
    return found


def unreadable(store: Store, key: ArtifactKey | None
               ) -> list[tuple[ArtifactKey, str, tuple[str, ...]]]:
    """What ``key``'s stored result says a userspace cannot read: the driver loads, and
    its tested userspace (``loaded``) or an older Falco's (a ``loaded`` userspace check)
    cannot read it on that kernel. Each with that userspace's libs version and reasons."""
    if key is None:
        return []
    path = store.path_of(key)
    result = _read(path.with_name(path.name + LOAD_TEST_SUFFIX))
    if result is None:
        return []
    found = [(key, result.libs_version, result.reasons)] \
        if result.outcome is Outcome.LOADED else []
    return found + [(key, check.libs_version, check.reasons) for check in result.userspaces
                    if check.outcome is Outcome.LOADED]


def unreadable_in(store: Store, driver_version: str, kind: DriverKind
                  ) -> list[tuple[ArtifactKey, str, tuple[str, ...]]]:
    """``unreadable`` for every stored ``kind`` driver of ``driver_version`` (any kernel,
    any arch): what ``validate`` tells a Host of, before any plan."""
    found: list[tuple[ArtifactKey, str, tuple[str, ...]]] = []
    if not opener.safe_part(driver_version):
        return found
    folder = store.root / driver_version
    suffix = kind.suffix + LOAD_TEST_SUFFIX
    for path in sorted(folder.glob(f"*/*{suffix}")) if folder.is_dir() else ():
        key = parse_relpath(path.relative_to(store.root).as_posix().removesuffix(
            LOAD_TEST_SUFFIX))
        if key is not None:
            found += unreadable(store, key)
    return found


def results(artifacts: Iterable[tuple[str, Path]]) -> list[dict[str, object]]:
    """Each stored artifact's load test (``status``): its result beside it, else none,
    with the runs of older Falcos' userspaces."""
    listed_: list[dict[str, object]] = []
    for relpath, path in artifacts:
        result = _read(path.with_name(path.name + LOAD_TEST_SUFFIX))
        listed_.append({"path": relpath, "result": str(result.outcome) if result else "none",
                        "summary": result.one_line() if result else "not load-tested here",
                        "userspaces": [c.to_json() for c in result.userspaces]
                        if result else []})
    return listed_


class LoadTestFiles:
    """The ``observe.sources.LoadTestReader`` over the state dir's quarantine folder and
    the results beside the store's drivers."""

    def __init__(self, state_dir: Path, store: Store) -> None:
        self.state_dir = state_dir
        self.store = store

    def held_back(self, keys: Iterable[ArtifactKey]) -> list[tuple[ArtifactKey, str]]:
        return held_back(self.state_dir, keys)

    def unreadable(self, key: ArtifactKey | None
                   ) -> list[tuple[ArtifactKey, str, tuple[str, ...]]]:
        return unreadable(self.store, key)
