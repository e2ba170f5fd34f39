"""`reconciler apply` with upstreams, end to end: real git, real stores, our real server as
`reconciler serve` in its own process (the upstream) and in-process (this host's), a real
engine, and the stand-in Falco of tests/support/standin.py, whose bash loader reads
DRIVERS_REPO as the real one of its version does (one URL up to 0.32, a list split on
comma and space from 0.33) and verifies nothing it downloads, as the real one.

The fetched module is a real ELF object (tests/support/upstreams.driver_bytes): our fetch
holds it to its vermagic and identity, and the stand-in kernel reads the same .modinfo.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.edges.host import crypto
from reconciler.edges.host import facts as hostfacts
from reconciler.edges.store import signedindex
from reconciler.edges.store.local import Store
from reconciler.edges.store.verifier import sha256_file
from reconciler.httpd.files import StoreFiles
from reconciler.httpd.server import DriverServer
from reconciler.model import kernelnames
from reconciler.model.artifacts import ArtifactKey, DriverKind
from reconciler.model.versions import FalcoVersion, driver_version
from tests.conftest import GitRepo
from tests.support import upstreams as ups
from tests.support.falcohost import NAME, Host, apply

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[3]
_SERVE = "import sys; from reconciler import cli; sys.exit(cli.main(sys.argv[1:]))"


@contextlib.contextmanager
def reconciler_serve(store: Path, log: Path) -> Iterator[str]:
    """``reconciler serve`` in a process of its own over ``store``: its URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, "serve", "--store", str(store), "--listen",
             "127.0.0.1:0"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        found = re.search(r"(http://\S+)", line)
        assert found, (line, log.read_text())
        yield found[1]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def ours(git_repo: GitRepo, tmp_path: Path, standins: Any, kernel: Any,
         clean_containers: list[str]) -> Iterator[tuple[Host, DriverServer]]:
    """This host, its store empty, and its own driver server (which a test may stop)."""
    clean_containers.append(NAME)
    (tmp_path / "store").mkdir()
    server = DriverServer(Store(tmp_path / "store"), ("127.0.0.1", 0)).start()
    try:
        yield Host(git_repo, tmp_path, server.address[1], standins), server
    finally:
        server.stop()


def wanted_key(host: Host, version: str) -> tuple[ArtifactKey, str]:
    """The module this host's Falco ``version`` asks for, and the kernel's release."""
    facts = hostfacts.read(host.host_root, "web-1")
    kernel = kernelnames.kernel_id(facts, FalcoVersion.parse(version))
    return (ArtifactKey.for_kernel(kernel, driver_version(version), DriverKind.KMOD),
            facts.kernel_release)


def test_a_driver_fetched_from_another_reconciler_is_what_falco_loads(
    ours: tuple[Host, DriverServer], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    docker_client: Any, kernel: Any,
) -> None:
    host, _server = ours
    host.repo.commit({"web.yaml": host.yaml("0.32.2")})
    key, release = wanted_key(host, "0.32.2")
    data = ups.driver_bytes(key, release=release)
    upstream_store = Store(tmp_path / "upstream-store")
    (tmp_path / "source.ko").write_bytes(data)
    upstream_store.publish(key, tmp_path / "source.ko")
    # The upstream vouches for it with a signed index; this host pins that key.
    signer = crypto.new_signing_key(tmp_path / "index.key")
    assert signedindex.resign(upstream_store.root, key_id=signer.key_id, sign=signer.sign,
                              signer="build-1", entries=StoreFiles(upstream_store).index(),
                              expiry=3600, now=dt.datetime.now(dt.UTC))
    with reconciler_serve(upstream_store.root, tmp_path / "serve.log") as url:
        # build: never: a build would fail here anyway; the point is that none is tried.
        code, out = apply(host, capsys, "--upstreams", url, "--build", "never",
                          "--trusted-keys", signer.public)
    assert code == 0, out
    assert f"fetched from {url.removeprefix('http://')}, verified: sha256 as stated" in out
    assert "signed by 'build-1' (index version 1" in out
    found = host.store.lookup(key)
    assert found is not None
    assert sha256_file(found.path) == ups.sha256(data)
    running = docker_client.containers.get(NAME)
    logs = running.logs().decode()
    assert "running with kmod 2.0.0+driver" in logs, logs
    assert kernel.loaded()["falco"].version == "2.0.0+driver"


def logs_after_restart(container: Any, text: str, timeout: float = 60) -> str:
    """The container's log lines since its first run stopped, once ``text`` shows there."""
    deadline = time.monotonic() + timeout
    while True:
        logs: str = container.logs().decode().partition("SIGTERM: stopping\n")[2]
        if text in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.5)


def test_with_falco_upstreams_falco_loads_from_a_mirror_while_our_server_is_down(
    ours: tuple[Host, DriverServer], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    docker_client: Any, kernel: Any,
) -> None:
    host, server = ours
    host.repo.commit({"web.yaml": host.yaml("0.33.0")})
    key = host.publish_driver("0.33.0", DriverKind.KMOD)
    mirror_files = {key.url_path(): host.store.path_of(key).read_bytes()}
    with ups.file_server(ups.Behaviour(files=mirror_files)) as (mirror, seen):
        code, out = apply(host, capsys, "--upstreams", mirror, "--falco-upstreams", "true")
        assert code == 0, out
        falco = docker_client.containers.get(NAME)
        env = dict(e.split("=", 1) for e in falco.attrs["Config"]["Env"])
        assert env["DRIVERS_REPO"] == f"http://127.0.0.1:{host.port},{mirror}"
        assert seen.requests == []  # the module came from our server
        # Our server goes down and the host "reboots": Falco starts again with no module
        # loaded and nothing downloaded, as Docker's restart policy would start it.
        server.stop()
        kernel.reboot()
        falco.exec_run(["rm", "-rf", "/root/.falco"])
        falco.restart(timeout=5)
        logs = logs_after_restart(falco, "running with kmod 3.0.1+driver")
    assert "running with kmod 3.0.1+driver" in logs, logs
    assert f"Unable to find a prebuilt driver at http://127.0.0.1:{host.port}/" in logs, logs
    assert [(m, p) for m, p, _h in seen.requests] == [("GET", key.url_path())]
