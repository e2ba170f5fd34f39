"""Loading manifests: the valid set, and every problem located at its file:line."""

from __future__ import annotations

import datetime
import gc
import itertools
import sys
import textwrap
from pathlib import Path
from types import FrameType

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from reconciler.errors import ManifestError
from reconciler.manifests import loading, yamlread
from reconciler.manifests.models import DriverBuild, Host, Located
from reconciler.model.artifacts import DriverKind

REPO_ROOT = Path(__file__).resolve().parents[3]


def _files(files: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(path, textwrap.dedent(text).lstrip("\n").encode()) for path, text in files.items()]


def _problems(files: dict[str, str]) -> list[str]:
    return [str(p) for p in loading.problems(_files(files))]


HOST_WEB = """
    apiVersion: falco-reconciler/v1
    kind: Host
    metadata:
      name: web
    spec:
      match:
        hostnames: ["web-*"]
      falco:
        version: 0.32.2
        driverVersion: 2.0.0+driver
        env: {FALCO_GRPC_ENABLED: "true"}
      kernels:
        - target: debian
          kernelRelease: 5.10.0-20-cloud-amd64
          kernelVersion: "1"
    """
HOST_DEFAULT = """
    # the catch-all comes last
    ---
    apiVersion: falco-reconciler/v1
    kind: Host
    metadata: {name: default}
    spec:
      falco: {version: 0.37.1, driver: modern_ebpf}
    """
BUILDS = """
    apiVersion: falco-reconciler/v1
    kind: DriverBuild
    metadata:
      name: debian-5.10.0-14
    spec:
      match: {hostnames: ["build-*"]}
      target: debian
      driverVersion: 2.0.0+driver
      kernelRelease: 5.10.0-14-cloud-amd64
      kernelVersion: "1"
      architecture: amd64
      outputs: [kmod, ebpf]
    ---
    apiVersion: falco-reconciler/v1
    kind: DriverBuild
    metadata: {name: ubuntu-gke}
    spec:
      target: ubuntu-gke
      driverVersion: 7.0.0+driver
      kernelRelease: 5.15.0-1049-gke
      kernelVersion: 1052~20.04.1
    ---
    """
GRID_CONFIG = """
    kernelversion: 1
    kernelrelease: 6.1.0-18-cloud-arm64
    target: debian
    output:
      module: output/7.0.0+driver/aarch64/falco_debian_6.1.0-18-cloud-arm64_1.ko
      probe: output/7.0.0+driver/aarch64/falco_debian_6.1.0-18-cloud-arm64_1.o
    """


def test_a_valid_repository_loads_in_path_then_document_order() -> None:
    manifests = loading.load(_files({
        "hosts/99-default.yaml": HOST_DEFAULT,
        "hosts/10-web.yaml": HOST_WEB,
        "builds.yaml": BUILDS,
        "driverkit/config/7.0.0+driver/aarch64/debian_6.1.0-18-cloud-arm64_1.yaml": GRID_CONFIG,
    }))
    assert [h.value.metadata.name for h in manifests.hosts] == ["web", "default"]
    assert [(h.origin.file, h.origin.document, h.origin.line) for h in manifests.hosts] == [
        ("hosts/10-web.yaml", 0, 1), ("hosts/99-default.yaml", 0, 2)]
    assert [(b.origin.file, b.origin.document, b.origin.line) for b in manifests.builds] == [
        ("builds.yaml", 0, 1), ("builds.yaml", 1, 13),
        ("driverkit/config/7.0.0+driver/aarch64/debian_6.1.0-18-cloud-arm64_1.yaml", 0, 1),
    ]
    web = manifests.hosts[0].value
    assert web.spec.falco.env == {"FALCO_GRPC_ENABLED": "true"}
    assert web.spec.kernels[0].kernel_release == "5.10.0-20-cloud-amd64"
    assert manifests.host_for("web-3") == manifests.hosts[0]
    assert manifests.host_for("db-1") == manifests.hosts[1]
    assert [b.value.metadata.name for b in manifests.builds_for("web-3")] == [
        "ubuntu-gke",
        "driverkit/config/7.0.0+driver/aarch64/debian_6.1.0-18-cloud-arm64_1.yaml#0",
    ]


def test_loading_leaves_the_collector_to_the_process() -> None:
    """The daemon loads manifests in a thread: switching the collector off there would
    switch it off for every thread. Only the process edge (``cli.entry``) decides."""
    files = _files({"hosts/10-web.yaml": HOST_WEB, "builds.yaml": BUILDS})
    switched_off: list[str] = []

    def watch(frame: FrameType, _event: str, _arg: object) -> None:
        if not gc.isenabled() and not switched_off:
            switched_off.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")

    assert gc.isenabled()
    sys.setprofile(watch)
    try:
        loading.load(files)
    finally:
        sys.setprofile(None)
    assert switched_off == []
    assert gc.isenabled()


def test_a_driverkit_grid_config_takes_version_and_arch_from_its_folders() -> None:
    path = "driverkit/config/7.0.0+driver/aarch64/debian_6.1.0-18-cloud-arm64_1.yaml"
    (build,) = loading.load(_files({path: GRID_CONFIG})).builds
    spec = build.value.spec
    assert (spec.target, spec.driver_version, spec.kernel_release, spec.kernel_version) == (
        "debian", "7.0.0+driver", "6.1.0-18-cloud-arm64", "1")
    assert spec.architecture == "arm64"
    assert spec.outputs == (DriverKind.KMOD, DriverKind.EBPF)
    assert spec.match is None
    assert [k.relpath for k in spec.artifact_keys()] == [
        "7.0.0+driver/aarch64/falco_debian_6.1.0-18-cloud-arm64_1.ko",
        "7.0.0+driver/aarch64/falco_debian_6.1.0-18-cloud-arm64_1.o",
    ]


def test_a_plain_driverkit_config_keeps_its_own_driverversion_and_single_output() -> None:
    (build,) = loading.load(_files({"anywhere/x.yml": """
        target: ubuntu-generic
        driverversion: 3.0.1+driver
        kernelrelease: 5.4.0-136-generic
        kernelversion: "153"
        architecture: amd64
        kernelurls: ["http://archive.ubuntu.com/ubuntu/pool/main/l/linux/h.deb"]
        output:
          probe: /tmp/falco.o
        """})).builds
    spec = build.value.spec
    assert spec.driver_version == "3.0.1+driver"
    assert spec.kernel_version == "153"
    assert spec.outputs == (DriverKind.EBPF,)
    assert spec.kernel_urls == ("http://archive.ubuntu.com/ubuntu/pool/main/l/linux/h.deb",)
    assert build.value.metadata.name == "anywhere/x.yml#0"


def test_the_repositorys_own_driverkit_grid_example_is_valid() -> None:
    root = REPO_ROOT / "docs" / "examples" / "driverkit"
    files = [(str(p.relative_to(root)), p.read_bytes()) for p in sorted(root.rglob("*"))
             if p.is_file() and loading.is_manifest_path(str(p.relative_to(root)))]
    assert len(files) >= 3
    manifests = loading.load(files)
    assert len(manifests.builds) == len(files)
    assert {b.value.spec.target for b in manifests.builds} == {"debian"}


def test_empty_files_and_empty_documents_are_skipped() -> None:
    manifests = loading.load(_files({"a.yaml": "", "b.yaml": "# nothing yet\n",
                                     "c.yaml": "---\n---\n"}))
    assert manifests.hosts == () and manifests.builds == ()


# -- problems: each case is its files and the exact lines `validate` prints ----------------

H = "apiVersion: falco-reconciler/v1\nkind: Host\n"
B = "apiVersion: falco-reconciler/v1\nkind: DriverBuild\n"

CASES = {
    "unknown key, near-name suggestion, second document": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco: {version: 0.37.1}\n---\n"
         + H + "metadata: {name: b}\nspec:\n  falco:\n    version: 0.37.1\n    drver: kmod\n"},
        ["a.yaml:13: unknown key 'drver' in spec.falco; did you mean 'driver'?"],
    ),
    "unknown key with no near name lists the known ones": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco: {version: 0.37.1}\n  zzz: 1\n"},
        ["a.yaml:6: unknown key 'zzz' in spec; expected one of match, falco, kernels, signing"],
    ),
    "snake_case python name is not a manifest key": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco:\n    version: 0.99.1\n"
         "    driver_version: 9.0.0+driver\n"},
        ["a.yaml:7: unknown key 'driver_version' in spec.falco; did you mean 'driverVersion'?"],
    ),
    "enum value lists the allowed ones": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco:\n    version: 0.37.1\n"
         "    driver: kmd\n"},
        ["a.yaml:7: spec.falco.driver: 'kmd' is not allowed; expected 'kmod', 'ebpf', "
         "'modern_ebpf', 'kmod-preloaded' or 'none'; did you mean 'kmod'?"],
    ),
    "pull policy": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco: {version: 0.37.1, pull: never}\n"},
        ["a.yaml:5: spec.falco.pull: 'never' is not allowed; expected 'missing' or 'always'"],
    ),
    "wrong type: a number for a string": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco:\n    version: 0.37.1\n"
         "    containerName: 5\n"},
        ["a.yaml:7: spec.falco.containerName: expected a string, got 5 (a number); quote it"],
    ),
    "a float Falco version must be quoted": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco:\n    version: 0.40\n"},
        ["a.yaml:6: spec.falco.version: expected a string, got 0.4 (a number); quote it"],
    ),
    "env values must be strings": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco:\n    version: 0.37.1\n    env:\n"
         "      OK: \"1\"\n      DEBUG: yes\n"},
        ["a.yaml:9: spec.falco.env.DEBUG: expected a string, got true (a boolean); quote it"],
    ),
    "a boolean that is not one": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco: {version: 0.37.1, adopt: maybe}\n"},
        ["a.yaml:5: spec.falco.adopt: expected true or false, got 'maybe'"],
    ),
    "hostnames must be a list": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  match:\n    hostnames: web-*\n"
         "  falco: {version: 0.37.1}\n"},
        ["a.yaml:6: spec.match.hostnames: expected a list, got 'web-*'"],
    ),
    "a list item of the wrong type": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  match:\n    hostnames:\n      - web-*\n"
         "      - {a: 1}\n  falco: {version: 0.37.1}\n"},
        ["a.yaml:8: spec.match.hostnames[1]: expected a string, got a mapping"],
    ),
    "missing required key points at its parent": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco:\n    image: x\n"},
        ["a.yaml:5: missing required key 'version' in spec.falco"],
    ),
    "missing required keys of a kernel item": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco: {version: 0.37.1}\n  kernels:\n"
         "    - target: debian\n      kernelRelease: 6.1.0-13-amd64\n"},
        ["a.yaml:7: missing required key 'kernelVersion' in spec.kernels[0]"],
    ),
    "kernels is installed, running or a list": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco: {version: 0.37.1}\n"
         "  kernels: instaled\n"},
        ["a.yaml:6: spec.kernels: expected installed, running or a list of kernels, got "
         "'instaled'; did you mean 'installed'?"],
    ),
    "kernels as a mapping": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco: {version: 0.37.1}\n"
         "  kernels: {target: debian}\n"},
        ["a.yaml:6: spec.kernels: expected installed, running or a list of kernels, got "
         "a mapping"],
    ),
    "an unknown key of a kernel item is that item's": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco: {version: 0.37.1}\n  kernels:\n"
         "    - target: debian\n      kernelRelease: 6.1.0-13-amd64\n      kernelVersion: 1\n"
         "      relase: x\n"},
        ["a.yaml:10: unknown key 'relase' in spec.kernels[0]; did you mean 'kernelRelease'?"],
    ),
    "missing metadata and spec point at the document": (
        {"a.yaml": "# hosts\n---\n" + H},
        ["a.yaml:3: missing required key 'metadata' in the document",
         "a.yaml:3: missing required key 'spec' in the document"],
    ),
    "wrong apiVersion": (
        {"a.yaml": "apiVersion: falco-reconciler/v2\nkind: Host\nmetadata: {name: a}\n"
         "spec: {falco: {version: 0.37.1}}\n"},
        ["a.yaml:1: apiVersion: 'falco-reconciler/v2' is not allowed; expected "
         "'falco-reconciler/v1'; did you mean 'falco-reconciler/v1'?"],
    ),
    "unknown kind lists the known": (
        {"a.yaml": "apiVersion: falco-reconciler/v1\nkind: Hots\n"},
        ["a.yaml:2: unknown kind 'Hots'; expected Host, DriverBuild or Rollout; "
         "did you mean 'Host'?"],
    ),
    "missing kind": (
        {"a.yaml": "apiVersion: falco-reconciler/v1\nmetadata: {name: a}\n"},
        ["a.yaml:1: missing required key 'kind' in the document; expected Host, DriverBuild or "
        "Rollout "
         "(or a driverkit config with target, kernelrelease, output...)"],
    ),
    "a document that is a list": (
        {"a.yaml": H + "metadata: {name: a}\nspec: {falco: {version: 0.37.1}}\n---\n- a\n- b\n"},
        ["a.yaml:6: a manifest must be a mapping (apiVersion, kind, metadata, spec) or a "
         "driverkit config, got a list"],
    ),
    "a document that is a scalar": (
        {"a.yaml": "just words\n"},
        ["a.yaml:1: a manifest must be a mapping (apiVersion, kind, metadata, spec) or a "
         "driverkit config, got 'just words'"],
    ),
    "a name with spaces": (
        {"a.yaml": H + "metadata:\n  name: web servers\nspec: {falco: {version: 0.37.1}}\n"},
        ["a.yaml:4: metadata.name: must be non-empty with no spaces, at most 253 characters, "
         "got 'web servers'"],
    ),
    "duplicate Host names name both locations": (
        {"a.yaml": H + "metadata: {name: web}\nspec: {falco: {version: 0.37.1}}\n",
         "b.yaml": "# again\n" + H + "metadata:\n  name: web\nspec: {falco: {version: 0.37.1}}\n"},
        ["a.yaml:3: duplicate Host name 'web': used again at b.yaml:5",
         "b.yaml:5: duplicate Host name 'web': Host names must be unique, first used at a.yaml:3"],
    ),
    "a Host and a DriverBuild may share a name": (
        {"a.yaml": H + "metadata: {name: web}\nspec: {falco: {version: 0.37.1}}\n---\n" + B
         + "metadata: {name: web}\nspec: {target: debian, driverVersion: 2.0.0+driver, "
         "kernelRelease: 5.10.0-14-amd64}\n"},
        [],
    ),
    "unknown Falco release needs driverVersion": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco:\n    version: 0.99.0\n"},
        ["a.yaml:6: Falco 0.99.0 has no known driver version; set spec.falco.driverVersion "
         "(known: Falco 0.32.1 to 0.44)"],
    ),
    "not a Falco version at all": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco:\n    version: latest\n"},
        ["a.yaml:6: spec.falco.version: 'latest' is not a Falco release: expected a version "
         "like 0.37.1"],
    ),
    "modern_ebpf needs 0.35": (
        {"a.yaml": H + "metadata: {name: a}\nspec:\n  falco:\n    version: 0.34.1\n"
         "    driver: modern_ebpf\n"},
        ["a.yaml:7: driver modern_ebpf needs Falco 0.35 or later, this Host runs 0.34.1; "
         "expected kmod, ebpf, kmod-preloaded or none"],
    ),
    "YAML syntax error in the second document": (
        {"a.yaml": H + "metadata: {name: a}\nspec: {falco: {version: 0.37.1}}\n---\n"
         "kind: Host\nmetadata:\n  name: b\n bad: indent\n"},
        ["a.yaml:9: YAML syntax error: did not find expected key (while parsing a block mapping "
         "at line 6)"],
    ),
    "an unknown YAML tag": (
        {"a.yaml": "kind: !!python/name:os.system Host\n"},
        ["a.yaml:1: YAML syntax error: could not determine a constructor for the tag "
         "'tag:yaml.org,2002:python/name:os.system'"],
    ),
    "DriverBuild: unknown target, wrong arch, no outputs": (
        {"b.yaml": B + "metadata: {name: x}\nspec:\n  target: debain\n"
         "  driverVersion: 2.0.0+driver\n  kernelRelease: 5.10.0-14-amd64\n"
         "  architecture: x86_64\n  outputs: []\n"},
        ["b.yaml:5: spec.target: 'debain' is not a driverkit target; expected one of alinux, "
         "almalinux, amazonlinux, amazonlinux2, amazonlinux2022, amazonlinux2023, arch, "
         "bottlerocket, centos, debian, fedora, flatcar, minikube, ol, opensuse, photon, redhat, "
         "rocky, sles, talos, ubuntu, ubuntu-aws, ubuntu-generic, vanilla or ubuntu-<flavor>; "
         "did you mean 'debian'?",
         "b.yaml:8: spec.architecture: 'x86_64' is not allowed; expected 'amd64' or 'arm64'",
         "b.yaml:9: spec.outputs: expected at least one item"],
    ),
    "DriverBuild: bad driver version and kernel release": (
        {"b.yaml": B + "metadata: {name: x}\nspec:\n  target: debian\n"
         "  driverVersion: latest+driver!\n  kernelRelease: \"5.10 amd64\"\n"},
        ["b.yaml:6: spec.driverVersion: 'latest+driver!' is not a driver version: expected a "
         "release such as 2.0.0+driver, a commit hash, or master",
         "b.yaml:7: spec.kernelRelease: expected the kernel's `uname -r` (ASCII, no spaces), "
         "e.g. 5.10.0-14-cloud-amd64, got '5.10 amd64'"],
    ),
    "DriverBuild: ubuntu needs kernelVersion": (
        {"b.yaml": B + "metadata: {name: x}\nspec:\n  target: ubuntu-generic\n"
         "  driverVersion: 2.0.0+driver\n  kernelRelease: 5.15.0-91-generic\n"},
        ["b.yaml:4: spec: kernelVersion is required when target is ubuntu-generic (the number "
         "after '#' in `uname -v`, e.g. 26~22.04.1)"],
    ),
    "DriverBuild: vanilla needs kernelConfigData": (
        {"b.yaml": B + "metadata: {name: x}\nspec:\n  target: vanilla\n"
         "  driverVersion: 2.0.0+driver\n  kernelRelease: 6.6.1\n"},
        ["b.yaml:4: spec: kernelConfigData is required when target is vanilla: the kernel's "
         ".config, base64-encoded"],
    ),
    "DriverBuild: duplicate names": (
        {"b.yaml": B + "metadata: {name: x}\nspec: {target: debian, driverVersion: 2.0.0+driver,"
         " kernelRelease: 5.10.0-14-amd64}\n---\n" + B + "metadata: {name: x}\nspec: {target: "
         "debian, driverVersion: 2.0.0+driver, kernelRelease: 5.10.0-20-amd64}\n"},
        ["b.yaml:3: duplicate DriverBuild name 'x': used again at b.yaml:8",
         "b.yaml:8: duplicate DriverBuild name 'x': DriverBuild names must be unique, first "
         "used at b.yaml:3"],
    ),
    "driverkit config: output paths and an unknown key": (
        {"driverkit/config/2.0.0+driver/x86_64/debian_5.10.0-14-amd64_1.yaml":
         "kernelversion: 1\nkernelrelase: 5.10.0-14-amd64\ntarget: debian\noutput:\n"
         "  module: out/falco.o\n  probe: out/falco.ko\n"},
        ["driverkit/config/2.0.0+driver/x86_64/debian_5.10.0-14-amd64_1.yaml:1: missing "
         "required key 'kernelrelease' in the document",
         "driverkit/config/2.0.0+driver/x86_64/debian_5.10.0-14-amd64_1.yaml:2: unknown "
         "driverkit config key 'kernelrelase'; did you mean 'kernelrelease'?",
         "driverkit/config/2.0.0+driver/x86_64/debian_5.10.0-14-amd64_1.yaml:5: output.module "
         "must end in .ko, got 'out/falco.o'",
         "driverkit/config/2.0.0+driver/x86_64/debian_5.10.0-14-amd64_1.yaml:6: output.probe "
         "must end in .o, got 'out/falco.ko'"],
    ),
    "driverkit config outside the grid needs driverversion": (
        {"dk.yaml": "kernelrelease: 5.10.0-14-amd64\ntarget: debian\noutput: {module: a.ko}\n"},
        ["dk.yaml:1: missing required key 'driverversion' in the document"],
    ),
    "driverkit config: ubuntu needs kernelversion, no output": (
        {"dk.yaml": "driverversion: master\nkernelrelease: 5.15.0-91-generic\n"
         "target: ubuntu-generic\n"},
        ["dk.yaml:1: kernelversion is required when target is ubuntu-generic (the number after "
         "'#' in `uname -v`, e.g. 26~22.04.1)",
         "dk.yaml:1: missing required key 'output': expected a mapping with module (a .ko path) "
         "and/or probe (a .o path)"],
    ),
    "driverkit config: redhat needs builderimage, old-style output": (
        {"dk.yaml": "driverversion: 0de226085cc4603c45ebb6883ca4cacae0bd25b2\n"
         "kernelrelease: 4.18.0-372.9.1.el8.x86_64\ntarget: redhat\noutput: /tmp/falco.ko\n"},
        ["dk.yaml:1: builderimage is required when target is redhat (driverkit's rule)",
         "dk.yaml:4: output: expected a mapping with module (a .ko path) and/or probe (a .o "
         "path), got '/tmp/falco.ko'"],
    ),
    "driverkit config: wrong types are reported in driverkit's names": (
        {"dk.yaml": "driverversion: 2.0.0+driver\nkernelrelease: 5.10.0-14-amd64\n"
         "target: debian\narchitecture: s390x\nkernelurls: http://x/h.deb\n"
         "output: {module: a.ko}\n"},
        ["dk.yaml:4: architecture: 's390x' is not allowed; expected 'amd64' or 'arm64'",
         "dk.yaml:5: kernelurls: expected a list, got 'http://x/h.deb'"],
    ),
}


@pytest.mark.parametrize(("files", "expected"), list(CASES.values()), ids=list(CASES))
def test_every_problem_is_reported_at_its_file_and_line(
    files: dict[str, str], expected: list[str]
) -> None:
    assert _problems(files) == sorted(expected)


def test_all_problems_of_all_files_come_at_once() -> None:
    files = {}
    expected = []
    for index, (case_files, lines) in enumerate(CASES.values()):
        for path, text in case_files.items():
            files[f"{index:02d}/{path}"] = text
        expected += [f"{index:02d}/{line}" for line in lines if "duplicate" not in line]
    found = _problems(files)
    # Names repeat across the cases, so duplicate-name problems come on top of these.
    assert set(expected) <= set(found)
    assert all("duplicate" in line for line in set(found) - set(expected))


def test_load_raises_one_manifest_error_with_every_problem() -> None:
    with pytest.raises(ManifestError) as caught:
        loading.load(_files({"a.yaml": "kind: Hots\n", "b.yaml": "- x\n"}))
    assert [str(p) for p in caught.value.problems] == [
        "a.yaml:1: unknown kind 'Hots'; expected Host, DriverBuild or Rollout; "
        "did you mean 'Host'?",
        "b.yaml:1: a manifest must be a mapping (apiVersion, kind, metadata, spec) or a "
        "driverkit config, got a list",
    ]
    assert "(and 1 more)" in str(caught.value)


def test_bytes_that_are_not_text_are_a_located_problem() -> None:
    (problem,) = loading.problems([("a.yaml", b"kind: Host\nname: \xff\xfe\n")])
    assert (problem.file, problem.line) == ("a.yaml", 2)
    assert problem.message.startswith("not valid YAML text")


def test_documents_before_a_syntax_error_are_still_checked() -> None:
    text = H + "metadata: {name: a}\nspec: {falco: {version: 0.37.1, drver: x}}\n---\n[unclosed\n"
    found = _problems({"a.yaml": text})
    assert found[0] == (
        "a.yaml:4: unknown key 'drver' in spec.falco; did you mean 'driver'?")
    assert found[1].startswith("a.yaml:7: YAML syntax error")


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("hosts.yaml", True),
        ("a/b/c.yml", True),
        ("driverkit/config/2.0.0+driver/x86_64/debian_5.10.0-14-cloud-amd64_1.yaml", True),
        (".github/workflows/ci.yaml", False),
        ("a/.hidden/x.yaml", False),
        (".x.yaml", False),
        ("README.md", False),
        ("x.yaml.bak", False),
        ("x.json", False),
    ],
)
def test_is_manifest_path(relpath: str, expected: bool) -> None:
    assert loading.is_manifest_path(relpath) is expected


# -- the fast YAML path gives exactly what PyYAML's safe loader gives ---------------------

TRICKY = [
    "a: &x {b: [1, 2]}\nc: *x\n",
    "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n",
    "when: 2024-06-01\nat: 2024-06-01 10:00:00\n",
    "bools: [yes, no, on, off, true, False, y, n]\n",
    "nums: [0o17, 017, 0x1f, 1_000, .inf, -.Inf, .nan, 1e3, 6.8523015e+5, 190:20:30]\n",
    "nulls: [~, null, '', \"\"]\n~: tilde key\n1: int key\n",
    "set: !!set {a, b}\nbin: !!binary aGVsbG8=\nomap: !!omap [{a: 1}, {b: 2}]\n",
    "explicit: !!str 123\nkey: !!int '7'\n",
    "self: &s [*s]\n",
    "- a\n- b: {c: [d, {e: f}]}\n",
    "plain\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_fast_loader_matches_safe_loader_on_tricky_yaml(text: str) -> None:
    expected = list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    got = list(yaml.load_all(text.encode(), Loader=yamlread.FastLoader))
    if text.startswith("self:"):  # a recursive alias: compare the shape
        assert got[0]["self"][0] is got[0]["self"]
        return
    if "nan" in text:
        assert repr(got) == repr(expected)
        return
    assert got == expected


def test_fast_loader_raises_what_safe_loader_raises() -> None:
    text = "? [complex, key]\n: value\n"
    with pytest.raises(yaml.constructor.ConstructorError, match="unhashable key"):
        list(yaml.load_all(text.encode(), Loader=yamlread.FastLoader))
    with pytest.raises(yaml.constructor.ConstructorError, match="unhashable key"):
        list(yaml.load_all(text, Loader=yaml.CSafeLoader))


_scalars = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False) | st.dates()
    | st.datetimes(timezones=st.just(datetime.UTC)) | st.sampled_from(
        ["yes", "No", "0x1F", "1e3", "~", "null", "2024-01-01", "<<", "=", "- a", "a: b"])
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=10) | st.integers(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(documents=st.lists(_documents, min_size=1, max_size=3),
       flow=st.booleans())
def test_fast_loader_round_trips_what_safe_dump_writes(documents: list[object], flow: bool) -> None:
    text = yaml.safe_dump_all(documents, default_flow_style=flow, allow_unicode=True)
    assert list(yaml.load_all(text.encode(), Loader=yamlread.FastLoader)) == list(
        yaml.load_all(text, Loader=yaml.CSafeLoader))


@settings(max_examples=100, deadline=None)
@given(bodies=st.lists(st.sampled_from(["a: 1\n", "# c\nb: [1]\n", "", "c: |\n  x\n  y\n"]),
                       min_size=1, max_size=5),
       lead=st.sampled_from(["", "# head\n", "%YAML 1.1\n"]))
def test_document_lines_agree_with_the_parser(bodies: list[str], lead: str) -> None:
    text = lead + ("---\n" if lead.startswith("%") else "") + "---\n".join(bodies)
    content = text.encode()
    nodes = yamlread.compose(content)
    lines = yamlread.document_lines(content, len(nodes))
    assert lines is not None
    for line, node in zip(lines, nodes, strict=True):
        assert line <= node.start_mark.line + 1


# -- property: whatever valid documents are written, load gives them back, in order ----------

_names = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
_host_docs = st.builds(
    lambda name, version, driver, globs: {
        "apiVersion": "falco-reconciler/v1", "kind": "Host", "metadata": {"name": name},
        "spec": {"match": {"hostnames": globs} if globs is not None else {},
                 "falco": {"version": version, "driver": driver}},
    },
    _names,
    st.sampled_from(["0.32.2", "0.35.1", "0.37.1", "0.38.2", "0.44.0"]),
    st.sampled_from(["kmod", "ebpf", "kmod-preloaded", "none"]),
    st.none() | st.lists(st.sampled_from(["web-*", "db-?", "*", "api-1"]), max_size=3),
).filter(lambda doc: "0.44.0', 'driver': 'ebpf'" not in str(doc))  # 0.44 has no legacy probe
_build_docs = st.builds(
    lambda name, target, release, outputs: {
        "apiVersion": "falco-reconciler/v1", "kind": "DriverBuild", "metadata": {"name": name},
        "spec": {"target": target, "driverVersion": "2.0.0+driver", "kernelRelease": release,
                 "kernelVersion": "1", "outputs": outputs},
    },
    _names,
    st.sampled_from(["debian", "centos", "ubuntu-generic", "amazonlinux2"]),
    st.from_regex(r"[1-6]\.[0-9]{1,2}\.[0-9]{1,3}-[0-9]{1,3}-amd64", fullmatch=True),
    st.lists(st.sampled_from(["kmod", "ebpf"]), min_size=1, max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(documents=st.lists(_host_docs | _build_docs, min_size=1, max_size=12),
       cuts=st.lists(st.integers(0, 12), max_size=3), comment=st.booleans())
def test_valid_documents_load_back_in_order_with_their_origins(
    documents: list[dict[str, object]], cuts: list[int], comment: bool
) -> None:
    # Names must be unique per kind: suffix each with its position.
    for index, document in enumerate(documents):
        metadata = document["metadata"]
        assert isinstance(metadata, dict)
        metadata["name"] = f"{metadata['name']}-{index}"
    bounds = sorted({0, len(documents), *(c for c in cuts if c <= len(documents))})
    files: list[tuple[str, bytes]] = []
    expected_origins = []
    for number, (start, end) in enumerate(itertools.pairwise(bounds)):
        head = "# generated\n" if comment else ""
        text = head + yaml.safe_dump_all(documents[start:end], explicit_start=comment)
        path = f"f{number:02d}.yaml"
        files.append((path, text.encode()))
        lines = [i + 1 for i, line in enumerate(text.splitlines()) if line == "---"]
        starts = lines if comment else [1, *lines]
        expected_origins += [(path, i, starts[i]) for i in range(end - start)]

    manifests = loading.load(files)
    everything: list[Located[Host] | Located[DriverBuild]] = [
        *manifests.hosts, *manifests.builds]
    loaded = sorted(everything,
                    key=lambda item: (item.origin.file, item.origin.document))
    assert [(x.origin.file, x.origin.document, x.origin.line) for x in loaded] == (
        expected_origins)
    for item, document in zip(loaded, documents, strict=True):
        dumped = TypeAdapter(type(item.value)).dump_python(item.value, mode="json", by_alias=True)
        assert _written_in(document, dumped), (document, dumped)


def _written_in(written: object, loaded: object) -> bool:
    """Every key and value the document spells is in the loaded one (which adds defaults)."""
    if isinstance(written, dict):
        return isinstance(loaded, dict) and all(
            key in loaded and _written_in(value, loaded[key]) for key, value in written.items())
    if isinstance(written, list):
        return isinstance(loaded, list) and len(written) == len(loaded) and all(
            _written_in(a, b) for a, b in zip(written, loaded, strict=True))
    return written == loaded


_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["Host", "DriverBuild", "falco-reconciler/v1", "kmod", "debian"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["kind", "apiVersion", "metadata", "name", "spec", "falco", "version",
                         "match", "hostnames", "target", "output", "module", "env", "kernels"])
        | st.integers() | st.text(max_size=5), inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(documents=st.lists(_junk, min_size=1, max_size=4))
def test_any_yaml_gives_problems_not_exceptions(documents: list[object]) -> None:
    text = yaml.safe_dump_all(documents)
    found = loading.problems([("x.yaml", text.encode())])
    lines = text.count("\n") + 1
    assert all(p.file == "x.yaml" and 1 <= p.line <= lines and p.message for p in found)


def test_files_read_from_the_memo_give_the_same_result_and_problems() -> None:
    """A file remembered by content is not parsed again, yet names are still checked
    across files, and every problem is still found and located."""
    host = ("apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\n"
            "spec: {falco: {version: 0.32.2}}\n")
    files = [("a.yaml", host.encode()), ("b.yaml", host.encode()),
             ("c.yaml", b"kind: Host\nmetadata: {name: [x]}\n")]
    expected = loading.problems(files)
    assert any("duplicate Host name 'web'" in str(p) for p in expected)
    memo: loading.Memo = {}
    for _ in range(2):
        with pytest.raises(ManifestError) as caught:
            loading.load(files, memo)
        assert sorted(caught.value.problems) == expected
    assert sorted(relpath for relpath, _digest in memo) == ["a.yaml", "b.yaml", "c.yaml"]
    good = files[:1]
    assert loading.load(good, memo) == loading.load(good)
    assert [relpath for relpath, _digest in memo] == ["a.yaml"]  # only this revision's kept
