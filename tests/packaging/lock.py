"""What packaging/requirements.lock pins (``name==version``, names normalised)."""

from __future__ import annotations

import re
from pathlib import Path

LOCK = Path(__file__).resolve().parents[2] / "packaging" / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    found = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        matched = _PIN.match(line)
        if matched:
            found[normalised(matched[1])] = matched[2]
    return found


def pinned() -> list[str]:
    return [f"{name}=={version}" for name, version in pins().items()]
