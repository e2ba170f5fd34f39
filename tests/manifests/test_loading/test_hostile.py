"""Hostile manifests: whatever a push holds is refused where it enters, at its file:line.

More people can push to the manifest repository than can log in to a host, and the daemon
acts as root. Each case below is a push and the exact lines ``validate`` prints for it:
paths that would leave the driver store, names and references Docker would refuse or
misread, environment strings ``execve`` would refuse or the reconciler sets itself, URLs a
builder must not fetch, YAML shapes PyYAML would silently accept or crash on, and sizes
that would cost unbounded memory or time. Nothing of any case loads, and reading them
writes nothing and starts nothing.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import cli
from reconciler.errors import ManifestError
from reconciler.manifests import grammar, loading, yamlread
from reconciler.manifests.models import DriverMode, FalcoSpec, KernelSpec
from reconciler.model import generations
from reconciler.model.artifacts import KernelId
from reconciler.model.versions import FalcoVersion
from tests.conftest import GitRepo
from tests.model import facts_cases


def host(*falco: str, spec: str = "") -> str:
    """A Host whose ``falco`` section holds ``falco`` (one line each, from line 7 on)."""
    return ("apiVersion: falco-reconciler/v1\nkind: Host\nmetadata: {name: web}\nspec:\n"
            "  falco:\n    version: 0.37.1\n" + "".join(f"    {line}\n" for line in falco) + spec)


def build(*lines: str, target: str = "debian", driver: str = "2.0.0+driver",
          release: str = "5.10.0-14-amd64") -> str:
    """A DriverBuild: target on line 5, driverVersion 6, kernelRelease 7, ``lines`` from 8."""
    return ("apiVersion: falco-reconciler/v1\nkind: DriverBuild\nmetadata: {name: b}\nspec:\n"
            f"  target: {target}\n  driverVersion: {driver}\n  kernelRelease: {release}\n"
            + "".join(f"  {line}\n" for line in lines))


def kernel(target: str = "debian", release: str = "5.10.0-15-amd64", version: str = "'1'") -> str:
    """A Host's ``kernels`` with one item: target on line 8, release 9, version 10."""
    return (f"  kernels:\n    - target: {target}\n      kernelRelease: {release}\n"
            f"      kernelVersion: {version}\n")


def config(release: str = "5.10.0-14-amd64", version: str = "1", *more: str) -> str:
    """A plain driverkit config: kernelrelease on line 3, kernelversion 4, ``more`` from 6."""
    return ("target: debian\ndriverversion: 2.0.0+driver\n"
            f"kernelrelease: {release}\nkernelversion: {version}\noutput: {{module: a.ko}}\n"
            + "".join(f"{line}\n" for line in more))


RELEASE = ("expected the kernel's `uname -r`: letters, digits and . _ + ~ -, a letter or digit "
           "first, no '..', at most 64 characters, e.g. 5.10.0-14-cloud-amd64")
VERSION = ("expected a kernel version as Falco's loaders take it from `uname -v` (1, 26~22.04.1, "
           "1_1.26.0, 1_v1.4.5, 1-photon): a digit first, then letters, digits and . _ + ~ -, "
           "no '..', at most 64 characters")
DRIVER = ("is not a driver version: expected a release such as 2.0.0+driver, a commit hash, "
          "or master")
UBUNTU = ("is not a driverkit target: ubuntu-<flavor> takes the flavor as Falco's loaders do, the "
          "word after the build number in `uname -r` (ubuntu-aws for 5.15.0-1009-aws), or with "
          "the suffix 0.33 to 0.35.0 kept (ubuntu-aws-5.0)")
CONTAINER = ("must be a Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 45 "
             "characters)")
IMAGE = ("must be a Docker image reference ([registry[:port]/]path[:tag][@algorithm:hex], "
         "lower-case path components, the name at most 255 characters, e.g. "
         "docker.io/falcosecurity/falco)")
NETWORK = ("must be host, bridge or the name of a Docker network ([a-zA-Z0-9][a-zA-Z0-9_.-]*, "
           "at most 64 characters; not none or default: Falco must reach the driver server)")
ENV_KEY = "keys must be environment variable names ([A-Za-z_][A-Za-z0-9_]*)"
OWNED = ("set by the reconciler from the driver mode (spec.falco.driver), not by the manifest; "
         "remove it")
URL = ("must be an http:// or https:// URL with a host, without spaces or control characters, "
       "at most 2048 characters")
FILE_URL = ("must be an http:// or https:// URL: file:// is never taken from the repository (a "
            "local mirror is a setting of the host, not of the manifests)")
DUPLICATE = "a key may appear once in a mapping (YAML); remove one of them"
DEEP = ("nested deeper than 32 levels of mappings and lists, where a manifest needs a handful; "
        "the document is not read")
# A list that an alias makes 9^9 items long: its repr would never end.
BOMB = ("[&a [x, x, x, x, x, x, x, x, x]" + "".join(
    f", &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)) + "]")

CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    # -- store paths: every name part is one folder or file name, inside the store -------
    "DriverBuild kernelRelease climbing out of the store": (
        {"b.yaml": build(release='"../../../../../tmp/pwn"')},
        [f"b.yaml:7: spec.kernelRelease: {RELEASE}, got '../../../../../tmp/pwn'"]),
    "DriverBuild kernelRelease with a NUL": (
        {"b.yaml": build(release='"5.10.0\\0-amd64"')},
        [f"b.yaml:7: spec.kernelRelease: {RELEASE}, got '5.10.0\\x00-amd64'"]),
    "DriverBuild kernelRelease longer than utsname holds": (
        {"b.yaml": build(release="5.10.0-" + "a" * 58)},
        [f"b.yaml:7: spec.kernelRelease: {RELEASE}, got "
         "'5.10.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'... (65 characters)"]),
    "DriverBuild kernelRelease that reads as an option": (
        {"b.yaml": build(release="-rf")},
        [f"b.yaml:7: spec.kernelRelease: {RELEASE}, got '-rf'"]),
    "DriverBuild kernelVersion with a slash": (
        {"b.yaml": build("kernelVersion: 1/../../x")},
        [f"b.yaml:8: spec.kernelVersion: {VERSION}, got '1/../../x'"]),
    "DriverBuild kernelVersion of two dots": (
        {"b.yaml": build("kernelVersion: '..'")},
        [f"b.yaml:8: spec.kernelVersion: {VERSION}, got '..'"]),
    "DriverBuild driverVersion climbing": (
        {"b.yaml": build(driver='"../.."')},
        [f"b.yaml:6: spec.driverVersion: '../..' {DRIVER}"]),
    "DriverBuild driverVersion ending in a newline": (
        {"b.yaml": build(driver='"2.0.0+driver\\n"')},
        [f"b.yaml:6: spec.driverVersion: '2.0.0+driver\\n' {DRIVER}"]),
    "DriverBuild driverVersion too long for a folder name": (
        {"b.yaml": build(driver="2.0.0+" + "d" * 60)},
        ["b.yaml:6: spec.driverVersion: '2.0.0+" + "d" * 54 + "'... (66 characters) is not a "
         "driver version: at most 64 characters, such as 2.0.0+driver"]),
    "DriverBuild ubuntu flavor that is a path": (
        {"b.yaml": build("kernelVersion: '1'", target='"ubuntu-../../x"')},
        [f"b.yaml:5: spec.target: 'ubuntu-../../x' {UBUNTU}"]),
    "DriverBuild ubuntu flavor with the file name's separator": (
        {"b.yaml": build("kernelVersion: '1'", target="ubuntu-aws_x")},
        [f"b.yaml:5: spec.target: 'ubuntu-aws_x' {UBUNTU}"]),
    "Host kernels release climbing": (
        {"h.yaml": host(spec=kernel(release="../../../../../tmp/pwn"))},
        [f"h.yaml:9: spec.kernels[0].kernelRelease: {RELEASE}, got '../../../../../tmp/pwn'"]),
    "Host kernels version with a slash": (
        {"h.yaml": host(spec=kernel(version="1/x"))},
        [f"h.yaml:10: spec.kernels[0].kernelVersion: {VERSION}, got '1/x'"]),
    "Host kernels target climbing": (
        {"h.yaml": host(spec=kernel(target="../x"))},
        ["h.yaml:8: spec.kernels[0].target: expected the distro as Falco's loader names it "
         "(os-release's ID such as debian, centos or amazonlinux2, or ubuntu-<flavor>): "
         "lower-case letters, digits and . _ -, a letter or digit first, no '..', at most 64 "
         "characters, got '../x'"]),
    "Host kernels ubuntu flavor that is a number": (
        {"h.yaml": host(spec=kernel(target="ubuntu-1"))},
        [f"h.yaml:8: spec.kernels[0].target: 'ubuntu-1' {UBUNTU}"]),
    "Host driverVersion climbing": (
        {"h.yaml": host("driverVersion: ../../x")},
        [f"h.yaml:7: spec.falco.driverVersion: '../../x' {DRIVER}"]),
    "driverkit config kernelrelease climbing": (
        {"dk.yaml": config(release="../../x")},
        [f"dk.yaml:3: kernelrelease: {RELEASE}, got '../../x'"]),
    "driverkit config kernelversion with a slash": (
        {"dk.yaml": config(version="1/2")},
        [f"dk.yaml:4: kernelversion: {VERSION}, got '1/2'"]),
    # -- Docker's names and references ------------------------------------------------------
    "containerName climbing": (
        {"h.yaml": host("containerName: ../x")},
        [f"h.yaml:7: spec.falco.containerName: {CONTAINER}, got '../x'"]),
    "containerName of one character": (
        {"h.yaml": host("containerName: f")},
        [f"h.yaml:7: spec.falco.containerName: {CONTAINER}, got 'f'"]),
    "containerName too long to be set aside": (
        {"h.yaml": host("containerName: " + "f" * 46)},
        [f"h.yaml:7: spec.falco.containerName: {CONTAINER}, got '{'f' * 46}' (46 characters)"]),
    "image with spaces": (
        {"h.yaml": host("image: bad image name")},
        [f"h.yaml:7: spec.falco.image: {IMAGE}, got 'bad image name'"]),
    "image with an upper-case path": (
        {"h.yaml": host("image: Falco/falco")},
        [f"h.yaml:7: spec.falco.image: {IMAGE}, got 'Falco/falco'"]),
    "image name longer than Docker takes": (
        {"h.yaml": host("image: registry.local/" + "f" * 250)},
        [f"h.yaml:7: spec.falco.image: {IMAGE}, got a name of 265 characters"]),
    "image tag with a plus": (
        {"h.yaml": host("image: falco:0.37.1+x")},
        [f"h.yaml:7: spec.falco.image: {IMAGE}, got 'falco:0.37.1+x'"]),
    "Falco version that makes no image tag": (
        {"h.yaml": host().replace("0.37.1", "0.37.1+custom")},
        ["h.yaml:6: spec.falco.version: must be a Falco release that is also the image tag "
         "(e.g. 0.37.1; [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 characters), "
         "got '0.37.1+custom'"]),
    "network with a shell command": (
        {"h.yaml": host("network: 'host; rm -rf /'")},
        [f"h.yaml:7: spec.falco.network: {NETWORK}, got 'host; rm -rf /'"]),
    "network none": (
        {"h.yaml": host("network: none")},
        [f"h.yaml:7: spec.falco.network: {NETWORK}, got 'none'"]),
    "network of another container": (
        {"h.yaml": host("network: container:x")},
        [f"h.yaml:7: spec.falco.network: {NETWORK}, got 'container:x'"]),
    "metadata name with a NUL": (
        {"h.yaml": host().replace("{name: web}", '{name: "w\\0b"}')},
        ["h.yaml:3: metadata.name: must be non-empty with no spaces or control characters, at "
         "most 253 characters, got 'w\\x00b'"]),
    # -- env: what execve takes, and not what the reconciler sets ---------------------------
    "env with an empty key": (
        {"h.yaml": host("env: {'': x}")},
        [f"h.yaml:7: spec.falco.env: {ENV_KEY}, got ''"]),
    "env key holding =": (
        {"h.yaml": host("env: {'A=B': x}")},
        [f"h.yaml:7: spec.falco.env: {ENV_KEY}, got 'A=B'"]),
    "env value with a NUL": (
        {"h.yaml": host('env: {A: "a\\0b"}')},
        ["h.yaml:7: spec.falco.env.A: an environment value cannot hold a NUL character, "
         "got 'a\\x00b'"]),
    "env string one byte over MAX_ARG_STRLEN": (
        {"h.yaml": host("env:", "  BIG: " + "x" * 131068)},
        ["h.yaml:8: spec.falco.env.BIG: BIG=<value> is 131073 bytes with its NUL, over Linux's "
         "limit for one environment string (131072 bytes, MAX_ARG_STRLEN)"]),
    "env keys the reconciler sets": (
        {"h.yaml": host("env:", "  DRIVERS_REPO: http://evil",
                        "  FALCOCTL_DRIVER_HTTP_HEADERS: 'X-Token: y'", "  HOST_ROOT: /",
                        "  FALCO_LOG_LEVEL: debug")},
        [f"h.yaml:8: spec.falco.env.DRIVERS_REPO: {OWNED}",
         f"h.yaml:9: spec.falco.env.FALCOCTL_DRIVER_HTTP_HEADERS: {OWNED}",
         f"h.yaml:10: spec.falco.env.HOST_ROOT: {OWNED}"]),
    # -- kernel URLs ------------------------------------------------------------------------
    "kernelUrls file://": (
        {"b.yaml": build("kernelUrls: ['file:///etc/shadow']")},
        [f"b.yaml:8: spec.kernelUrls[0]: {FILE_URL}, got 'file:///etc/shadow'"]),
    "kernelUrls FILE:// in capitals": (
        {"b.yaml": build("kernelUrls: ['https://mirror.example/h.deb', 'FILE:///etc/shadow']")},
        [f"b.yaml:8: spec.kernelUrls[1]: {FILE_URL}, got 'FILE:///etc/shadow'"]),
    "kernelUrls ftp://": (
        {"b.yaml": build("kernelUrls: ['ftp://mirror.example/h.deb']")},
        [f"b.yaml:8: spec.kernelUrls[0]: {URL}, got 'ftp://mirror.example/h.deb'"]),
    "kernelUrls without a host": (
        {"b.yaml": build("kernelUrls: ['http:///h.deb']")},
        [f"b.yaml:8: spec.kernelUrls[0]: {URL}, got 'http:///h.deb'"]),
    "kernelUrls with a tab": (
        {"b.yaml": build('kernelUrls: ["http://x/a\\tb.deb"]')},
        [f"b.yaml:8: spec.kernelUrls[0]: {URL}, got 'http://x/a\\tb.deb'"]),
    "kernelUrls too long": (
        {"b.yaml": build("kernelUrls: ['http://x/" + "a" * 2041 + "']")},
        [f"b.yaml:8: spec.kernelUrls[0]: {URL}, got 'http://x/" + "a" * 51
         + "'... (2050 characters)"]),
    "driverkit config kernelurls file://": (
        {"dk.yaml": config("5.10.0-14-amd64", "1", "kernelurls: ['file:///etc/shadow']")},
        ["dk.yaml:6: kernelurls[0]: must be an http:// or https:// URL: file:// is never taken "
         "from the repository (a local mirror is a setting of the host, not of the manifests), "
         "got 'file:///etc/shadow'"]),
    # -- YAML shapes ------------------------------------------------------------------------
    "a key twice in falco": (
        {"h.yaml": host("version: 0.38.0")},
        [f"h.yaml:7: duplicate key 'version', first at line 6: {DUPLICATE}"]),
    "a top-level key twice": (
        {"h.yaml": host().replace("spec:\n", "metadata: {name: other}\nspec:\n")},
        [f"h.yaml:4: duplicate key 'metadata', first at line 3: {DUPLICATE}"]),
    "a key twice, with an alias": (
        {"h.yaml": host("driver: &mode kmod", "driver: *mode")},
        [f"h.yaml:8: duplicate key 'driver', first at line 7: {DUPLICATE}"]),
    "a key twice, spelt two ways": (
        {"dk.yaml": config("5.10.0-14-amd64", "1", "? target\n: centos")},
        [f"dk.yaml:6: duplicate key 'target', first at line 1: {DUPLICATE}"]),
    "nesting one level deeper than the cap": (
        {"a.yaml": "a: " + "[" * 32 + "]" * 32 + "\n"},
        [f"a.yaml:1: {DEEP}"]),
    "nesting deeper than the cap, with an alias": (
        {"a.yaml": "x: &x [1]\na: " + "[" * 33 + "*x" + "]" * 33 + "\n"},
        [f"a.yaml:2: {DEEP}"]),
    "nesting deeper than libyaml allows": (
        {"a.yaml": "a: " + "[" * 2000 + "]" * 2000 + "\n"},
        ["a.yaml:1: YAML syntax error: exceeded maximum nesting depth (while increasing flow "
         "level at line 1)"]),
    "a date that is none": (
        {"h.yaml": host("env: {A: 2024-13-45}")},
        ["h.yaml:7: '2024-13-45' is not a valid timestamp (YYYY-MM-DD, or with a time); quote it "
         "to keep it as text"]),
    "a tag its value does not fit": (
        {"h.yaml": host("env: {A: !!int abc}")},
        ["h.yaml:7: 'abc' is not a valid integer; quote it to keep it as text"]),
    "a base-60 integer of 10,001 characters": (
        {"h.yaml": host("env: {A: 1" + ":1" * 5000 + "}")},
        ["h.yaml:7: '" + "1:" * 30 + "'... (10001 characters) is an integer of more than 4300 "
         "characters; quote it to keep it as text"]),
    "an alias bomb where a message quotes the value": (
        {"dk.yaml": config("5.10.0-14-amd64", "1").replace("{module: a.ko}", BOMB)},
        ["dk.yaml:5: output: expected a mapping with module (a .ko path) and/or probe (a .o "
         "path), got a list"]),
    "an unsafe tag": (
        {"a.yaml": "kind: !!python/object/apply:os.system [ls]\n"},
        ["a.yaml:1: YAML syntax error: could not determine a constructor for the tag "
         "'tag:yaml.org,2002:python/object/apply:os.system'"]),
    "bytes that are not UTF-8": (
        {"a.yaml": "kind: Host\nname: \udcff\n"},
        ["a.yaml:2: not valid YAML text: unacceptable character #x00ff: invalid leading UTF-8 "
         "octet\n  in \"<byte string>\", position 17"]),
    "a file name with terminal escapes": (
        {"ho\x1b[2Jsts.yaml": host()},
        ["ho\\x1b[2Jsts.yaml:1: the file name holds characters that are not printable (shown "
         "escaped); rename the file (it is not read)"]),
    # -- sizes ------------------------------------------------------------------------------
    "more than 10,000 documents in one file": (
        {"a.yaml": "---\n" * 10_001},
        ["a.yaml:10002: more than 10000 documents in one file, the most a file may hold; split "
         "it (the documents from here on are not read)"]),
    "more than 50,000 documents in the repository": (
        {f"{n}.yaml": "---\n" * 9_000 for n in range(6)},
        ["5.yaml:5002: more than 50000 documents in the repository, the most one revision may "
         "hold; the documents from here on, in this file and the files after it, are not read"]),
}


def _encoded(files: dict[str, str]) -> list[tuple[str, bytes]]:
    # surrogateescape: a lone \udcff above stands for the byte 0xff, which is not UTF-8.
    return [(path, text.encode("utf-8", "surrogateescape")) for path, text in files.items()]


@pytest.mark.parametrize(("files", "expected"), list(CASES.values()), ids=list(CASES))
def test_each_hostile_push_is_refused_at_its_file_and_line(
    files: dict[str, str], expected: list[str]
) -> None:
    assert [str(p) for p in loading.problems(_encoded(files))] == expected  # in line order


@pytest.mark.parametrize("files", [files for files, _ in CASES.values()], ids=list(CASES))
def test_nothing_of_a_hostile_push_loads(files: dict[str, str]) -> None:
    with pytest.raises(ManifestError):
        loading.load(_encoded(files))
    manifests, found = loading.check(_encoded(files))
    assert found
    assert manifests.hosts == () and manifests.builds == ()


def test_the_corpus_covers_every_category() -> None:
    assert len(CASES) >= 30


# -- sizes too large to keep in the table -----------------------------------------------------


def test_a_file_over_1_mib_is_not_parsed() -> None:
    text = host("env:", "  BIG: " + "x" * (2 << 20))  # a 2 MB env value
    assert [str(p) for p in loading.problems([("h.yaml", text.encode())])] == [
        f"h.yaml:1: the file is {len(text)} bytes, over the 1048576 bytes (1 MiB) a manifest "
        "file may hold; split it (the file is not read)"]


def test_a_file_of_exactly_1_mib_is_read() -> None:
    text = host()
    text += "#" * (loading.MAX_FILE_BYTES - len(text) - 1) + "\n"
    assert len(text) == loading.MAX_FILE_BYTES
    assert loading.problems([("h.yaml", text.encode())]) == []


def test_the_files_past_64_mib_are_not_read() -> None:
    filler = ("#" * (loading.MAX_FILE_BYTES - 1) + "\n").encode()
    files = [(f"{n:02d}.yaml", filler) for n in range(64)] + [
        ("64.yaml", filler), ("65.yaml", b"kind: Nope\n")]
    assert [str(p) for p in loading.problems(files)] == [
        f"64.yaml:1: the manifest files reach {65 << 20} bytes at this file, over the "
        f"{64 << 20} bytes (64 MiB) one revision may hold; this file and the files after it "
        "are not read"]


def test_the_bounds_are_the_documented_ones() -> None:
    assert (loading.MAX_FILE_BYTES, loading.MAX_REPOSITORY_BYTES) == (1 << 20, 64 << 20)
    assert (loading.MAX_DOCUMENTS_PER_FILE, loading.MAX_DOCUMENTS) == (10_000, 50_000)
    assert loading.MAX_DEPTH == 32
    assert (grammar.MAX_KERNEL_RELEASE, grammar.MAX_CONTAINER_NAME) == (64, 45)
    assert grammar.MAX_ENV_STRING == 131072
    doc = (Path(__file__).resolve().parents[3] / "docs" / "manifest-limits.md").read_text()
    for figure in ("1 MiB", "64 MiB", "10,000", "50,000", "32", "131072", "45", "255", "2048"):
        assert figure in doc


# -- what is at a limit still loads -------------------------------------------------------------


def test_values_at_their_limits_load() -> None:
    longest = "f" * grammar.MAX_CONTAINER_NAME
    text = host(f"containerName: {longest}", "env:", "  BIG: " + "x" * 131067,
                spec=kernel(release="5.10.0-" + "a" * 57))
    (located,) = loading.load([("h.yaml", text.encode())]).hosts
    falco = located.value.spec.falco
    assert len(f"BIG={falco.env['BIG']}".encode()) + 1 == grammar.MAX_ENV_STRING
    assert len(located.value.spec.kernels[0].kernel_release) == grammar.MAX_KERNEL_RELEASE
    # The name a replace sets the old container aside under is still a Docker name, and
    # both names stay within a DNS label.
    aside = f"{longest}-previous-{'0' * 8}"
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", aside)
    assert len(aside) == 63


def test_nesting_at_the_cap_is_read() -> None:
    text = "a: " + "[" * 31 + "]" * 31 + "\n"  # 32 levels with the top mapping
    assert [str(p) for p in loading.problems([("a.yaml", text.encode())])] == [
        "a.yaml:1: missing required key 'kind' in the document; expected Host, DriverBuild or "
        "Rollout "
        "(or a driverkit config with target, kernelrelease, output...)"]


@pytest.mark.parametrize(
    "image",
    ["docker.io/falcosecurity/falco", "falcosecurity/falco-no-driver:0.37.1",
     "registry.local:5000/falco:custom", "localhost/falco", "[::1]:5000/falco",
     "public.ecr.aws/falcosecurity/falco:0.38.2", "a__b/c--d", f"falco@sha256:{'a' * 64}",
     f"ghcr.io/org/img:v1.2.3-rc.1@sha256:{'0' * 64}"],
)
def test_real_image_references_are_taken(image: str) -> None:
    assert FalcoSpec(version="0.37.1", image=image).image == image


@pytest.mark.parametrize("network", ["host", "bridge", "falco-net", "a", "net_1.b"])
def test_docker_network_names_are_taken(network: str) -> None:
    assert FalcoSpec(version="0.37.1", network=network).network == network


@pytest.mark.parametrize(
    "url", ["http://archive.ubuntu.com/ubuntu/pool/main/l/linux/h.deb",
            "HTTPS://mirror.example:8443/a%20b.rpm?x=1#y", "http://10.0.0.1/h.deb",
            "http://[fd00::1]:8080/h.deb"])
def test_http_kernel_urls_are_taken(url: str) -> None:
    text = build(f"kernelUrls: ['{url}']")
    (located,) = loading.load([("b.yaml", text.encode())]).builds
    assert located.value.spec.kernel_urls == (url,)


def test_every_kernel_name_the_loaders_produce_is_a_valid_host_kernel() -> None:
    """The grammar is the loaders': every name they ask for (tests/model/facts_cases.py, one
    per distro rule and Falco generation) may be listed in a Host's kernels."""
    for _case, _versions, target, release, version in facts_cases.EXPECTED:
        spec = KernelSpec.model_validate(
            {"target": target, "kernelRelease": release, "kernelVersion": version},
            by_name=False)
        assert spec.kernel_id() == KernelId(target, release, version, "x86_64")


def test_every_variable_the_reconciler_sets_is_refused_in_env() -> None:
    """The refused keys follow generations.driver_setup: a variable it sets, in any mode
    and Falco generation, is never the manifest's to override."""
    for mode in DriverMode:
        for version in ("0.32.2", "0.36.2", "0.37.1", "0.38.2", "0.40.0", "0.44.0"):
            setup = generations.driver_setup(mode, FalcoVersion.parse(version),
                                             "http://127.0.0.1:8000")
            keys = [key for key, _ in (*setup.env, *(setup.loader.env if setup.loader else ()))]
            assert all(grammar.set_by_reconciler(key) for key in keys), (mode, version, keys)
    assert grammar.set_by_reconciler("HOST_ROOT")
    assert not grammar.set_by_reconciler("FALCO_LOG_LEVEL")


def test_the_fast_loader_still_reads_a_repeated_key_as_pyyaml_does() -> None:
    """A repeated key is reported, but the loader's output stays CSafeLoader's."""
    text = "a: 1\nb: {c: 2, c: 3}\na: 4\n"
    assert list(yaml.load_all(text.encode(), Loader=yamlread.FastLoader)) == list(
        yaml.load_all(text, Loader=yaml.CSafeLoader))
    assert [str(p) for p in loading.problems([("x.yaml", text.encode())])] == [
        "x.yaml:1: missing required key 'kind' in the document; expected Host, DriverBuild or "
        "Rollout "
        "(or a driverkit config with target, kernelrelease, output...)",
        f"x.yaml:2: duplicate key 'c', first at line 2: {DUPLICATE}",
        f"x.yaml:3: duplicate key 'a', first at line 1: {DUPLICATE}",
    ]


def test_a_merged_key_may_be_overridden() -> None:
    """``<<`` merges keys that the mapping may then set again: no key is repeated there."""
    text = host("env: {<<: {A: '1', B: '2'}, B: '3'}")
    (located,) = loading.load([("h.yaml", text.encode())]).hosts
    assert located.value.spec.falco.env == {"A": "1", "B": "3"}


# -- reading a hostile push touches nothing -----------------------------------------------------

_EVENTS: list[tuple[str, tuple[Any, ...]]] | None = None
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link",
            "os.chmod", "os.chown", "os.truncate", "shutil.rmtree", "shutil.copyfile",
            "shutil.move", "os.utime"}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _EVENTS is None:
        return
    if event == "open":
        _path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writing:
            _EVENTS.append((event, args))
    elif event in _CHANGES or event.startswith(("subprocess.", "os.exec", "os.posix_spawn",
                                                "os.system", "socket.connect")):
        _EVENTS.append((event, args))


sys.addaudithook(_audit)  # an audit hook cannot be removed: it records only when asked


@contextmanager
def _recorded() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    global _EVENTS  # noqa: PLW0603 - the one switch of the process-wide audit hook
    _EVENTS = []
    try:
        yield _EVENTS
    finally:
        _EVENTS = None


def test_loading_a_hostile_push_writes_nothing_and_starts_nothing() -> None:
    pushes = [_encoded(files) for files, _ in CASES.values()]
    with _recorded() as events:
        for files in pushes:
            loading.check(files)
    assert events == []


VALIDATED = {
    "drivers/pwn.yaml": build(release='"../../../../../../../../tmp/pwn"').replace(
        "{name: b}", "{name: pwn}"),
    "hosts/web.yaml": host("containerName: ../x", "env: {'A=B': x, DRIVERS_REPO: http://evil}",
                           "network: 'host; rm -rf /'"),
    "hosts/dup.yaml": host("version: 0.38.0").replace("name: web", "name: dup"),
    "builds/urls.yaml": build("kernelUrls: ['file:///etc/shadow', 'ftp://x/h.deb']"),
}


def test_validate_prints_every_refusal_and_touches_nothing_outside_its_folders(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git_repo.commit(VALIDATED)
    state = tmp_path / "state"
    argv = ["validate", "--repo", str(git_repo.path), "--state-dir", str(state)]
    importlib.import_module("reconciler.commands.validate")  # imports are not validate's doing
    with _recorded() as events:
        assert cli.main(argv) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"builds/urls.yaml:8: spec.kernelUrls[0]: {FILE_URL}, got 'file:///etc/shadow'",
        f"builds/urls.yaml:8: spec.kernelUrls[1]: {URL}, got 'ftp://x/h.deb'",
        f"drivers/pwn.yaml:7: spec.kernelRelease: {RELEASE}, got "
        "'../../../../../../../../tmp/pwn'",
        f"hosts/dup.yaml:7: duplicate key 'version', first at line 6: {DUPLICATE}",
        f"hosts/web.yaml:7: spec.falco.containerName: {CONTAINER}, got '../x'",
        f"hosts/web.yaml:8: spec.falco.env.DRIVERS_REPO: {OWNED}",
        f"hosts/web.yaml:8: spec.falco.env: {ENV_KEY}, got 'A=B'",
        f"hosts/web.yaml:9: spec.falco.network: {NETWORK}, got 'host; rm -rf /'",
    ]
    inside = tmp_path.resolve()
    for event, args in events:
        if isinstance(args[0], int):
            continue  # a descriptor (the pipes to git): what it was opened as is recorded
        if event == "open" and args[0] == os.devnull:
            continue  # git's stdin (`git status`, for uncommitted manifest edits)
        if event == "open" or event in _CHANGES:
            assert Path(os.fsdecode(args[0])).resolve().is_relative_to(inside), (event, args)
        else:  # git reads the repository; nothing else runs
            assert event.startswith("subprocess.") and "git" in str(args), (event, args)


def test_validate_reports_a_repeated_key_and_an_owned_variable_in_one_file(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = host("env:", "  FALCOCTL_DRIVER_REPOS: http://evil", "  X: '1'", "  X: '2'")
    git_repo.commit({"web.yaml": text})
    argv = ["validate", "--repo", str(git_repo.path), "--state-dir", str(tmp_path / "s")]
    assert cli.main(argv) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"web.yaml:8: spec.falco.env.FALCOCTL_DRIVER_REPOS: {OWNED}",
        f"web.yaml:10: duplicate key 'X', first at line 9: {DUPLICATE}",
    ]


def test_validate_refuses_a_file_over_the_size_limit(
    git_repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = host() + "# " + "x" * loading.MAX_FILE_BYTES + "\n"
    git_repo.commit({"big.yaml": big})
    argv = ["validate", "--repo", str(git_repo.path), "--state-dir", str(tmp_path / "s")]
    assert cli.main(argv) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"big.yaml:1: the file is {len(big)} bytes, over the 1048576 bytes (1 MiB) a manifest "
        "file may hold; split it (the file is not read)"]
