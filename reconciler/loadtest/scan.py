"""Pure: a load test VM's console log -> the verdict.

The guest's script reports each step as an ``@@lt <key> <value>`` line; the kernel writes
its own messages to the same console. The scan reads both: the steps the guest got
through, scap-open's counters, the marker mkdirs found in the capture, and every kernel
line that means trouble (an oops, ``BUG``, ``WARNING``, a refused module with the kernel's
own words) plus the taint flags beyond the two a third-party module always sets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

STEP = "@@lt "
# Taint bits a driver we built always sets: O (out-of-tree, 1 << 12) and E (unsigned,
# 1 << 13). Any other bit (W: a warning, D: an oops, ...) fails the test.
ALLOWED_TAINT = (1 << 12) | (1 << 13)
_TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"

_TROUBLE = tuple(re.compile(pattern) for pattern in (
    r"\bOops\b", r"\bBUG:", r"kernel BUG at", r"\bWARNING:", r"general protection fault",
    r"Kernel panic", r"disagrees about version of symbol", r"Unknown symbol",
    r"insmod: can't insert",
    r"rmmod: can't unload", r"soft lockup", r"hung_task", r"RCU stall",
    # the kernel's words for an RCU stall, normal or expedited (the guest expedites them):
    # "rcu: INFO: rcu_preempt detected [expedited ]stalls on CPUs/tasks", "self-detected stall"
    r"\brcu: INFO: .*\bstall",
))
_KERNEL_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s*")
_EVENTS = re.compile(r"Number of `SCAP_SUCCESS` \(events correctly captured\): (\d+)")
_DROPS = re.compile(r"^\[\d+\] n_drops: (\d+)$")
_SCAP_ERROR = re.compile(r"^(?P<message>.+) \((?P<code>-?\d+)\)$")
_BPF_LOADED = ("correctly loaded: NO VERIFIER ISSUES", "the perf-buffer for cpu")


@dataclass(frozen=True)
class Verdict:
    passed: bool
    loaded: bool
    reasons: tuple[str, ...]
    events: int
    drops: int
    markers_found: int
    kernel_release: str


def steps(text: str) -> Mapping[str, str]:
    """The guest's ``@@lt`` lines as key -> value (a later line wins)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(STEP):
            key, _, value = line[len(STEP):].partition(" ")
            found[key] = value.strip()
    return found


def capture(text: str) -> str:
    """scap-open's own output, as the guest printed it between its two markers."""
    _, _, after = text.partition(f"{STEP}capture-output-begin")
    inside, _, _ = after.partition(f"{STEP}capture-output-end")
    return inside


def kernel_trouble(text: str) -> tuple[str, ...]:
    """Every console line that means the kernel or the loader complained, in order."""
    found = []
    for line in text.splitlines():
        bare = _KERNEL_TIME.sub("", line.strip())
        if any(pattern.search(bare) for pattern in _TROUBLE) and bare not in found:
            found.append(bare)
    return tuple(found)


def taint_letters(mask: int) -> str:
    return "".join(letter for bit, letter in enumerate(_TAINT_LETTERS) if mask & (1 << bit))


def markers_in(captured: str, token: str) -> int:
    """How many distinct marker paths (``/tmp/lt-marker-<token>-<n>``) the capture shows."""
    return len(set(re.findall(rf"PARAM \d+: /tmp/lt-marker-{re.escape(token)}-(\d+)\b",
                              captured)))


def verdict(text: str, *, kind: str, token: str, markers: int) -> Verdict:
    """Judge one run of the guest (``kind`` kmod or ebpf) from its whole console log."""
    said = steps(text)
    captured = capture(text)
    reasons = list(kernel_trouble(text))
    events = int(m[1]) if (m := _EVENTS.search(captured)) else 0
    drops = sum(int(m[1]) for line in captured.splitlines() if (m := _DROPS.match(line)))
    found = markers_in(captured, token)
    if kind == "kmod":
        loaded = said.get("insmod") == "ok"
        if not loaded:
            reasons.append(f"the module was not inserted ({said.get('insmod', 'no answer')})")
        elif said.get("devices", "0") in ("", "0"):
            reasons.append("the module made no device nodes")
    else:
        loaded = any(sign in captured for sign in _BPF_LOADED)
        if not loaded:
            reasons.append("the probe did not load through the verifier")
    if loaded:
        if said.get("capture") != "started":
            passed = "the probe passed the verifier, but " if kind == "ebpf" else ""
            reasons.append(f"{passed}scap-open could not start a capture: "
                           + _scap_error(captured))
        elif found < markers:
            reasons.append(f"the capture shows {found} of {markers} marker mkdirs")
        if said.get("scap-open-exit") != "0" and said.get("capture") == "started":
            reasons.append(f"scap-open ended with {said.get('scap-open-exit', 'no exit')}")
        if kind == "kmod" and said.get("rmmod") != "ok":
            reasons.append(f"the module could not be removed ({said.get('rmmod', 'not tried')})")
    if "end" not in said:
        reasons.append("the guest did not finish (it hung, panicked or ran out of time)")
    tainted = int(said.get("tainted", "0") or 0)
    if tainted & ~ALLOWED_TAINT:
        reasons.append(f"the kernel is tainted {taint_letters(tainted & ~ALLOWED_TAINT)} "
                       f"({tainted})")
    return Verdict(not reasons, loaded, tuple(reasons), events, drops, found,
                   said.get("begin", ""))


def _scap_error(captured: str) -> str:
    for line in reversed(captured.strip().splitlines()):
        matched = _SCAP_ERROR.match(line.strip())
        if matched:
            return matched["message"]
    return "no error printed"
