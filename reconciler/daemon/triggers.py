"""The triggers that wake the loop, each in its own thread, each only calling ``wake``.

- ``GitRefWatch``: inotify (watchdog) on a local repository's refs, ``HEAD`` and
  ``packed-refs``, so a ``git push`` into the host's own (bare) repository is seen at once.
- ``StoreWatch``: an artifact deleted, overwritten or moved away in the store (drift).
  Reads (the server sending files) and our own atomic publishes (a rename of a
  ``.partial-`` temp) are not drift and are ignored.
- ``KernelWatch`` (in ``FileWatches``): a kernel installed or removed under the host root
  (``boot/``, ``lib/modules/``, ``usr/lib/modules/``), so the driver for a kernel that
  ``apt upgrade`` just installed is built before anyone reboots into it. The package
  manager's own temp names (``*.dpkg-new``, ``*.dpkg-tmp``, rpm's ``;<hex>``) are ignored:
  the rename to the real name is what counts.
- ``DockerEvents``: our Falco container died, was removed, renamed or ``docker update``d.
  The stream is reopened after the engine went away (a restarted dockerd), and the
  reconnection itself wakes the loop, since events may have been missed meanwhile.

The poll timer and SIGHUP live in the loop; the webhook in ``webhook``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog import events
from watchdog.observers import Observer

from reconciler import logs
from reconciler.daemon.wakeup import Wakeup
from reconciler.edges import atomic
from reconciler.edges.docker.protocol import ContainerEngine, EventSource
from reconciler.errors import ReconcilerError
from reconciler.model import container

log = logs.get(__name__)

_CHANGES = (events.FileDeletedEvent, events.DirDeletedEvent, events.FileModifiedEvent,
            events.FileClosedEvent, events.FileMovedEvent, events.DirMovedEvent,
            events.FileCreatedEvent)


def _text(path: bytes | str) -> str:
    return path.decode(errors="replace") if isinstance(path, bytes) else path


class _GitRefs(events.FileSystemEventHandler):
    def __init__(self, wakeup: Wakeup) -> None:
        self.wakeup = wakeup

    def on_any_event(self, event: events.FileSystemEvent) -> None:
        if not isinstance(event, _CHANGES):
            return
        where = _text(event.dest_path if isinstance(event, events.FileSystemMovedEvent)
                      else event.src_path)
        name = Path(where).name
        if name.endswith(".lock") or atomic.is_partial(name):
            return
        if event.is_directory and not isinstance(event, events.DirMovedEvent
                                                 | events.DirDeletedEvent):
            return
        self.wakeup.wake("git")


class _StoreChanges(events.FileSystemEventHandler):
    def __init__(self, wakeup: Wakeup) -> None:
        self.wakeup = wakeup

    def on_any_event(self, event: events.FileSystemEvent) -> None:
        if not isinstance(event, _CHANGES) or isinstance(event, events.FileCreatedEvent):
            return
        if event.is_directory and not isinstance(event, events.DirDeletedEvent
                                                 | events.DirMovedEvent):
            return  # a folder's mtime moves with every file published in it
        if atomic.is_partial(Path(_text(event.src_path)).name):
            return
        self.wakeup.wake("store", at=time.time())


# The package managers' temp names while they unpack a file in place.
_PACKAGE_TEMP = (".dpkg-new", ".dpkg-tmp", ".dpkg-old", ".rpmnew", ".rpmsave")


class _KernelChanges(events.FileSystemEventHandler):
    """``boot/`` (images and configs) and the modules folders (one folder per release)."""

    def __init__(self, wakeup: Wakeup) -> None:
        self.wakeup = wakeup

    def on_any_event(self, event: events.FileSystemEvent) -> None:
        if not isinstance(event, (*_CHANGES, events.DirCreatedEvent)) or isinstance(
                event, events.FileModifiedEvent):
            return
        where = _text(event.dest_path if isinstance(event, events.FileSystemMovedEvent)
                      else event.src_path)
        name = Path(where).name
        if name.endswith(_PACKAGE_TEMP) or ";" in name or atomic.is_partial(name):
            return
        # Not ``at=``: our own passes write nothing there, so an install during a pass
        # must still wake the next one.
        self.wakeup.wake("kernel")


# Where installed kernels live under a host root (edges.host.kernels reads them).
KERNEL_FOLDERS = ("boot", "lib/modules", "usr/lib/modules")


class FileWatches:
    """One inotify thread for the git refs (local repositories only) and the store."""

    def __init__(self, wakeup: Wakeup) -> None:
        self.wakeup = wakeup
        self._observer = Observer(timeout=1.0)
        self.watching: list[str] = []

    def git_refs(self, git_dir: Path) -> None:
        handler = _GitRefs(self.wakeup)
        self._observer.schedule(handler, str(git_dir), recursive=False)
        if (git_dir / "refs").is_dir():
            self._observer.schedule(handler, str(git_dir / "refs"), recursive=True)
        self.watching.append(str(git_dir))

    def store(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._observer.schedule(_StoreChanges(self.wakeup), str(root), recursive=True)
        self.watching.append(str(root))

    def kernels(self, host_root: Path) -> None:
        """The host root's kernel folders that exist (a folder made later is not seen: a
        host without ``boot/`` now installs no kernel there without a reboot of ours)."""
        handler = _KernelChanges(self.wakeup)
        for rel in KERNEL_FOLDERS:
            folder = host_root / rel
            if folder.is_dir() and not folder.is_symlink():
                self._observer.schedule(handler, str(folder), recursive=False)
                self.watching.append(str(folder))

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=5)


DRIFT_EVENTS = ("die", "destroy", "update", "rename")


class DockerEvents:
    """Follows the engine's events for our containers; reconnects after the engine left."""

    def __init__(self, wakeup: Wakeup, connect: Callable[[], ContainerEngine],
                 retry: float = 1.0) -> None:
        self.wakeup = wakeup
        self.connect = connect
        self.retry = retry
        self._stop = threading.Event()
        self._stream: EventSource | None = None
        self._client: ContainerEngine | None = None
        self._thread = threading.Thread(target=self._run, name="docker-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                self._client = self.connect()
                self._stream = self._client.events({
                    "type": "container", "event": list(DRIFT_EVENTS),
                    "label": [f"{container.LABEL_MANAGED}=true"],
                })
                if lost:
                    log.info("docker.events.reconnected")
                    self.wakeup.wake("docker-reconnected")
                    lost = False
                for event in self._stream:
                    at = event.get("timeNano", 0) / 1e9 or float(event.get("time", 0))
                    name = (event.get("Actor") or {}).get("Attributes", {}).get("name", "")
                    log.debug("docker.event", action=event.get("Action"), container=name)
                    self.wakeup.wake(f"docker:{event.get('Action')}", at=at)
            except ReconcilerError as exc:
                if not self._stop.is_set() and not lost:
                    log.warning("docker.events.lost", error=str(exc))
            finally:
                self._close()
            if not self._stop.is_set():
                lost = True
                self._stop.wait(self.retry)

    def _close(self) -> None:
        stream, client = self._stream, self._client
        self._stream = self._client = None
        for thing in (stream, client):
            if thing is not None:
                with contextlib.suppress(ReconcilerError):
                    thing.close()

    def stop(self) -> None:
        self._stop.set()
        self._close()
        self._thread.join(timeout=5)
