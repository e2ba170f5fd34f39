"""``driver: kmod-preloaded`` under the daemon: the module is inserted on the host, then
Falco starts without its loader; another driver version swaps the module.

What stands in: these machines cannot load kernel modules, so ``--insmod-command`` and
``--rmmod-command`` are the scripts of tests/commands/test_apply/test_kmod_preloaded.py, which
record their arguments, insert into the stand-in kernel and update the host root's
proc/modules and sys/module/falco/version as the kernel would. Falco is the session's
stand-in image of each release, which with SKIP_DRIVER_LOADER set (as the real image's
entrypoint does) loads nothing and opens the module the host inserted. The daemon, the
git push, the engine and the driver server are real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.model.artifacts import DriverKind
from tests.commands.test_apply.test_kmod_preloaded import preloaded_host
from tests.daemon.conftest import Site
from tests.support import falcohost

pytestmark = pytest.mark.docker


def preloaded_yaml(site: Site, version: str) -> str:
    return (
        "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec:\n"
        "  match: {hostnames: [web-*]}\n  falco:\n"
        f"    version: {version}\n    driver: kmod-preloaded\n"
        f"    containerName: {site.name}\n    image: {site.image}\n")


def test_kmod_preloaded_starts_falco_under_the_daemon_and_swaps_the_module(
    site: Site, make_host_root: Any, tmp_path: Path, standins: Any, kernel: Any,
) -> None:
    standins.falco("0.33.0")  # the image the upgrade runs
    root, scripts = preloaded_host(make_host_root, tmp_path)
    first = falcohost.publish_standin_driver(site.store, root, "0.32.2",
                                             DriverKind.KMOD)
    revision = site.push({"web.yaml": preloaded_yaml(site, "0.32.2")})
    daemon = site.daemon("--host-root", str(root), "--insmod-command", scripts[0],
                         "--rmmod-command", scripts[1],
                         env={"HOSTROOT": str(root),
                              "STANDIN_KERNEL_PORT": str(kernel.address[1])})
    status = daemon.applied(revision)
    ops = [(o["kind"], o["op"], o["result"]) for o in status["lastPass"]["outcomes"]]
    assert ops == [("driver", "create", "ok"), ("container", "create", "ok")]
    inserted = site.store.path_of(first)
    assert (root / "commands.log").read_text().splitlines() == [f"insmod {inserted}"]
    falco = site.falco()
    assert falco.status == "running"
    assert "SKIP_DRIVER_LOADER=1" in falco.attrs["Config"]["Env"]

    # Another Falco, another driver version: the module is swapped, Falco replaced.
    second = falcohost.publish_standin_driver(site.store, root, "0.33.0",
                                              DriverKind.KMOD)
    upgrade = site.push({"web.yaml": preloaded_yaml(site, "0.33.0")}, "upgrade")
    daemon.applied(upgrade)
    assert (root / "commands.log").read_text().splitlines() == [
        f"insmod {inserted}", "rmmod falco", f"insmod {site.store.path_of(second)}"]
    assert (root / "sys/module/falco/version").read_text().strip() == "3.0.1+driver"
    assert site.falco().status == "running"
    assert kernel.loaded()["falco"].version == "3.0.1+driver"
