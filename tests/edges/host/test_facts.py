"""Reading host facts from a host root the test writes: real files, no fakes."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.edges.host import facts as hostfacts
from reconciler.errors import FactsError
from tests.model import facts_cases


def write_host(
    root: Path,
    *,
    hostname: str | None = "web-1\n",
    release: str | None = "5.10.0-14-cloud-amd64\n",
    version: str | None = "#1 SMP Debian 5.10.113-1 (2022-04-29)\n",
    arch: str | None = "x86_64\n",
    os_release: str | None = facts_cases.DEBIAN_11,
    os_release_at: str = "etc/os-release",
    extra: dict[str, str] | None = None,
) -> Path:
    """A host root as the kernel and distro lay it out; None leaves a file out."""
    files = {
        "etc/hostname": hostname,
        "proc/sys/kernel/osrelease": release,
        "proc/sys/kernel/version": version,
        "proc/sys/kernel/arch": arch,
        os_release_at: os_release,
        **(extra or {}),
    }
    for rel, text in files.items():
        if text is not None:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return root


def test_reads_a_debian_host(tmp_path: Path) -> None:
    got = hostfacts.read(write_host(tmp_path))
    assert got.hostname == "web-1"
    assert got.kernel_release == "5.10.0-14-cloud-amd64"
    assert got.kernel_version == "#1 SMP Debian 5.10.113-1 (2022-04-29)"
    assert got.machine == "x86_64"
    assert (got.os_id, got.os_version_id) == ("debian", "11")
    assert dict(got.os_release)["PRETTY_NAME"] == "Debian GNU/Linux 11 (bullseye)"
    assert [k for k, _ in got.os_release] == sorted(k for k, _ in got.os_release)
    assert got.minikube_version is None
    assert got.legacy_release_files == ()
    assert got.os_release_file == "etc/os-release"


def test_facts_are_frozen(tmp_path: Path) -> None:
    got = hostfacts.read(write_host(tmp_path))
    with pytest.raises(AttributeError):
        got.hostname = "other"  # type: ignore[misc]


def test_hostname_flag_wins_over_etc_hostname(tmp_path: Path) -> None:
    assert hostfacts.read(write_host(tmp_path), hostname="build-1").hostname == "build-1"


@pytest.mark.parametrize("content", [None, "", "\n  \n"])
def test_without_etc_hostname_the_machine_name_is_used(tmp_path: Path, content: str | None) -> None:
    got = hostfacts.read(write_host(tmp_path, hostname=content))
    assert got.hostname == socket.gethostname()


def test_without_proc_arch_uname_m_is_used(tmp_path: Path) -> None:
    assert hostfacts.read(write_host(tmp_path, arch=None)).machine == os.uname().machine


def test_os_release_falls_back_to_usr_lib(tmp_path: Path) -> None:
    root = write_host(tmp_path, os_release=facts_cases.FLATCAR, os_release_at="usr/lib/os-release")
    got = hostfacts.read(root)
    assert (got.os_id, got.os_version_id) == ("flatcar", "3510.2.5")
    assert (got.os_release_file, got.has_os_release, got.has_etc_os_release) == (
        "usr/lib/os-release", True, False)


def test_an_empty_etc_os_release_still_counts_as_present(tmp_path: Path) -> None:
    """The loaders test for the file, not for its content."""
    got = hostfacts.read(write_host(tmp_path, os_release="# nothing here\n"))
    assert (got.os_release, got.os_release_file, got.has_etc_os_release) == (
        (), "etc/os-release", True)


def test_etc_os_release_wins_over_usr_lib(tmp_path: Path) -> None:
    root = write_host(tmp_path, extra={"usr/lib/os-release": "ID=other\n"})
    assert hostfacts.read(root).os_id == "debian"


def test_minikube_and_legacy_release_files_are_read(tmp_path: Path) -> None:
    root = write_host(tmp_path, os_release=None, extra={
        "etc/VERSION": "v1.26.0-1655407986-14197\n",
        "etc/redhat-release": "CentOS release 6.10 (Final)\n",
        "etc/centos-release": "CentOS release 6.10 (Final)\n",
    })
    got = hostfacts.read(root)
    assert got.minikube_version == "v1.26.0-1655407986-14197\n"
    assert got.legacy_release_files == ("etc/centos-release", "etc/redhat-release")
    assert (got.os_id, got.os_release, got.has_os_release) == ("", (), False)


def test_every_real_os_release_parses(tmp_path: Path) -> None:
    """Each distro's file from facts_cases reads back with its ID."""
    texts = [v for k, v in vars(facts_cases).items()
             if k.isupper() and not k.startswith("_") and isinstance(v, str)]
    assert len(texts) >= 15
    for text in texts:
        assert hostfacts.parse_os_release(text)["ID"]


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('NAME="Debian GNU/Linux"', "Debian GNU/Linux"),
        ("NAME='single quoted $HOME'", "single quoted $HOME"),
        ("NAME=unquoted", "unquoted"),
        (r'NAME="say \"hi\" \\ \$HOME \`x\`"', 'say "hi" \\ $HOME `x`'),
        (r'NAME="keeps \n as is"', r"keeps \n as is"),
        (r"NAME=escaped\ space", "escaped space"),
        ('NAME=""', ""),
        ("NAME=", ""),
        ('NAME="a"b\'c\'', "abc"),
        ('NAME="trailing"   # comment', "trailing"),
        ('NAME="x=y"', "x=y"),
    ],
)
def test_os_release_values_follow_shell_quoting(line: str, value: str) -> None:
    assert hostfacts.parse_os_release(f"# leading comment\n\n  {line}\n") == {"NAME": value}


def test_os_release_later_assignment_wins() -> None:
    assert hostfacts.parse_os_release("ID=a\nID=b\n") == {"ID": "b"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ID=debian\nthis is not an assignment\n", r"os-release:2: expected KEY=value"),
        ('ID="debian\n', r"os-release:1: unterminated double quote"),
        ("ID='debian\n", r"os-release:1: unterminated single quote"),
        ("ID=two words\n", r"os-release:1: unquoted whitespace"),
        ("1ID=x\n", r"os-release:1: expected KEY=value"),
        ("=x\n", r"os-release:1: expected KEY=value"),
    ],
)
def test_garbled_os_release_is_a_facts_error_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    root = write_host(tmp_path, os_release=text)
    with pytest.raises(FactsError, match=message) as caught:
        hostfacts.read(root)
    assert str(tmp_path / "etc/os-release") in str(caught.value)


@pytest.mark.parametrize(
    ("missing", "what"),
    [("release", "proc/sys/kernel/osrelease"), ("version", "proc/sys/kernel/version")],
)
def test_missing_kernel_file_is_a_facts_error_naming_it(
    tmp_path: Path, missing: str, what: str
) -> None:
    root = write_host(tmp_path, **{missing: None})  # type: ignore[arg-type]
    with pytest.raises(FactsError, match=f"{what} does not exist"):
        hostfacts.read(root)


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), ("\n", "is empty"), ("a\nb\n", "holds more than one line")],
)
def test_garbled_kernel_release_is_a_facts_error(
    tmp_path: Path, content: str, message: str
) -> None:
    with pytest.raises(FactsError, match=f"osrelease {message}"):
        hostfacts.read(write_host(tmp_path, release=content))


def test_non_utf8_file_is_a_facts_error(tmp_path: Path) -> None:
    root = write_host(tmp_path)
    (root / "proc/sys/kernel/version").write_bytes(b"#1 SMP \xff\xfe\n")
    with pytest.raises(FactsError, match="version is not UTF-8"):
        hostfacts.read(root)


def test_unreadable_file_is_a_facts_error(tmp_path: Path) -> None:
    root = write_host(tmp_path, os_release=None)
    (root / "etc/os-release").mkdir()
    with pytest.raises(FactsError, match=r"cannot read .*etc/os-release"):
        hostfacts.read(root)


def test_missing_host_root_is_a_facts_error(tmp_path: Path) -> None:
    with pytest.raises(FactsError, match="osrelease does not exist"):
        hostfacts.read(tmp_path / "nowhere")


def test_reads_this_machine_when_it_is_linux() -> None:
    """The real / of this machine: the same strings as os.uname()."""
    if not Path("/proc/sys/kernel/osrelease").exists():
        pytest.skip("not a Linux host")
    got = hostfacts.read()
    assert got.kernel_release == os.uname().release
    assert got.kernel_version == os.uname().version
    assert got.machine == os.uname().machine


# -- reconciler facts (through the real CLI entry point) ----------------------------------

@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECONCILER_HOST_ROOT", "RECONCILER_HOSTNAME", "RECONCILER_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("clean_env")
def test_facts_command_prints_the_names_each_version_asks_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_host(tmp_path)
    code, out, _ = run_cli(["facts", "--host-root", str(root), "--falco-version", "0.32.2",
                            "--falco-version", "0.36.2"], capsys)
    assert code == 0
    assert "host web-1" in out
    assert "kernel release  5.10.0-14-cloud-amd64" in out
    assert "Falco 0.32.2\n" in out and "Falco 0.36.2\n" in out
    assert "falco_debian_5.10.0-14-cloud-amd64_1.ko  falco_debian_5.10.0-14-cloud-amd64_1.o" in out
    assert ("0.32.2  store 2.0.0+driver/x86_64/  "
            "GET /2.0.0%2Bdriver/x86_64/falco_debian_5.10.0-14-cloud-amd64_1.ko|.o") in out
    assert "falco_debian_5.10.113-1-cloud-amd64_1.ko" in out
    assert ("0.36.2  store 6.0.1+driver/x86_64/  "
            "GET /6.0.1%2Bdriver/x86_64/falco_debian_5.10.113-1-cloud-amd64_1.ko|.o") in out


@pytest.mark.usefixtures("clean_env")
def test_facts_command_json_gives_relpaths_and_exact_url_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_host(tmp_path)
    code, out, _ = run_cli(["facts", "--host-root", str(root), "--hostname", "build-7",
                            "--falco-version", "0.35.0", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["host"]["hostname"] == "build-7"
    assert doc["host"]["osRelease"]["VERSION_ID"] == "11"
    (entry,) = doc["falco"]
    assert entry["falcoVersion"] == "0.35.0" and entry["loader"] == "bash"
    assert entry["driverVersion"] == "5.0.1+driver"
    assert entry["kernel"] == {"target": "debian", "kernelRelease": "5.10.113-1-amd64",
                               "kernelVersion": "1", "architecture": "x86_64"}
    assert entry["artifacts"]["kmod"] == {
        "filename": "falco_debian_5.10.113-1-amd64_1.ko",
        "relpath": "5.0.1+driver/x86_64/falco_debian_5.10.113-1-amd64_1.ko",
        "urlPath": "/5.0.1%2Bdriver/x86_64/falco_debian_5.10.113-1-amd64_1.ko",
    }
    assert entry["artifacts"]["ebpf"]["urlPath"].endswith("falco_debian_5.10.113-1-amd64_1.o")


@pytest.mark.usefixtures("clean_env")
def test_facts_command_defaults_to_every_minor_and_every_naming_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hwe = facts_cases.HOSTS["ubuntu-hwe"]
    root = write_host(tmp_path, release=hwe.release + "\n", version=hwe.version + "\n",
                      os_release=hwe.os_release)
    code, out, _ = run_cli(["facts", "--host-root", str(root), "--json"], capsys)
    assert code == 0
    entries = {e["falcoVersion"]: e for e in json.loads(out)["falco"]}
    assert {"0.32.2", "0.33.0", "0.35.0", "0.35.1", "0.37.0", "0.37.1", "0.38.2",
            "0.44.0"} <= set(entries)
    assert entries["0.35.0"]["kernel"]["kernelVersion"] == "26"
    assert entries["0.35.1"]["kernel"]["kernelVersion"] == "26~22.04.1"
    assert entries["0.44.0"]["loader"] == "falcoctl"
    assert all("artifacts" in e for e in entries.values())


@pytest.mark.usefixtures("clean_env")
def test_facts_command_reports_a_version_it_cannot_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Falco 0.31 has no known driver version: the entry says so and the exit is 1."""
    root = write_host(tmp_path)
    code, out, _ = run_cli(["facts", "--host-root", str(root), "--falco-version", "0.31.1"],
                           capsys)
    assert code == 1
    assert "Falco 0.31.1: no driver name: Falco 0.31.1 has no known driver version" in out


@pytest.mark.usefixtures("clean_env")
def test_facts_command_host_root_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_HOST_ROOT", str(write_host(tmp_path, hostname="env-host\n")))
    code, out, _ = run_cli(["facts", "--falco-version", "0.38.2"], capsys)
    assert code == 0
    assert out.startswith("host env-host\n")


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--falco-version", "latest"], "reconciler: --falco-version: 'latest' is not a Falco"),
        (["--host-root", "/nonexistent/host"], "reconciler: cannot read the kernel release"),
    ],
)
def test_facts_command_errors_are_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    root = write_host(tmp_path)
    code, out, err = run_cli(["facts", "--host-root", str(root), *argv], capsys)
    assert code == 1
    assert out == ""
    assert err.startswith(message)


@pytest.mark.usefixtures("clean_env")
def test_facts_command_default_run_shows_unnameable_releases_but_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On COS, Falco 0.37-0.38 name no driver; the overview says why and still exits 0."""
    cos = facts_cases.HOSTS["cos"]
    root = write_host(tmp_path, release=cos.release + "\n", version=cos.version + "\n",
                      os_release=cos.os_release)
    code, out, _ = run_cli(["facts", "--host-root", str(root)], capsys)
    assert code == 0
    assert ("Falco 0.38.2: names no driver: the falcoctl of Falco 0.38.2 cannot parse the "
            "kernel release '5.15.133+'") in out
    assert "Falco 0.37.0: names no driver:" in out and "Falco 0.38.0: names no driver:" in out
    assert "GET /6.0.1%2Bdriver/x86_64/falco_cos_5.15.133%2B_1.ko|.o" in out


@pytest.mark.usefixtures("clean_env")
def test_facts_command_json_gives_the_reason_a_loader_names_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An asked-for release that names no driver is reported with its reason, exit 1."""
    root = write_host(tmp_path, os_release=None, extra={"etc/redhat-release": "RHEL 6\n"})
    code, out, _ = run_cli(["facts", "--host-root", str(root), "--falco-version", "0.33.1",
                            "--falco-version", "0.34.0", "--json"], capsys)
    assert code == 1
    old, new = json.loads(out)["falco"]
    assert old["unnamed"] == ("no etc/os-release, etc/debian_version, etc/centos-release: "
                              "Falco 0.33.1's loader cannot name the distro and downloads nothing")
    assert "artifacts" not in old and "error" not in old
    assert new["kernel"]["target"] == "rhel"
