"""The state files a plan reads, under the state folder: the build queue other hosts
filled (``buildqueue``) and retention's ledger (``ledger``), as the observe stage's
Protocols (``observe.sources.QueueReader``, ``LedgerBook``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.edges.state import buildqueue, ledger
from reconciler.model.buildrequests import Requested
from reconciler.model.ledger import Ledger


@dataclass(frozen=True)
class QueueFile:
    state_dir: Path

    def requested(self) -> tuple[tuple[Requested, tuple[str, ...]], ...]:
        return buildqueue.read(self.state_dir).requested()


@dataclass(frozen=True)
class LedgerFile:
    state_dir: Path

    def read(self) -> Ledger:
        return ledger.read(self.state_dir)

    def write(self, book: Ledger) -> None:
        ledger.write(self.state_dir, book)
