"""Fixtures for the daemon tests: a bare repository on the host, a store with a
pre-published stand-in driver, and ``reconciler run`` as a real child process.

What stands in for what (as in tests/commands): Falco's image is the session's stand-in
of that release (tests/support/standin.py: its entrypoint, driver loader and Falco behave
as the real image's, and like Falco it exits at once on SIGTERM); the kernel's module
state is the stand-in kernel (tests/support/standin_kernel.py), rebooted for each test;
the driver is a stand-in file published where the build would put it (this machine's
kernel has no headers package, so it cannot be built here); ``--privileged false``
because this engine cannot grant every capability.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from reconciler.edges.docker import jobs
from reconciler.edges.store import local as store
from reconciler.model.artifacts import ArtifactKey, DriverKind
from tests.conftest import GitRepo, _git
from tests.support import falcohost
from tests.support.kernelpkg import Unpacked
from tests.support.standin_kernel import StandinKernel

ROOT = Path(__file__).resolve().parents[2]


def host_yaml(name: str, image: str, version: str = "0.32.2", driver: str = "kmod",
              env: dict[str, str] | None = None, extra: str = "") -> str:
    return falcohost.host_yaml(version, driver, env, name=name, image=image, extra=extra)


BROKEN_YAML = (
    "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec:\n"
    "  falco:\n    version: 0.32.2\n    driver: warp-drive\n"
)


class Daemon:
    """``reconciler run`` in a child process, with its status file to look at."""

    def __init__(self, args: list[str], state_dir: Path, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.args, self.state_dir, self.log = args, state_dir, log
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reconciler.cli", "--log-format", "json", "run",
                 *self.args], stdout=out, stderr=out, env=self.env, cwd=ROOT)
        return self

    def status(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.state_dir / "status.json").read_text())
        except FileNotFoundError:
            return {}
        return data

    def wait_for(self, what: Callable[[dict[str, Any]], bool], timeout: float = 60.0,
                 why: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.status()
            if current and what(current):
                return current
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {why or what}; status:\n"
                             f"{json.dumps(self.status(), indent=1)}\nlog:\n{self.tail()}")

    def applied(self, revision: str, timeout: float = 60.0) -> dict[str, Any]:
        return self.wait_for(
            lambda s: s.get("appliedRevision") == revision and s.get("phase") == "idle"
            and (s.get("lastPass") or {}).get("result") == "ok",
            timeout, f"revision {revision[:12]} applied")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


def manifest_repo(tmp: Path) -> tuple[Path, GitRepo]:
    """A bare repository hosts follow (branch main), and a clone to push to it from."""
    bare = tmp / "manifests.git"
    bare.mkdir()
    _git(bare, "init", "-q", "--bare", "-b", "main")
    work = GitRepo(tmp / "work")
    work.git("remote", "add", "origin", str(bare))
    return bare, work


class Site:
    """A host under test: a bare repository it follows, a clone to push from, a store."""

    def __init__(self, tmp: Path, client: Any, image: str) -> None:
        self.tmp, self.client, self.image = tmp, client, image
        self.name = f"falco-daemon-{uuid.uuid4().hex[:8]}"
        self.bare, self.work = manifest_repo(tmp)
        self.store = store.Store(tmp / "store")
        self.state_dir = tmp / "state"
        self.daemons: list[Daemon] = []
        # A fixed port, as in a real config: Falco's DRIVERS_REPO must not move when the
        # daemon restarts, or every restart would replace Falco.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])

    def push(self, files: dict[str, str], message: str = "change", force: bool = False) -> str:
        revision = self.work.commit(files, message)
        self.work.git("push", "-q", *(["--force"] if force else []), "origin", "HEAD:main")
        return revision

    def publish_driver(self, version: str = "0.32.2",
                       kind: DriverKind = DriverKind.KMOD) -> ArtifactKey:
        return falcohost.publish_standin_driver(self.store, Path("/"), version, kind)

    def args(self, *extra: str) -> list[str]:
        return ["--repo", str(self.bare), "--host-root", "/", "--hostname", "web-1",
                "--store", str(self.store.root), "--state-dir", str(self.state_dir),
                "--listen", f"127.0.0.1:{self.port}", "--privileged", "false", "--settle", "0.5",
                "--stop-timeout", "2", "--poll-interval", "30",
                "--base-image", "falco-reconciler/no-such-base-image:0", *extra]

    def daemon(self, *extra: str, env: dict[str, str] | None = None) -> Daemon:
        made = Daemon(self.args(*extra), self.state_dir, self.tmp / "daemon.log", env)
        self.daemons.append(made)
        return made.start()

    def containers(self) -> list[Any]:
        """Every container of this site: the Falco and anything set aside beside it."""
        found = self.client.containers.list(all=True, filters={"name": self.name})
        return [c for c in found if c.name.startswith(self.name)]

    def falco(self) -> Any:
        return self.client.containers.get(self.name)

    def cleanup(self) -> None:
        for made in self.daemons:
            if made.proc is not None and made.proc.poll() is None:
                with contextlib.suppress(Exception):
                    made.stop(timeout=20)
        for item in self.containers():
            with contextlib.suppress(docker.errors.NotFound):
                item.remove(force=True)


@pytest.fixture
def site(tmp_path: Path, docker_client: Any, standins: Any, kernel: Any) -> Iterator[Site]:
    standins.falco("0.32.2")
    made = Site(tmp_path, docker_client, standins.falco_repository)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def booted(kernel: StandinKernel) -> Iterator[StandinKernel]:
    """The stand-in kernel, given back to the session as this machine's kernel after."""
    saved = kernel.release, kernel.version
    yield kernel
    kernel.release, kernel.version = saved
    kernel.reboot()


def boot(root: Path, kernel: StandinKernel, into: Unpacked) -> None:
    """The host root and the stand-in kernel as they are once ``into`` runs."""
    (root / "proc/sys/kernel/osrelease").write_text(into.release + "\n")
    (root / "proc/sys/kernel/version").write_text(into.uname_version + "\n")
    kernel.release, kernel.version = into.release, into.uname_version
    kernel.reboot()


def builders_started(client: Any, since: float, pid: int) -> int:
    """Builder containers the daemon of ``pid`` created since ``since`` (by our labels: the
    engine is shared with other runs)."""
    return sum(1 for _ in client.events(
        since=f"{since:.9f}", until=f"{time.time() + 0.5:.9f}", decode=True,
        filters={"type": "container", "event": "create", "label": [
            f"{jobs.LABEL_ROLE}={jobs.ROLE_BUILDER}",
            f"{jobs.LABEL_OWNER}={socket.gethostname()}:{pid}"]}))
