"""Pure: may an artifact be published, given the load-test policy and its result?

``required``: only a passing artifact. ``best-effort`` (the default): never a failed one;
an untested one (no QEMU, no kernel image, no libs tree to build scap-open from) is
published marked untested, and so is a ``loaded`` one (it loads; its libs userspace cannot
read it on this kernel, a known userspace limit, not a broken driver). ``off``: nothing
is tested, everything verified is published.
"""

from __future__ import annotations

import enum

from reconciler.loadtest.result import LoadTestResult, Outcome


class Policy(enum.StrEnum):
    REQUIRED = "required"
    BEST_EFFORT = "best-effort"
    OFF = "off"


def refusal(policy: Policy, result: LoadTestResult) -> str | None:
    """Why ``result`` keeps its artifact out of the store under ``policy``; None: publish."""
    if result.outcome is Outcome.PASSED or policy is Policy.OFF:
        return None
    reasons = "; ".join(result.reasons) or "no reason given"
    if result.outcome is Outcome.FAILED:
        where = f" (VM log {result.vm_log})" if result.vm_log else ""
        return f"the load test failed: {reasons}{where}"
    if policy is Policy.REQUIRED and result.outcome is Outcome.LOADED:
        return f"load_test is required and the capture failed: {reasons}"
    if policy is Policy.REQUIRED:
        return f"load_test is required and it could not run: {reasons}"
    return None
