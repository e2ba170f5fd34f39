"""The server's view of the store: the verified files it may send, and ``/index.json``.

What "verified" means is the store's one definition (``edges.store``): files are opened
without following any symlink below the root, and served from the descriptor opened at
the start of the request (``fstat``, ``sendfile``), never by name again, so if a publish
renames a new artifact over the old one mid-download, the client still gets the whole
old file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
from pathlib import Path

from reconciler.edges.store import signedindex
from reconciler.edges.store.local import LOAD_TEST_SUFFIX, OpenFile, Store
from reconciler.errors import StoreBusy
from reconciler.model import modsig, timestamps

__all__ = ["OpenFile", "StoreFiles"]


class StoreFiles:
    """The server's read-only view of a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open_artifact(self, relpath: str) -> OpenFile | None:
        return self.store.open_artifact(relpath)

    def open_sidecar(self, relpath: str) -> OpenFile | None:
        return self.store.open_sidecar(relpath)

    def readable(self) -> bool:
        return self.store.readable()

    def index(self) -> list[dict[str, object]]:
        """Every artifact that verifies: store path, URL path, size, sha256, build time,
        and the identity and module signer it carries (null where it carries none)."""
        entries: list[dict[str, object]] = []
        for key, path in self.store.artifact_paths():
            opened = self.store.open_artifact(key.relpath)
            if opened is None:
                continue
            with contextlib.closing(opened):
                built = dt.datetime.fromtimestamp(opened.mtime, dt.UTC)
                found = self.store.identity_of(opened, key.kind)
                signed = self.store.signature_of(opened, key.kind)
                signature = signed if isinstance(signed, modsig.ModuleSignature) else None
                signer = signature.signer if signature else None
                entries.append({
                    "path": key.relpath,
                    "url": key.url_path(),
                    "driverVersion": key.driver_version,
                    "arch": key.arch,
                    "kind": key.kind.value,
                    "size": opened.size,
                    "sha256": opened.sha256,
                    "buildTime": timestamps.iso_utc(built),
                    "apiVersion": str(found.api) if found else None,
                    "schemaVersion": str(found.schema) if found else None,
                    "signer": signer.name if signer else None,
                    "signerIssuer": signer.issuer if signer else None,
                    "sigKey": (signer.serial if signer else signature.key_id) if signature
                    else None,
                    "sigHashAlgo": signature.hash_algo if signature else None,
                    "loadTest": _load_test(path),
                })
        return entries

    def index_json(self) -> bytes:
        root = self.store.root  # trust: how each came in, and the signed indexes held
        body = {"artifacts": signedindex.annotate(self.index(), root), **signedindex.served(root)}
        return (json.dumps(body, indent=2, sort_keys=False) + "\n").encode("utf-8")


def _load_test(artifact: Path) -> object:
    """The load test's result beside ``artifact`` (``reconciler.loadtest``), or None when
    it was not tested here; never through a symlink, and bounded."""
    try:
        fd = os.open(artifact.with_name(artifact.name + LOAD_TEST_SUFFIX),
                     os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            found = json.loads(handle.read(1 << 16))
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
            # Out of descriptors: "later" (503), not an index that says "not tested".
            raise StoreBusy(f"cannot read load test results now: {exc.strerror}") from exc
        return None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None
