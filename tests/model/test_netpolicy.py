"""``model.netpolicy``: a manifest's URL reaches only globally routable addresses unless the
host allows a range; loopback, link-local (cloud metadata), private, IPv4-mapped forms of
them and multicast are refused, each saying what the address is."""

from __future__ import annotations

import ipaddress

import pytest

from reconciler.model.netpolicy import STRICT, UrlPolicy


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1%eth0", "link-local"),
    ("10.1.2.3", "private"), ("fd00:ec2::254", "private"), ("0.0.0.0", "private"),
    ("100.100.100.200", "not globally routable"), ("224.0.0.1", "not globally routable"),
])
def test_inward_addresses_are_refused_saying_what_they_are(address: str, kind: str) -> None:
    why = STRICT.refusal(address)
    assert why is not None
    assert kind in why
    assert "kernel_url_allow" in why


def test_public_addresses_pass_and_an_allowed_range_opens_only_itself() -> None:
    assert STRICT.refusal("151.101.2.132") is None
    assert STRICT.refusal("2a04:4e42::644") is None
    allowing = UrlPolicy((ipaddress.ip_network("127.0.0.0/8"),))
    assert allowing.refusal("127.0.0.1") is None
    assert allowing.refusal("::ffff:127.0.0.5") is None
    assert allowing.refusal("169.254.169.254") is not None
    assert STRICT.refusal("not-an-address") == "'not-an-address' is not an IP address"
