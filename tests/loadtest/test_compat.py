"""compat: the libs userspace of driver and Falco versions, and the one known case where a
driver loads but a libs userspace cannot read it (libscap <= 0.21, the probe, a kernel with
the fix for CVE-2025-38563). The real case is proven in a VM in test_guest.py."""

from __future__ import annotations

from reconciler.loadtest import compat

PERF = "the probe passed the verifier, but scap-open could not start a capture: unable to " \
       "mmap the perf-buffer for cpu '0': Cannot allocate memory"


def test_falco_and_driver_versions_map_to_their_libs_userspace() -> None:
    # Read from the release tags: Falco's pinned libs (falcosecurity-libs.cmake) and the
    # libs tag on a driver tag's commit.
    assert compat.libs_of_falco("0.40.0") == compat.libs_of_driver("8.0.0+driver") == "0.20.0"
    assert compat.libs_of_falco("0.44.1") == "0.25.4"
    assert compat.libs_of_driver("10.2.0+driver") == "0.25.1"
    assert compat.libs_of_falco("0.42.1") == "0.22.2"
    assert compat.libs_of_falco("0.41.9") == "0.21.0"  # an unlisted patch: its minor's first
    assert compat.libs_of_falco("0.41") == "0.21.0"
    assert compat.libs_of_falco("0.32.2") is None and compat.libs_of_driver("x") is None


def test_only_old_libscap_on_the_probe_with_only_that_reason_is_the_userspace_case() -> None:
    assert compat.userspace_cannot_read("ebpf", "0.20.0", (PERF,)) is not None
    assert compat.userspace_cannot_read("ebpf", "0.21.0", (PERF,)) is not None
    assert compat.userspace_cannot_read("ebpf", "0.22.0", (PERF,)) is None  # fixed there
    assert compat.userspace_cannot_read("kmod", "0.20.0", (PERF,)) is None
    assert compat.userspace_cannot_read("ebpf", "8.0.0+driver", ()) is None
    # anything else wrong (a kernel complaint) makes it a failed driver, not this case
    assert compat.userspace_cannot_read("ebpf", "0.20.0", (PERF, "BUG: unable to handle")) \
        is None


def test_a_falco_below_the_fix_cannot_read_what_a_tested_old_userspace_could_not() -> None:
    assert compat.falco_cannot_read("0.40.2", "ebpf", "0.20.0", (PERF,))
    assert not compat.falco_cannot_read("0.42.0", "ebpf", "0.20.0", (PERF,))
    assert not compat.falco_cannot_read("0.40.2", "kmod", "0.20.0", (PERF,))


def test_the_probe_warning_names_only_falcos_below_the_fix() -> None:
    assert "Falco 0.41.1's userspace (libs 0.21.0)" in (compat.probe_warning("0.41.1") or "")
    assert compat.probe_warning("0.42.0") is None
    assert compat.probe_warning("0.32.2") is None  # libs version not known: no claim


def test_older_userspaces_are_those_below_the_tested_libs_grouped_oldest_first() -> None:
    """Falcos whose pinned libs are older than the tested userspace, by libs version;
    newer or equal ones, and Falcos whose libs version is not known, add no run."""
    assert compat.older_userspaces(("0.44.0", "0.40.0", "0.41.1", "0.41.0", "0.32.2"),
                                   "0.25.1") == (("0.20.0", ("0.40.0",)),
                                                 ("0.21.0", ("0.41.0", "0.41.1")))
    assert compat.older_userspaces(("0.40.0",), "0.20.0") == ()
    assert compat.older_userspaces(("0.40.0",), "8.0.0-private") == ()


def test_a_falco_is_told_of_its_own_libs_refusal_or_of_the_known_case_below_the_fix(
) -> None:
    api = ("scap-open could not start a capture: Minimum API version …",)
    assert compat.tells_of_falco("0.40.0", "kmod", "0.20.0", api)  # its own userspace
    assert not compat.tells_of_falco("0.41.0", "kmod", "0.20.0", api)  # another's
    assert compat.tells_of_falco("0.41.0", "ebpf", "0.20.0", (PERF,))  # both below the fix
