"""Drivers the load test kept out of the store: ``<state_dir>/quarantine/<store path>``
holds each one with its result (``.loadtest.json``) and VM log (``.vm.log``). ``status``
lists them; a later build that passes replaces nothing here (the folder is evidence)."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.edges.store.local import LOAD_TEST_SUFFIX
from reconciler.loadtest.result import LoadTestResult


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
