"""Shared by the daemon benchmarks: a bare repository, a store with the stand-in driver,
and ``reconciler run`` as a child process (the daemon tests' own fixtures, reused), over
the stand-in images and kernel of tests/support, made once per process."""

from __future__ import annotations

import atexit
import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DOCKER_HOST", "unix:///run/reconciler-ci/docker.sock")

import docker  # noqa: E402 - after the sys.path set-up above

from tests.conftest import BASE_IMAGE  # noqa: E402 - after the sys.path set-up above
from tests.daemon.conftest import Site, host_yaml  # noqa: E402 - after the sys.path set-up above
from tests.support.standin import Standins  # noqa: E402 - after the sys.path set-up above
from tests.support.standin_kernel import StandinKernel  # noqa: E402 - after the sys.path set-up above

__all__ = ["ROOT", "Site", "host_yaml", "site", "standins"]


@functools.cache
def standins() -> Standins:
    """This process's stand-in images, over its stand-in kernel (``.kernel``); both go
    away at exit."""
    kernel = StandinKernel().__enter__()
    made = Standins(docker.from_env(), BASE_IMAGE, kernel)
    atexit.register(kernel.__exit__, None, None, None)
    atexit.register(made.close)
    return made


def site() -> tuple[Site, Any]:
    """A fresh site in a temp folder, with the stand-in Falco image ready."""
    client = docker.from_env()
    images = standins()
    images.falco("0.32.2")
    made = Site(Path(tempfile.mkdtemp(prefix="reconciler-bench-")), client,
                images.falco_repository)
    made.publish_driver()
    return made, client
