"""``reconciler load-test ARTIFACT --kernel-package DEB``: prove a driver in a VM.

Boots the kernel of the package (a Debian or Ubuntu ``linux-image-*`` .deb), or a kernel
image itself (``--kernel-image``: the ``vmlinuz`` of any distribution's package, such as
``lib/modules/<release>/vmlinuz`` of an .rpm), in QEMU with no disk and no network,
inserts the module (or loads the probe through the verifier), captures a few seconds with
scap-open built from the driver's own libs source (the build settings' ``--source``),
finds this run's marker mkdirs, removes the module and scans the kernel log. ``--falco
VERSION`` also boots it with the userspace of that Falco's libs when they are older than
the driver's (as the build's test does for the Falcos that declare it). Prints the result
(``--json``: one object); exit 1 when the driver failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

from reconciler import runtime, settings
from reconciler.edges.vm import kernelimage, qemu
from reconciler.errors import ConfigError
from reconciler.loadtest import guest, tester
from reconciler.loadtest.result import Outcome
from reconciler.model.artifacts import DriverKind

ONE_SHOT = True
_DRIVER_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "load-test", help="load a driver into a VM of its kernel and capture events",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("artifact", type=Path, help="the module (.ko) or probe (.o)")
    kernel = p.add_mutually_exclusive_group(required=True)
    kernel.add_argument("--kernel-package", type=Path,
                        help="the linux-image-*.deb of the kernel it was built for")
    kernel.add_argument("--kernel-image", type=Path,
                        help="or that kernel's image (an x86 bzImage, such as vmlinuz-*)")
    p.add_argument("--driver-version", help="its driver version (default: from its store "
                   "path, <driverVersion>/<arch>/falco_...)")
    p.add_argument("--falco", action="append", default=[], metavar="VERSION",
                   help="also test with this Falco release's userspace (the libs it pins), "
                   "if older than the driver's; repeatable")
    p.add_argument("--module-name", default="falco", help="its module name (default: falco)")
    p.add_argument("--device-name", default="falco", help="its device name (default: falco)")
    p.add_argument("--accel", default=qemu.DEFAULT_ACCEL,
                   help=f"QEMU's -accel (default {qemu.DEFAULT_ACCEL}; kvm where it works)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds the VM may run (default 300)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    settings.add_flags(p, "state_dir", "source", "base_image", "build_timeout")
    p.set_defaults(handler=run)


def kind_of(artifact: Path) -> DriverKind:
    for kind in DriverKind:
        if artifact.name.endswith(kind.suffix):
            return kind
    raise ConfigError(f"{artifact}: expected a module (.ko) or a probe (.o)")


def driver_version_of(artifact: Path, given: str | None) -> str:
    """The flag, else the store layout's ``<driverVersion>/<arch>/<file>``."""
    version = given or artifact.resolve().parent.parent.name
    if not _DRIVER_VERSION.match(version):
        raise ConfigError(f"{artifact}: cannot tell its driver version from its path: "
                          "give --driver-version (e.g. 8.0.0+driver)")
    return version


def run(args: argparse.Namespace) -> int:
    artifact: Path = args.artifact
    if not artifact.is_file():
        raise ConfigError(f"{artifact}: no such file")
    flag, kernel = (("--kernel-package", args.kernel_package) if args.kernel_package
                    else ("--kernel-image", args.kernel_image))
    if not kernel.is_file():
        raise ConfigError(f"{flag} {kernel}: no such file")
    kind = kind_of(artifact)
    version = driver_version_of(artifact, args.driver_version)
    conf = settings.resolve(args)
    setup = tester.Setup(conf.state_dir, conf.source, conf.base_image, conf.build_timeout)
    cache = tester.images_cache(setup)  # the image is read (or refused) before any build
    image = (kernelimage.from_package(kernel, cache) if args.kernel_package
             else kernelimage.from_file(kernel, kernelimage.release_of(kernel), cache))
    with runtime.open_runtime(conf) as rt:
        space = tester.prepare(rt.build_engine(), setup, version, module_name=args.module_name,
                               device_name=args.device_name)
    subject = guest.Subject(artifact, kind, args.module_name, args.device_name)
    options = guest.Options(timeout=args.timeout, accel=args.accel)
    result = tester.boot(subject, image, space, setup, options)
    if args.falco:
        with runtime.open_runtime(conf) as rt:
            result = dataclasses.replace(result, userspaces=tester.older_userspaces(
                rt.build_engine(), setup, subject, image, tested=result,
                falcos=tuple(args.falco), options=options))
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.summary())
        print(f"vm log: {result.vm_log}")
    # 2: the driver loads, but the tested libs userspace cannot read it on this kernel
    return 0 if result.passed else 2 if result.outcome is Outcome.LOADED else 1
