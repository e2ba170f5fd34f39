"""The kernel module on the host, for ``driver: kmod-preloaded``.

Falco then starts with ``SKIP_DRIVER_LOADER=1`` and uses a module we inserted first. What
is loaded is read under the host root (``proc/modules``, and the version the module
declares in ``sys/module/<name>/version``); inserting and removing run configurable
commands (default ``insmod`` / ``rmmod``), so hosts with their own tooling can plug in.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from reconciler import logs
from reconciler.errors import ModuleError
from reconciler.model.observations import LoadedModule

log = logs.get(__name__)
MODULE_NAME = "falco"


def observe(host_root: Path, name: str = MODULE_NAME) -> LoadedModule | None:
    """The loaded module called ``name``, or None."""
    try:
        lines = (host_root / "proc/modules").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModuleError(f"cannot read {host_root / 'proc/modules'}: {exc.strerror}") from exc
    if not any(line.split(" ", 1)[0] == name for line in lines):
        return None
    try:
        version = (host_root / "sys/module" / name / "version").read_text().strip() or None
    except OSError:
        version = None
    return LoadedModule(name, version)


@dataclass(frozen=True)
class ModuleCommands:
    insmod: str = "insmod"
    rmmod: str = "rmmod"
    timeout: float = 60.0

    def _run(self, command: str, *args: str) -> None:
        argv = [*shlex.split(command), *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModuleError(f"{' '.join(argv)} failed: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise ModuleError(
                f"{' '.join(argv)} exited {done.returncode}: {detail[-1] if detail else ''}"
            )
        log.info("kmod.command", argv=argv)

    def insert(self, path: Path) -> None:
        self._run(self.insmod, str(path))

    def remove(self, name: str = MODULE_NAME) -> None:
        self._run(self.rmmod, name)
