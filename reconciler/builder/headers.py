"""Kernel headers per kernel release, fetched once into a host cache and mounted read-only.

Sources, in order: the request's ``kernelUrls`` (``.deb`` unpacked with ``dpkg-deb -x``,
``.rpm`` with ``rpm2cpio | cpio``, tarballs with ``tar``); else, for ``debian``, the
``linux-headers-<release>`` package and its ``linux-headers-*``/``linux-kbuild-*``
dependencies from the apt sources configured in the builder image (downloaded, never
installed, so nothing is tied to one container). A release no source has fails at once,
naming the release and every source tried.

The cache lives under ``<state_dir>/cache/headers/<arch>/<target>/<release>/``; it appears
by a directory rename only when complete, so a crash leaves at most a hidden partial
folder that the next fetch replaces. Headers fetched from kernelUrls are fetched again
when a request names a package they were not fetched with; the folder they replace is
renamed aside for a day, so a build still compiling against it keeps its files.

Packages unpack with absolute paths inside (Debian's arch ``Makefile`` includes
``/usr/src/linux-headers-<x>-common/Makefile``), so each top folder is mounted at its own
path in the build container.

A ``kernelUrls`` package that holds the kernel image of the release (a ``linux-image-*``
.deb's ``boot/vmlinuz-<release>``, an .rpm's ``lib/modules/<release>/vmlinuz``, a tarball
with either) gives the load test its kernel: the image is moved out of the unpacked tree
to ``vmlinuz-<release>`` beside it, so it appears with the rest of the cache or not at all.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.builder import locks, steps
from reconciler.edges.docker import jobs
from reconciler.edges.http import client as httpclient
from reconciler.edges.http import guarded
from reconciler.errors import HttpError, StepFailed
from reconciler.model.artifacts import APT_HEADER_TARGETS, KernelId
from reconciler.model.container import BindMount
from reconciler.model.netpolicy import STRICT, UrlPolicy
from reconciler.model.urls import file_name, redacted

MANIFEST = "headers.json"
NOT_FOUND_EXIT = 42
LOCAL_OR_HTTP = ("http", "https", "file")
_SOURCE_MARK = "source: "
# The targets whose headers come from apt, with no kernelUrls: what a build host can
# build for a build request, which carries no URLs (it must not make us download any).
APT_TARGETS = APT_HEADER_TARGETS


@dataclass(frozen=True)
class Headers:
    """Unpacked headers of one kernel release, ready to mount into a build container."""

    release: str
    root: Path
    kernel_dir: str  # the kernel build tree, as seen inside the container
    urls: tuple[str, ...] = ()  # the kernelUrls they came from (none: apt)

    @property
    def mounts(self) -> tuple[BindMount, ...]:
        found: list[BindMount] = []
        for top in ("usr/src", "usr/lib", "lib"):
            folder = self.root / top
            if not folder.is_dir():
                continue
            for entry in sorted(folder.iterdir()):
                if top != "usr/src" and not entry.name.startswith(("linux-kbuild", "modules")):
                    continue  # never shadow the toolchain's own /usr/lib folders
                if entry.is_dir() and not entry.is_symlink():
                    found.append(BindMount(str(entry), f"/{top}/{entry.name}", read_only=True))
        return tuple(found)


def cache_dir(cache_root: Path, kernel: KernelId) -> Path:
    return cache_root / kernel.arch / kernel.target / kernel.kernel_release


def image_path(cache_root: Path, kernel: KernelId) -> Path:
    """Where the kernel image a ``kernelUrls`` package held is kept (if one did)."""
    return cache_dir(cache_root, kernel) / f"vmlinuz-{kernel.kernel_release}"


def cached(cache_root: Path, kernel: KernelId) -> Headers | None:
    """The cached headers of ``kernel``, or None if they were never fetched."""
    folder = cache_dir(cache_root, kernel)
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Headers(kernel.kernel_release, folder / "root", str(data["kernel_dir"]),
                   tuple(str(url) for url in data.get("urls", ())))


def ensure(
    eng: jobs.Jobs, builder_image: str, kernel: KernelId, *, kernel_urls: Sequence[str],
    cache_root: Path, log: steps.BuildLog, timeout: float | None = None,
    policy: UrlPolicy = STRICT,
) -> Headers:
    """The headers of ``kernel`` from the cache, fetched first if they are not there, or
    if ``kernel_urls`` name a package they were not fetched with (the kernel's image
    package, say, added to a DriverBuild after its headers were cached)."""
    found = cached(cache_root, kernel)
    if answers(found, kernel_urls):
        assert found is not None
        log.note(f"kernel headers {kernel.kernel_release}: cached in {found.root.parent}")
        return found
    folder = cache_dir(cache_root, kernel)
    with locks.held(folder.with_name(f".{folder.name}.lock")):
        found = cached(cache_root, kernel)
        if answers(found, kernel_urls):
            assert found is not None
            return found
        if found is not None:
            log.note(f"kernel headers {kernel.kernel_release}: kernelUrls name packages the "
                     f"cache in {folder} was not fetched with: fetching them all again")
        partial = folder.with_name(f".{folder.name}.partial-{secrets.token_hex(4)}")
        (partial / "root").mkdir(parents=True)
        try:
            if kernel_urls:
                _fetch_urls(eng, builder_image, kernel, urls=kernel_urls, partial=partial,
                            log=log, timeout=timeout, policy=policy)
            elif kernel.target in APT_TARGETS:
                _fetch_apt(eng, builder_image, kernel, partial=partial, log=log,
                           timeout=timeout)
            else:
                raise StepFailed(
                    f"no kernel headers for {kernel.target} {kernel.kernel_release}: only "
                    "debian headers come from apt; give kernelUrls for other targets"
                )
            kernel_dir = find_kernel_dir(partial / "root", kernel.kernel_release)
            (partial / MANIFEST).write_text(
                json.dumps({"release": kernel.kernel_release, "kernel_dir": kernel_dir,
                            "urls": list(kernel_urls)}),
                encoding="utf-8",
            )
            if folder.exists():  # outdated, or an unreadable manifest
                _retire(folder)
            partial.rename(folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    result = cached(cache_root, kernel)
    assert result is not None
    return result


def answers(found: Headers | None, kernel_urls: Sequence[str]) -> bool:
    """Whether cached headers serve a request: any do without kernelUrls; with them, only
    headers fetched from every one of them."""
    return found is not None and set(kernel_urls) <= set(found.urls)


# A replaced cache folder is renamed aside, not deleted: a build that mounted it keeps its
# files. It is deleted at a later replacement, once no build can still be using it.
_RETIRED_FOR = 86_400.0


def _retire(folder: Path) -> None:
    for old in folder.parent.glob(f".{folder.name}.retired-*"):
        stamp = old.name.rsplit(".retired-", 1)[1].split("-", 1)[0]
        if stamp.isdigit() and time.time() - int(stamp) > _RETIRED_FOR:
            shutil.rmtree(old, ignore_errors=True)
    folder.rename(folder.with_name(
        f".{folder.name}.retired-{int(time.time())}-{secrets.token_hex(4)}"))


def find_kernel_dir(root: Path, release: str) -> str:
    """The kernel build tree under ``root``, as a container path (``/usr/src/...``)."""
    candidates = [
        root / "usr/src" / f"linux-headers-{release}",
        root / "usr/src/kernels" / release,
        root / "usr/lib/modules" / release / "build",
        root / "lib/modules" / release / "build",
    ]
    for pattern in ("usr/src/kernels/*", "usr/src/linux-headers-*", "usr/src/linux-*"):
        candidates.extend(sorted(root.glob(pattern)))
    for path in candidates:
        if path.is_symlink() or not path.is_dir():
            continue
        if (path / "Makefile").is_file() and (path / ".config").is_file():
            return "/" + path.relative_to(root).as_posix()
    raise StepFailed(
        f"the header packages of {release} hold no kernel build tree "
        "(a folder with Makefile and .config under usr/src)"
    )


def find_image(root: Path, release: str) -> Path | None:
    """The kernel image of ``release`` in unpacked packages: Debian's and Ubuntu's
    ``boot/vmlinuz-<release>``, or Fedora's and RHEL's ``lib/modules/<release>/vmlinuz``
    (merged /usr or not). A link, or a path that leads out of ``root``, is not one."""
    top = root.resolve()
    for relpath in (f"boot/vmlinuz-{release}", f"lib/modules/{release}/vmlinuz",
                    f"usr/lib/modules/{release}/vmlinuz"):
        path = root / relpath
        if path.is_symlink() or not path.is_file():
            continue
        if path.resolve().is_relative_to(top):
            return path
    return None



def _fetch_apt(
    eng: jobs.Jobs, image: str, kernel: KernelId, *, partial: Path, log: steps.BuildLog,
    timeout: float | None,
) -> None:
    log.note(f"kernel headers {kernel.kernel_release}: from the apt sources of the builder")
    result = eng.run(
        image, steps.script("headers-apt.sh"),
        mounts=[BindMount(str(partial), "/out", read_only=False)],
        network="host", environment={"RELEASE": kernel.kernel_release}, timeout=timeout,
        labels={jobs.LABEL_STEP: steps.Step.KERNEL_HEADERS,
                jobs.LABEL_ARTIFACT: kernel.kernel_release},
    )
    if result.exit_code == NOT_FOUND_EXIT:
        log.write(result.output)
        sources = [
            line[len(_SOURCE_MARK):].strip() for line in result.output.splitlines()
            if line.startswith(_SOURCE_MARK)
        ]
        raise StepFailed(
            f"kernel release {kernel.kernel_release} not found: no package "
            f"linux-headers-{kernel.kernel_release} in the apt sources "
            f"({', '.join(sources) or 'none configured'}) and no kernelUrls given",
            output=result.output,
        )
    steps.check(result, f"fetching the headers of {kernel.kernel_release}", log)


def _fetch_urls(
    eng: jobs.Jobs, image: str, kernel: KernelId, *, urls: Sequence[str], partial: Path,
    log: steps.BuildLog, timeout: float | None, policy: UrlPolicy,
) -> None:
    downloads = partial / "dl"
    downloads.mkdir()
    for index, url in enumerate(urls):
        name = file_name(url) or "package"
        target = downloads / f"{index:02d}-{name}"
        log.note(f"kernel headers {kernel.kernel_release}: fetching {redacted(url)}")
        try:
            if url[:5].lower() == "file:":
                # Only from the host's own flags (reconciler build): the manifests' loader
                # refuses file:// (a push must not read host files).
                httpclient.download(url, target, timeout=timeout, deadline=timeout,
                                    schemes=LOCAL_OR_HTTP)
            else:
                # Named by the repository: the host's policy says where it may reach.
                with target.open("xb") as handle:
                    guarded.download(url, handle, policy=policy, timeout=timeout or 600.0)
        except (HttpError, OSError) as exc:
            raise StepFailed(
                f"kernel release {kernel.kernel_release}: cannot fetch its headers from "
                f"{redacted(url)} ({exc}); kernelUrls tried: {redacted(', '.join(urls))}"
            ) from exc
    result = eng.run(
        image, steps.script("headers-unpack.sh"),
        mounts=[BindMount(str(partial), "/out", read_only=False)],
        timeout=timeout,
        labels={jobs.LABEL_STEP: steps.Step.KERNEL_HEADERS,
                jobs.LABEL_ARTIFACT: kernel.kernel_release},
    )
    steps.check(result, f"unpacking the headers of {kernel.kernel_release}", log)
    keep_image(partial, kernel.kernel_release, log)


def keep_image(partial: Path, release: str, log: steps.BuildLog) -> None:
    """Move the release's image out of the unpacked tree (``partial/root``) to
    ``partial/vmlinuz-<release>``, and drop the modules its package brought: a build
    needs neither, and the modules are most of an image package's size."""
    root = partial / "root"
    vmlinuz = find_image(root, release)
    if vmlinuz is None:
        return
    vmlinuz.replace(partial / f"vmlinuz-{release}")
    log.note(f"kernel image {release}: kept from kernelUrls ({vmlinuz.relative_to(root)})")
    top = root.resolve()
    for modules in (root / "lib/modules" / release / "kernel",
                    root / "usr/lib/modules" / release / "kernel"):
        if modules.is_dir() and not modules.is_symlink() and (
                modules.resolve().is_relative_to(top)):
            shutil.rmtree(modules)
