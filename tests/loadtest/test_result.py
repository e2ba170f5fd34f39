"""The result value: what index.json and the CLI's --json carry, read back unchanged."""

from __future__ import annotations

from reconciler.loadtest.result import LoadTestResult, Outcome


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
