"""Fixtures for the end-to-end tests: a host with our server running over its store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.edges.store.local import Store
from reconciler.httpd.server import DriverServer
from tests.conftest import GitRepo
from tests.support.falcohost import NAME, Host


@pytest.fixture
def host(git_repo: GitRepo, tmp_path: Path, standins: Any, kernel: Any,
         clean_containers: list[str]) -> Iterator[Host]:
    """The session's stand-in images, a freshly rebooted stand-in kernel, and the driver
    server up on an ephemeral port."""
    clean_containers.append(NAME)
    (tmp_path / "store").mkdir()
    with DriverServer(Store(tmp_path / "store"), ("127.0.0.1", 0)) as server:
        yield Host(git_repo, tmp_path, server.address[1], standins)


@pytest.fixture
def gen_host(host: Host, make_host_root: Any) -> Host:
    """``host`` with this machine's own facts in a host root of the test's, so that
    /root/.falco, which the 0.40+ loader shares with Falco, is the test's."""
    uname = os.uname()
    host.host_root = make_host_root(
        hostname="web-1", release=uname.release, version=uname.version,
        os_release=Path("/etc/os-release").read_text(), arch=uname.machine)
    return host
