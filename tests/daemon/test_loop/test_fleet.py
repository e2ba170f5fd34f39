"""A fleet on one machine: a build host builds once and serves; two hosts that never build
get their drivers from it, one through a mirror and a build request; and a host whose
upstreams all go away keeps running on what it has.

Three ``reconciler run`` child processes, each with its own store, state dir, port, host
root and manifest repository, talking real HTTP:

- **build-1** (``accept_build_requests``, a shared secret): a DriverBuild of Falco 0.40's
  driver for the newer real Debian cloud kernel, named as 0.40's loader asks for it, with
  its real ``uname -r`` (``unameRelease``); it really builds it, and later what web-b asks
  for;
- **web-a** (``build: never``, build-1 as a ``reconciler`` upstream), running that kernel:
  fetches the module from build-1, checks its sha256 against build-1's signed index (its
  key pinned), publishes it,
  and its Falco starts on it; it never starts a builder container;
- **web-b** (``build: never``; a corporate mirror, then build-1 taking build requests),
  running the older real Debian kernel, which nobody has: the mirror answers 404, so it
  sends a signed request; build-1 builds it and web-b's next check fetches it.

Then build-1 and the mirror stop, and an apt run installs the older kernel on web-a: web-a
keeps serving and Falco keeps running, the pass is blocked for now (a transient failure,
retried); once build-1 is back, web-a's next pass fetches that driver too.

What stands in for what:

- the hosts: host roots of the test's (Debian 12), each running a real kernel package
  installed as dpkg would (tests/support/kernelpkg.py), proc/sys/kernel as that kernel
  reports it;
- the kernel's module state: a stand-in kernel per host (tests/support/standin_kernel.py),
  booted into that host's kernel: the session's for web-a, one of this test's for web-b;
- Falco 0.40 and its driver-loader image: stand-ins (tests/support/standin.py) talking to
  their host's stand-in kernel; web-b's web server on another port, as both Falcos share
  this machine's network; ``--privileged false``;
- the mirror: Debian's nginx with basic auth over a folder in the store layout.

Real: the builds (trixie's falcosecurity-scap-dkms in ``falco-reconciler/bookworm:base``,
headers from apt; the build caches shared with tests/builder as test_kernel_upgrade does),
the daemons, HTTP, the engine, the signatures of the requests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.edges.host import crypto
from reconciler.edges.state import buildqueue
from reconciler.model.artifacts import parse_relpath
from reconciler.model.upstreams import Upstream
from tests.builder.helpers import CACHE_ROOT
from tests.conftest import BASE_IMAGE
from tests.daemon.conftest import ROOT, Site, boot, builders_started
from tests.support import falcohost
from tests.support import upstreams as ups
from tests.support.kernelpkg import Unpacked
from tests.support.standin import Standins
from tests.support.standin_kernel import StandinKernel

pytestmark = [pytest.mark.docker, pytest.mark.slow]
FALCO = "0.40.0"
DRIVER = "8.0.0+driver"
SOURCE = "deb:falcosecurity-scap-dkms/trixie"
SECRET = b"fleet-e2e-secret\n"
DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
FAST = ["--backoff-max", "3"]  # retries soon: a pending request, an upstream down


def loader_name(kernel: Unpacked) -> str:
    """The module's store path as Falco 0.40's loader names this Debian kernel: the
    release rebuilt from the package version in ``uname -v``."""
    flavour = kernel.release.split("-", 2)[2]
    return f"{DRIVER}/x86_64/falco_debian_{kernel.deb.version}-{flavour}_1.ko"


def driver_build(kernel: Unpacked) -> str:
    named = loader_name(kernel).rsplit("_", 2)[1]
    return ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: fleet}\n"
            "spec:\n  match: {hostnames: [build-*]}\n  target: debian\n"
            f"  driverVersion: {DRIVER}\n  kernelRelease: {named}\n"
            f"  unameRelease: {kernel.release}\n")


def host_root(make_host_root: Any, name: str, kernel: Unpacked) -> Path:
    root: Path = make_host_root(hostname=name, release=kernel.release,
                                version=kernel.uname_version, os_release=DEBIAN_12)
    kernel.install(root)
    return root


def cli(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "reconciler.cli", *args],
                          capture_output=True, text=True, cwd=ROOT, check=False, timeout=120)
    assert done.returncode in (0, 2), done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def plan(site: Site, root: Path, name: str, config: Path) -> dict[str, str]:
    """``reconciler plan --json`` of that host: op (and upstream) per driver change."""
    doc = cli("plan", "--json", "--config", str(config), "--repo", str(site.bare),
              "--host-root", str(root), "--hostname", name, "--store", str(site.store.root),
              "--state-dir", str(site.state_dir), "--listen", f"127.0.0.1:{site.port}",
              "--privileged", "false")
    return {c["name"]: " ".join(filter(None, (c["op"], c.get("from"))))
            for c in doc["changes"] if c["kind"] == "driver"}


def status(site: Site) -> dict[str, Any]:
    return cli("status", "--json", "--state-dir", str(site.state_dir))


def outcome(status: dict[str, Any], path: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [o for o in status["lastPass"]["outcomes"]
                                   if o["name"] == path]
    assert len(found) == 1, status["lastPass"]
    return found[0]


def kernels(status: dict[str, Any]) -> list[tuple[str, bool, bool]]:
    return [(k["release"], k["running"], k["ready"]) for k in status["kernels"]]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def url_path(relpath: str) -> str:
    key = parse_relpath(relpath)
    assert key is not None
    return key.url_path()


def index(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.json", timeout=10) as got:
        return {e["path"]: e["sha256"] for e in json.load(got)["artifacts"]}


@pytest.fixture
def kernel_b(debian_kernels: list[Unpacked]) -> Iterator[StandinKernel]:
    """web-b's own kernel, running the older package: the session's runs web-a's."""
    older = debian_kernels[1]
    with StandinKernel(older.release, older.uname_version) as made:
        yield made


@pytest.fixture
def standins_b(docker_client: Any, base_image: str,
               kernel_b: StandinKernel) -> Iterator[Standins]:
    """web-b's stand-in images: its kernel's address, its web server on another port."""
    made = Standins(docker_client, base_image, kernel_b, web_port=ups.free_port())
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def sites(tmp_path: Path, docker_client: Any,
          standins_b: Standins) -> Iterator[Callable[[str, str], Site]]:
    """A Site per host, each in its own folder; their daemons and containers go after
    (before ``standins_b``'s images, which this fixture needs for that order)."""
    made: list[Site] = []

    def site(name: str, image: str) -> Site:
        (tmp_path / name).mkdir()
        made.append(Site(tmp_path / name, docker_client, image))
        return made[-1]

    yield site
    for each in made:
        each.cleanup()


def test_a_fleet_builds_once_serves_many_asks_for_what_is_missing_and_outlives_its_upstreams(
    tmp_path: Path, sites: Callable[[str, str], Site], booted: StandinKernel,
    kernel_b: StandinKernel, standins: Standins, standins_b: Standins, make_host_root: Any,
    debian_kernels: list[Unpacked], docker_client: Any,
) -> None:
    newer, older = debian_kernels
    path_a, path_b = loader_name(newer), loader_name(older)
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)

    # build-1: builds the newer kernel's driver and serves it, signing its index; the
    # others pin its key, so what they fetch is published only under its signature.
    index_key = crypto.new_signing_key(tmp_path / "index.key")
    trusted = f"trusted_keys: ['{index_key.public}']\n"
    build = sites("build", standins.falco_repository)
    build_root = make_host_root(hostname="build-1", os_release=DEBIAN_12)
    build.push({"build.yaml": driver_build(newer)})
    build.state_dir.mkdir()
    (CACHE_ROOT / "cache").mkdir(parents=True, exist_ok=True)
    (build.state_dir / "cache").symlink_to(CACHE_ROOT / "cache")  # headers, sources: reused
    build_args = ["--host-root", str(build_root), "--hostname", "build-1",
                  "--source", SOURCE, "--base-image", BASE_IMAGE, "--no-docker-events",
                  "--poll-interval", "300", "--accept-build-requests", "true",
                  "--build-request-secret-file", str(secret),
                  "--index-signing-key", str(tmp_path / "index.key")]
    built_since = time.time()
    builder = build.daemon(*build_args)
    first = builder.wait_for(lambda s: s.get("phase") == "idle" and bool(s.get("lastPass")),
                             timeout=900, why="build-1's first pass (a real build)")
    assert (outcome(first, path_a)["op"], outcome(first, path_a)["result"]) == (
        "build", "ok"), first["lastPass"]
    build_name = Upstream(f"http://127.0.0.1:{build.port}").name
    stated = index(build.port)
    assert stated[path_a] == sha256(build.store.root / path_a)

    # web-a: fetches it, verified, and Falco starts on it.
    site_a = sites("a", standins.falco_repository)
    root_a = host_root(make_host_root, "web-a", newer)
    boot(root_a, booted, newer)
    standins.falco(FALCO)
    standins.loader(FALCO)
    revision_a = site_a.push({"web.yaml": falcohost.host_yaml(
        FALCO, "kmod", name=site_a.name, image=standins.falco_repository,
        loader_image=standins.loader_repository)})
    config_a = tmp_path / "a.yaml"
    config_a.write_text(f"{trusted}build: never\nupstreams:\n"
                        f"  - {{url: 'http://127.0.0.1:{build.port}', kind: reconciler}}\n")
    assert plan(site_a, root_a, "web-a", config_a) == {path_a: f"fetch {build_name}"}
    a_since = time.time()
    daemon_a = site_a.daemon("--config", str(config_a), "--host-root", str(root_a),
                             "--hostname", "web-a", *FAST)
    assert daemon_a.proc is not None
    done_a = daemon_a.applied(revision_a, timeout=120)
    fetched = outcome(done_a, path_a)
    assert (fetched["op"], fetched["result"]) == ("fetch", "ok"), done_a["lastPass"]
    assert fetched["message"].startswith(
        f"fetched from {build_name}, verified: sha256 as stated, kernel module, vermagic "
        f"'{newer.release} SMP "), fetched["message"]
    assert "signed by 'build-1' (index version " in fetched["message"]
    assert sha256(site_a.store.root / path_a) == stated[path_a]
    assert kernels(done_a) == [(newer.release, True, True)]
    falco_a = site_a.falco()
    assert falco_a.status == "running"
    assert booted.loaded()["falco"].vermagic.startswith(f"{newer.release} SMP ")

    # web-b: the mirror lacks its kernel's driver, build-1 too: a signed request.
    mirror_root = tmp_path / "mirror"
    (mirror_root / DRIVER / "x86_64").mkdir(parents=True)
    (tmp_path / "mirror.users").write_text(ups.htpasswd_line("fleet", "s3cret"))
    (tmp_path / "mirror.auth").write_text("fleet:s3cret\n")
    mirror = contextlib.ExitStack()
    try:
        mirror_url = mirror.enter_context(ups.nginx(
            mirror_root, tmp_path / "nginx", tmp_path / "mirror.users"))
        site_b = sites("b", standins_b.falco_repository)
        root_b = host_root(make_host_root, "web-b", older)
        standins_b.falco(FALCO)
        standins_b.loader(FALCO)
        revision_b = site_b.push({"web.yaml": falcohost.host_yaml(
            FALCO, "kmod", name=site_b.name, image=standins_b.falco_repository,
            loader_image=standins_b.loader_repository,
            extra=f"    webserverPort: {standins_b.web_port}\n")})
        config_b = tmp_path / "b.yaml"
        config_b.write_text(
            f"{trusted}build: never\nupstreams:\n"
            f"  - {{url: '{mirror_url}', basic_auth_file: '{tmp_path / 'mirror.auth'}'}}\n"
            f"  - {{url: 'http://127.0.0.1:{build.port}', kind: reconciler, "
            f"build_requests: true, secret_file: '{secret}'}}\n")
        assert plan(site_b, root_b, "web-b", config_b) == {path_b: "request"}
        access = (tmp_path / "nginx/access.log").read_text()
        assert f'"HEAD /{url_path(path_b).lstrip("/")} HTTP/1.1" 404' \
            in access, access  # asked with its credentials (not a 401), and it lacks it
        daemon_b = site_b.daemon("--config", str(config_b), "--host-root", str(root_b),
                                 "--hostname", "web-b", *FAST)
        asked = daemon_b.wait_for(lambda s: s.get("phase") == "idle" and bool(s.get("lastPass")),
                                  why="web-b's first pass")
        assert (outcome(asked, path_b)["op"], outcome(asked, path_b)["result"]) == (
            "request", "pending"), asked["lastPass"]
        assert asked["nextRetryAt"]
        builder.wait_for(lambda s: any(
            f["path"] == path_b for f in buildqueue.read(build.state_dir).to_json()["finished"]),
            timeout=900, why="build-1 building web-b's request (a real build)")
        [request] = status(build)["buildRequests"]["finished"]
        assert (request["path"], request["hosts"], request["result"]) == (
            path_b, ["web-b"], "built"), request
        done_b = daemon_b.applied(revision_b, timeout=120)
        fetched_b = outcome(done_b, path_b)
        assert (fetched_b["op"], fetched_b["result"]) == ("fetch", "ok"), done_b["lastPass"]
        assert fetched_b["message"].startswith(
        f"fetched from {build_name}, verified: sha256 as stated, kernel module, vermagic "
        f"'{older.release} SMP "), fetched_b["message"]
        assert sha256(site_b.store.root / path_b) == index(build.port)[path_b]
        assert kernels(done_b) == [(older.release, True, True)]
        assert status(site_b)["buildRequests"]["sent"] == []  # it arrived: no record left
        assert site_b.falco().status == "running"
        assert kernel_b.loaded()["falco"].vermagic.startswith(f"{older.release} SMP ")
        assert builder.proc is not None
        assert builders_started(docker_client, built_since, builder.proc.pid) >= 2

        # Every upstream down; then the older kernel is installed on web-a.
        assert builder.stop() == 0
    finally:
        mirror.close()
    passes = daemon_a.status()["passes"]
    older.install(root_a)
    held = daemon_a.wait_for(
        lambda s: s["phase"] == "idle" and s["passes"] > passes
        and "retry" in s["lastPass"]["trigger"], timeout=60,
        why="web-a's pass woken by the kernel, then its retry")
    blocked = outcome(held, path_b)
    assert (blocked["op"], blocked["result"]) == ("build", "failed"), held["lastPass"]
    assert blocked["reason"].startswith(
        "blocked: no upstream that answered has it and this host does not build: "
        f"{build_name} not reachable; "), blocked["reason"]
    shown = status(site_a)
    assert shown["lastPass"]["transient"] and shown["nextRetryAt"], shown
    assert shown["errors"][-1]["transient"]
    assert kernels(shown) == [(newer.release, True, True), (older.release, False, False)]
    with urllib.request.urlopen(
            f"http://127.0.0.1:{site_a.port}/{url_path(path_a).lstrip('/')}",
            timeout=10) as served:
        assert hashlib.sha256(served.read()).hexdigest() == stated[path_a]
    assert (site_a.falco().id, site_a.falco().status) == (falco_a.id, "running")
    assert "falco" in booted.loaded()

    # build-1 is back: web-a's next pass fetches what it lacked.
    back = build.daemon(*build_args)
    back.wait_for(lambda s: s.get("phase") == "idle" and bool(s.get("lastPass"))
                  and s["pid"] == (back.proc.pid if back.proc else 0),
                  why="build-1 serving again")
    again = daemon_a.wait_for(lambda s: s["phase"] == "idle"
                              and (s.get("lastPass") or {}).get("result") == "ok", timeout=60,
                              why="web-a's pass with build-1 back")
    assert (outcome(again, path_b)["op"], outcome(again, path_b)["result"]) == ("fetch", "ok")
    assert kernels(again) == [(newer.release, True, True), (older.release, False, True)]
    assert again["nextRetryAt"] is None
    assert (site_a.falco().id, site_a.falco().status) == (falco_a.id, "running")
    assert builders_started(docker_client, a_since, daemon_a.proc.pid) == 0
