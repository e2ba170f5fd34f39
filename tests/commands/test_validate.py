"""``reconciler validate`` and ``reconciler schema`` end to end, on real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.loadtest.result import LoadTestResult, Outcome, UserspaceCheck
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
    assert len(document["oneOf"]) == 4
    assert "Host" in document["$defs"] and "DriverBuild" in document["$defs"]


def test_an_uncommitted_typo_is_named_not_hidden_behind_valid(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = git_repo.commit({"hosts/web.yaml": HOST})
    git_repo.write("hosts/web.yaml", HOST + "    drvier: kmod\n")
    git_repo.write("hosts/new.yaml", HOST.replace("name: web", "name: new"))
    assert cli.main(_validate(git_repo, tmp_path)) == 0
    captured = capsys.readouterr()
    assert captured.out == f"1 hosts, 0 driver builds at {sha[:12]}: valid\n"
    assert captured.err.startswith(
        "note: 2 manifest files have uncommitted changes (hosts/new.yaml, hosts/web.yaml); "
        f"validated {sha[:12]}")


def test_worktree_reads_the_files_as_they_are_now(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git_repo.commit({"hosts/web.yaml": HOST})
    git_repo.write("hosts/web.yaml", HOST.replace("version: 0.37.1",
                                                  "version: 0.37.1\n    drvier: kmod"))
    assert cli.main(_validate(git_repo, tmp_path, "--worktree")) == 1
    assert capsys.readouterr().out.splitlines() == [
        "hosts/web.yaml:9: unknown key 'drvier' in spec.falco; did you mean 'driver'?",
    ]
    git_repo.write("hosts/web.yaml", HOST)
    assert cli.main(_validate(git_repo, tmp_path, "--worktree")) == 0
    assert capsys.readouterr().out == "1 hosts, 0 driver builds at the working tree: valid\n"


def test_from_a_subfolder_the_repository_is_found_and_that_folder_validated(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sha = git_repo.commit({"manifests/hosts/web.yaml": HOST,
                           "manifests/bad.yaml": "kind: Hots\n",
                           "docker-compose.yml": "services: {web: {image: nginx}}\n"})
    monkeypatch.chdir(git_repo.path / "manifests" / "hosts")
    argv = ["validate", "--state-dir", str(tmp_path / "state")]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == f"1 hosts, 0 driver builds at {sha[:12]}: valid\n"
    monkeypatch.chdir(git_repo.path / "manifests")
    assert cli.main(argv) == 1
    assert capsys.readouterr().out.splitlines() == [
        "manifests/bad.yaml:1: unknown kind 'Hots'; expected Host, DriverBuild or "
        "Rollout; did you mean 'Host'?",
    ]


def test_non_manifest_yaml_at_the_root_hints_at_path(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git_repo.commit({"manifests/hosts/web.yaml": HOST,
                     "docker-compose.yml": "services: {web: {image: nginx}}\n"})
    assert cli.main(_validate(git_repo, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "hint: 1 YAML file(s) here are not manifests (docker-compose.yml)" in err
    assert "try --path manifests" in err


def test_a_clone_url_that_fails_keeps_gits_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 1 of loopback: git's own reason must reach the user.
    argv = ["validate", "--repo", "http://127.0.0.1:1/nothing.git", "--state-dir",
            str(tmp_path / "s")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "cannot fetch http://127.0.0.1:1/nothing.git: unable to access" in err
    assert "Failed to connect to 127.0.0.1 port 1" in err


def test_a_driver_version_no_source_can_have_is_a_located_error(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git_repo.commit({
        "hosts/web.yaml": HOST.replace("version: 0.37.1",
                                       "version: 0.37.1\n    driverVersion: 8.0.0"),
        "builds/b.yaml": GRID.replace("kernelversion: 1", "kernelversion: 1\n"
                                      "driverversion: 8.0.1+driver"),
    })
    assert cli.main(_validate(git_repo, tmp_path)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "builds/b.yaml:2: driverversion: '8.0.1+driver' is not a driver release (the releases"
        " nearest it are 8.0.0+driver and 8.1.0+driver); did you mean '8.0.0+driver'?",
        "hosts/web.yaml:9: spec.falco.driverVersion: '8.0.0' is not a driver release: "
        "falcosecurity/libs tags driver releases with +driver; did you mean '8.0.0+driver'?",
    ]


def test_a_host_whose_falco_cannot_read_the_probe_on_new_kernels_is_a_warning(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Falco 0.40 (libs 0.20.0) on the legacy probe: the driver loads but that libscap
    cannot read it on kernels with the CVE-2025-38563 fix. A warning on stderr at the
    Host's place; still valid (exit 0). Falco 0.42 (libs 0.22, fixed) or kmod: none."""
    probe_host = HOST.replace("version: 0.37.1", "version: 0.40.0\n    driver: ebpf")
    git_repo.commit({"hosts/web.yaml": probe_host,
                     "hosts/new.yaml": probe_host.replace("0.40.0", "0.42.0")
                     .replace("name: web", "name: new").replace("web-*", "new-*"),
                     "hosts/kmod.yaml": HOST.replace("name: web", "name: k")
                     .replace("web-*", "k-*").replace("0.37.1", "0.40.0")})
    assert cli.main(_validate(git_repo, tmp_path)) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["hosts/web.yaml:1: warning: the driver loads; Falco 0.40.0's userspace "
                   "(libs 0.20.0) cannot read the legacy eBPF probe on kernels with the fix "
                   "for CVE-2025-38563 (Debian 6.1.148 and later: unable to mmap the "
                   "perf-buffer); use kmod or modern_ebpf there, or Falco 0.42+"]


def test_a_load_test_that_found_a_hosts_falco_cannot_read_its_driver_is_a_warning(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The store holds a 10.2.0+driver module whose load test ran Falco 0.40.0's
    userspace (libs 0.20.0) too, which could not read it (as the gate leaves it beside the
    module; tests/loadtest/test_userspaces.py makes a real one): the Host on Falco 0.40.0
    is warned at its line with the test's reason and kernel; the one on 0.44.0 is not."""
    store = tmp_path / "store"
    module = store / "10.2.0+driver/x86_64/falco_debian_6.1.0-57-cloud-amd64_1.ko"
    module.parent.mkdir(parents=True)
    module.write_bytes(b"\x7fELF")
    check = UserspaceCheck("0.20.0", ("0.40.0",), Outcome.LOADED,
                           ("scap-open could not start a capture: Minimum API version …",))
    module.with_name(module.name + ".loadtest.json").write_text(json.dumps(LoadTestResult(
        Outcome.PASSED, "kmod", libs_version="0.25.1", userspaces=(check,)).to_json()))
    pinned = HOST.replace("version: 0.37.1", "version: 0.40.0\n    driverVersion: 10.2.0+driver")
    git_repo.commit({"hosts/web.yaml": pinned,
                     "hosts/new.yaml": pinned.replace("0.40.0", "0.44.0")
                     .replace("name: web", "name: n").replace("web-*", "n-*")})
    assert cli.main(_validate(git_repo, tmp_path, "--store", str(store))) == 0
    assert capsys.readouterr().err.splitlines() == [
        "hosts/web.yaml:1: warning: the driver loads; Falco 0.40.0's userspace cannot read "
        "it on 6.1.0-57-cloud-amd64: scap-open could not start a capture: Minimum API "
        "version … (load test of 10.2.0+driver/x86_64/falco_debian_6.1.0-57-cloud-amd64_1.ko "
        "with libs 0.20.0)"]
