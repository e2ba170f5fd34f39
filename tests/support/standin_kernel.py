"""A stand-in for the host kernel's module state, which the stand-in images share.

Kernel modules cannot be loaded on these machines, and from Falco 0.40 the loader and
Falco run in separate containers, so the state both must see lives here: a small TCP
service on the host loopback (the stand-ins run with the host network; its address is
baked into the stand-in images). It keeps what a kernel would:

- ``INSMOD <size>`` then the file's bytes: reads the module's ``.modinfo`` strings
  (``name=``, ``version=``, ``vermagic=``, ``api_version=``, ``schema_version=``) and
  refuses, as the kernel does, a module whose vermagic is not built for the running
  release (``uname -r``), or one whose name is already loaded;
- ``RMMOD <name>``: refused while the module is in use;
- ``LSMOD``: what is loaded, one module a line, then ``.``;
- ``OPEN <name>``: what libscap does when it opens the device: answers the module's
  identity and holds a reference for as long as the connection stays open (a Falco that
  dies drops it, as its file descriptors close);
- ``UNAME``: ``<release> <version>``, what ``uname -r`` and ``uname -v`` answer in a
  container on this kernel. A real container shares the host's kernel, so its uname is
  the host's; the stand-ins share this machine's instead, so they ask here (falling back
  to their own uname if it is unreachable). Both default to this machine's; a test that
  boots the host into another kernel sets ``release`` and ``version``.

``reboot()`` forgets every module (the running kernel is whatever ``release`` says). The
service knows nothing of the reconciler.
"""

from __future__ import annotations

import os
import re
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from typing import Any

_MODINFO = re.compile(rb"(?:^|\x00)(name|version|vermagic|api_version|schema_version)=([^\x00]*)")
_MAX_MODULE = 64 * 1024 * 1024


@dataclass
class Module:
    name: str
    version: str
    vermagic: str
    api_version: str
    schema_version: str
    size: int
    holders: set[int] = field(default_factory=set)


def modinfo(body: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in _MODINFO.findall(body):
        found.setdefault(key.decode(), value.decode(errors="replace"))
    return found


class StandinKernel:
    def __init__(self, release: str | None = None, version: str | None = None) -> None:
        self.release = release or os.uname().release
        self.version = version or os.uname().version
        self._lock = threading.Lock()
        self._modules: dict[str, Module] = {}
        self._generation = 0
        self.log: list[str] = []  # every command and its answer, for test messages
        kernel = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                kernel._serve(self.connection, self.rfile, self.wfile)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler,
                                                       bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def __enter__(self) -> StandinKernel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what tests look at ---------------------------------------------------------------

    def loaded(self) -> dict[str, Module]:
        with self._lock:
            return dict(self._modules)

    def reboot(self) -> None:
        with self._lock:
            self._modules.clear()
            self._generation += 1
            self.log.append("reboot")

    def insert(self, body: bytes) -> str:
        """What ``insmod`` asks of the kernel; "" on success, else the kernel's refusal."""
        info = modinfo(body)
        name = info.get("name", "")
        with self._lock:
            if not name:
                answer = "Invalid module format (no .modinfo name)"
            elif info.get("vermagic", "").split(" ", 1)[0] != self.release:
                answer = (f"Invalid module format ({name}: version magic "
                          f"'{info.get('vermagic', '')}' should be '{self.release} ...')")
            elif name in self._modules:
                answer = "File exists"
            else:
                self._modules[name] = Module(
                    name, info.get("version", ""), info["vermagic"],
                    info.get("api_version", ""), info.get("schema_version", ""), len(body))
                answer = ""
            self.log.append(f"insmod {name or '?'}: {answer or 'ok'}")
        return answer

    # -- the wire -------------------------------------------------------------------------

    def _serve(self, conn: socket.socket, rfile: Any, wfile: Any) -> None:
        line = rfile.readline(4096).decode(errors="replace").strip()
        verb, _, arg = line.partition(" ")
        if verb == "INSMOD":
            size = int(arg) if arg.isdigit() else -1
            if not 0 <= size <= _MAX_MODULE:
                wfile.write(b"ERR bad size\n")
                return
            answer = self.insert(rfile.read(size))
            wfile.write(f"ERR {answer}\n".encode() if answer else b"OK\n")
        elif verb == "RMMOD":
            wfile.write(self._remove(arg).encode() + b"\n")
        elif verb == "LSMOD":
            with self._lock:
                rows = [f"{m.name} {m.size} {len(m.holders)} {m.version or '-'} "
                        f"{m.api_version or '-'} {m.schema_version or '-'}"
                        for m in self._modules.values()]
            wfile.write("".join(f"{r}\n" for r in rows).encode() + b".\n")
        elif verb == "OPEN":
            self._hold(conn, rfile, wfile, arg)
        elif verb == "UNAME":
            wfile.write(f"{self.release} {self.version}\n".encode())
        else:
            wfile.write(b"ERR unknown command\n")

    def _remove(self, name: str) -> str:
        with self._lock:
            found = self._modules.get(name)
            if found is None:
                answer = f"ERR Module {name} is not currently loaded"
            elif found.holders:
                answer = f"ERR Module {name} is in use"
            else:
                del self._modules[name]
                answer = "OK"
            self.log.append(f"rmmod {name}: {answer}")
        return answer

    def _hold(self, conn: socket.socket, rfile: Any, wfile: Any, name: str) -> None:
        ident = id(conn)
        with self._lock:
            found = self._modules.get(name)
            if found is not None:
                found.holders.add(ident)
            generation = self._generation
        if found is None:
            wfile.write(b"ERR No such device\n")
            return
        wfile.write(f"OK {found.version or '-'} {found.api_version or '-'} "
                    f"{found.schema_version or '-'}\n".encode())
        wfile.flush()
        try:
            while rfile.read(1):  # held until the opener's descriptor closes
                pass
        except OSError:
            pass
        finally:
            with self._lock:
                if generation == self._generation:
                    found.holders.discard(ident)
