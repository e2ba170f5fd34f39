"""How Falco gets its driver, and when its image is pulled: the two choices of a Host."""

from __future__ import annotations

import enum


class DriverMode(enum.StrEnum):
    """How Falco gets its driver on the host (docs/falco-versions.md)."""

    KMOD = "kmod"
    EBPF = "ebpf"
    MODERN_EBPF = "modern_ebpf"
    KMOD_PRELOADED = "kmod-preloaded"
    NONE = "none"


class PullPolicy(enum.StrEnum):
    MISSING = "missing"
    ALWAYS = "always"
