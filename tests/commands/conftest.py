"""Fixtures for the end-to-end tests: a host with our server running over its store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.edges.store import Store
from reconciler.httpd.server import DriverServer
from tests.conftest import GitRepo
from tests.support import standin
from tests.support.falcohost import NAME, Host


@pytest.fixture
def host(git_repo: GitRepo, tmp_path: Path, docker_client: Any, base_image: str,
         clean_containers: list[str]) -> Iterator[Host]:
    """Stand-in Falco images built, and the driver server up on an ephemeral port."""
    clean_containers.append(NAME)
    for version in ("0.32.2", "0.37.1"):
        standin.ensure(docker_client, base_image, version)
    (tmp_path / "store").mkdir()
    with DriverServer(Store(tmp_path / "store"), ("127.0.0.1", 0)) as server:
        yield Host(git_repo, tmp_path, server.address[1])
