"""Shared by the daemon benchmarks: a bare repository, a store with the stand-in driver,
and ``reconciler run`` as a child process (the daemon tests' own fixtures, reused)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")

import docker  # noqa: E402

from tests.conftest import BASE_IMAGE  # noqa: E402
from tests.daemon.conftest import Site, host_yaml, term_standin  # noqa: E402

__all__ = ["ROOT", "Site", "host_yaml", "site"]


def site() -> tuple[Site, Any]:
    """A fresh site in a temp folder, with the stand-in Falco image ready."""
    client = docker.from_env()
    image = term_standin(client, BASE_IMAGE, "0.32.2")
    made = Site(Path(tempfile.mkdtemp(prefix="reconciler-bench-")), client,
                image.rsplit(":", 1)[0])
    made.publish_driver()
    return made, client
