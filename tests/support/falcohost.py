"""A host under test: a manifest repository, a store, our server's port, and the CLI.

Shared by the apply, image and daemon tests; see tests/commands/test_apply/test_falco.py for
what stands in for what on these machines.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from reconciler.edges.host import facts as hostfacts
from reconciler.edges.store import local as store
from reconciler.model import kernelnames
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.versions import FalcoVersion, driver_version
from tests.conftest import GitRepo
from tests.support import standin

# Unique to this test process: the engine is shared with other runs of the suite.
NAME = f"falco-apply-{uuid.uuid4().hex[:8]}"


def host_yaml(version: str = "0.32.2", driver: str = "kmod",
              env: dict[str, str] | None = None, *, name: str = NAME,
              image: str = "falco-reconciler/falco-standin",
              loader_image: str | None = None, extra: str = "") -> str:
    """A Host manifest for web-* hosts running Falco as container ``name``; ``extra``:
    more lines of its ``falco`` section."""
    env_lines = "".join(f"      {k}: \"{v}\"\n" for k, v in (env or {}).items())
    return (
        "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec:\n"
        "  match: {hostnames: [web-*]}\n  falco:\n"
        f"    version: {version}\n    driver: {driver}\n    containerName: {name}\n"
        f"    image: {image}\n"
        + (f"    driverLoaderImage: {loader_image}\n" if loader_image else "")
        + (f"    env:\n{env_lines}" if env_lines else "") + extra
    )


class Host:
    """The machine itself (host root /) acting as host web-1, unless given a host root."""

    def __init__(self, repo: GitRepo, tmp: Path, port: int, standins: standin.Standins,
                 host_root: Path = Path("/")) -> None:
        self.repo, self.tmp, self.port, self.host_root = repo, tmp, port, host_root
        self.standins = standins
        self.store = store.Store(tmp / "store")

    def yaml(self, version: str = "0.32.2", driver: str = "kmod",
             env: dict[str, str] | None = None, *, name: str = NAME, extra: str = "") -> str:
        """A Host manifest for this session's stand-in images of ``version``."""
        self.standins.falco(version)
        loader = None
        if FalcoVersion.parse(version) >= FalcoVersion(0, 40, 0):
            self.standins.loader(version)
            loader = self.standins.loader_repository
        return host_yaml(version, driver, env, name=name,
                         image=self.standins.falco_repository, loader_image=loader, extra=extra)

    def args(self, command: str, *extra: str) -> list[str]:
        return [command, "--repo", str(self.repo.path), "--host-root", str(self.host_root),
                "--hostname",
                "web-1", "--store", str(self.store.root), "--state-dir", str(self.tmp / "state"),
                "--listen", f"127.0.0.1:{self.port}", "--privileged", "false", *extra]

    def publish_driver(self, version: str, kind: DriverKind,
                       identity: tuple[str, str] | None = None) -> ArtifactKey:
        return publish_standin_driver(self.store, self.host_root, version, kind, identity)


def publish_standin_driver(
    drivers: store.Store, host_root: Path, version: str, kind: DriverKind,
    identity: tuple[str, str] | None = None,
) -> ArtifactKey:
    """Put a stand-in driver where the real build would have published it, named as
    host web-1's Falco ``version`` will request it: built for the host's kernel release
    and carrying the API and schema versions of its driver version (or ``identity``), as
    the stand-in kernel and Falco read them (tests/support/standin.driver_file)."""
    host = hostfacts.read(host_root, "web-1")
    kernel = kernelnames.kernel_id(host, FalcoVersion.parse(version))
    key = ArtifactKey.for_kernel(kernel, driver_version(version), kind)
    drivers.root.mkdir(parents=True, exist_ok=True)
    staging = drivers.root.parent / f".standin-{key.filename}"
    staging.write_bytes(standin.driver_file(
        "kmod" if kind is DriverKind.KMOD else "ebpf", key.driver_version,
        host.kernel_release, identity))
    try:
        drivers.publish(key, staging)
    finally:
        staging.unlink()
    return key


def apply(host: Host, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = cli.main(host.args("apply", "--yes", "--settle", "2", *extra))
    out = capsys.readouterr()
    return code, out.out + out.err


def plan(host: Host, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    cli.main(host.args("plan", "--json"))
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc
