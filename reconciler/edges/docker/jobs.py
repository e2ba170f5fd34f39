"""One-shot containers for builds: labelled, waited for, collected, always removed.

Every container started here carries ``io.falco-reconciler.role=builder`` and an owner
label (``<hostname>:<pid>``), is removed after use, and is force-removed on the next start
if its owner process is gone (``remove_leftovers``): a crash or ``kill -9`` leaves nothing
behind for long. ``cancel`` kills every container these jobs run, so an interrupt in the
main thread ends the builds of every worker thread at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reconciler.edges.docker.protocol import ContainerEngine
from reconciler.errors import Cancelled, DockerError
from reconciler.model.artifacts import store_arch
from reconciler.model.container import BindMount

LABEL_ROLE = "io.falco-reconciler.role"
LABEL_OWNER = "io.falco-reconciler.owner"
LABEL_STEP = "io.falco-reconciler.step"
LABEL_ARTIFACT = "io.falco-reconciler.artifact"
ROLE_BUILDER = "builder"
MAX_OUTPUT_LINES = 20_000  # what a build step keeps of its output: the end, where errors are
MAX_OUTPUT_CHARS = 4 << 20


@dataclass(frozen=True)
class RunResult:
    """How a container ended: its exit code (None if it timed out) and its whole output."""

    exit_code: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def owner_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs (an owner label's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Jobs:
    """Runs labelled one-shot containers on ``engine``."""

    engine: ContainerEngine
    _live: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def architecture(self) -> str:
        """The engine's machine in store spelling (``x86_64``, ``aarch64``), '' if unsaid."""
        arch = self.engine.architecture()
        try:
            return store_arch(arch) if arch else ""
        except ValueError:
            return arch

    def image_id(self, ref: str) -> str | None:
        return self.engine.image_id(ref)

    def ensure_image(self, ref: str) -> str:
        """The id of ``ref``, pulled first if the engine does not have it."""
        found = self.engine.image_id(ref)
        if found is not None:
            return found
        try:
            return self.engine.pull(ref)
        except DockerError as exc:
            raise DockerError(f"image {ref} is not present and cannot be pulled: {exc}") from exc

    def cancel(self) -> None:
        """Refuse new containers and kill the running ones (Ctrl-C, SIGTERM)."""
        self._cancelled.set()
        with self._lock:
            live = list(self._live)
        for ident in live:
            with contextlib.suppress(DockerError):
                self.engine.kill(ident)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def run(
        self,
        image: str,
        script: str,
        *,
        mounts: Sequence[BindMount] = (),
        network: str = "none",
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
        environment: Mapping[str, str] | None = None,
        commit_to: tuple[str, Mapping[str, str]] | None = None,
    ) -> RunResult:
        """Run ``script`` with ``/bin/sh -c`` in a fresh container, wait, collect, remove.

        With ``commit_to=(repository:tag, labels)`` a container that succeeded is committed
        to that image before it is removed.
        """
        if self.cancelled:
            raise Cancelled("the build was interrupted")
        ident = self.engine.create(
            image=image, command=("/bin/sh", "-c", script),
            labels={LABEL_ROLE: ROLE_BUILDER, LABEL_OWNER: owner_label(), **(labels or {})},
            network=network, mounts=mounts, env=tuple((environment or {}).items()),
        )
        with self._lock:
            self._live.add(ident)
        try:
            return self._start_and_wait(ident, timeout, commit_to)
        finally:
            with self._lock:
                self._live.discard(ident)
            self.engine.remove(ident)

    def _start_and_wait(
        self, ident: str, timeout: float | None,
        commit_to: tuple[str, Mapping[str, str]] | None,
    ) -> RunResult:
        if self.cancelled:
            raise Cancelled("the build was interrupted")
        self.engine.start(ident)
        exit_code = self.engine.wait(ident, timeout)
        timed_out = exit_code is None
        if timed_out:
            self.engine.kill(ident)
        # Bounded: the container may have run code from headers or a source tree, and its
        # output goes to the build log and, in part, to status and alerts.
        output = self.engine.logs(ident, tail=MAX_OUTPUT_LINES)[-MAX_OUTPUT_CHARS:]
        if exit_code == 0 and commit_to is not None:
            reference, labels = commit_to
            self.engine.commit(ident, reference, labels, ("/bin/bash",))
        if self.cancelled and exit_code != 0:
            raise Cancelled("the build was interrupted")
        return RunResult(exit_code=exit_code, output=output, timed_out=timed_out)

    def remove_leftovers(self) -> int:
        """Force-remove builder containers whose owner process on this host is gone."""
        host = socket.gethostname()
        removed = 0
        for found in self.engine.containers({LABEL_ROLE: ROLE_BUILDER}):
            owner = found.label_map.get(LABEL_OWNER, "")
            owner_host, _, pid = owner.rpartition(":")
            if owner_host != host or not pid.isdigit():
                continue
            if int(pid) == os.getpid() or pid_alive(int(pid)):
                continue
            self.engine.remove(found.id)
            removed += 1
        return removed
