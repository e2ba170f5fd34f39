"""Fixtures for real driver builds: one builder image and one header/source cache for the
whole session, kept under /var/tmp/falco-reconciler-test-cache so reruns reuse them, and
a way to count the containers a piece of code started (docker events, by our labels)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.builder import images, runner, steps
from reconciler.edges.docker import jobs
from reconciler.edges.docker.client import Docker
from tests.builder.helpers import CACHE_ROOT, DKMS_SOURCE


@pytest.fixture(scope="session")
def builder_image(docker_client: Any, base_image: str) -> str:
    """The toolchain image, made once (it is named by content, so reruns find it)."""
    log = steps.BuildLog(CACHE_ROOT / "logs" / "builder-image.log")
    image = images.ensure(jobs.Jobs(Docker(docker_client)), base_image,
                          CACHE_ROOT / "cache" / "locks", log, timeout=1800)
    return image.reference


@pytest.fixture(scope="session")
def kernel_release(docker_client: Any, builder_image: str) -> str:
    """The newest 6.1 cloud kernel whose headers the apt sources offer right now."""
    found = jobs.Jobs(Docker(docker_client)).run(
        builder_image,
        "apt-get update -qq >/dev/null 2>&1; apt-cache search --names-only "
        "'^linux-headers-6\\.1\\.[0-9]+-[0-9]+-cloud-amd64$' | cut -d' ' -f1 | sort -V | tail -n1",
        network="host", timeout=300,
    )
    name = found.output.strip().splitlines()[-1] if found.output.strip() else ""
    assert found.ok and name.startswith("linux-headers-"), found.output
    return name.removeprefix("linux-headers-")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A fresh state dir whose cache folder is the shared session cache."""
    state = tmp_path / "state"
    state.mkdir()
    (CACHE_ROOT / "cache").mkdir(parents=True, exist_ok=True)
    (state / "cache").symlink_to(CACHE_ROOT / "cache")
    return state


@pytest.fixture
def make_config(
    state_dir: Path, tmp_path: Path, base_image: str,
) -> Callable[..., runner.BuildConfig]:
    def make(**overrides: Any) -> runner.BuildConfig:
        values: dict[str, Any] = {
            "state_dir": state_dir, "store": tmp_path / "store", "source": DKMS_SOURCE,
            "base_image": base_image, "jobs": 2, "timeout": 1800.0,
        }
        values.update(overrides)
        return runner.BuildConfig(**values)

    return make


@dataclass
class Created:
    """Containers created while the block ran, as (step label, artifact label) pairs."""

    containers: list[tuple[str, str]]

    def steps(self) -> list[str]:
        return [step for step, _ in self.containers]


@pytest.fixture
def count_containers(docker_client: Any) -> Callable[[], Any]:
    """``with count_containers() as created:`` -> every builder container created inside."""

    @contextlib.contextmanager
    def counting() -> Iterator[Created]:
        created = Created([])
        since = time.time()
        yield created
        until = time.time() + 0.5
        for event in docker_client.events(
            since=f"{since:.9f}", until=f"{until:.9f}", decode=True,
            filters={"type": "container", "event": "create",
                     "label": [f"{jobs.LABEL_ROLE}={jobs.ROLE_BUILDER}"]},
        ):
            labels = event.get("Actor", {}).get("Attributes", {})
            created.containers.append(
                (labels.get(jobs.LABEL_STEP, "?"), labels.get(jobs.LABEL_ARTIFACT, ""))
            )

    return counting


@pytest.fixture
def no_leftover_containers(docker_client: Any) -> Iterator[None]:
    """After the test, no builder container of this process may remain."""
    yield
    mine = [c for c in docker_client.containers.list(
        all=True, filters={"label": f"{jobs.LABEL_OWNER}={jobs.owner_label()}"})]
    for item in mine:
        item.remove(force=True)
    assert not mine, f"build containers left behind: {[c.name for c in mine]}"
