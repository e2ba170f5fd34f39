"""``falco_upstreams``: Falco's own loader gets our server first and the plain repository
upstreams after it, in the form its generation reads (0.32's loader takes one URL only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import runtime, settings
from reconciler.model import generations
from reconciler.model.modes import DriverMode
from reconciler.model.upstreams import Upstream, UpstreamKind, falco_mirrors
from reconciler.model.versions import FalcoVersion
from reconciler.testing import FakeEngine
from tests.conftest import GitRepo
from tests.support.falcohost import host_yaml

OURS = "http://127.0.0.1:8484"
MIRROR = "https://mirror.example/falco"
FALCO_ORG = "https://download.falco.org/driver"


def test_only_repositories_falco_can_reach_as_they_are_are_its_mirrors() -> None:
    listed = (
        Upstream(MIRROR),
        Upstream("http://peer:8484", UpstreamKind.RECONCILER),  # ours to ask by index
        Upstream("https://private.example", basic_auth_file=Path("/etc/auth")),
        Upstream("https://headers.example", headers=(("X-Token", "t"),)),
        Upstream("https://ca.example", ca_bundle=Path("/etc/ca.pem")),
        Upstream("https://comma.example/a,b"),  # would split into two URLs
        Upstream(FALCO_ORG),
    )
    assert falco_mirrors(listed) == (MIRROR, FALCO_ORG)


@pytest.mark.parametrize(("version", "mode", "where", "expected"), [
    ("0.32.2", DriverMode.KMOD, "DRIVERS_REPO", OURS),  # one URL only before 0.33
    ("0.33.0", DriverMode.KMOD, "DRIVERS_REPO", f"{OURS},{MIRROR}"),
    ("0.36.2", DriverMode.EBPF, "DRIVERS_REPO", f"{OURS},{MIRROR}"),
    ("0.37.1", DriverMode.KMOD, "FALCOCTL_DRIVER_REPOS", f"{OURS},{MIRROR}"),
    ("0.41.0", DriverMode.KMOD, "loader FALCOCTL_DRIVER_REPOS", f"{OURS},{MIRROR}"),
])
def test_each_generation_gets_the_list_as_its_loader_reads_it(
        version: str, mode: DriverMode, where: str, expected: str) -> None:
    setup = generations.driver_setup(mode, FalcoVersion.parse(version), OURS, (MIRROR,))
    if where.startswith("loader "):
        assert setup.loader is not None
        env = dict(setup.loader.env)
    else:
        env = dict(setup.env)
    assert env[where.removeprefix("loader ")] == expected


def test_the_setting_reaches_the_container_and_is_off_by_default(
        git_repo: GitRepo, make_host_root: Any, tmp_path: Path) -> None:
    git_repo.commit({"web.yaml": host_yaml(version="0.33.0")})

    def env(falco_upstreams: bool) -> dict[str, str]:
        conf = settings.Settings(repo=str(git_repo.path), host_root=make_host_root(),
                                 hostname="web-1", store=tmp_path / "store",
                                 state_dir=tmp_path / "state", upstreams=(Upstream(MIRROR),),
                                 falco_upstreams=falco_upstreams, listen="127.0.0.1:8484")
        rt = runtime.Runtime(conf, FakeEngine(), runtime.Shared.for_settings(conf))
        planner = rt.planner()
        want = planner.desire(planner.read_inputs())
        assert want.container is not None
        assert want.container.drivers_url == OURS  # what is checked before Falco starts
        return dict(want.container.spec.env)

    assert env(False)["DRIVERS_REPO"] == OURS
    assert env(True)["DRIVERS_REPO"] == f"{OURS},{MIRROR}"
