"""The pure URL -> store path routing: loaders' spellings resolve, nothing else does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.httpd import paths
from reconciler.httpd.paths import RouteKind
from tests.httpd.fleet import ARM_ONLY, KMOD, OLD
from tests.httpd.hostile import ARTIFACT, HOSTILE_TARGETS


def test_bash_loader_spelling_resolves_to_the_store_path() -> None:
    """Falco 0.32-0.36: `sed s/+/%2B/g` over the whole URL."""
    route = paths.resolve(f"/2.0.0%2Bdriver/x86_64/{ARTIFACT}")
    assert route.kind is RouteKind.FILE
    assert route.candidates == (KMOD.relpath,)
    assert not route.sidecar


@pytest.mark.parametrize("spelling", ["2.0.0%2Bdriver", "2.0.0%2bdriver", "2.0.0+driver"])
def test_plus_arrives_encoded_in_either_case_or_raw(spelling: str) -> None:
    """falcoctl's url.QueryEscape gives %2B, curl by hand a raw '+', both are one file."""
    route = paths.resolve(f"/{spelling}/x86_64/{ARTIFACT}")
    assert route.candidates == (KMOD.relpath,)


def test_key_url_path_round_trips() -> None:
    for key in (KMOD, ARM_ONLY, OLD):
        assert paths.resolve(key.url_path()).candidates == (key.relpath,)


def test_plus_in_the_file_name_is_decoded_too() -> None:
    """The bash loader encodes every '+', also one in the kernel release (COS, Raspbian)."""
    route = paths.resolve("/2.0.0%2Bdriver/aarch64/falco_debian_5.10.0-v8%2B_1.ko")
    assert route.candidates == ("2.0.0+driver/aarch64/falco_debian_5.10.0-v8+_1.ko",)


def test_tilde_kernel_version_of_falcoctl() -> None:
    route = paths.resolve(
        "/7.0.0%2Bdriver/x86_64/falco_ubuntu-generic_5.15.0-76-generic_83~20.04.1.o")
    assert route.candidates == (
        "7.0.0+driver/x86_64/falco_ubuntu-generic_5.15.0-76-generic_83~20.04.1.o",)


def test_arch_less_path_of_old_falco_tries_host_arch_first() -> None:
    """Falco < 0.32 asked for /<driverVersion>/<file>; the server's own arch wins a tie."""
    on_x86 = paths.resolve(f"/{OLD.driver_version}/{OLD.filename}", host_arch="x86_64")
    assert on_x86.candidates == (OLD.relpath, f"{OLD.driver_version}/aarch64/{OLD.filename}")
    on_arm = paths.resolve(f"/{OLD.driver_version}/{OLD.filename}", host_arch="aarch64")
    assert on_arm.candidates[0] == f"{OLD.driver_version}/aarch64/{OLD.filename}"


def test_sidecar_routes_to_the_sha256_file() -> None:
    route = paths.resolve(f"/2.0.0%2Bdriver/x86_64/{ARTIFACT}.sha256")
    assert route.kind is RouteKind.FILE
    assert route.sidecar
    assert route.candidates == (KMOD.relpath + ".sha256",)


def test_query_string_is_ignored() -> None:
    assert paths.resolve(f"/2.0.0%2Bdriver/x86_64/{ARTIFACT}?x=1").candidates == (
        KMOD.relpath,)


def test_absolute_form_target_uses_its_path() -> None:
    route = paths.resolve(f"http://repo.example:8000/2.0.0%2Bdriver/x86_64/{ARTIFACT}")
    assert route.candidates == (KMOD.relpath,)


def test_service_endpoints() -> None:
    assert paths.resolve("/index.json").kind is RouteKind.INDEX
    assert paths.resolve("/healthz").kind is RouteKind.HEALTH


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_hostile_target_is_refused(target: str) -> None:
    route = paths.resolve(target)
    assert route.kind in (RouteKind.BAD_REQUEST, RouteKind.NOT_FOUND), route
    assert route.reason


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("/%c0%ae%c0%ae/secret.txt", RouteKind.BAD_REQUEST),  # overlong UTF-8
        ("/%00", RouteKind.BAD_REQUEST),
        ("/%zz", RouteKind.BAD_REQUEST),
        ("/a b", RouteKind.BAD_REQUEST),
        ("/%252e%252e/secret.txt", RouteKind.NOT_FOUND),  # double encoding: a '%' after one pass
        ("/..%2fsecret.txt", RouteKind.NOT_FOUND),
        ("/%5c..%5csecret.txt", RouteKind.NOT_FOUND),
    ],
)
def test_malformed_is_400_and_well_formed_but_absent_is_404(target: str, kind: RouteKind) -> None:
    assert paths.resolve(target).kind is kind


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80))
def test_any_ascii_target_routes_inside_the_layout(target: str) -> None:
    """Whatever arrives, a file route only names store-shaped paths: no '..', no '/' at
    the start, three segments, no dot-files."""
    route = paths.resolve("/" + target)
    for candidate in route.candidates:
        parts = candidate.split("/")
        assert len(parts) == 3
        assert all(p and not p.startswith(".") and "\\" not in p for p in parts)
        assert "%" not in candidate
