"""packaging/requirements.lock against pyproject.toml: the Debian package installs the lock
alone (``--no-deps --require-hashes``), so a dependency added to pyproject.toml but not
locked would be missing from the package, and one locked outside its range would be a
version never allowed. ``packaging/lock`` regenerates it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from tests.packaging import lock

ROOT = Path(__file__).resolve().parents[2]


def test_every_dependency_is_locked_within_its_range_with_hashes() -> None:
    pins = lock.pins()
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in wanted:
        requirement = Requirement(line)
        name = lock.normalised(requirement.name)
        assert name in pins, f"{name} is not in {lock.LOCK}: run packaging/lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} is outside {requirement.specifier}: run packaging/lock")
    text = lock.LOCK.read_text()
    assert text.count("==") == len(pins) and text.count("--hash=sha256:") >= len(pins)
