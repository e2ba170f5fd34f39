"""The console log scan: what passes, and each way a guest run fails, judged from logs
shaped as the guest's init and the kernel print them (the real VM runs are in
test_guest.py and tests/commands/test_load_test.py)."""

from __future__ import annotations

from reconciler.loadtest import scan

TOKEN = "feedc0de"


def log(*, insmod: str = "ok", capture: str = "started", markers: int = 5,
        kernel: str = "", tainted: int = 12288, end: bool = True, rmmod: str = "ok") -> str:
    found = "".join(f"PARAM 1: /tmp/lt-marker-{TOKEN}-{i}\n" for i in range(markers))
    lines = [
        "[    1.46] falco: loading out-of-tree module taints kernel.",
        "[    1.47] falco: module verification failed: signature and/or required key "
        "missing - tainting kernel",
        "@@lt begin 6.1.0-57-cloud-amd64", f"@@lt insmod {insmod}", "@@lt devices 2",
        f"@@lt capture {capture}", kernel, "@@lt scap-open-exit 0",
        "@@lt capture-output-begin", "* Live capture in progress...", found,
        "[1] n_drops: 3", "[128] n_drops_dev_0: 3",
        "Number of `SCAP_SUCCESS` (events correctly captured): 1444",
        "@@lt capture-output-end", f"@@lt rmmod {rmmod}", f"@@lt tainted {tainted}",
    ]
    if end:
        lines.append("@@lt end 0")
    return "\n".join(lines)


def test_a_clean_run_passes_with_its_counts() -> None:
    """Unsigned out-of-tree taint (O, E) and the kernel's notes about it are expected."""
    verdict = scan.verdict(log(), kind="kmod", token=TOKEN, markers=5)
    assert verdict.passed and verdict.loaded and verdict.reasons == ()
    assert (verdict.events, verdict.drops, verdict.markers_found) == (1444, 3, 5)
    assert verdict.kernel_release == "6.1.0-57-cloud-amd64"


def test_a_refused_module_fails_with_the_kernels_own_words() -> None:
    text = log(insmod="failed:1", capture="", markers=0) + (
        "\n[    1.1] falco: disagrees about version of symbol module_layout"
        "\ninsmod: can't insert '/loadtest/driver.ko': invalid module format")
    verdict = scan.verdict(text, kind="kmod", token=TOKEN, markers=5)
    assert not verdict.passed and not verdict.loaded
    assert verdict.reasons[:2] == ("falco: disagrees about version of symbol module_layout",
                                   "insmod: can't insert '/loadtest/driver.ko': invalid "
                                   "module format")


def test_an_oops_a_warning_or_a_bug_fails_even_when_the_capture_worked() -> None:
    for line in ("[ 2.0] BUG: kernel NULL pointer dereference, address: 0000000000000008",
                 "[ 2.0] WARNING: CPU: 1 PID: 90 at kernel/tracepoint.c:12 x+0x1/0x2",
                 "[ 2.0] Oops: 0000 [#1] PREEMPT SMP NOPTI"):
        verdict = scan.verdict(log(kernel=line), kind="kmod", token=TOKEN, markers=5)
        assert not verdict.passed
        assert verdict.reasons[0] == line.split("] ", 1)[1]


def test_an_rcu_stall_normal_or_expedited_fails_in_the_kernels_words() -> None:
    """The guest's kernel expedites RCU grace periods, whose stalls the kernel reports in
    words of their own; both kinds, and a CPU's own report, fail the test."""
    for line in ("[ 30.1] rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: {"
                 " 1-... } 21002 jiffies s: 77 root: 0x2/.",
                 "[ 30.1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
                 "[ 30.1] rcu: INFO: rcu_preempt self-detected stall on CPU"):
        verdict = scan.verdict(log(kernel=line), kind="kmod", token=TOKEN, markers=5)
        assert not verdict.passed
        assert verdict.reasons[0] == line.split("] ", 1)[1]


def test_taint_beyond_out_of_tree_and_unsigned_fails_naming_its_letters() -> None:
    verdict = scan.verdict(log(tainted=12288 | 512), kind="kmod", token=TOKEN, markers=5)
    assert verdict.reasons == ("the kernel is tainted W (12800)",)


def test_missing_markers_a_stuck_module_and_a_guest_that_never_ended_each_fail() -> None:
    assert scan.verdict(log(markers=4), kind="kmod", token=TOKEN, markers=5).reasons == (
        "the capture shows 4 of 5 marker mkdirs",)
    other_run = log().replace(TOKEN, "0ther")
    assert not scan.verdict(other_run, kind="kmod", token=TOKEN, markers=5).passed
    assert scan.verdict(log(rmmod="failed:1"), kind="kmod", token=TOKEN,
                        markers=5).reasons == ("the module could not be removed (failed:1)",)
    assert scan.verdict(log(end=False), kind="kmod", token=TOKEN, markers=5).reasons == (
        "the guest did not finish (it hung, panicked or ran out of time)",)


def test_a_probe_that_loads_but_cannot_be_read_fails_saying_the_verifier_passed() -> None:
    text = log(capture="not-started", markers=0).replace(
        "* Live capture in progress...",
        "unable to mmap the perf-buffer for cpu '0': Cannot allocate memory (1)")
    verdict = scan.verdict(text, kind="ebpf", token=TOKEN, markers=5)
    assert verdict.loaded and not verdict.passed
    assert verdict.reasons == (
        "the probe passed the verifier, but scap-open could not start a capture: unable "
        "to mmap the perf-buffer for cpu '0': Cannot allocate memory",)


def test_a_probe_the_verifier_rejects_did_not_load() -> None:
    text = log(capture="not-started", markers=0).replace(
        "* Live capture in progress...", "failed to load the bpf program (-1)")
    verdict = scan.verdict(text, kind="ebpf", token=TOKEN, markers=5)
    assert not verdict.loaded
    assert "the probe did not load through the verifier" in verdict.reasons
