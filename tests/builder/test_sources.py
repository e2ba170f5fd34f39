"""sources: finding the driver tree in what was fetched, and naming a ready tree falco."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from reconciler.builder import sources, steps
from reconciler.errors import StepFailed
from tests.support import upstreams as ups

MAKEFILE = """scap-y += main.o ppm_events.o
obj-m += scap.o
ccflags-y :=
all:
\t$(MAKE) -C $(KERNELDIR) M=$(TOP) modules
"""
CONFIG = """#pragma once
#define DRIVER_VERSION "0.1.1dev"
#define DRIVER_NAME "scap"
#define DRIVER_DEVICE_NAME "scap"
"""


def dkms_tree(root: Path) -> Path:
    tree = root / "usr/src/scap-0.1.1"
    (tree / "bpf").mkdir(parents=True)
    (tree / "Makefile").write_text(MAKEFILE)
    (tree / "driver_config.h").write_text(CONFIG)
    return tree


def test_a_debian_package_tree_is_found_as_dkms(tmp_path: Path) -> None:
    tree = dkms_tree(tmp_path)
    (tmp_path / "usr/share/doc/pkg").mkdir(parents=True)
    assert sources.classify(tmp_path, "deb:x") == sources.Source(sources.TreeKind.DKMS, tree)


def test_a_libs_archive_is_found_by_its_driver_cmake_file(tmp_path: Path) -> None:
    libs = tmp_path / "libs-2.0.0+driver"
    (libs / "driver").mkdir(parents=True)
    (libs / "driver/CMakeLists.txt").write_text("project(driver)\n")
    assert sources.classify(tmp_path, "x").kind is sources.TreeKind.LIBS
    assert sources.classify(tmp_path, "x").tree == libs


def test_a_tree_without_a_driver_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("nothing here\n")
    with pytest.raises(StepFailed, match="holds no driver"):
        sources.classify(tmp_path, "/some/dir")


def test_prepare_names_a_copy_falco_and_leaves_the_cached_tree_alone(tmp_path: Path) -> None:
    tree = dkms_tree(tmp_path / "cache")
    work = tmp_path / "work"
    work.mkdir()
    copied = sources.prepare(sources.Source(sources.TreeKind.DKMS, tree), work, "falco", "falco")
    makefile = (copied / "Makefile").read_text()
    assert "falco-y += main.o ppm_events.o" in makefile
    assert "obj-m += falco.o" in makefile
    assert "scap" not in makefile
    config = (copied / "driver_config.h").read_text()
    assert '#define DRIVER_NAME "falco"' in config
    assert '#define DRIVER_DEVICE_NAME "falco"' in config
    assert (tree / "Makefile").read_text() == MAKEFILE


def test_module_and_device_names_are_configurable_and_checked(tmp_path: Path) -> None:
    tree = dkms_tree(tmp_path)
    sources.rename_dkms(tree, "mydriver", "mydev")
    assert "obj-m += mydriver.o" in (tree / "Makefile").read_text()
    assert '#define DRIVER_DEVICE_NAME "mydev"' in (tree / "driver_config.h").read_text()
    with pytest.raises(StepFailed, match="not a valid kernel module name"):
        sources.rename_dkms(tree, "bad name", "x")
    with pytest.raises(StepFailed, match="not a valid device name"):
        sources.rename_dkms(tree, "ok", "a/b")


def test_a_local_tarball_is_unpacked_once_per_driver_version(tmp_path: Path) -> None:
    tree = dkms_tree(tmp_path / "src")
    archive = tmp_path / "driver.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="scap")
    log = steps.BuildLog(tmp_path / "log")
    found = sources.ensure(None, "unused-image", str(archive), "1.0.0",  # type: ignore[arg-type]
                           cache_root=tmp_path / "cache", log=log)
    assert found.kind is sources.TreeKind.DKMS
    assert found.tree.is_relative_to(tmp_path / "cache")
    again = sources.ensure(None, "unused-image", str(archive), "1.0.0",  # type: ignore[arg-type]
                           cache_root=tmp_path / "cache", log=log)
    assert again == found
    assert "cached" in log.path.read_text()


def test_an_unusable_source_spec_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="neither a folder"):
        sources.ensure(None, "img", str(tmp_path / "missing"), "1.0.0",  # type: ignore[arg-type]
                       cache_root=tmp_path, log=steps.BuildLog(tmp_path / "log"))


def test_a_url_template_is_filled_with_the_driver_version_and_cached(tmp_path: Path) -> None:
    """As driverkit's libs archive URL: {driverVersion} is filled in, the archive fetched
    and unpacked once per driver version (a file:// URL stands in for GitHub here)."""
    tree = dkms_tree(tmp_path / "src")
    (tmp_path / "archives").mkdir()
    with tarfile.open(tmp_path / "archives/2.0.0+driver.tar.gz", "w:gz") as tar:
        tar.add(tree, arcname="libs-2.0.0-driver")
    template = (tmp_path / "archives").as_uri() + "/{driverVersion}.tar.gz"
    log = steps.BuildLog(tmp_path / "log")
    found = sources.ensure(None, "img", template, "2.0.0+driver",  # type: ignore[arg-type]
                           cache_root=tmp_path / "cache", log=log)
    assert found.kind is sources.TreeKind.DKMS
    assert found.tree.name == "libs-2.0.0-driver"
    assert "/2.0.0+driver.tar.gz" in log.path.read_text()
    with pytest.raises(StepFailed, match=r"cannot fetch driver 3\.0\.0"):
        sources.ensure(None, "img", template, "3.0.0",  # type: ignore[arg-type]
                       cache_root=tmp_path / "cache", log=log)


def test_a_source_server_answering_garbage_fails_the_step_not_the_build_run(
        tmp_path: Path) -> None:
    """Before: http.client.BadStatusLine escaped the download, and build_all's
    ``except BaseException`` cancelled every parallel build. Now it is this step's failure."""
    with ups.raw_server(ups.garbage) as (url, heads), \
            pytest.raises(StepFailed, match=r"cannot fetch driver 3\.0\.0 .*BadStatusLine"):
        sources.ensure(None, "img", url + "/{driverVersion}.tar.gz", "3.0.0",  # type: ignore[arg-type]
                       cache_root=tmp_path / "cache", log=steps.BuildLog(tmp_path / "log"))
    assert heads and heads[0].startswith(b"GET /3.0.0.tar.gz ")


def test_deb_src_names_the_binary_package_whose_source_package_is_wanted() -> None:
    """``deb-src:`` takes apt's syntax for the binary package, as ``deb:`` does (the
    builder finds its source package); a malformed one fails before any container."""
    package = sources.DebPackage.parse("deb-src:falcosecurity-scap-dkms/trixie")
    assert (package.name, package.suite, package.apt_argument) == (
        "falcosecurity-scap-dkms", "trixie", "falcosecurity-scap-dkms/trixie")
    with pytest.raises(StepFailed, match="not deb:<package>"):
        sources.DebPackage.parse("deb-src:Bad Name/")


def test_a_deb_src_tree_says_its_debian_version_and_other_trees_none(tmp_path: Path) -> None:
    (tmp_path / "libs" / "driver").mkdir(parents=True)
    (tmp_path / "libs" / "driver" / "CMakeLists.txt").write_text("")
    tree = sources.classify(tmp_path, "x")
    assert sources.debian_version(tree) is None
    (tmp_path / "libs" / ".debian-source-version").write_text("0.20.0-3\n")
    assert sources.debian_version(tree) == "0.20.0-3"
