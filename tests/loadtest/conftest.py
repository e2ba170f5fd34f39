"""The session's real build and guest userspace (tests/support/loadtest.py)."""

from tests.support.loadtest import built

__all__ = ["built"]
