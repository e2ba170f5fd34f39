"""The Debian package made by packaging/build-deb, used as an operator would use it: built
twice (revisions 1 and 2, the second an upgrade), installed with apt into a fresh Debian
container of the target release, and run by systemd as PID 1.

Nothing stands in: the package, apt, dpkg and systemd are the real ones, in containers of
the local Debian bookworm base image on the real engine. Two differences from a host, each
forced by this machine: its engine cannot grant every capability, so the systemd container
gets all the ones it can instead of ``--privileged`` (CAP_SYS_RESOURCE is missing, which
systemd does not need); and that container has no Docker engine of its own (the shared
engine of the tests is not handed to it: a daemon acting as that container would treat the
other tests' unlabelled Falco containers as its own). The daemon must serve regardless, and
says it looked for the host's engine at the standard socket.
"""

from __future__ import annotations

import io
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler import __version__
from tests.conftest import GitRepo
from tests.packaging import lock

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BUILD_DEB = ROOT / "packaging" / "build-deb"
UNIT = "/lib/systemd/system/falco-reconciler.service"
CONFIG = "/etc/falco-reconciler/config.yaml"
STATE = "/var/lib/falco-reconciler"
PORT = 18780  # in the container's own loopback (network none): nothing else listens there
APT = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"


@dataclass(frozen=True)
class Debs:
    folder: Path
    first: str  # file names in ``folder``: revision 1, then revision 2
    second: str


def _build(out: Path, revision: int, base_image: str) -> str:
    done = subprocess.run([str(BUILD_DEB), "--revision", str(revision), "--out", str(out),
                           "--base-image", base_image],
                          capture_output=True, text=True, check=False, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    deb = Path(done.stdout.strip().splitlines()[-1])
    assert deb.parent == out and deb.is_file(), done.stdout
    return deb.name


@pytest.fixture(scope="module")
def debs(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Debs:
    """Two real builds; the second reuses Docker's cached virtualenv layers, so it costs
    the packing only (as does the first, once the sources have been built before)."""
    out = tmp_path_factory.mktemp("debs")
    return Debs(out, _build(out, 1, base_image), _build(out, 2, base_image))


@pytest.fixture(scope="module")
def systemd_image(base_image: str, debs: Debs, docker_client: Any) -> str:
    """The base image with systemd and the package's own Depends (read from the .deb), so
    the package installs with apt in a container that has no network."""
    depends = subprocess.run(["dpkg-deb", "-f", str(debs.folder / debs.first), "Depends"],
                             capture_output=True, text=True, check=True).stdout
    packages = sorted({re.sub(r"\s*\(.*\)", "", item).strip() for item in depends.split(",")})
    dockerfile = (f"FROM {base_image}\nRUN apt-get update -q && {APT} systemd "
                  f"{' '.join(packages)} >/dev/null && rm -rf /var/lib/apt/lists/*\n")
    tag = "falco-reconciler/package-test:systemd"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag,
                               network_mode="host", rm=True)
    return tag


Shell = Callable[..., str]


def _shell(container: Any) -> Shell:
    """``sh -c script`` in the container: its output, after asserting its exit status."""

    def run(script: str, expect: int | None = 0) -> str:
        code, output = container.exec_run(["sh", "-c", script])
        text: str = output.decode(errors="replace").strip()
        if expect is not None:
            assert code == expect, f"{script!r} exited {code}:\n{text[-3000:]}"
        return text

    return run


@pytest.fixture
def start(docker_client: Any, clean_containers: list[str],
          debs: Debs) -> Callable[..., Shell]:
    """Start a container with the two packages at /debs; returns its shell."""

    def make(image: str, command: list[str], **options: Any) -> Shell:
        name = f"reconciler-deb-{uuid.uuid4().hex[:10]}"
        clean_containers.append(name)
        volumes = {str(debs.folder): {"bind": "/debs", "mode": "ro"},
                   **options.pop("volumes", {})}
        container = docker_client.containers.run(image, command, name=name, detach=True,
                                                 volumes=volumes, **options)
        return _shell(container)

    return make


def test_apt_installs_it_in_a_fresh_debian_and_the_unit_verifies(
    debs: Debs, base_image: str, start: Callable[..., Shell],
) -> None:
    """From the bare base image (no python3, no git), apt resolves the package's Depends
    from the Debian mirror; the command is on PATH and runs the venv on the release's own
    python3; the config files are conffiles; the installed unit passes
    ``systemd-analyze verify`` (which fails once the command it names is gone)."""
    sh = start(base_image, ["sleep", "infinity"], network_mode="host", working_dir="/debs")
    sh("test ! -e /usr/bin/python3 && test ! -e /usr/bin/git")
    sh("dpkg --purge --force-depends tzdata >/dev/null 2>&1 && test ! -e /usr/share/zoneinfo/UTC")
    # The README's command (without the Recommends: docker.io is not wanted in here).
    sh("apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "
       f"apt install -y -q --no-install-recommends ./{debs.first} 2>&1")
    assert sh("reconciler --version") == f"reconciler {__version__}"
    assert sh("command -v reconciler") == "/usr/bin/reconciler"
    assert sh("readlink -f /opt/falco-reconciler/bin/python3") == sh("readlink -f /usr/bin/python3")
    assert sh("dpkg-query -W -f '${Version}' falco-reconciler") == f"{__version__}-1"
    # exactly the pinned dependencies, and nothing else beside the package itself
    assert _installed(sh) == sorted([*lock.pinned(), f"falco-reconciler=={__version__}"])
    # a Rollout window's time zone reads the system's tzdata: taken out above, the
    # package's Depends brought it back
    sh("/opt/falco-reconciler/bin/python3 -c 'from reconciler.model import cron; "
       "cron.zone(\"Europe/Berlin\")'")
    conffiles = sh("dpkg-query -W -f '${Conffiles}' falco-reconciler")
    assert {f"{CONFIG}", "/etc/falco-reconciler/environment"} <= set(conffiles.split())
    assert "ExecStart=/usr/bin/reconciler run --config /etc/falco-reconciler/config.yaml" in (
        sh(f"cat {UNIT}").splitlines())

    sh(f"{APT} systemd >/dev/null")
    verified = sh(f"systemd-analyze verify {UNIT} 2>&1")
    assert "falco-reconciler.service" not in verified, verified  # not even a warning
    sh("rm /usr/bin/reconciler")
    broken = sh(f"systemd-analyze verify {UNIT} 2>&1", expect=None)
    assert "/usr/bin/reconciler" in broken and "not executable" in broken, broken


def _installed(sh: Shell) -> list[str]:
    """``name==version`` of every distribution in the package's virtualenv."""
    return sh("/opt/falco-reconciler/bin/python3 -c 'import importlib.metadata as m; "
              "print(*sorted(f\"{d.name.lower().replace(chr(95), chr(45))}=={d.version}\" "
              "for d in m.distributions()))'").split()


def _wait(sh: Shell, script: str, want: str | set[str], what: str,
          limit: float = 120.0) -> str:
    """The script's output once it is ``want`` (or one of them); a deadline, not a timing
    assertion: it only bounds how long a broken package takes to fail."""
    wanted = {want} if isinstance(want, str) else want
    deadline = time.monotonic() + limit
    got = ""
    while time.monotonic() < deadline:
        got = sh(script, expect=None)
        if got in wanted:
            return got
        time.sleep(0.5)
    raise AssertionError(f"{what}: still {got!r}, want {want!r}; journal:\n"
                         + sh("journalctl -u falco-reconciler --no-pager | tail -n 30",
                              expect=None))


def _healthz(sh: Shell) -> str:
    return sh("python3 -c 'import urllib.request as u; "
              f"print(u.urlopen(\"http://127.0.0.1:{PORT}/healthz\", timeout=10).read().decode())'")


def _state_files(sh: Shell) -> list[str]:
    """Every file under the state dir (the store is in it)."""
    return sorted(sh(f"cd {STATE} && find . -type f").splitlines())


@pytest.fixture
def fleet(tmp_path: Path) -> GitRepo:
    """A local manifest repository: one Host for web-* hosts, which the container is not."""
    repo = GitRepo(tmp_path / "fleet")
    repo.commit({"manifests/hosts/web.yaml": (
        "apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec:\n"
        "  match: {hostnames: [web-*]}\n  falco:\n    version: 0.32.2\n    driver: kmod\n")})
    return repo


def test_systemd_runs_it_an_upgrade_restarts_it_and_removal_keeps_config_and_data(
    debs: Debs, systemd_image: str, fleet: GitRepo, start: Callable[..., Shell],
) -> None:
    """As on a host: install, point the config at a local repository, ``systemctl enable
    --now``; the service is ``active`` (READY=1: serving) and answers /healthz, having read
    the repository. Installing revision 2 restarts it on the new files and keeps the edited
    conffile; ``apt remove`` stops it and removes the program but keeps the config, the store
    and the state; ``apt purge`` then deletes the config, still not the store and state."""
    sh = start(systemd_image, ["/lib/systemd/systemd"], network_mode="none",
               working_dir="/debs", environment={"container": "docker"},
               cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
               security_opt=["seccomp=unconfined", "apparmor=unconfined"],
               tmpfs={"/run": "", "/run/lock": ""}, cgroupns="host",
               volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                        str(fleet.path): {"bind": "/srv/fleet", "mode": "rw"}})
    _wait(sh, "systemctl is-system-running", {"running", "degraded"}, "booting")

    sh(f"{APT} ./{debs.first}")  # offline: the image holds the Depends
    assert sh("systemctl is-enabled falco-reconciler", expect=None) == "disabled"
    assert sh("systemctl is-active falco-reconciler", expect=None) == "inactive"
    sh(f"sed -i -e 's#^repo: .*#repo: /srv/fleet#' -e 's#^listen: .*#listen: 127.0.0.1:{PORT}#'"
       f" {CONFIG} && grep -q '^repo: /srv/fleet$' {CONFIG}")
    edited = sh(f"sha256sum {CONFIG}")
    sh("systemctl enable --now falco-reconciler 2>&1")
    _wait(sh, "systemctl is-active falco-reconciler", "active", "after enable --now")
    assert _healthz(sh) == "ok"
    _wait(sh, f"grep -o '\"headRevision\": \"[0-9a-f]*\"' {STATE}/status.json",
          f'"headRevision": "{fleet.git("rev-parse", "HEAD")}"', "the repository's head")
    # The host's engine, at the standard socket (none in this container, see above).
    assert "unix:///var/run/docker.sock" in sh(f"cat {STATE}/status.json")
    sh(f"echo kept > {STATE}/store/operator-file")
    before = _state_files(sh)
    assert {"./store/operator-file", "./status.json"} <= set(before), before
    first_pid = sh("systemctl show -p MainPID --value falco-reconciler")

    sh(f"{APT} ./{debs.second}")
    assert sh("dpkg-query -W -f '${Version}' falco-reconciler") == f"{__version__}-2"
    _wait(sh, "systemctl is-active falco-reconciler", "active", "after the upgrade")
    assert sh("systemctl show -p MainPID --value falco-reconciler") != first_pid
    assert sh(f"sha256sum {CONFIG}") == edited
    assert _healthz(sh) == "ok"
    assert _state_files(sh) == before
    assert sh(f"cat {STATE}/store/operator-file") == "kept"

    sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y -q falco-reconciler")
    assert sh("systemctl is-active falco-reconciler", expect=None) == "inactive"
    assert sh("dpkg-query -W -f '${Status}' falco-reconciler") == "deinstall ok config-files"
    sh("test ! -e /usr/bin/reconciler && test ! -e /opt/falco-reconciler")
    assert sh(f"sha256sum {CONFIG}") == edited
    assert _state_files(sh) == before
    assert sh(f"cat {STATE}/store/operator-file") == "kept"

    # Purge deletes the config and the unit's enablement, still not the store and state.
    sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q falco-reconciler")
    sh("test ! -e /etc/falco-reconciler/config.yaml && test ! -e "
       "/etc/systemd/system/multi-user.target.wants/falco-reconciler.service")
    assert _state_files(sh) == before


TRIXIE = "falco-reconciler/trixie:base"


@pytest.fixture(scope="module")
def trixie_image(docker_client: Any) -> str:
    """Debian 13's base image, debootstrapped as the bookworm one is (.ci/base-image)."""
    try:
        docker_client.images.get(TRIXIE)
    except Exception:  # noqa: BLE001 - translate any lookup failure into making it
        subprocess.run(["bash", str(ROOT / ".ci" / "base-image"), TRIXIE, "trixie"], check=True)
    return TRIXIE


def test_built_for_debian_13_it_installs_and_runs_on_trixies_python(
    trixie_image: str, tmp_path: Path, docker_client: Any, clean_containers: list[str],
) -> None:
    """``build-deb --base-image`` of Debian 13 makes a package for trixie's python3 (3.13):
    apt installs it into a fresh trixie, its pinned dependencies (compiled wheels too:
    cryptography, pydantic-core, PyYAML) load there, and the commands run."""
    out = tmp_path / "debs"
    deb = _build(out, 1, trixie_image)
    depends = subprocess.run(["dpkg-deb", "-f", str(out / deb), "Depends"],
                             capture_output=True, text=True, check=True).stdout
    assert "python3 (>= 3.13~), python3 (<< 3.14~)" in depends
    name = f"reconciler-deb-{uuid.uuid4().hex[:10]}"
    clean_containers.append(name)
    sh = _shell(docker_client.containers.run(
        trixie_image, ["sleep", "infinity"], name=name, detach=True, network_mode="host",
        working_dir="/debs", volumes={str(out): {"bind": "/debs", "mode": "ro"}}))
    sh("apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "
       f"apt install -y -q --no-install-recommends ./{deb} 2>&1")
    assert sh("reconciler --version") == f"reconciler {__version__}"
    assert sh("/opt/falco-reconciler/bin/python3 -c 'import sys; print(sys.version_info[:2])'"
              ) == "(3, 13)"
    assert _installed(sh) == sorted([*lock.pinned(), f"falco-reconciler=={__version__}"])
    sh("/opt/falco-reconciler/bin/python3 -c 'import reconciler.runtime, reconciler.cli, "
       "cryptography.hazmat.primitives.asymmetric.ed25519, pydantic_core, yaml._yaml'")
    assert '"title"' in sh("reconciler schema")
