"""Build the stand-ins for Falco's images, which cannot be pulled on the test machines.

Each Falco version gets images that behave like the real ones of its generation (the
scripts in tests/support/standin/ say which upstream behaviour each models):

- ``<= 0.36``: ``falcosecurity/falco``: entrypoint -> the bash ``falco-driver-loader``
  unless SKIP_DRIVER_LOADER, then Falco;
- ``0.37-0.39``: its entrypoint -> falcoctl (``driver config`` + ``driver install``) as
  FALCO_DRIVER_LOADER_OPTIONS says, then Falco reading engine.kind from its own config;
- ``>= 0.40``: ``falcosecurity/falco`` with no entrypoint (CMD ``/usr/bin/falco``), and a
  separate ``falco-driver-loader`` image (entrypoint -> falcoctl) run to completion first.

Every image carries its own facts: the driver version it loads, the API and schema
versions its libscap needs, the falcoctl version it ships, and the address of the
stand-in kernel (tests/support/standin_kernel.py) the session runs, so images are made per
session under repository names of their own. The tables here are upstream's (libs tags,
Falco's release notes), kept apart from the reconciler's on purpose: the stand-ins must
not share the assumptions of the code they check.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
from pathlib import Path
from typing import Any

import docker.errors

from tests.support.standin_kernel import StandinKernel

# The Debian base image plus curl (falcoctl's downloads) and busybox (Falco's web server);
# cached.
_CURL = "falco-reconciler/standin-curl:2"
_SCRIPTS = Path(__file__).with_name("standin")

# Falco release -> (driver version, falcoctl version it ships or "" before falcoctl).
FALCO_RELEASES: dict[str, tuple[str, str]] = {
    "0.32.2": ("2.0.0+driver", ""), "0.33.0": ("3.0.1+driver", ""),
    "0.34.0": ("4.0.0+driver", ""), "0.35.0": ("5.0.1+driver", ""),
    "0.36.0": ("6.0.1+driver", ""), "0.37.1": ("7.0.0+driver", "0.7.1"),
    "0.38.0": ("7.2.0+driver", "0.8.0"), "0.39.0": ("7.3.0+driver", "0.10.0"),
    "0.40.0": ("8.0.0+driver", "0.11.0"), "0.41.0": ("8.1.0+driver", "0.11.0"),
    "0.43.0": ("9.1.0+driver", "0.12.2"), "0.44.0": ("10.2.0+driver", "0.13.0"),
}
# Driver version -> (API version, schema version): driver/API_VERSION and
# driver/SCHEMA_VERSION of falcosecurity/libs at that tag.
DRIVER_IDENTITY: dict[str, tuple[str, str]] = {
    "2.0.0+driver": ("1.0.0", "2.0.0"), "3.0.1+driver": ("2.0.0", "2.1.0"),
    "4.0.0+driver": ("3.0.0", "2.2.0"), "5.0.1+driver": ("4.0.1", "2.4.1"),
    "6.0.1+driver": ("5.0.0", "2.10.0"), "7.0.0+driver": ("8.0.1", "2.14.0"),
    "7.2.0+driver": ("8.0.3", "2.20.1"), "7.2.1+driver": ("8.0.3", "2.20.1"),
    "7.3.0+driver": ("8.0.3", "2.22.1"), "8.0.0+driver": ("8.0.3", "3.5.0"),
    "8.1.0+driver": ("8.0.3", "3.6.1"), "9.0.0+driver": ("8.0.4", "4.0.1"),
    "9.1.0+driver": ("8.0.4", "4.1.0"), "10.2.0+driver": ("10.1.0", "4.5.1"),
}


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _with_curl(client: Any, base_image: str) -> str:
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(_CURL)
        return _CURL
    box = client.containers.run(
        base_image,
        ["bash", "-c", "apt-get update -q && apt-get install -y -q --no-install-recommends "
         "curl ca-certificates busybox >/dev/null && rm -rf /var/lib/apt/lists/*"],
        network_mode="host", detach=True,
    )
    try:
        if box.wait(timeout=600)["StatusCode"] != 0:
            raise RuntimeError("installing curl in the stand-in failed:\n"
                               + box.logs(tail=30).decode(errors="replace"))
        repository, tag = _CURL.split(":")
        box.commit(repository, tag)
    finally:
        box.remove(force=True)
    return _CURL


class _Tar:
    def __init__(self) -> None:
        self.data = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.data, mode="w")  # noqa: SIM115 - closed in done()

    def file(self, path: str, body: bytes | str, mode: int = 0o644) -> None:
        raw = body.encode() if isinstance(body, str) else body
        info = tarfile.TarInfo(path.lstrip("/"))
        info.size, info.mode, info.mtime = len(raw), mode, int(time.time())
        self.tar.addfile(info, io.BytesIO(raw))

    def script(self, path: str, name: str) -> None:
        self.file(path, (_SCRIPTS / name).read_bytes(), 0o755)

    def folder(self, path: str) -> None:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        self.tar.addfile(info)

    def done(self) -> bytes:
        self.tar.close()
        return self.data.getvalue()


class Standins:
    """The stand-in images of one test session, talking to its stand-in kernel."""

    def __init__(self, client: Any, base_image: str, kernel: StandinKernel, *,
                 web_port: int = 8765) -> None:
        self.client, self.base_image, self.kernel = client, base_image, kernel
        # Another port than every release's 8765: a second Falco on the host network of
        # the same machine (a test's second host) would find it taken.
        self.web_port = web_port
        token = f"k{kernel.address[1]}" + ("" if web_port == 8765 else f"-w{web_port}")
        self.falco_repository = f"falco-reconciler/falco-standin-{token}"
        self.loader_repository = f"falco-reconciler/falco-driver-loader-standin-{token}"
        self._made: set[str] = set()

    def falco(self, version: str) -> str:
        """``<falco repository>:<version>``, made on first use."""
        return self._ensure(self.falco_repository, version, loader=False)

    def loader(self, version: str) -> str:
        """``<loader repository>:<version>`` (0.40+ only), made on first use."""
        if _minor(version) < (0, 40):
            raise ValueError(f"Falco {version} has no separate driver-loader image")
        return self._ensure(self.loader_repository, version, loader=True)

    def close(self) -> None:
        for ref in sorted(self._made):
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(ref)

    def _ensure(self, repository: str, version: str, *, loader: bool) -> str:
        ref = f"{repository}:{version}"
        if ref in self._made:
            return ref
        driver, falcoctl = FALCO_RELEASES[version]
        api, schema = DRIVER_IDENTITY[driver]
        host, port = self.kernel.address
        generation = _minor(version)
        tar = _Tar()
        tar.file("/etc/falco-standin/facts", (
            f"FALCO_VERSION={version}\nDRIVER_VERSION='{driver}'\nNEED_API={api}\n"
            f"NEED_SCHEMA={schema}\nFALCOCTL_VERSION={falcoctl}\n"
            f"KERNEL_HOST={host}\nKERNEL_PORT={port}\n"))
        for name in ("lib.sh", "kmod-tools.sh"):
            tar.script(f"/usr/local/lib/falco-standin/{name}", name)
        for tool in ("insmod", "rmmod", "lsmod", "modprobe"):
            tar.script(f"/usr/local/sbin/{tool}", "kmod-tools.sh")
        tar.folder("/usr/src")
        tar.folder(f"/usr/src/falco-{driver}")  # where the real images keep driver sources
        tar.folder("/root/.falco")
        tar.script("/usr/bin/falco", "falco.sh")
        # Every release's falco.yaml has its web server on, on 8765.
        webserver = (f"webserver:\n  enabled: true\n  listen_port: {self.web_port}\n"
                     "  k8s_healthz_endpoint: /healthz\n")
        if generation < (0, 37):
            tar.file("/etc/falco/falco.yaml", webserver)
        else:
            tar.script("/usr/bin/falcoctl", "falcoctl.sh")
            default = "modern_ebpf" if generation >= (0, 38) else "kmod"
            config_files = "config_files:\n  - /etc/falco/config.d\n" if generation >= (0, 38) \
                else ""
            tar.file("/etc/falco/falco.yaml", (
                f"{config_files}engine:\n  kind: {default}\n  kmod:\n    buf_size_preset: 4\n"
                "  ebpf:\n    probe: ${HOME}/.falco/falco-bpf.o\n" + webserver))
            if generation >= (0, 38):
                tar.folder("/etc/falco/config.d")
        changes = ["ENV HOST_ROOT=/host", "ENV HOME=/root", 'CMD ["/usr/bin/falco"]']
        if loader:
            tar.script("/docker-entrypoint.sh", "driver-loader.sh")
            changes = ["ENV HOST_ROOT=/host", "ENV HOME=/root", "CMD []",
                       'ENTRYPOINT ["/docker-entrypoint.sh"]']
        elif generation < (0, 37):
            tar.script("/usr/bin/falco-driver-loader", "falco-driver-loader.sh")
            tar.script("/docker-entrypoint.sh", "entrypoint-bash.sh")
            changes.append('ENTRYPOINT ["/docker-entrypoint.sh"]')
        elif generation < (0, 40):
            tar.script("/docker-entrypoint.sh", "entrypoint-falcoctl.sh")
            changes.append('ENTRYPOINT ["/docker-entrypoint.sh"]')
        box = self.client.containers.create(_with_curl(self.client, self.base_image),
                                            network_mode="none")
        try:
            box.put_archive("/", tar.done())
            box.commit(repository, version, changes=changes)
        finally:
            box.remove(force=True)
        self._made.add(ref)
        return ref


def driver_file(kind: str, driver_version: str, release: str,
                identity: tuple[str, str] | None = None) -> bytes:
    """A driver file that looks like a real one where the stand-ins look: the strings a
    module's .modinfo holds (or a probe's sections), for ``release`` (``uname -r``)."""
    api, schema = identity or DRIVER_IDENTITY[driver_version]
    fields = [f"version={driver_version}", f"api_version={api}", f"schema_version={schema}"]
    if kind == "kmod":
        head = b"\x7fELF stand-in falco kernel module\x00"
        fields = ["name=falco", *fields, f"vermagic={release} SMP preempt mod_unload "]
    else:
        head = b"\x7fELF stand-in falco eBPF probe\x00"
        fields = [f"kernel_version={release}", *fields]
    return head + b"".join(f.encode() + b"\x00" for f in fields)
