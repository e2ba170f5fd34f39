"""Shared fixtures: real git repositories, fake host roots, and the real Docker engine.

Tests that need Docker skip when no engine answers, except under CI (CI=true), where a
missing engine is a broken CI machine and must fail loudly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from reconciler.edges.docker import client as docker_edge
from reconciler.edges.docker.client import Docker
from reconciler.errors import DockerUnavailable
from tests.support import kernelpkg

# The load tests' one session build, shared by tests/loadtest and tests/commands (a fixture
# imported into two conftests would be built twice).
from tests.support.loadtest import built  # noqa: F401 - registered here as a fixture
from tests.support.standin import Standins
from tests.support.standin_kernel import StandinKernel

DOCKER_SOCK = "unix:///run/reconciler-ci/docker.sock"


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


class GitRepo:
    """A real git repository in a temp folder, driven through the git CLI like a user would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        _git(path, "init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return _git(self.path, *args)

    def write(self, relpath: str, text: str) -> None:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def commit(self, files: dict[str, str] | None = None, message: str = "change") -> str:
        for relpath, text in (files or {}).items():
            self.write(relpath, text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "manifests")


@pytest.fixture
def make_host_root(tmp_path: Path) -> Callable[..., Path]:
    """Build a host root with the files falco's loader reads (hostname, uname, os-release)."""

    def make(
        hostname: str = "web-1",
        release: str = "5.10.0-14-cloud-amd64",
        version: str = "#1 SMP Debian 5.10.113-1 (2022-04-29)",
        os_release: str = 'PRETTY_NAME="Debian 11"\nID=debian\nVERSION_ID="11"\n',
        arch: str = "x86_64",
    ) -> Path:
        root = tmp_path / f"host-{uuid.uuid4().hex[:8]}"
        (root / "etc").mkdir(parents=True)
        (root / "proc/sys/kernel").mkdir(parents=True)
        (root / "etc/hostname").write_text(hostname + "\n")
        (root / "etc/os-release").write_text(os_release)
        (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
        (root / "proc/sys/kernel/version").write_text(version + "\n")
        (root / "proc/sys/kernel/arch").write_text(arch + "\n")
        return root

    return make


@pytest.fixture(scope="session")
def debian_kernels(tmp_path_factory: pytest.TempPathFactory) -> list[kernelpkg.Unpacked]:
    """The two newest real Debian cloud-amd64 kernel packages, newest first, each unpacked
    once (``kernelpkg.Unpacked.install`` lays one out under a host root)."""
    return [kernelpkg.unpack(deb, tmp_path_factory.mktemp(deb.release))
            for deb in kernelpkg.require(2)]


@pytest.fixture(scope="session")
def engine() -> Iterator[Docker]:
    """Our Docker edge on the real engine at DOCKER_HOST (default: the one .ci/dockerd-up
    starts)."""
    os.environ.setdefault("DOCKER_HOST", DOCKER_SOCK)
    try:
        found = docker_edge.connect(timeout=60)
    except DockerUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no Docker engine: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
    yield found
    found.close()


@pytest.fixture(scope="session")
def docker_client(engine: Docker) -> Iterator[Any]:
    """The SDK's own client on the same engine: tests look at what we did with it, not
    through the code under test."""
    sdk = docker.from_env(timeout=60)
    yield sdk
    sdk.close()


@pytest.fixture
def clean_containers(docker_client: Any) -> Iterator[list[str]]:
    """Names of containers a test creates; they (and any ``<name>-previous-*`` a replace
    renamed aside) are removed after. Only these: other tests may share the engine."""
    names: list[str] = []
    yield names
    # Sparse: a full listing inspects each container and fails on one another test is
    # removing at that moment.
    for item in docker_client.containers.list(all=True, sparse=True):
        name = next(iter(item.attrs.get("Names") or ["/"]))[1:]
        if any(name == n or name.startswith(f"{n}-previous-") for n in names):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                docker_client.api.remove_container(item.id, force=True)  # gone is fine


BASE_IMAGE = os.environ.get("RECONCILER_TEST_BASE_IMAGE", "falco-reconciler/bookworm:base")


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """The local Debian base image (.ci/base-image makes it; no registry is reachable)."""
    try:
        docker_client.images.get(BASE_IMAGE)
    except Exception:  # noqa: BLE001 - translate any lookup failure into making it
        script = Path(__file__).resolve().parent.parent / ".ci" / "base-image"
        subprocess.run(["bash", str(script), BASE_IMAGE], check=True)
    return BASE_IMAGE


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real image registry on loopback (Debian's docker-registry): ``127.0.0.1:PORT``.

    The engine trusts loopback registries without TLS, as it does for every user.
    """
    binary = shutil.which("docker-registry")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and docker-registry is not installed (.ci/setup installs it)")
        pytest.skip("docker-registry is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = tmp_path_factory.mktemp("registry")
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def standin_kernel() -> Iterator[StandinKernel]:
    """The stand-in kernel (module state) every stand-in image of the session talks to."""
    with StandinKernel() as kernel:
        yield kernel


@pytest.fixture
def kernel(standin_kernel: StandinKernel) -> StandinKernel:
    """The stand-in kernel, freshly rebooted: no module loaded."""
    standin_kernel.reboot()
    return standin_kernel


@pytest.fixture(scope="session")
def standins(docker_client: Any, base_image: str,
             standin_kernel: StandinKernel) -> Iterator[Standins]:
    """This session's stand-in Falco and driver-loader images (tests/support/standin.py)."""
    made = Standins(docker_client, base_image, standin_kernel)
    try:
        yield made
    finally:
        made.close()
