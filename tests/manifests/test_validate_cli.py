"""``reconciler validate`` and ``reconciler schema`` end to end, on real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import cli
from tests.conftest import GitRepo

HOST = """\
apiVersion: falco-reconciler/v1
kind: Host
metadata:
  name: web
spec:
  match: {hostnames: ["web-*"]}
  falco:
    version: 0.37.1
"""
GRID = """\
kernelversion: 1
kernelrelease: 5.10.0-14-cloud-amd64
target: debian
architecture: amd64
output:
  module: output/2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko
  probe: output/2.0.0+driver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.o
"""
GRID_PATH = "driverkit/config/2.0.0+driver/x86_64/debian_5.10.0-14-cloud-amd64_1.yaml"


def _validate(repo: GitRepo, tmp_path: Path, *extra: str) -> list[str]:
    return ["validate", "--repo", str(repo.path), "--state-dir", str(tmp_path / "state"),
            *extra]


def test_valid_manifests_print_one_summary_and_exit_0(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = git_repo.commit({"hosts/web.yaml": HOST, GRID_PATH: GRID,
                           ".github/workflows/ci.yaml": "not: [a manifest\n"})
    assert cli.main(_validate(git_repo, tmp_path)) == 0
    assert capsys.readouterr().out == f"1 hosts, 1 driver builds at {sha[:12]}: valid\n"


def test_problems_print_as_sorted_file_line_messages_and_exit_1(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git_repo.commit({
        "b.yaml": HOST.replace("version: 0.37.1", "version: 0.37.1\n    drver: kmod"),
        "a.yaml": "kind: Hots\n",
    })
    assert cli.main(_validate(git_repo, tmp_path)) == 1
    assert capsys.readouterr().out.splitlines() == [
        "a.yaml:1: unknown kind 'Hots'; expected Host, DriverBuild or Rollout; "
        "did you mean 'Host'?",
        "b.yaml:9: unknown key 'drver' in spec.falco; did you mean 'driver'?",
    ]


def test_with_path_the_files_are_named_from_the_repository_root(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git_repo.commit({"deploy/manifests/hosts.yaml": "- not a mapping\n",
                     "elsewhere/ignored.yaml": "kind: Nope\n"})
    assert cli.main(_validate(git_repo, tmp_path, "--path", "deploy/manifests")) == 1
    assert capsys.readouterr().out.splitlines() == [
        "deploy/manifests/hosts.yaml:1: a manifest must be a mapping (apiVersion, kind, metadata,"
        " spec) or a driverkit config, got a list",
    ]


def test_ref_selects_the_revision_that_is_validated(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = git_repo.commit({"hosts/web.yaml": HOST})
    git_repo.commit({"hosts/web.yaml": "kind: Host\n"})
    assert cli.main(_validate(git_repo, tmp_path)) == 1
    capsys.readouterr()
    assert cli.main(_validate(git_repo, tmp_path, "--ref", good)) == 0
    assert capsys.readouterr().out == f"1 hosts, 0 driver builds at {good[:12]}: valid\n"


def test_a_folder_that_is_not_a_repository_is_one_sentence_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").mkdir()
    argv = ["validate", "--repo", str(tmp_path / "plain"), "--state-dir", str(tmp_path / "s")]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("reconciler: ")


def test_schema_prints_a_json_schema_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert len(document["oneOf"]) == 3
    assert "Host" in document["$defs"] and "DriverBuild" in document["$defs"]
