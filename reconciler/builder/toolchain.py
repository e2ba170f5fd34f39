"""The build's own toolchain steps, as one seam: builder image, driver source, its
identity, the working copy, the compile.

``runner`` calls them through ``Toolchain``; ``CONTAINERS`` is the real one (each step its
module's function, running in the builder image), ``FakeToolchain`` (beside it) stands in
for all five so the logic around them (which kernel's headers, the vermagic check, the
names published) is tested without a compiler. The headers, signing and verify steps are
not part of it: they run real in such tests, on whatever engine the build was given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from reconciler.builder import compiler, headers, identity, images, sources, steps
from reconciler.edges.docker import jobs
from reconciler.model.artifacts import DriverKind
from reconciler.model.versions import DriverIdentity


class Toolchain(Protocol):
    def builder_image(self, eng: jobs.Jobs, base_image: str, lock_dir: Path,
                      log: steps.BuildLog, *, timeout: float | None) -> images.BuilderImage: ...

    def source(self, eng: jobs.Jobs, builder_image: str, spec: str, driver_version: str, *,
               cache_root: Path, log: steps.BuildLog, timeout: float | None) -> sources.Source:
        ...

    def identity(self, source: sources.Source, spec: str, driver_version: str,
                 kinds: Sequence[DriverKind], log: steps.BuildLog, *,
                 suggest: Callable[[], str] | None) -> DriverIdentity | None: ...

    def prepare(self, source: sources.Source, workdir: Path, module_name: str,
                device_name: str) -> Path: ...

    def compile(self, eng: jobs.Jobs, builder_image: str, tree_kind: sources.TreeKind, *,
                kinds: Sequence[DriverKind], hdrs: headers.Headers, workdir: Path,
                module_name: str, device_name: str, driver_version: str, artifact: str,
                log: steps.BuildLog, timeout: float | None) -> compiler.Outputs: ...


class Containers:
    """The real steps, in the builder image's containers."""

    builder_image = staticmethod(images.ensure)
    source = staticmethod(sources.ensure)
    identity = staticmethod(identity.check)
    prepare = staticmethod(sources.prepare)
    compile = staticmethod(compiler.run)


CONTAINERS: Toolchain = Containers()


@dataclass
class FakeToolchain:
    """Every step succeeds at once: the image is ``builder``, the source is ``tree`` (a
    libs tree declaring no identity), and the compile writes ``built(headers)`` as the
    module. ``compiled_for`` records the headers' release of each compile."""

    tree: Path
    built: Callable[[headers.Headers], bytes]
    compiled_for: list[str] = field(default_factory=list)

    def builder_image(self, eng: jobs.Jobs, base_image: str, lock_dir: Path,
                      log: steps.BuildLog, *, timeout: float | None) -> images.BuilderImage:
        return images.BuilderImage("builder", base_image, "fake")

    def source(self, eng: jobs.Jobs, builder_image: str, spec: str, driver_version: str, *,
               cache_root: Path, log: steps.BuildLog, timeout: float | None) -> sources.Source:
        return sources.Source(sources.TreeKind.LIBS, self.tree)

    def identity(self, source: sources.Source, spec: str, driver_version: str,
                 kinds: Sequence[DriverKind], log: steps.BuildLog, *,
                 suggest: Callable[[], str] | None) -> DriverIdentity | None:
        return None

    def prepare(self, source: sources.Source, workdir: Path, module_name: str,
                device_name: str) -> Path:
        return source.tree

    def compile(self, eng: jobs.Jobs, builder_image: str, tree_kind: sources.TreeKind, *,
                kinds: Sequence[DriverKind], hdrs: headers.Headers, workdir: Path,
                module_name: str, device_name: str, driver_version: str, artifact: str,
                log: steps.BuildLog, timeout: float | None) -> compiler.Outputs:
        self.compiled_for.append(hdrs.release)
        module = workdir / f"{module_name}.ko"
        module.write_bytes(self.built(hdrs))
        return compiler.Outputs(((DriverKind.KMOD, module),))
