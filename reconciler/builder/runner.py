"""Run builds: one request = one kernel and driver version, every wanted kind, headers once.

Steps, in order: builder-image, kernel-headers, driver-source, compile, verify, publish.
The driver-source step refuses a tree that is not the requested driver version (its API
and schema, ``identity``); verify holds the built files to what the tree declared.
Requests run in parallel up to ``jobs``, each within its own timeout; one failing never
stops the others: every request gets a ``BuildOutcome`` (its published artifacts, or the
``BuildError`` naming artifact, step, last output lines and the full log file under
``<state_dir>/logs/``). An artifact already in the store (verifying, and of an identity
its driver version accepts: ``observe.stored.usable``) costs no container at all.

Nothing half-done is ever visible: the build container writes into a private folder
under ``<state_dir>/tmp/``, files are verified there, and only then published through
``Store.publish`` (temp name, fsync, rename). On an interrupt every running container is
killed and removed before the interrupt goes on; containers and private folders that a
``kill -9`` left are removed at the next start.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import enum
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from reconciler import logs
from reconciler.builder import (
    headers,
    identity,
    images,
    locks,
    signing,
    sources,
    steps,
    verify,
)
from reconciler.builder.steps import Step
from reconciler.builder.toolchain import CONTAINERS, Toolchain
from reconciler.edges import atomic
from reconciler.edges.docker import jobs
from reconciler.edges.docker.protocol import ContainerEngine
from reconciler.edges.host import openssl as modsign
from reconciler.edges.store.local import Store
from reconciler.edges.store.opener import LOAD_TEST_SUFFIX
from reconciler.errors import (
    BuildError,
    BuildTimeout,
    Cancelled,
    CertificateUnreadable,
    DockerError,
    InvalidDriver,
    StepFailed,
    StoreError,
)
from reconciler.model.artifacts import ArtifactKey, DriverKind, KernelId
from reconciler.model.modsig import Signer, Signing
from reconciler.model.netpolicy import STRICT, UrlPolicy
from reconciler.model.stored import StoredArtifact
from reconciler.observe.stored import usable

log = logs.get(__name__)


@dataclass(frozen=True)
class BuildRequest:
    """Build ``kinds`` of one driver version for one kernel (headers fetched once)."""

    kernel: KernelId
    driver_version: str
    kinds: tuple[DriverKind, ...]
    kernel_urls: tuple[str, ...] = ()
    # The kernel's own ``uname -r`` when the artifact's name uses another (Falco 0.35+ on
    # Debian names ``6.1.0-57-cloud-amd64`` as ``6.1.192-3-cloud-amd64``): its headers are
    # those of this release and the module's vermagic must start with it; "" when the name
    # is the release.
    uname_release: str = ""
    signing: Signing | None = None  # sign the module (not a probe) with this key
    # The Falco versions declaring this driver: its load test tries each one's userspace.
    falcos: tuple[str, ...] = ()

    @property
    def built_kernel(self) -> KernelId:
        """The kernel as it runs, for its headers and vermagic (the artifact's name is
        ``kernel``'s)."""
        if not self.uname_release or self.uname_release == self.kernel.kernel_release:
            return self.kernel
        return dataclasses.replace(self.kernel, kernel_release=self.uname_release)

    def artifact_keys(self) -> tuple[ArtifactKey, ...]:
        return tuple(ArtifactKey.for_kernel(self.kernel, self.driver_version, k)
                     for k in self.kinds)

    @property
    def name(self) -> str:
        """``2.0.0+driver/x86_64/falco_debian_6.1.0-1-cloud-amd64_1 [kmod,ebpf]``."""
        first = self.artifact_keys()[0].relpath.rsplit(".", 1)[0] if self.kinds else "(nothing)"
        return f"{first} [{','.join(self.kinds)}]"


class LoadTest(Protocol):
    """Tests a verified artifact before publish (``reconciler.loadtest.gate``): raises
    ``StepFailed`` to keep it out of the store, or leaves its result at ``path`` +
    ``LOAD_TEST_SUFFIX`` for the publish step to put beside it."""

    def __call__(self, key: ArtifactKey, path: Path, *, release: str, module_name: str,
                 device_name: str, build_log: steps.BuildLog,
                 falcos: tuple[str, ...] = ()) -> None: ...


@dataclass(frozen=True)
class BuildConfig:
    state_dir: Path
    store: Path
    source: str
    base_image: str
    jobs: int
    timeout: float
    module_name: str = "falco"
    device_name: str = "falco"
    # Where a kernelUrls download may reach, and how much it may bring (model.netpolicy).
    url_policy: UrlPolicy = STRICT
    load_test: LoadTest | None = None


class Phase(enum.StrEnum):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class BuildEvent:
    """Progress of one build: which artifact, which step, how long since it began."""

    artifact: str
    step: Step
    phase: Phase
    elapsed: float
    detail: str = ""


@dataclass(frozen=True)
class BuildOutcome:
    request: BuildRequest
    artifacts: tuple[StoredArtifact, ...] = ()
    error: BuildError | None = None
    log_path: Path | None = None
    seconds: float = 0.0
    built: bool = False  # False when everything was already in the store

    @property
    def ok(self) -> bool:
        return self.error is None


Progress = Callable[[BuildEvent], None]


def build_all(
    requests: Sequence[BuildRequest], config: BuildConfig, engine: ContainerEngine,
    store: Store, progress: Progress | None = None,
) -> tuple[BuildOutcome, ...]:
    """Build every request into ``store`` (the one the runtime holds, with its verdict
    cache); one outcome per request, in order, never stopping early."""
    outcomes: dict[int, BuildOutcome] = {}
    todo: list[tuple[int, BuildRequest]] = []
    for index, request in enumerate(requests):
        signer = wanted_signer(request)
        present = tuple(usable(store.lookup(key), signer) for key in request.artifact_keys())
        if all(a is not None for a in present):
            outcomes[index] = BuildOutcome(request, tuple(a for a in present if a is not None))
        else:
            todo.append((index, request))
    if todo:
        eng = jobs.Jobs(engine)
        _clean_leftovers(eng, config.state_dir)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, config.jobs)) as pool:
            futures = {
                pool.submit(_Build(request, config, eng, store, progress).run): index
                for index, request in todo
            }
            try:
                for future in concurrent.futures.as_completed(futures):
                    outcomes[futures[future]] = future.result()
            except BaseException:
                # Ctrl-C or SIGTERM in the main thread: stop every container now, let the
                # workers clean up their private folders, then let the interrupt go on.
                eng.cancel()
                for future in futures:
                    future.cancel()
                raise
    return tuple(outcomes[i] for i in range(len(requests)))


def wanted_signer(request: BuildRequest) -> Signer | str | None:
    """Who the request's module must be signed by (its certificate's issuer and serial),
    why that cannot be known (an unreadable certificate: nothing in the store is taken
    for it, and the sign step says why), or None when no signing is asked for."""
    if request.signing is None:
        return None
    if not request.signing.known:
        return (f"the signing key {request.signing.name!r} is not in this build host's "
                "keyring (signing_keys)")
    try:
        return modsign.read_certificate(Path(request.signing.certificate)).signer
    except CertificateUnreadable as exc:
        return str(exc)


def _clean_leftovers(eng: jobs.Jobs, state_dir: Path) -> None:
    removed = eng.remove_leftovers()
    tmp = state_dir / "tmp"
    stale = 0
    if tmp.is_dir():
        for entry in tmp.iterdir():
            pid = entry.name.split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not jobs.pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
                stale += 1
    cache = state_dir / "cache"
    stale += locks.remove_stale_partials(
        [cache / "sources", *cache.glob("headers/*/*")]  # where fetches unpack
    )
    if removed or stale:
        log.info("driver.build.cleaned", containers=removed, folders=stale)


class _Build:
    """One request, step by step; ``run`` never raises a ReconcilerError."""

    def __init__(
        self, request: BuildRequest, config: BuildConfig, eng: jobs.Jobs, store: Store,
        progress: Progress | None, *, toolchain: Toolchain = CONTAINERS,
    ) -> None:
        self.request = request
        self.toolchain = toolchain
        self.config = config
        self.eng = eng
        self.store = store
        self.progress = progress
        self.name = request.name
        self.started = time.monotonic()
        self.step = Step.BUILDER_IMAGE

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        left = self.config.timeout - self.elapsed()
        if left <= 0:
            raise StepFailed(
                f"the build ran past its timeout of {self.config.timeout:g}s", timed_out=True
            )
        return left

    def emit(self, phase: Phase, detail: str = "") -> None:
        event = BuildEvent(self.name, self.step, phase, round(self.elapsed(), 1), detail)
        log.info("driver.build.step", artifact=self.name, step=str(self.step),
                 phase=str(phase), elapsed=event.elapsed)
        if self.progress is not None:
            self.progress(event)

    @contextlib.contextmanager
    def stage(self, step: Step) -> Iterator[None]:
        self.step = step
        self.emit(Phase.STARTED)
        yield
        self.emit(Phase.DONE)

    def run(self) -> BuildOutcome:
        request, config = self.request, self.config
        signer = wanted_signer(request)
        missing = tuple(k for k in request.kinds
                        if usable(self.store.lookup(ArtifactKey.for_kernel(
                            request.kernel, request.driver_version, k)), signer) is None)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        safe = re.sub(r"[^A-Za-z0-9.+_-]", "_", self.name.split(" ")[0].replace("/", "_"))
        build_log = steps.BuildLog(
            config.state_dir / "logs" / f"{safe}-{stamp}-{secrets.token_hex(3)}.log"
        )
        workdir = config.state_dir / "tmp" / f"{os.getpid()}-{secrets.token_hex(6)}"
        build_log.note(f"build {self.name} (missing: {', '.join(missing)}) in {workdir}")
        try:
            published = self._steps(missing, workdir, build_log)
        except StepFailed as exc:
            return self._failed(exc.reason, exc.output or build_log.tail(), build_log,
                                timed_out=exc.timed_out)
        except Cancelled as exc:
            return self._failed(str(exc), build_log.tail(), build_log)
        except (DockerError, StoreError) as exc:
            # An engine that went away may be back on the next pass; a full disk may not.
            return self._failed(str(exc), build_log.tail(), build_log,
                                transient=exc.transient)
        except OSError as exc:
            return self._failed(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "),
                                build_log.tail(), build_log)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        present = tuple(
            a for a in (usable(self.store.lookup(k), signer) for k in request.artifact_keys())
            if a is not None
        )
        seconds = round(self.elapsed(), 1)
        log.info("driver.built", artifact=self.name, seconds=seconds,
                 files=[a.key.relpath for a in published], log=str(build_log.path))
        return BuildOutcome(request, present, None, build_log.path, seconds, built=True)

    def _steps(
        self, missing: tuple[DriverKind, ...], workdir: Path, build_log: steps.BuildLog,
    ) -> list[StoredArtifact]:
        request, config = self.request, self.config
        cache = config.state_dir / "cache"
        with self.stage(Step.BUILDER_IMAGE):
            engine_arch = self.eng.architecture()
            if engine_arch and engine_arch != request.kernel.arch:
                raise StepFailed(
                    f"cannot build {request.kernel.arch} drivers on this {engine_arch} engine: "
                    f"the builder compiles natively; let a {request.kernel.arch} host build "
                    "them (a DriverBuild's match.hostnames)"
                )
            image = self.toolchain.builder_image(self.eng, config.base_image, cache / "locks",
                                                 build_log, timeout=self.remaining())
            build_log.note(f"builder image {image.reference} (from {image.base_image})")
        # The driver source is fetched while the headers are: both are mostly waiting on
        # the mirror and unpacking, and a cold build saves the source step's whole time.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as prefetch:
            pending = prefetch.submit(
                self.toolchain.source, self.eng, image.reference, config.source,
                request.driver_version, cache_root=cache / "sources", log=build_log,
                timeout=self.remaining(),
            )
            with self.stage(Step.KERNEL_HEADERS):
                hdrs = headers.ensure(
                    self.eng, image.reference, request.built_kernel,
                    kernel_urls=request.kernel_urls, cache_root=cache / "headers",
                    log=build_log, timeout=self.remaining(), policy=config.url_policy,
                )
            with self.stage(Step.DRIVER_SOURCE):
                source = pending.result()
                expected = self.toolchain.identity(
                    source, config.source, request.driver_version, missing, build_log,
                    suggest=self._suggest(image, workdir, build_log))
                workdir.mkdir(parents=True, exist_ok=True)
                self.toolchain.prepare(source, workdir, config.module_name, config.device_name)
        with self.stage(Step.COMPILE):
            outputs = self.toolchain.compile(
                self.eng, image.reference, source.kind, kinds=missing, hdrs=hdrs,
                workdir=workdir,
                module_name=config.module_name, device_name=config.device_name,
                driver_version=request.driver_version, artifact=self.name, log=build_log,
                timeout=self.remaining(),
            )
        module = dict(outputs.files).get(DriverKind.KMOD)
        if request.signing is not None and module is not None:
            with self.stage(Step.SIGN):
                signing.sign(module=module, hdrs=hdrs, signing=request.signing, log=build_log)
        with self.stage(Step.VERIFY):
            for kind, path in outputs.files:
                try:
                    build_log.note(verify.check(
                        path, kind, request.built_kernel.kernel_release, request.kernel.arch,
                        config.module_name, expected=expected,
                    ))
                except InvalidDriver as exc:
                    raise StepFailed(f"{path.name}: {exc}") from exc
        if config.load_test is not None:
            with self.stage(Step.LOAD_TEST):
                for kind, path in outputs.files:
                    config.load_test(
                        ArtifactKey.for_kernel(request.kernel, request.driver_version, kind),
                        path, release=request.built_kernel.kernel_release,
                        module_name=config.module_name, device_name=config.device_name,
                        build_log=build_log, falcos=request.falcos)
        with self.stage(Step.PUBLISH):
            published = []
            for kind, path in outputs.files:
                key = ArtifactKey.for_kernel(request.kernel, request.driver_version, kind)
                stored = self.store.publish(key, path)  # refuses a symlinked folder
                tested = path.with_name(path.name + LOAD_TEST_SUFFIX)
                if tested.is_file():
                    atomic.copy_file(tested, stored.path.with_name(
                        stored.path.name + LOAD_TEST_SUFFIX))
                build_log.note(f"published {stored.path} sha256 {stored.sha256}")
                published.append(stored)
        return published

    def _suggest(
        self, image: images.BuilderImage, workdir: Path, build_log: steps.BuildLog,
    ) -> Callable[[], str] | None:
        """For ``deb:<package>`` with neither version nor suite: where one that fits is."""
        spec = self.config.source
        if not spec.startswith(sources.DEB_PREFIX):
            return None
        package = sources.DebPackage.parse(spec)
        if package.suite or package.version:
            return None
        return lambda: identity.fitting_suites(
            self.eng, image.reference, package, self.request.driver_version,
            workdir=workdir / "suites", log=build_log, timeout=self.remaining())

    def _failed(
        self, reason: str, output: str, build_log: steps.BuildLog, *, timed_out: bool = False,
        transient: bool = False,
    ) -> BuildOutcome:
        tail = steps.tail(output)
        build_log.note(f"FAILED at step {self.step}: {reason}")
        error_type = BuildTimeout if timed_out else BuildError
        indented = "\n".join("    " + line for line in tail.splitlines())
        message = f"building {self.name} failed at step {self.step}: {reason}"
        if indented:
            message += f"\n  last lines of output:\n{indented}"
        message += f"\n  full log: {build_log.path}"
        error = error_type(message, artifact=self.name, step=str(self.step),
                           log_path=str(build_log.path), tail=tail)
        if transient:
            error.transient = True
        self.emit(Phase.FAILED, reason)
        log.error("driver.build.failed", artifact=self.name, step=str(self.step),
                  error=reason, log=str(build_log.path))
        return BuildOutcome(self.request, (), error, build_log.path, round(self.elapsed(), 1),
                            built=True)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block SIGTERM raises KeyboardInterrupt in the main thread, so builds
    are stopped and cleaned as for Ctrl-C (the default SIGTERM would skip every finally)."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
