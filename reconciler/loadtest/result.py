"""The result of one load test, a pure value that travels with its artifact.

``passed`` means the kernel took the driver (insmod, or the probe through the verifier),
its devices appeared, scap-open captured events including every marker mkdir, the driver
came out again, and the kernel said nothing worse than "out-of-tree, unsigned". ``loaded``
is kept apart: a probe that passes the verifier but whose libscap cannot read it on that
kernel loaded and still failed. ``untested`` says why no test ran (no QEMU, no image).

A driver that loads is tested again with the userspace of each older Falco that declares
it (``UserspaceCheck``): the same VM, scap-open of that Falco's libs version. Those runs
never decide whether the driver is published; they say whether that Falco can read it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

# Bumped when what a passing test checks changes (the guest script, the scan's rules).
# 2: the userspace of each older declaring Falco is tested too (``userspaces``).
TEST_VERSION = "2"


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    UNTESTED = "untested"
    LOADED = "loaded"  # the driver loads; the tested userspace cannot read it here


@dataclass(frozen=True)
class UserspaceCheck:
    """The driver under the userspace of older Falcos: scap-open of ``libs_version``
    (the libs those Falcos pin) in a VM of the same kernel. ``loaded``: the driver loads,
    that userspace cannot read it (``reasons`` say what it said); ``untested``: why not."""

    libs_version: str
    falcos: tuple[str, ...]
    outcome: Outcome
    reasons: tuple[str, ...] = ()
    events: int = 0
    drops: int = 0
    vm_log: str = ""

    @property
    def unreadable(self) -> bool:
        return self.outcome in (Outcome.LOADED, Outcome.FAILED)

    def line(self) -> str:
        """``Falco 0.40.0 (libs 0.20.0): loaded: <first reason>``."""
        who = ", ".join(self.falcos)
        said = (f"{self.events} events, {self.drops} drops" if self.outcome is Outcome.PASSED
                else (self.reasons[0] if self.reasons else "no reason given"))
        return f"Falco {who} (libs {self.libs_version}): {self.outcome}: {said}"

    def to_json(self) -> dict[str, Any]:
        return {"libsVersion": self.libs_version, "falco": list(self.falcos),
                "result": str(self.outcome), "reasons": list(self.reasons),
                "events": self.events, "drops": self.drops, "vmLog": self.vm_log}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserspaceCheck:
        return cls(str(data.get("libsVersion", "")),
                   tuple(str(f) for f in data.get("falco") or ()),
                   _outcome(data.get("result")),
                   tuple(str(r) for r in data.get("reasons") or ()),
                   int(data.get("events") or 0), int(data.get("drops") or 0),
                   str(data.get("vmLog", "")))


def _outcome(value: object) -> Outcome:
    """An outcome read back; one this version does not know counts as failed."""
    try:
        return Outcome(str(value or ""))
    except ValueError:
        return Outcome.FAILED


@dataclass(frozen=True)
class LoadTestResult:
    outcome: Outcome
    kind: str  # kmod | ebpf
    reasons: tuple[str, ...] = ()
    loaded: bool = False
    events: int = 0
    drops: int = 0
    markers_found: int = 0
    markers: int = 0
    duration_seconds: float = 0.0
    kernel_release: str = ""
    kernel_image_sha256: str = ""
    libs_version: str = ""
    test_version: str = TEST_VERSION
    vm_log: str = ""
    userspaces: tuple[UserspaceCheck, ...] = ()

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    @classmethod
    def untested(cls, kind: str, reason: str) -> LoadTestResult:
        return cls(Outcome.UNTESTED, kind, (reason,))

    def summary(self) -> str:
        """One line: ``passed: 1657 events, 0 drops, 5/5 markers in 7.7 s on <release>``."""
        head = (f"{self.outcome}: {self.events} events, {self.drops} drops, "
                f"{self.markers_found}/{self.markers} markers in {self.duration_seconds:.1f} s"
                f" on {self.kernel_release or '?'}")
        if self.outcome is Outcome.UNTESTED:
            head = "untested"
        elif self.outcome is Outcome.LOADED:
            head = (f"loaded: the driver loads; libs {self.libs_version}'s userspace cannot "
                    f"read it on {self.kernel_release or '?'}")
        return (head + "".join(f"\n  - {reason}" for reason in self.reasons)
                + "".join(f"\n  userspace of {check.line()}" for check in self.userspaces))

    def one_line(self) -> str:
        """``failed: insmod: ... (VM log <path>)``: the outcome and its first reason, and
        each older Falco whose userspace could not read it."""
        first = self.reasons[0] if self.reasons else (
            f"{self.events} events, {self.drops} drops on {self.kernel_release or '?'}")
        log = f" (VM log {self.vm_log})" if self.vm_log and not self.passed else ""
        older = "".join(f"; Falco {', '.join(c.falcos)}'s userspace (libs {c.libs_version}) "
                        "cannot read it" for c in self.userspaces if c.outcome is Outcome.LOADED)
        return f"{self.outcome}: {first}{log}{older}"

    def to_json(self) -> dict[str, Any]:
        return {
            "result": str(self.outcome), "kind": self.kind, "reasons": list(self.reasons),
            "loaded": self.loaded, "events": self.events, "drops": self.drops,
            "markersFound": self.markers_found, "markers": self.markers,
            "durationSeconds": round(self.duration_seconds, 1),
            "kernelRelease": self.kernel_release,
            "kernelImageSha256": self.kernel_image_sha256,
            "libsVersion": self.libs_version, "testVersion": self.test_version,
            "vmLog": self.vm_log,
            "userspaces": [check.to_json() for check in self.userspaces],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadTestResult:
        """Read what ``to_json`` wrote (an index.json entry); unknown results are failed."""
        return cls(
            _outcome(data.get("result")), str(data.get("kind", "")),
            tuple(str(r) for r in data.get("reasons") or ()), bool(data.get("loaded")),
            int(data.get("events") or 0), int(data.get("drops") or 0),
            int(data.get("markersFound") or 0), int(data.get("markers") or 0),
            float(data.get("durationSeconds") or 0.0), str(data.get("kernelRelease", "")),
            str(data.get("kernelImageSha256", "")), str(data.get("libsVersion", "")),
            str(data.get("testVersion", "")), str(data.get("vmLog", "")),
            tuple(UserspaceCheck.from_json(check) for check in data.get("userspaces") or ()
                  if isinstance(check, dict)),
        )
