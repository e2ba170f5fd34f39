"""edges.host.factsfile: another host's facts, read back from its `facts --json`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.edges.host import facts, factsfile
from reconciler.errors import ConfigError
from reconciler.model.host import InstalledKernel, VersionSource


def test_facts_json_taken_on_a_host_reads_back_as_the_same_facts(
    make_host_root: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    root = make_host_root(hostname="web-7", release="6.1.0-28-cloud-amd64",
                          version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)")
    (root / "lib/modules/6.1.0-28-cloud-amd64").mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "boot/vmlinuz-6.1.0-28-cloud-amd64").write_bytes(b"not a real image")
    assert cli.main(["facts", "--host-root", str(root), "--json"]) == 0
    saved = tmp_path / "web-7.json"
    saved.write_text(capsys.readouterr().out)
    there = facts.read(root)
    assert there.installed_kernels  # the running kernel, with its modules folder
    assert factsfile.read(saved) == there


@pytest.mark.parametrize(("text", "said"), [
    ("{not json", "not JSON"),
    ('{"falco": []}', "no 'host' object"),
    ('{"host": {"hostname": 7}}', "host.hostname must be a string"),
])
def test_a_file_that_is_not_facts_says_so_with_its_name(tmp_path: Path, text: str,
                                                        said: str) -> None:
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        factsfile.read(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert said in str(caught.value)
    assert "reconciler facts --json" in str(caught.value)


def test_a_file_bigger_than_any_facts_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * (factsfile.MAX_BYTES + 1))
    with pytest.raises(ConfigError) as caught:
        factsfile.read(path)
    assert str(caught.value) == (f"the facts file {path} is larger than {factsfile.MAX_BYTES} "
                                 "bytes: not the output of `reconciler facts --json`")


def test_installed_kernels_keep_their_source() -> None:
    document = {"host": {"hostname": "h", "kernelRelease": "r", "kernelVersion": "#1",
                         "machine": "x86_64", "osId": "debian"},
                "installedKernels": [{"kernelRelease": "r2", "kernelVersion": "#1 SMP",
                                      "source": "dpkg", "image": None, "detail": "pkg"}]}
    parsed = factsfile.parse(document)
    assert parsed.installed_kernels == (InstalledKernel("r2", "#1 SMP", VersionSource.DPKG,
                                                        "", "pkg"),)
