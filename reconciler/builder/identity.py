"""The driver-source step's gate: is this source tree the driver version we were asked for?

A tree declares its identity before anything is compiled: a falcosecurity/libs tree in
``driver/API_VERSION`` and ``driver/SCHEMA_VERSION`` (what its cmake configuration writes
into ``driver_config.h``), a ready DKMS tree in the ``PPM_API_CURRENT_VERSION_*`` and
``PPM_SCHEMA_CURRENT_VERSION_*`` macros of its ``driver_config.h``. A known driver version
whose requirement the tree does not meet fails here, so no compile time is spent on a
driver Falco would refuse; a version not in the table is built and the log says it was not
checked. The verify step later holds the built files to the identity found here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from reconciler.builder import sources, steps
from reconciler.edges.docker import jobs
from reconciler.errors import StepFailed
from reconciler.model import versions
from reconciler.model.artifacts import DriverKind
from reconciler.model.container import BindMount
from reconciler.model.versions import DriverIdentity

_MACRO = re.compile(
    r"^\s*#\s*define\s+PPM_(API|SCHEMA)_CURRENT_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)\s*$",
    re.MULTILINE,
)


def declared(source: sources.Source) -> DriverIdentity | None:
    """The identity the tree declares, or None if it declares none."""
    try:
        if source.kind is sources.TreeKind.LIBS:
            driver = source.tree / "driver"
            return DriverIdentity.parse(_first_line(driver / "API_VERSION"),
                                        _first_line(driver / "SCHEMA_VERSION"))
        return from_driver_config((source.tree / "driver_config.h").read_text("utf-8"))
    except (OSError, ValueError):
        return None


def from_driver_config(text: str) -> DriverIdentity | None:
    """The identity the version macros of a ``driver_config.h`` spell, if all six are there."""
    parts = {(m[1], m[2]): int(m[3]) for m in _MACRO.finditer(text)}
    try:
        api, schema = (
            versions.SemVer(parts[(which, "MAJOR")], parts[(which, "MINOR")],
                            parts[(which, "PATCH")])
            for which in ("API", "SCHEMA")
        )
    except KeyError:
        return None
    return DriverIdentity(api, schema)


def _first_line(path: Path) -> str:
    return path.read_text("utf-8").splitlines()[0] if path.stat().st_size else ""


def has_probe(source: sources.Source) -> bool:
    """Whether the tree holds the legacy eBPF probe's sources (driver 10.x has none)."""
    folder = source.tree / "driver" / "bpf" if source.kind is sources.TreeKind.LIBS else (
        source.tree / "bpf")
    return (folder / "Makefile").is_file()


def check(
    source: sources.Source, spec: str, driver_version: str, kinds: Sequence[DriverKind],
    log: steps.BuildLog, *, suggest: Callable[[], str] | None = None,
) -> DriverIdentity | None:
    """Raise ``StepFailed`` unless the tree can be ``driver_version`` of every kind in
    ``kinds``; returns the identity it declares (what the built files must carry).
    ``suggest`` is asked, on a mismatch only, where a source that fits may be found."""
    if DriverKind.EBPF in kinds and not has_probe(source):
        raise StepFailed(
            f"driver source {spec!r} has no eBPF probe (no bpf/ folder with a Makefile; "
            "falcosecurity/libs dropped the legacy probe in driver 10.0), so it cannot "
            f"build the ebpf artifact of {driver_version}: ask for kmod only, or use "
            "modern_ebpf"
        )
    found = declared(source)
    required = versions.required_identity(driver_version)
    if required is None:
        log.note(f"driver identity not checked: {driver_version} is not a driver version "
                 f"we know the API and schema of (the source has {found or 'none'})")
        return found
    if found is None:
        raise StepFailed(
            f"driver source {spec!r} declares no API/schema version, so it cannot be shown "
            f"to be {driver_version} (which requires {required})"
        )
    problem = versions.identity_problem(driver_version, found)
    if problem is not None:
        hint = f"; {suggest()}" if suggest is not None else ""
        raise StepFailed(f"driver source {spec!r} does not fit: {problem}{hint}")
    log.note(f"driver identity: the source has {found}, which {driver_version} accepts "
             f"(it requires {required})")
    return found


def fitting_suites(
    eng: jobs.Jobs, image: str, package: sources.DebPackage, driver_version: str, *,
    workdir: Path, log: steps.BuildLog, timeout: float | None = None,
    suites: Sequence[str] = sources.SUGGESTED_SUITES,
) -> str:
    """One clause naming the suites whose ``package`` fits ``driver_version`` (only the
    packages' driver_config.h are fetched, into ``workdir``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = eng.run(
        image, steps.script("apt-suite.sh", "source-deb-suites.sh"),
        mounts=[BindMount(str(workdir), "/out", read_only=False)], network="host",
        environment={"NAME": package.name, "SUITES": " ".join(suites)}, timeout=timeout,
        labels={jobs.LABEL_STEP: steps.Step.DRIVER_SOURCE},
    )
    log.write(result.output)
    fitting: list[str] = []
    seen: list[str] = []
    for line in result.output.splitlines():
        words = line.split()
        if len(words) != 3 or words[0] != "suite":
            continue
        suite, codename = words[1], words[2]
        configs = sorted((workdir / suite).glob("usr/src/*/driver_config.h"))
        found = from_driver_config(configs[0].read_text("utf-8")) if configs else None
        seen.append(f"{codename} {found or 'without a version'}")
        fits = found is not None and versions.identity_problem(driver_version, found) is None
        if fits and codename not in fitting:
            fitting.append(codename)
    if fitting:
        return ("suites with a version that fits: "
                + ", ".join(f"deb:{package.name}/{name}" for name in fitting))
    return (f"no suite of the mirror has a {package.name} that fits (looked at: "
            f"{', '.join(seen) or ', '.join(suites)})")
