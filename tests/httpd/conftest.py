"""Fixtures for the driver server: a real store with real artifacts, and the real server
on 127.0.0.1 with an ephemeral port. Clients in the tests are real too (urllib,
http.client, raw sockets and the curl binary)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.edges.store.local import Store
from reconciler.httpd import DriverServer, ServerConfig
from reconciler.model.artifacts import ArtifactKey
from tests.httpd.fleet import ALL_KEYS, Fleet, content_for


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    root = tmp_path / "store"
    sources = tmp_path / "built"
    sources.mkdir()
    store = Store(root)
    contents: dict[ArtifactKey, bytes] = {}
    for index, key in enumerate(ALL_KEYS):
        data = content_for(key, 300_000 + index * 1000)
        source = sources / key.filename
        source.write_bytes(data)
        store.publish(key, source)
        contents[key] = data
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET outside the store\n")
    return Fleet(root, contents, secret)


@pytest.fixture
def server(fleet: Fleet) -> Iterator[DriverServer]:
    config = ServerConfig(workers=8, io_timeout=5.0, idle_timeout=30.0, host_arch="x86_64")
    with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as running:
        yield running


@pytest.fixture(scope="session")
def curl() -> str:
    found = shutil.which("curl")
    if found is None:
        pytest.fail("the curl binary is needed: apt-get install -y curl")
    return found


