"""Which client a connection counts against: an IPv6 /64 is one client.

The real check runs the driver server in a network namespace of its own (``unshare -n``,
root, as CI runs), where the test gives the loopback device a /64 and a second /64 of
documentation addresses: connections from many addresses of one /64 share that /64's
per-client cap, while another /64 is served.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reconciler.httpd import clients

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("address", "counted_as"), [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),  # a dual-stack listener's IPv4 peer
    ("fe80::1%eth0", "fe80::/64"),
    ("::1", "::/64"),
    ("", ""),  # a Unix socket's peer: itself
])
def test_an_ipv6_address_counts_as_its_64(address: str, counted_as: str) -> None:
    assert clients.group(address) == counted_as


SCRIPT = textwrap.dedent("""
    import socket, subprocess, sys, tempfile
    from pathlib import Path
    from reconciler.edges.store.local import Store
    from reconciler.httpd import DriverServer, ServerConfig

    def ip(*args):
        subprocess.run(["ip", *args], check=True)

    ip("link", "set", "lo", "up")
    for net in ("2001:db8:1:2", "2001:db8:1:3"):
        for host in range(1, 6):
            ip("-6", "addr", "add", f"{net}::{host}/64", "dev", "lo", "nodad")

    def connect(source, port):
        sock = socket.create_connection(("2001:db8:1:3::5", port), timeout=10,
                                        source_address=(source, 0))
        return sock

    def status(sock):
        sock.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        return sock.recv(4096).split(b" ", 2)[1].decode()

    config = ServerConfig(workers=2, host_arch="x86_64", max_per_client=3,
                          max_connections=100)
    with DriverServer(Store(Path(tempfile.mkdtemp())), ("2001:db8:1:3::5", 0),
                      config=config) as server:
        port = server.address[1]
        same = [connect(f"2001:db8:1:2::{host}", port) for host in (1, 2, 3)]
        fourth = connect("2001:db8:1:2::4", port)  # another address, the same /64
        other = connect("2001:db8:1:3::1", port)  # another /64
        print("fourth", status(fourth), "other", status(other), "first", status(same[0]))
""")


def test_many_addresses_of_one_64_share_one_cap_in_a_real_namespace() -> None:
    """Three connections from three addresses of 2001:db8:1:2::/64 fill its cap of 3; a
    fourth from a fourth address of it is refused 503, while 2001:db8:1:3::/64 is served
    and the first three are answered."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true: this test needs root, unshare and ip (iproute2)")
        pytest.skip("needs root, unshare and ip (iproute2)")
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", SCRIPT], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fourth", "503", "other", "200", "first", "200"], done.stdout
