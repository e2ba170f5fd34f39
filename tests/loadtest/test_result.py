"""The result value: what index.json and the CLI's --json carry, read back unchanged."""

from __future__ import annotations

from reconciler.loadtest.result import LoadTestResult, Outcome, UserspaceCheck


def test_a_result_survives_its_json_and_an_unknown_result_reads_as_failed() -> None:
    result = LoadTestResult(Outcome.PASSED, "kmod", (), True, 1444, 0, 5, 5, 9.84,
                            "6.1.0-57-cloud-amd64", "ab" * 32, "8.0.0+driver", "1", "/x.log")
    back = LoadTestResult.from_json(result.to_json())
    assert back == LoadTestResult(**{**result.__dict__, "duration_seconds": 9.8})
    assert LoadTestResult.from_json({"result": "maybe"}).outcome is Outcome.FAILED


def test_the_summary_is_one_line_then_one_line_per_reason() -> None:
    failed = LoadTestResult(Outcome.FAILED, "kmod", ("a", "b"), markers=5,
                            kernel_release="6.1.0-50-cloud-amd64")
    assert failed.summary() == ("failed: 0 events, 0 drops, 0/5 markers in 0.0 s on "
                                "6.1.0-50-cloud-amd64\n  - a\n  - b")
    assert LoadTestResult.untested("ebpf", "no qemu").summary() == "untested\n  - no qemu"


def test_userspace_checks_survive_the_json_and_read_as_one_line_each() -> None:
    """What index.json carries of the older Falcos' runs, read back unchanged; an unknown
    outcome of a check reads as failed, as the result's own does."""
    check = UserspaceCheck("0.20.0", ("0.40.0", "0.40.1"), Outcome.LOADED,
                           ("scap-open could not start a capture: API",), vm_log="/v.log")
    result = LoadTestResult(Outcome.PASSED, "kmod", events=9, libs_version="0.25.1",
                            userspaces=(check,))
    assert LoadTestResult.from_json(result.to_json()) == result
    assert check.line() == ("Falco 0.40.0, 0.40.1 (libs 0.20.0): loaded: scap-open could "
                            "not start a capture: API")
    assert result.summary().endswith("\n  userspace of " + check.line())
    assert result.one_line() == ("passed: 9 events, 0 drops on ?; Falco 0.40.0, 0.40.1's "
                                 "userspace (libs 0.20.0) cannot read it")
    assert UserspaceCheck.from_json({"result": "maybe"}).outcome is Outcome.FAILED
