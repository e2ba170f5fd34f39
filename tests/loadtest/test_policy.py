"""The publish policy: which results keep an artifact out of the store."""

from __future__ import annotations

from reconciler.loadtest.policy import Policy, refusal
from reconciler.loadtest.result import LoadTestResult, Outcome

PASSED = LoadTestResult(Outcome.PASSED, "kmod")
FAILED = LoadTestResult(Outcome.FAILED, "kmod", ("falco: disagrees about version of symbol "
                                                 "module_layout",), vm_log="/l/vm.log")
UNTESTED = LoadTestResult.untested("kmod", "qemu-system-x86_64 is not installed")


def test_a_failed_driver_is_never_published_unless_tests_are_off() -> None:
    for policy in (Policy.REQUIRED, Policy.BEST_EFFORT):
        assert refusal(policy, FAILED) == (
            "the load test failed: falco: disagrees about version of symbol module_layout "
            "(VM log /l/vm.log)")
    assert refusal(Policy.OFF, FAILED) is None


def test_an_untested_driver_is_published_only_when_tests_are_not_required() -> None:
    assert refusal(Policy.REQUIRED, UNTESTED) == (
        "load_test is required and it could not run: qemu-system-x86_64 is not installed")
    assert refusal(Policy.BEST_EFFORT, UNTESTED) is None
    assert all(refusal(policy, PASSED) is None for policy in Policy)


def test_a_driver_that_loads_but_its_userspace_cannot_read_is_published_unless_required(
) -> None:
    loaded = LoadTestResult(Outcome.LOADED, "ebpf", ("unable to mmap the perf-buffer for "
                                                     "cpu '0': Cannot allocate memory",))
    assert refusal(Policy.BEST_EFFORT, loaded) is None
    assert refusal(Policy.REQUIRED, loaded) == (
        "load_test is required and the capture failed: unable to mmap the perf-buffer for "
        "cpu '0': Cannot allocate memory")
