"""The build's load-test step: test each verified artifact before it is published.

The builder calls the gate between verify and publish. The kernel it boots is the image
a package among the build's ``kernelUrls`` held (kept beside the release's headers by
``builder.headers``), for any target; else, for Debian and Ubuntu, the image package
``linux-image-<release>`` through the builder image's apt sources (cached under
``<state_dir>/cache/kernel-packages/``). It builds or reuses scap-open, boots the VM and
applies the policy: a refused artifact is not published, it is copied with its VM log to
``<state_dir>/quarantine/`` and the build fails at step load-test with the reason. A
published one carries its result beside it in the store (``<artifact>.loadtest.json``,
read into ``index.json``).

A driver that loads is booted again with scap-open of each older libs version that a
declaring Falco pins (``falcos``): whether that Falco's userspace can read it on this
kernel is part of the result, and never keeps the driver out of the store.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler import logs
from reconciler.builder import headers, images, locks, steps
from reconciler.edges import atomic
from reconciler.edges.docker import jobs
from reconciler.edges.docker.protocol import ContainerEngine
from reconciler.edges.store.local import LOAD_TEST_SUFFIX
from reconciler.edges.vm import kernelimage, qemu
from reconciler.errors import LoadTestError, ReconcilerError, StepFailed
from reconciler.loadtest import guest, policy, quarantine, tester, userspace
from reconciler.loadtest.result import LoadTestResult
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.container import BindMount

log = logs.get(__name__)

_IMAGE_TARGETS = ("debian", "ubuntu")


@dataclass(frozen=True)
class Gate:
    engine: ContainerEngine
    policy: policy.Policy
    setup: tester.Setup
    accel: str = qemu.DEFAULT_ACCEL
    module_name: str = "falco"  # what a fetched artifact is named as (the host's names)
    device_name: str = "falco"

    def __call__(self, key: ArtifactKey, path: Path, *, release: str, module_name: str,
                 device_name: str, build_log: steps.BuildLog, falcos: tuple[str, ...] = ()
                 ) -> None:
        """Test ``path`` (and, if it loads, with the userspace of each of ``falcos`` older
        than its own); raise ``StepFailed`` if the policy keeps it out of the store, else
        leave its result beside it (``path`` + LOAD_TEST_SUFFIX) for the publish step."""
        result = self._result(key, path, release=release, module_name=module_name,
                              device_name=device_name, build_log=build_log, falcos=falcos)
        build_log.note(f"load test of {key.relpath}: {result.summary()}")
        refused = policy.refusal(self.policy, result)
        if refused is not None:
            where = self._quarantine(key, path, result)
            raise StepFailed(f"{refused}; quarantined in {where}")
        atomic.write_bytes(path.with_name(path.name + LOAD_TEST_SUFFIX),
                           json.dumps(result.to_json(), indent=2).encode())

    def fetched(self, key: ArtifactKey, path: Path, release: str,
                falcos: tuple[str, ...] = ()) -> None:
        """Test a fetched artifact before it is published, as a build's (``Fetcher``);
        its notes go to a log of its own beside the build logs."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = key.relpath.replace("/", "_")
        self(key, path, release=release, module_name=self.module_name,
             device_name=self.device_name, build_log=steps.BuildLog(
                 self.setup.state_dir / "logs" / f"fetch-{name}-{stamp}.log"), falcos=falcos)

    def _result(self, key: ArtifactKey, path: Path, *, release: str, module_name: str,
                device_name: str, build_log: steps.BuildLog,
                falcos: tuple[str, ...] = ()) -> LoadTestResult:
        kind = str(key.kind)
        if not qemu.available():
            return LoadTestResult.untested(kind, f"{qemu.BINARY} is not installed")
        kernel = dataclasses.replace(key.kernel, kernel_release=release)
        if kernel.arch != qemu.ARCH:
            return LoadTestResult.untested(
                kind, f"the load test boots {qemu.ARCH} kernels only ({qemu.BINARY}), "
                f"not {kernel.arch}")
        cache = self.setup.state_dir / "cache" / "headers"
        beside = headers.image_path(cache, kernel)
        kept = beside if beside.is_file() else None
        if kept is None and not kernel.target.startswith(_IMAGE_TARGETS):
            return LoadTestResult.untested(kind, no_image_reason(kernel, headers.cached(
                cache, kernel)))
        options = guest.Options(accel=self.accel)
        try:
            space = tester.prepare(self.engine, self.setup, key.driver_version,
                                   module_name=module_name, device_name=device_name)
            subject = guest.Subject(path, DriverKind(key.kind), module_name, device_name)
            image = self._kernel_image(kept, release, build_log)
            result = tester.boot(subject, image, space, self.setup, options)
        except ReconcilerError as exc:  # no userspace, no image, no engine: not tested
            return LoadTestResult.untested(kind, str(exc))
        checks = tester.older_userspaces(self.engine, self.setup, subject, image,
                                         tested=result, falcos=falcos, options=options)
        for check in checks:
            build_log.note(f"load test with the userspace of {check.line()}")
        return dataclasses.replace(result, userspaces=checks) if checks else result

    def _kernel_image(self, kept: Path | None, release: str,
                      build_log: steps.BuildLog) -> kernelimage.KernelImage:
        """The image a kernelUrls package held, else the apt sources' image package."""
        cache = tester.images_cache(self.setup)
        if kept is not None:
            image = kernelimage.from_file(kept, release, cache)
            build_log.note(f"kernel image {release}: from the build's kernelUrls "
                           f"(sha256 {image.sha256})")
            return image
        return kernelimage.from_package(self._kernel_package(release, build_log), cache)

    def _kernel_package(self, release: str, build_log: steps.BuildLog) -> Path:
        folder = self.setup.state_dir / "cache" / "kernel-packages" / release
        found = sorted(folder.glob("*.deb")) if folder.is_dir() else []
        if found:
            return found[0]
        cache = self.setup.state_dir / "cache"
        eng = jobs.Jobs(self.engine)
        with locks.held(cache / "locks" / f"kernel-package-{release}.lock"):
            image = images.ensure(eng, self.setup.base_image, cache / "locks", build_log,
                                  timeout=self.setup.timeout)
            partial = folder.with_name(f".{release}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            done = eng.run(image.reference, userspace.script_text("kernel-package.sh"),
                           mounts=[BindMount(str(partial), "/out", read_only=False)],
                           network="host", timeout=self.setup.timeout,
                           environment={"RELEASE": release},
                           labels={jobs.LABEL_STEP: "kernel-package"})
            build_log.write(done.output)
            if not done.ok:
                shutil.rmtree(partial, ignore_errors=True)
                raise LoadTestError(f"no kernel image package for {release} in the builder's "
                                    "apt sources")
            shutil.rmtree(folder, ignore_errors=True)
            partial.rename(folder)
        return sorted(folder.glob("*.deb"))[0]

    def _quarantine(self, key: ArtifactKey, path: Path, result: LoadTestResult) -> Path:
        where = quarantine.folder(self.setup.state_dir) / key.relpath
        atomic.copy_file(path, where)
        atomic.write_bytes(where.with_name(where.name + LOAD_TEST_SUFFIX),
                           json.dumps(result.to_json(), indent=2).encode())
        if result.vm_log and Path(result.vm_log).is_file():
            atomic.copy_file(Path(result.vm_log), where.with_name(where.name + ".vm.log"))
        log.warning("loadtest.quarantined", artifact=key.relpath, folder=str(where.parent))
        return where


def no_image_reason(kernel: KernelId, hdrs: headers.Headers | None) -> str:
    """Why a kernel that apt cannot give has no image to boot, and what gives it one."""
    said = (f"no kernel image for {kernel.target} {kernel.kernel_release}: list its image "
            f"package (one holding boot/vmlinuz-{kernel.kernel_release} or "
            f"lib/modules/{kernel.kernel_release}/vmlinuz, such as linux-image-* or "
            "kernel-core) in the DriverBuild's kernelUrls")
    if hdrs is not None and hdrs.urls:  # the image is kept only when headers are fetched
        said += " (the next build fetches its headers again, with it)"
    return said
