"""A manifest problem before it has a line: a document and a key path inside it."""

from __future__ import annotations

from dataclasses import dataclass

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """A problem before it has a line: a document and a key path inside it.

    ``line`` is set when the parser already knows it (syntax errors). A message naming a
    second location says ``{other}``, filled in with that location's ``file:line``.
    """

    file: str
    document: int
    path: KeyPath
    message: str
    line: int = 0
    other: tuple[str, int, KeyPath] | None = None
