"""A load test of one artifact on one kernel package, end to end: the builder image, the
driver's source tree and scap-open (each cached), the kernel image (cached by the
package's sha256), one VM. The command and the apply path both test through here.

Caches live under ``<state_dir>/cache/`` (``guest-userspace/``, ``kernel-images/``) and
each VM log under ``<state_dir>/logs/``, beside the build logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler import logs
from reconciler.builder import images, sources, steps
from reconciler.edges.docker import jobs
from reconciler.edges.docker.protocol import ContainerEngine
from reconciler.edges.vm import kernelimage, qemu
from reconciler.errors import LoadTestError, ReconcilerError, StepFailed
from reconciler.loadtest import compat, guest, userspace
from reconciler.loadtest.result import LoadTestResult, Outcome, UserspaceCheck
from reconciler.model.urls import redacted

log = logs.get(__name__)


@dataclass(frozen=True)
class Setup:
    """Where the test's parts come from: the build settings it shares with builds."""

    state_dir: Path
    source: str
    base_image: str
    timeout: float = 1800.0


def vm_log_path(state_dir: Path, artifact: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", artifact.name)
    return state_dir / "logs" / f"loadtest-{safe}-{stamp}.vm.log"


def prepare(engine: ContainerEngine, setup: Setup, driver_version: str, *,
            module_name: str = "falco", device_name: str = "falco") -> userspace.GuestUserspace:
    """scap-open for ``driver_version`` (built in the builder unless cached)."""
    return _build(engine, setup, _with_libscap(setup.source), driver_version,
                  module_name=module_name, device_name=device_name)


def prepare_libs(engine: ContainerEngine, setup: Setup, libs_version: str, *,
                 module_name: str = "falco", device_name: str = "falco"
                 ) -> userspace.GuestUserspace:
    """scap-open of libs ``libs_version``, an older Falco's userspace, from where the
    driver's source comes: a URL template takes the libs tag (driver and libs releases are
    tags of one repository); Debian's source package only when it is that version."""
    spec = _with_libscap(setup.source)
    if not spec.startswith(sources.DEB_SRC_PREFIX) and (
            "://" not in spec or "{driverVersion}" not in spec):
        raise LoadTestError(
            f"no source of libs {libs_version}: the driver source {redacted(spec)!r} is one "
            "tree; a URL template with {driverVersion} (as the default) reaches libs tags too")
    return _build(engine, setup, spec, libs_version, module_name=module_name,
                  device_name=device_name, expect=libs_version)


def _with_libscap(spec: str) -> str:
    """The source that has libscap for a driver source: Debian's DKMS package has none,
    its source package (``deb-src:``, the same version) has; other sources are kept."""
    if spec.startswith(sources.DEB_PREFIX):
        return sources.DEB_SRC_PREFIX + spec.removeprefix(sources.DEB_PREFIX)
    return spec


def _build(engine: ContainerEngine, setup: Setup, spec: str, version: str, *,
           module_name: str, device_name: str, expect: str | None = None
           ) -> userspace.GuestUserspace:
    """scap-open from the tree ``spec`` gives for ``version``, built unless cached; a
    tree whose libs version is not ``expect`` (when given) is refused before any build."""
    cache = setup.state_dir / "cache"
    build_log = steps.BuildLog(setup.state_dir / "logs" / f"guest-userspace-{version}.log")
    eng = jobs.Jobs(engine)
    try:
        image = images.ensure(eng, setup.base_image, cache / "locks", build_log,
                              timeout=setup.timeout)
        source = sources.ensure(eng, image.reference, spec, version,
                                cache_root=cache / "sources", log=build_log,
                                timeout=setup.timeout)
    except StepFailed as exc:
        raise LoadTestError(f"cannot prepare the load test's userspace: {exc.reason} "
                            f"(log {build_log.path})") from exc
    debian = sources.debian_version(source)
    libs = upstream_version(debian) if debian else compat.libs_of_driver(version) or version
    if expect is not None and libs != expect:
        raise LoadTestError(f"no source of libs {expect}: {redacted(spec)} has {libs}")
    return userspace.ensure(eng, image.reference, source, spec, version,
                            module_name=module_name, device_name=device_name,
                            cache_root=cache, log=build_log, timeout=setup.timeout,
                            libs_version=libs)


def upstream_version(debian_version: str) -> str:
    """``0.20.0`` of Debian's ``1:0.20.0-3`` (no epoch, no Debian revision)."""
    return debian_version.split(":", 1)[-1].rsplit("-", 1)[0]


def test(subject: guest.Subject, kernel_package: Path, space: userspace.GuestUserspace,
         setup: Setup, options: guest.Options = guest.DEFAULT_OPTIONS) -> LoadTestResult:
    """Boot the kernel of ``kernel_package`` with ``subject`` in it, once."""
    return boot(subject, kernelimage.from_package(kernel_package, images_cache(setup)),
                space, setup, options)


def images_cache(setup: Setup) -> Path:
    """Kernel images, each by the sha256 of the package or the file it came from."""
    return setup.state_dir / "cache" / "kernel-images"


def boot(subject: guest.Subject, image: kernelimage.KernelImage,
         space: userspace.GuestUserspace, setup: Setup,
         options: guest.Options = guest.DEFAULT_OPTIONS) -> LoadTestResult:
    """Boot ``image`` with ``subject`` in it, once."""
    if not qemu.available():
        raise LoadTestError(f"{qemu.BINARY} is not installed (Debian: qemu-system-x86)")
    result = guest.run(subject, image, space, vm_log_path(setup.state_dir, subject.artifact),
                       options)
    log.info("loadtest.done", artifact=str(subject.artifact), libs=space.libs_version,
             result=str(result.outcome),
             events=result.events, drops=result.drops, seconds=round(result.duration_seconds, 1),
             vm_log=result.vm_log)
    return result


def older_userspaces(engine: ContainerEngine, setup: Setup, subject: guest.Subject,
                     image: kernelimage.KernelImage, *, tested: LoadTestResult,
                     falcos: tuple[str, ...], options: guest.Options = guest.DEFAULT_OPTIONS
                     ) -> tuple[UserspaceCheck, ...]:
    """``subject`` booted again with scap-open of each libs version older than its own
    test's that one of ``falcos`` pins (only when it loaded): whether they can read it
    on this kernel. A userspace that cannot be had is ``untested`` with why."""
    if not tested.loaded:
        return ()
    checks = []
    for libs, who in compat.older_userspaces(falcos, tested.libs_version):
        try:
            space = prepare_libs(engine, setup, libs, module_name=subject.module_name,
                                 device_name=subject.device_name)
            found = boot(subject, image, space, setup, options)
        except ReconcilerError as exc:
            checks.append(UserspaceCheck(libs, who, Outcome.UNTESTED, (str(exc),)))
            continue
        outcome = (Outcome.PASSED if found.passed else
                   Outcome.LOADED if found.loaded else Outcome.FAILED)
        checks.append(UserspaceCheck(libs, who, outcome, found.reasons, found.events,
                                     found.drops, found.vm_log))
    return tuple(checks)
