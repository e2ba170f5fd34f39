"""Giving freed heap memory back to the system (glibc's ``malloc_trim``), via ``ctypes``.

A server that held many partial request heads frees them when their connections close,
but glibc keeps the freed pages in its heap, interleaved with live objects, so the
process's RSS stays at its peak. ``malloc_trim(0)`` returns every free page (also inside
the heap, with ``MADV_DONTNEED``). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _trim() -> Callable[[], None]:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        trim = None
    if trim is None:
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


release_free_memory = _trim()
