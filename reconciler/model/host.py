"""The host's facts as a value: what a Falco loader reads about its host.

Reading them from a host root is ``edges.hostfacts``' job; naming drivers from them is
``model.kernelnames``'.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostFacts:
    """Everything a Falco loader reads about its host, as strings."""

    hostname: str
    kernel_release: str
    kernel_version: str
    machine: str
    os_id: str
    os_version_id: str = ""
    os_release: tuple[tuple[str, str], ...] = ()
    # Text of etc/VERSION: None when absent (its presence alone makes the loaders say minikube).
    minikube_version: str | None = None
    # Which of the legacy release files exist (etc/debian_version, etc/centos-release,
    # etc/redhat-release), in that order.
    legacy_release_files: tuple[str, ...] = ()

    def os_field(self, key: str) -> str:
        """One os-release value, ``''`` when absent."""
        return dict(self.os_release).get(key, "")

    @property
    def has_os_release(self) -> bool:
        return bool(self.os_release)
