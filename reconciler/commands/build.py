"""``reconciler build``: one driver build on demand, driverkit style.

Either ``-c FILE`` (a driverkit config) or driverkit's flags; flags given beside a config
override its keys. The artifacts are published into ``--store`` and, as driverkit does,
copied to ``--output-module`` / ``--output-probe`` when given. Because ``-c/--config``
means the driverkit config here (as in driverkit), the settings file of this command comes
from ``RECONCILER_CONFIG`` or ``/etc/falco-reconciler/config.yaml`` only.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

from reconciler import builder, runtime, settings
from reconciler.commands import progress
from reconciler.edges import atomic
from reconciler.errors import ConfigError, StoreError
from reconciler.manifests import driverkit
from reconciler.model.artifacts import SUPPORTED_ARCHES, DriverKind, KernelId, store_arch
from reconciler.model.modsig import Signing

ONE_SHOT = True


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "build", help="build a driver now, driverkit style", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-c", "--config", dest="config", type=Path, default=None,
                   help="a driverkit config file (YAML)")
    p.add_argument("--target", help="driverkit target, e.g. debian")
    p.add_argument("--driverversion", help="driver version, e.g. 2.0.0+driver")
    p.add_argument("--kernelrelease", help="kernel release (`uname -r`)")
    p.add_argument("--kernelversion", help="kernel version (after '#' in `uname -v`; default 1)")
    p.add_argument("--architecture", help="amd64 (default) or arm64")
    p.add_argument("--output-module", type=Path, help="copy the kernel module (.ko) here")
    p.add_argument("--output-probe", type=Path, help="copy the eBPF probe (.o) here")
    p.add_argument("--kernelurls", action="append", default=None,
                   help="kernel header package URL (repeatable, or comma-separated)")
    p.add_argument("--moduledrivername", help="kernel module name (default: falco)")
    p.add_argument("--moduledevicename", help="kernel module device name (default: falco)")
    p.add_argument("--uname-release", help="the kernel's own `uname -r` when --kernelrelease "
                   "is a loader's name for it (Falco 0.35+ on Debian): its headers and the "
                   "module's vermagic are this release's")
    p.add_argument("--signing-key", type=Path, help="sign the module with this private key "
                   "(a MOK, for hosts that refuse unsigned modules); needs --signing-certificate")
    p.add_argument("--signing-certificate", type=Path,
                   help="the certificate of --signing-key (PEM)")
    # Our -c/--config is driverkit's file: no settings --config of its own.
    settings.add_flags(p, "store", "state_dir", "source", "base_image", "jobs",
                       "build_timeout", config=False)
    p.set_defaults(handler=run)


def _driverkit_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read driverkit config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a driverkit config must be a mapping of keys")
    # Outputs may come from the flags instead, so judge the file as if it had one.
    judged = data if data.get("output") else {**data, "output": {"module": "falco.ko"}}
    _spec, problems = driverkit.to_driver_build(judged, path.name, 0, "falco-reconciler/v1")
    if problems:
        where, message = problems[0]
        key = ".".join(str(k) for k in where)
        raise ConfigError(f"{path}: {key + ': ' if key else ''}{message}")
    return data


def _merged(args: argparse.Namespace) -> dict[str, Any]:
    """The driverkit keys from the config file, overridden by the flags given."""
    merged: dict[str, Any] = _driverkit_config(args.config) if args.config else {}
    merged = copy.deepcopy(merged)
    output = dict(merged.get("output") or {})
    for key in ("target", "driverversion", "kernelrelease", "kernelversion", "architecture",
                "moduledrivername", "moduledevicename"):
        value = getattr(args, key)
        if value is not None:
            merged[key] = value
    for key in ("uname_release", "signing_key", "signing_certificate"):
        if getattr(args, key, None) is not None:
            merged[key] = getattr(args, key)
    if args.kernelurls is not None:
        merged["kernelurls"] = [u.strip() for item in args.kernelurls for u in item.split(",")
                                if u.strip()]
    if args.output_module is not None:
        output["module"] = str(args.output_module)
    if args.output_probe is not None:
        output["probe"] = str(args.output_probe)
    merged["output"] = output
    return merged


def _request(merged: dict[str, Any]) -> tuple[builder.BuildRequest, dict[DriverKind, Path]]:
    for key in ("target", "driverversion", "kernelrelease"):
        if not merged.get(key):
            raise ConfigError(f"--{key} is required (or give it in a -c driverkit config)")
    target, version = str(merged["target"]), str(merged["driverversion"])
    release = str(merged["kernelrelease"])
    for problem in (driverkit.target_problem(target), driverkit.driver_version_problem(version)):
        if problem:
            raise ConfigError(problem)
    if not release.isascii() or any(c.isspace() or c == "/" for c in release):
        raise ConfigError(f"{release!r} is not a kernel release: expected `uname -r`")
    arch = str(merged.get("architecture") or "amd64")
    if arch not in SUPPORTED_ARCHES:
        raise ConfigError(f"--architecture must be amd64 or arm64, got {arch!r}")
    outputs: dict[DriverKind, Path] = {}
    output = merged.get("output") or {}
    if output.get("module"):
        outputs[DriverKind.KMOD] = Path(output["module"])
    if output.get("probe"):
        outputs[DriverKind.EBPF] = Path(output["probe"])
    kinds = tuple(outputs) or (DriverKind.KMOD,)
    urls = merged.get("kernelurls") or []
    if isinstance(urls, str):
        urls = [urls]
    kernel = KernelId(target, release, str(merged.get("kernelversion") or "1"), store_arch(arch))
    request = builder.BuildRequest(kernel, version, kinds, tuple(str(u) for u in urls),
                                   uname_release=str(merged.get("uname_release") or ""),
                                   signing=_signing(merged))
    return request, outputs


def _signing(merged: dict[str, Any]) -> Signing | None:
    key, certificate = merged.get("signing_key"), merged.get("signing_certificate")
    if key is None and certificate is None:
        return None
    if key is None or certificate is None:
        raise ConfigError("--signing-key and --signing-certificate go together")
    for flag, path in (("--signing-key", key), ("--signing-certificate", certificate)):
        if not Path(path).is_absolute() or not Path(path).is_file():
            raise ConfigError(f"{flag} {path}: expected an absolute path to a file")
    return Signing(str(key), str(certificate))


def run(args: argparse.Namespace) -> int:
    merged = _merged(args)
    request, outputs = _request(merged)
    settings_args = copy.copy(args)
    settings_args.config = None  # ours is driverkit's file, not the settings file
    conf = settings.resolve(settings_args)
    with progress.display() as shown, runtime.open_runtime(
            conf, progress=shown) as rt:
        config = rt.build_config(
            module_name=str(merged.get("moduledrivername") or "falco"),
            device_name=str(merged.get("moduledevicename") or "falco"),
        )
        (outcome,) = rt.build([request], config)
    if outcome.error is not None:
        raise outcome.error
    if not outcome.built:
        print(f"already in the store, nothing built: {request.name}")
    for artifact in outcome.artifacts:
        print(f"{artifact.key.kind}: {artifact.path}")
        target = outputs.get(artifact.key.kind)
        if target is not None:
            try:
                atomic.copy_file(artifact.path, target)
            except OSError as exc:
                raise StoreError(f"cannot write {target}: {exc}") from exc
            print(f"{artifact.key.kind}: copied to {target}")
    if outcome.log_path is not None:
        print(f"log: {outcome.log_path}")
    return 0
