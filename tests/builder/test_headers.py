"""headers: where the kernel build tree is in unpacked packages, and what gets mounted."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from reconciler.builder import compiler, headers, steps
from reconciler.errors import StepFailed
from reconciler.model.artifacts import KernelId
from reconciler.model.container import BindMount
from reconciler.model.netpolicy import UrlPolicy
from tests.support import upstreams as ups
from tests.support.upstreams import Behaviour, file_server

RELEASE = "6.1.0-57-cloud-amd64"
# The host's kernel_url_allow opening loopback, where the tests' servers are.
LOOPBACK = UrlPolicy((ipaddress.ip_network("127.0.0.0/8"),))


def kernel_tree(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "Makefile").write_text("include /usr/src/linux-headers-6.1.0-57-common/Makefile\n")
    (path / ".config").write_text("CONFIG_X=y\n")
    return path


def test_debian_packages_give_the_arch_tree_not_the_common_one(tmp_path: Path) -> None:
    (tmp_path / "usr/src/linux-headers-6.1.0-57-common").mkdir(parents=True)
    (tmp_path / "usr/src/linux-headers-6.1.0-57-common/Makefile").write_text("x\n")
    kernel_tree(tmp_path / f"usr/src/linux-headers-{RELEASE}")
    assert headers.find_kernel_dir(tmp_path, RELEASE) == f"/usr/src/linux-headers-{RELEASE}"


def test_rpm_packages_give_usr_src_kernels(tmp_path: Path) -> None:
    kernel_tree(tmp_path / "usr/src/kernels/5.10.186-179.751.amzn2.x86_64")
    assert headers.find_kernel_dir(tmp_path, "5.10.186-179.751.amzn2.x86_64") == (
        "/usr/src/kernels/5.10.186-179.751.amzn2.x86_64")


def test_packages_without_a_kernel_tree_are_refused(tmp_path: Path) -> None:
    (tmp_path / "usr/share/doc").mkdir(parents=True)
    with pytest.raises(StepFailed, match="no kernel build tree"):
        headers.find_kernel_dir(tmp_path, RELEASE)


def test_each_top_folder_is_mounted_at_its_own_path_but_never_other_usr_lib(
    tmp_path: Path,
) -> None:
    """Debian's arch Makefile includes the -common tree by absolute path, and its scripts
    link to /usr/lib/linux-kbuild-*; the toolchain's own /usr/lib folders stay untouched."""
    kernel_tree(tmp_path / f"usr/src/linux-headers-{RELEASE}")
    (tmp_path / "usr/src/linux-headers-6.1.0-57-common").mkdir()
    (tmp_path / "usr/lib/linux-kbuild-6.1").mkdir(parents=True)
    (tmp_path / "usr/lib/x86_64-linux-gnu").mkdir()
    found = headers.Headers(RELEASE, tmp_path, f"/usr/src/linux-headers-{RELEASE}").mounts
    assert found == (
        BindMount(str(tmp_path / "usr/src/linux-headers-6.1.0-57-cloud-amd64"),
                  "/usr/src/linux-headers-6.1.0-57-cloud-amd64", read_only=True),
        BindMount(str(tmp_path / "usr/src/linux-headers-6.1.0-57-common"),
                  "/usr/src/linux-headers-6.1.0-57-common", read_only=True),
        BindMount(str(tmp_path / "usr/lib/linux-kbuild-6.1"),
                  "/usr/lib/linux-kbuild-6.1", read_only=True),
    )
    assert all(m.read_only for m in found)


def test_a_non_debian_target_without_kernel_urls_fails_naming_the_way_out(
    tmp_path: Path,
) -> None:
    kernel = KernelId("centos", "4.18.0-348.el8.x86_64", "1", "x86_64")
    with pytest.raises(StepFailed, match="give kernelUrls"):
        headers.ensure(None, "img", kernel, kernel_urls=(),  # type: ignore[arg-type]
                       cache_root=tmp_path, log=steps.BuildLog(tmp_path / "log"))
    assert headers.cached(tmp_path, kernel) is None
    assert [p.name for p in (tmp_path / "x86_64/centos").iterdir()] == [
        ".4.18.0-348.el8.x86_64.lock"]


def test_a_kernel_url_that_cannot_be_fetched_names_the_release_and_urls(
    tmp_path: Path,
) -> None:
    kernel = KernelId("amazonlinux2", "5.10.1.amzn2.x86_64", "1", "x86_64")
    url = (tmp_path / "nope.rpm").as_uri()
    with pytest.raises(StepFailed) as caught:
        headers.ensure(None, "img", kernel, kernel_urls=(url,),  # type: ignore[arg-type]
                       cache_root=tmp_path, log=steps.BuildLog(tmp_path / "log"))
    assert "5.10.1.amzn2.x86_64" in caught.value.reason
    assert url in caught.value.reason


@pytest.mark.parametrize(("url", "said"), [
    ("http://169.254.169.254/latest/meta-data/iam/linux-headers.deb",
     "169.254.169.254 is link-local (cloud metadata lives there)"),
    ("http://127.0.0.1:{port}/linux-headers.deb", "127.0.0.1 is loopback"),
])
def test_kernel_urls_to_metadata_or_loopback_are_refused_clearly(
    tmp_path: Path, url: str, said: str,
) -> None:
    """A manifest's kernelUrls reach only what the host's policy allows: the build fails
    at the headers step naming the release, the URL and why, and nothing is requested
    (the loopback server sees no request) or cached."""
    with file_server(Behaviour(files={"/linux-headers.deb": b"!<arch>\n"})) as (base, how):
        url = url.format(port=base.rsplit(":", 1)[1])
        kernel = KernelId("vanilla", RELEASE, "1", "x86_64")
        with pytest.raises(steps.StepFailed) as caught:
            headers.ensure(None, "img", kernel, kernel_urls=(url,),  # type: ignore[arg-type]
                           cache_root=tmp_path, log=steps.BuildLog(tmp_path / "log"))
        assert how.requests == []
    reason = caught.value.reason
    assert f"kernel release {RELEASE}: cannot fetch its headers from {url}" in reason
    assert said in reason
    assert "kernel_url_allow" in reason
    assert headers.cached(tmp_path, kernel) is None


def test_a_compile_output_that_is_a_symlink_or_too_big_is_never_read(tmp_path: Path) -> None:
    """The compile container ran the headers' and the source's code: a falco.ko it left as
    a symlink to a host file (a key, a secret) is refused unread, as is an ``out`` folder
    that is a symlink, or a file over the size a driver can be."""
    secret = tmp_path / "webhook.secret"
    secret.write_text("s3cr3t\n")
    out = tmp_path / "work/out"
    out.mkdir(parents=True)
    (out / "falco.ko").symlink_to(secret)
    with pytest.raises(steps.StepFailed, match=r"falco\.ko as a symlink"):
        compiler._output(out, out / "falco.ko")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/falco.ko").write_bytes(b"\x7fELF")
    linked = tmp_path / "work2/out"
    linked.parent.mkdir()
    linked.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(steps.StepFailed, match="out as a symlink"):
        compiler._output(linked, linked / "falco.ko")
    (out / "falco.ko").unlink()
    with (out / "falco.ko").open("wb") as handle:
        handle.truncate(compiler.MAX_OUTPUT + 1)  # sparse: no disk used
    with pytest.raises(steps.StepFailed, match="over the"):
        compiler._output(out, out / "falco.ko")
    (out / "falco.ko").unlink()
    with pytest.raises(steps.StepFailed, match=r"left no falco\.ko"):
        compiler._output(out, out / "falco.ko")


def test_a_kernel_url_answering_garbage_fails_the_step(tmp_path: Path) -> None:
    """Before: http.client.BadStatusLine escaped the headers download (and cancelled
    every parallel build). Now it is this step's failure, naming the release."""
    kernel = KernelId("amazonlinux2", "5.10.1.amzn2.x86_64", "1", "x86_64")
    with ups.raw_server(ups.garbage) as (url, heads), pytest.raises(StepFailed) as caught:
        headers.ensure(None, "img", kernel, kernel_urls=(url + "/k.rpm",),  # type: ignore[arg-type]
                       cache_root=tmp_path, log=steps.BuildLog(tmp_path / "log"),
                       policy=LOOPBACK)
    assert "5.10.1.amzn2.x86_64" in caught.value.reason
    assert "BadStatusLine" in caught.value.reason
    assert len(heads) == 1


def test_a_kernel_url_with_credentials_is_refused_and_never_shown(tmp_path: Path) -> None:
    kernel = KernelId("amazonlinux2", "5.10.1.amzn2.x86_64", "1", "x86_64")
    with ups.raw_server(ups.garbage) as (url, heads), pytest.raises(StepFailed) as caught:
        headers.ensure(None, "img", kernel,  # type: ignore[arg-type]
                       kernel_urls=(url.replace("//", "//me:s3cret@") + "/k.rpm",),
                       cache_root=tmp_path, log=steps.BuildLog(tmp_path / "log"),
                       policy=LOOPBACK)
    assert "credentials in a URL are refused" in caught.value.reason
    assert "s3cret" not in caught.value.reason
    assert "s3cret" not in (tmp_path / "log").read_text()
    assert heads == []


def _file(path: Path, data: bytes = b"kernel") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_the_image_of_a_deb_is_its_boot_vmlinuz_of_the_release(tmp_path: Path) -> None:
    """A linux-image .deb unpacks boot/vmlinuz-<release> (beside other releases' images
    and the release's modules): that one is the release's image."""
    _file(tmp_path / "boot/vmlinuz-6.1.0-50-cloud-amd64", b"other")
    _file(tmp_path / f"lib/modules/{RELEASE}/kernel/fs/ext4.ko")
    image = _file(tmp_path / f"boot/vmlinuz-{RELEASE}")
    assert headers.find_image(tmp_path, RELEASE) == image
    assert headers.find_image(tmp_path, "6.1.0-99-cloud-amd64") is None


@pytest.mark.parametrize("top", ["lib", "usr/lib"])
def test_the_image_of_an_rpm_is_its_modules_folders_vmlinuz(tmp_path: Path, top: str) -> None:
    """Fedora's and RHEL's kernel-core installs lib/modules/<release>/vmlinuz (merged /usr:
    usr/lib/modules) and leaves boot/ to a scriptlet."""
    release = "5.14.0-427.13.1.el9_4.x86_64"
    _file(tmp_path / f"{top}/modules/{release}/System.map")
    image = _file(tmp_path / f"{top}/modules/{release}/vmlinuz")
    assert headers.find_image(tmp_path, release) == image


def test_an_image_that_is_a_link_or_leads_out_of_the_tree_is_not_taken(tmp_path: Path) -> None:
    """The packages come from a URL: a vmlinuz that links to a host file, or a folder link
    that leads out of the unpacked tree, gives no image."""
    root = tmp_path / "root"
    secret = _file(tmp_path / "secret", b"host file")
    (root / "boot").mkdir(parents=True)
    (root / f"boot/vmlinuz-{RELEASE}").symlink_to(secret)
    outside = _file(tmp_path / f"elsewhere/modules/{RELEASE}/vmlinuz")
    (root / "lib").symlink_to(outside.parents[2])
    assert headers.find_image(root, RELEASE) is None
    (root / "lib").unlink()
    (root / "usr/lib/modules").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")  # a merged /usr inside the tree is fine
    inside = _file(root / f"usr/lib/modules/{RELEASE}/vmlinuz")
    assert headers.find_image(root, RELEASE) == root / f"lib/modules/{RELEASE}/vmlinuz"
    assert headers.find_image(root, RELEASE).resolve() == inside.resolve()  # type: ignore[union-attr]



@pytest.mark.parametrize(("image", "modules"), [
    (f"boot/vmlinuz-{RELEASE}", f"lib/modules/{RELEASE}"),  # a linux-image .deb
    (f"usr/lib/modules/{RELEASE}/vmlinuz", f"usr/lib/modules/{RELEASE}"),  # kernel-core
])
def test_a_kept_image_leaves_the_tree_and_takes_its_packages_modules_along(
    tmp_path: Path, image: str, modules: str,
) -> None:
    """The image moves beside the tree (the cache folder's rename makes it appear with
    the headers or not at all); the modules its package unpacked go, since no build
    reads them; the build tree and its link in the modules folder stay."""
    partial = tmp_path / "partial"
    root = partial / "root"
    kernel_tree(root / f"usr/src/linux-headers-{RELEASE}")
    (root / modules).mkdir(parents=True)
    (root / modules / "build").symlink_to(f"/usr/src/linux-headers-{RELEASE}")
    _file(root / modules / "kernel/fs/ext4/ext4.ko")
    _file(root / image, b"the image")
    headers.keep_image(partial, RELEASE, steps.BuildLog(tmp_path / "log"))
    assert (partial / f"vmlinuz-{RELEASE}").read_bytes() == b"the image"
    assert not (root / image).exists()
    assert not (root / modules / "kernel").exists()
    assert (root / modules / "build").is_symlink()
    assert headers.find_kernel_dir(root, RELEASE) == f"/usr/src/linux-headers-{RELEASE}"
    assert f"kernel image {RELEASE}: kept from kernelUrls ({image})" in (
        (tmp_path / "log").read_text())


def test_headers_without_an_image_are_left_as_they_are(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    kernel_tree(partial / "root" / f"usr/src/linux-headers-{RELEASE}")
    _file(partial / "root" / f"lib/modules/{RELEASE}/kernel/fs/ext4/ext4.ko")
    headers.keep_image(partial, RELEASE, steps.BuildLog(tmp_path / "log"))
    assert sorted(p.name for p in partial.iterdir()) == ["root"]
    assert (partial / "root" / f"lib/modules/{RELEASE}/kernel/fs/ext4/ext4.ko").is_file()


def test_cached_headers_answer_a_request_only_if_fetched_from_all_its_kernel_urls(
    tmp_path: Path,
) -> None:
    """Headers from apt, or from kernelUrls, serve a request without kernelUrls or with a
    part of theirs; a request naming a package they were not fetched with (the image
    package added to a DriverBuild) is fetched again."""
    fetched = headers.Headers("6.1.0-57-cloud-amd64", tmp_path, "/usr/src/x",
                              ("http://m/h.deb", "http://m/c.deb"))
    assert headers.answers(fetched, ())
    assert headers.answers(fetched, ("http://m/h.deb",))
    assert not headers.answers(fetched, ("http://m/h.deb", "http://m/image.deb"))
    from_apt = headers.Headers("6.1.0-57-cloud-amd64", tmp_path, "/usr/src/x", ())
    assert headers.answers(from_apt, ()) and not headers.answers(from_apt, ("http://m/h.deb",))
    assert not headers.answers(None, ())
