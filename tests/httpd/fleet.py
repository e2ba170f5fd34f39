"""What the server tests serve and how they talk to it: keys, contents, raw clients."""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from reconciler.model.artifacts import ArtifactKey, DriverKind

KMOD = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1",
                   DriverKind.KMOD)
EBPF = ArtifactKey("2.0.0+driver", "x86_64", "debian", "5.10.0-14-cloud-amd64", "1",
                   DriverKind.EBPF)
ARM_ONLY = ArtifactKey("2.0.0+driver", "aarch64", "ubuntu-aws", "5.15.0-1009-aws", "10",
                       DriverKind.KMOD)
BOTH_ARCHES_X86 = ArtifactKey("6.0.1+driver", "x86_64", "amazonlinux2",
                              "5.10.130-118.517.amzn2.x86_64", "1", DriverKind.KMOD)
BOTH_ARCHES_ARM = ArtifactKey("6.0.1+driver", "aarch64", "amazonlinux2",
                              "5.10.130-118.517.amzn2.x86_64", "1", DriverKind.KMOD)
FALCOCTL = ArtifactKey("7.0.0+driver", "x86_64", "ubuntu-generic", "5.15.0-76-generic",
                       "83~20.04.1", DriverKind.EBPF)
OLD = ArtifactKey("17f5df52a7d9ed6bb12d3b1768460def8439936d", "x86_64", "debian",
                  "4.19.0-6-amd64", "1", DriverKind.KMOD)
ALL_KEYS = (KMOD, EBPF, ARM_ONLY, BOTH_ARCHES_X86, BOTH_ARCHES_ARM, FALCOCTL, OLD)


@dataclass(frozen=True)
class Fleet:
    """The store the server serves, what is in it, and a secret that must never leak."""

    root: Path
    contents: dict[ArtifactKey, bytes]
    secret: Path

    def sha256(self, key: ArtifactKey) -> str:
        return hashlib.sha256(self.contents[key]).hexdigest()


def content_for(key: ArtifactKey, size: int) -> bytes:
    seed = hashlib.sha256(str(key).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def raw_request(address: tuple[str, int], data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes exactly as given (no client-side normalisation) and read to EOF."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
