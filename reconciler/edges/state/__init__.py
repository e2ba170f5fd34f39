"""Durable records under ``--state-dir`` that are not the daemon's status: the build
host's queue of requested artifacts (``buildqueue``) and retention's ledger (``ledger``),
and both as a plan reads them (``files``)."""
