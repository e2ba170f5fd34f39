"""``reconciler build``: driverkit's flags or config file, outputs copied where asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from reconciler.edges.store.local import Store
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId

KERNEL = KernelId("debian", "6.1.0-1-cloud-amd64", "1", "x86_64")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store that already holds both artifacts, so no container is needed."""
    root = tmp_path / "store"
    for kind in DriverKind:
        source = tmp_path / f"built{kind.suffix}"
        source.write_bytes(f"a {kind} driver".encode())
        Store(root).publish(ArtifactKey.for_kernel(KERNEL, "2.0.0+driver", kind), source)
    return root


def common(tmp_path: Path, store: Path) -> list[str]:
    return ["--store", str(store), "--state-dir", str(tmp_path / "state"),
            "--base-image", "falco-reconciler/bookworm:base", "--source", "deb:x"]


@pytest.mark.docker
@pytest.mark.usefixtures("docker_client")
def test_flags_build_and_copy_to_the_outputs(tmp_path: Path, store: Path,
                                            capsys: Any) -> None:
    code = cli.main([
        "build", "--target", "debian", "--driverversion", "2.0.0+driver",
        "--kernelrelease", "6.1.0-1-cloud-amd64", "--kernelversion", "1",
        "--architecture", "amd64", "--output-module", str(tmp_path / "out/falco.ko"),
        "--output-probe", str(tmp_path / "out/falco.o"), *common(tmp_path, store),
    ])
    out = capsys.readouterr().out
    assert code == 0
    assert (tmp_path / "out/falco.ko").read_bytes() == b"a kmod driver"
    assert (tmp_path / "out/falco.o").read_bytes() == b"a ebpf driver"
    assert f"kmod: copied to {tmp_path / 'out/falco.ko'}" in out
    assert f"ebpf: {store}/2.0.0+driver/x86_64/falco_debian_6.1.0-1-cloud-amd64_1.o" in out


@pytest.mark.docker
@pytest.mark.usefixtures("docker_client")
def test_a_driverkit_config_file_is_read_and_flags_override_it(
    tmp_path: Path, store: Path, capsys: Any,
) -> None:
    config = tmp_path / "debian.yaml"
    config.write_text(
        "kernelversion: 1\nkernelrelease: 6.1.0-1-cloud-amd64\ntarget: debian\n"
        "driverversion: 1.0.0+old\narchitecture: amd64\n"
        f"output:\n  module: {tmp_path / 'from-config.ko'}\n"
    )
    code = cli.main(["build", "-c", str(config), "--driverversion", "2.0.0+driver",
                     *common(tmp_path, store)])
    assert code == 0
    assert (tmp_path / "from-config.ko").read_bytes() == b"a kmod driver"
    assert "already in the store" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--driverversion", "2.0.0+driver", "--kernelrelease", "6.1.0-1"], "--target is required"),
    (["--target", "debain", "--driverversion", "2.0.0+driver", "--kernelrelease", "x"],
     "not a driverkit target"),
    (["--target", "debian", "--driverversion", "2.0.0+driver", "--kernelrelease", "a b"],
     "not a kernel release"),
    (["--target", "debian", "--driverversion", "2.0.0+driver", "--kernelrelease", "x",
      "--architecture", "s390x"], "amd64 or arm64"),
])
def test_bad_flags_fail_with_one_sentence(tmp_path: Path, capsys: Any, args: list[str],
                                          message: str) -> None:
    assert cli.main(["build", *args, "--store", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err


def test_a_bad_driverkit_config_names_the_file_and_key(tmp_path: Path, capsys: Any) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("target: debian\nkernelrelease: x\ndriverversion: 2.0.0+driver\n"
                      "output:\n  modul: x.ko\n")
    assert cli.main(["build", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "modul" in err
