"""Property: no manifest that loads names a store path outside the store.

Every artifact a plan may build or delete is ``Path(store) / key.relpath``, and the kernel
headers of a build go to ``<cache>/<arch>/<target>/<kernelRelease>``. Whatever strings a
push puts in the parts of those names (target, kernelRelease, kernelVersion,
driverVersion, architecture), in a DriverBuild, a plain driverkit config or a Host's
``kernels`` and ``falco.driverVersion``, either the document is refused or every path it
yields is a plain file three levels inside the store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reconciler.manifests import loading
from reconciler.manifests.models import ManifestSet
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId

# Real values, so that many generated documents load and their paths get checked.
REAL = {
    "target": ["debian", "centos", "ubuntu-aws", "ubuntu-aws-5.0", "ubuntu-generic",
               "amazonlinux2", "flatcar"],
    "kernelRelease": ["5.10.0-14-cloud-amd64", "4.18.0-348.7.1.el8_5.x86_64", "5.15.133+",
                      "6.1.30-talos", "3510.2.5"],
    "kernelVersion": ["1", "26~22.04.1", "1_1.26.0", "1_1.11.1-aws", "1_v1.4.5", "1-photon"],
    "driverVersion": ["2.0.0+driver", "7.2.1+driver", "master", "0de2260",
                      "1.0.0-alpha2+driver"],
    "architecture": ["amd64", "arm64", "x86_64", "aarch64"],
}
# What a path trick or a confused consumer is made of.
FRAGMENTS = ["..", ".", "/", "../", "/..", "\\", "\x00", "\n", "\r", "\t", " ", "\x1b[2J",
             "%2e%2e", "~", "_", "-", "+", ":", "@", "*", "?", "#", "é", "\u202e", "ubuntu-",
             "..." , "x" * 70]


def hostile(name: str) -> st.SearchStrategy[str]:
    """Fragments and real values run together (``5.10.0-14-amd64/..``), or any text."""
    piece = st.sampled_from(FRAGMENTS) | st.sampled_from(REAL[name]) | st.text(max_size=4)
    return st.lists(piece, min_size=1, max_size=5).map("".join) | st.text(max_size=12)


@st.composite
def parts(draw: st.DrawFn) -> dict[str, str]:
    """Real name parts, of which up to two are hostile: a document fails on any one bad
    part, so most documents keep all but one or two real, and many load."""
    values = {name: draw(st.sampled_from(choices)) for name, choices in REAL.items()}
    for name in draw(st.lists(st.sampled_from(list(REAL)), max_size=2, unique=True)):
        values[name] = draw(hostile(name))
    return values


def _build(values: dict[str, str], outputs: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = dict(values)
    spec["outputs"] = outputs
    if values["target"] in ("flatcar",):
        spec["kernelConfigData"] = "bm8tZGF0YQ=="
    return {"apiVersion": "falco-reconciler/v1", "kind": "DriverBuild",
            "metadata": {"name": "b"}, "spec": spec}


def _config(values: dict[str, str], outputs: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {key.lower(): value for key, value in values.items()}
    config["output"] = {"module" if kind == "kmod" else "probe":
                        "out/falco.ko" if kind == "kmod" else "out/falco.o" for kind in outputs}
    if values["target"] in ("flatcar",):
        config["kernelconfigdata"] = "bm8tZGF0YQ=="
    return config


def _host(values: dict[str, str], driver: str) -> dict[str, Any]:
    kernel = {key: values[key] for key in ("target", "kernelRelease", "kernelVersion",
                                           "architecture")}
    return {"apiVersion": "falco-reconciler/v1", "kind": "Host", "metadata": {"name": "h"},
            "spec": {"falco": {"version": "0.37.1", "driverVersion": values["driverVersion"],
                               "driver": driver},
                     "kernels": [kernel]}}


documents = st.one_of(
    st.builds(_build, parts(), st.lists(st.sampled_from(["kmod", "ebpf"]), min_size=1,
                                        max_size=2)),
    st.builds(_config, parts(), st.lists(st.sampled_from(["kmod", "ebpf"]), min_size=1,
                                         max_size=2)),
    st.builds(_host, parts(), st.sampled_from(["kmod", "ebpf", "kmod-preloaded"])),
)


def keys_of(manifests: ManifestSet) -> list[tuple[ArtifactKey, KernelId]]:
    """Every artifact key (and its kernel) the desired state may take from these manifests."""
    found = [(key, key.kernel) for build in manifests.builds
             for key in build.value.spec.artifact_keys()]
    for located in manifests.hosts:
        spec = located.value.spec
        for item in spec.kernels:
            kernel = item.kernel_id()
            for kind in DriverKind:
                key = ArtifactKey.for_kernel(kernel, spec.falco.resolved_driver_version(), kind)
                found.append((key, kernel))
    return found


def assert_inside(root: Path, relpath: str, depth: int) -> None:
    """``root / relpath`` is ``depth`` plain names below ``root``, resolved and not."""
    parts = relpath.split("/")
    assert len(parts) == depth, relpath
    assert all(p not in ("", ".", "..") and "\x00" not in p and p.isprintable() for p in parts)
    resolved = (root / relpath).resolve()
    assert resolved.is_relative_to(root) and resolved != root, relpath
    assert os.path.normpath(root / relpath) == str(resolved)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store").resolve()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents)
def test_no_manifest_that_loads_names_a_path_outside_the_store(
    store: Path, document: dict[str, Any]
) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    manifests, problems = loading.check([("m.yaml", text.encode())])
    keys = keys_of(manifests)
    event("loaded" if keys else "refused")
    assert bool(keys) != bool(problems)
    for key, kernel in keys:
        assert_inside(store, key.relpath, 3)
        assert_inside(store, key.url_path().lstrip("/"), 3)
        # the kernel headers' cache folder (reconciler.builder.headers.cache_dir)
        assert_inside(store, f"{kernel.arch}/{kernel.target}/{kernel.kernel_release}", 3)


def test_the_real_values_load_in_every_kind_of_document(store: Path) -> None:
    """The property checks paths only of what loads: the real values must load."""
    values = {name: choices[0] for name, choices in REAL.items()}
    for document in (_build(values, ["kmod", "ebpf"]), _config(values, ["kmod"]),
                     _host(values, "kmod")):
        manifests = loading.load([("m.yaml", yaml.safe_dump(document).encode())])
        for key, _kernel in keys_of(manifests):
            assert_inside(store, key.relpath, 3)
