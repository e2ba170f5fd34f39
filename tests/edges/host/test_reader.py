"""edges.host.reader: the host as the observe stage reads it, over a real host root and
real certificate files (``openssl`` makes one)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from reconciler.edges.host import openssl
from reconciler.edges.host.reader import HostFiles
from reconciler.model.observations import LoadedModule


def test_facts_come_from_the_host_root_with_the_name_overridden_when_asked(
        make_host_root: Any) -> None:
    root = make_host_root(hostname="db-7", release="6.1.0-9-amd64")
    assert HostFiles(root).facts().hostname == "db-7"
    acting = HostFiles(root, hostname="web-1").facts()
    assert (acting.hostname, acting.kernel_release) == ("web-1", "6.1.0-9-amd64")


def test_the_loaded_module_is_read_from_proc_and_sys(make_host_root: Any) -> None:
    root: Path = make_host_root()
    assert HostFiles(root).loaded_module() is None  # no proc/modules: nothing loaded
    (root / "proc/modules").write_text("falco 1234 0 - Live 0x0\next4 1 0 - Live 0x0\n")
    (root / "sys/module/falco").mkdir(parents=True)
    (root / "sys/module/falco/version").write_text("0.20.0\n")
    assert HostFiles(root).loaded_module() == LoadedModule("falco", "0.20.0")


def test_a_certificate_names_its_signer_and_an_unreadable_one_says_why(
        tmp_path: Path) -> None:
    cert = tmp_path / "mok.pem"
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-keyout", str(tmp_path / "mok.key"), "-out", str(cert), "-subj", "/CN=Our MOK"],
        check=True, capture_output=True,
    )
    host = HostFiles(tmp_path)
    assert host.signer(str(cert)) == openssl.read_certificate(cert).signer
    assert host.signer(str(tmp_path / "gone.pem")) == (
        f"cannot read the signing certificate {tmp_path / 'gone.pem'}: No such file or "
        "directory")
