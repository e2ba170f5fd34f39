"""model.versions: which driver versions were ever released (a version no source can have
is refused with the nearest releases)."""

from __future__ import annotations

import pytest

from reconciler.model import versions


@pytest.mark.parametrize("value", [
    "2.0.0+driver", "8.0.0+driver", "10.2.0+driver", "5.1.0+driver",
    "9.1.0-rc1+driver",     # a release candidate of a release
    "11.0.0+driver",        # newer than the table: a release made after it
    "0.25.4",               # a libs userspace tag: not in the driver namespace
    "1.2.3-mycorp",         # a private build's own version
])
def test_released_newer_and_private_versions_pass(value: str) -> None:
    assert versions.driver_release_problem(value) is None


def test_a_release_number_without_plus_driver_suggests_the_tag() -> None:
    assert versions.driver_release_problem("8.0.0") == (
        "'8.0.0' is not a driver release: falcosecurity/libs tags driver releases with "
        "+driver; did you mean '8.0.0+driver'?")


def test_an_unreleased_version_names_its_neighbours_and_the_nearest() -> None:
    assert versions.driver_release_problem("8.0.1+driver") == (
        "'8.0.1+driver' is not a driver release (the releases nearest it are 8.0.0+driver "
        "and 8.1.0+driver); did you mean '8.0.0+driver'?")
    problem = versions.driver_release_problem("1.0.0+driver")
    assert problem is not None and "did you mean '2.0.0+driver'?" in problem


def test_every_version_falco_maps_to_was_released() -> None:
    for falco in ("0.32.2", "0.33.0", "0.38.2", "0.40.0", "0.44.1"):
        assert versions.driver_release_problem(versions.driver_version(falco)) is None
