"""``reconciler status``: what it shows of the status file, and a state dir no daemon
has used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler import cli
from reconciler.daemon import state


def test_status_shows_whether_each_kernel_has_its_driver_ready(
    tmp_path: Path, capsys: Any,
) -> None:
    folder = "8.0.0+driver/x86_64"
    kernels = (state.KernelDriver("6.1.0-50-cloud-amd64", True,
                                  f"{folder}/falco_debian_6.1.176-1-cloud-amd64_1.ko", True),
               state.KernelDriver("6.1.0-57-cloud-amd64", False,
                                  f"{folder}/falco_debian_6.1.192-3-cloud-amd64_1.ko", False))
    state.write(tmp_path, state.Status(pid=1, kernels=kernels))
    back = state.read(tmp_path)
    assert back is not None and back.kernels == kernels
    assert cli.main(["status", "--state-dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    at = next(n for n, line in enumerate(shown) if line.startswith("kernels:"))
    assert shown[at + 1].split() == ["6.1.0-50-cloud-amd64", "running", "ready",
                                     kernels[0].artifact]
    assert shown[at + 2].split() == ["6.1.0-57-cloud-amd64", "installed", "NOT", "READY",
                                     kernels[1].artifact]


def test_status_without_any_daemon_says_so(tmp_path: Path, capsys: Any) -> None:
    assert cli.main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "no daemon has run" in capsys.readouterr().err
