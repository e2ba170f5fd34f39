"""The real server over real HTTP clients: what Falco's loaders, curl and scripts get."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import logs
from reconciler.edges.store.local import Store
from reconciler.httpd import DriverServer, ServerConfig
from tests.httpd.fleet import (
    ARM_ONLY,
    BOTH_ARCHES_ARM,
    BOTH_ARCHES_X86,
    EBPF,
    FALCOCTL,
    KMOD,
    OLD,
    Fleet,
    raw_request,
    status_of,
)
from tests.httpd.hostile import HOSTILE_TARGETS


def fetch(url: str, headers: dict[str, str] | None = None,
          method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


@contextlib.contextmanager
def conn(server: DriverServer) -> Iterator[http.client.HTTPConnection]:
    connection = http.client.HTTPConnection(*server.address, timeout=10)
    try:
        yield connection
    finally:
        connection.close()


# -- the URLs the loaders build -------------------------------------------------------


def test_bash_loader_url(server: DriverServer, fleet: Fleet) -> None:
    """falco-driver-loader 0.32-0.36 builds
    `${DRIVERS_REPO}/${DRIVER_VERSION}/${ARCH}/${FILE}` and pipes it through
    `sed s/+/%2B/g`."""
    drivers_repo = server.url
    url = f"{drivers_repo}/{KMOD.driver_version}/x86_64/{KMOD.filename}".replace("+", "%2B")
    assert "%2B" in url
    status, headers, body = fetch(url)
    assert status == 200
    assert body == fleet.contents[KMOD]
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Length"] == str(len(body))


def test_the_loaders_own_bash_lines(server: DriverServer, fleet: Fleet, curl: str,
                                   tmp_path: Path) -> None:
    """The download step of falco-driver-loader (0.32-0.36), run by bash as it is
    written there: URL through `sed s/+/%2B/g`, then `curl -L --create-dirs -o`."""
    script = (
        'URL=$(echo "${DRIVERS_REPO}/${DRIVER_VERSION}/${ARCH}/${FILENAME}" | sed s/+/%2B/g)\n'
        'curl -L --create-dirs -fsS -o "${HOME}/.falco/${DRIVER_VERSION}/${ARCH}/${FILENAME}"'
        ' "${URL}"\n'
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DRIVERS_REPO": server.url,
           "DRIVER_VERSION": KMOD.driver_version, "ARCH": "x86_64",
           "FILENAME": KMOD.filename}
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True)
    got = tmp_path / ".falco" / KMOD.driver_version / "x86_64" / KMOD.filename
    assert got.read_bytes() == fleet.contents[KMOD]


def test_bash_loader_ebpf_probe_url(server: DriverServer, fleet: Fleet) -> None:
    url = f"{server.url}/{EBPF.driver_version}/x86_64/{EBPF.filename}".replace("+", "%2B")
    assert fetch(url)[2] == fleet.contents[EBPF]


def test_falcoctl_url(server: DriverServer, fleet: Fleet) -> None:
    """falcoctl: fmt.Sprintf("%s/%s/%s/%s", repo, url.QueryEscape(driverVer), arch, file);
    only the driver version is escaped ('+' -> '%2B'), the '~' of the file stays raw."""
    url = f"{server.url}/7.0.0%2Bdriver/x86_64/{FALCOCTL.filename}"
    assert "~" in url
    status, _headers, body = fetch(url)
    assert status == 200
    assert body == fleet.contents[FALCOCTL]


def test_curl_with_raw_plus(server: DriverServer, fleet: Fleet, curl: str,
                            tmp_path: Path) -> None:
    out = tmp_path / "module.ko"
    url = f"{server.url}/{KMOD.relpath}"
    assert "+" in url
    done = subprocess.run([curl, "-fsS", "-o", str(out), "-w", "%{http_code}", url],
                          capture_output=True, text=True, check=True)
    assert done.stdout == "200"
    assert out.read_bytes() == fleet.contents[KMOD]


def test_curl_like_the_loader_does(server: DriverServer, fleet: Fleet, curl: str,
                                   tmp_path: Path) -> None:
    """The loader's own curl call: -L --create-dirs -o ... with the %2B URL."""
    out = tmp_path / ".falco" / KMOD.driver_version / "x86_64" / KMOD.filename
    url = f"{server.url}/{KMOD.relpath}".replace("+", "%2B")
    subprocess.run([curl, "-L", "--create-dirs", "-fsS", "--connect-timeout", "5",
                    "-o", str(out), url], check=True, capture_output=True)
    assert out.read_bytes() == fleet.contents[KMOD]


def test_old_falco_path_without_arch(server: DriverServer, fleet: Fleet) -> None:
    """Falco < 0.32: ${DRIVERS_REPO}/${DRIVER_VERSION}/${FILE}, no arch folder."""
    status, _h, body = fetch(f"{server.url}/{OLD.driver_version}/{OLD.filename}")
    assert status == 200
    assert body == fleet.contents[OLD]


def test_old_path_finds_the_only_arch_that_has_it(server: DriverServer, fleet: Fleet) -> None:
    url = f"{server.url}/2.0.0%2Bdriver/{ARM_ONLY.filename}"
    assert fetch(url)[2] == fleet.contents[ARM_ONLY]


def test_old_path_prefers_the_server_hosts_arch(fleet: Fleet) -> None:
    """The same file name under x86_64/ and aarch64/: the server's own arch wins."""
    url_path = f"/6.0.1%2Bdriver/{BOTH_ARCHES_X86.filename}"
    for arch, key in (("x86_64", BOTH_ARCHES_X86), ("aarch64", BOTH_ARCHES_ARM)):
        config = ServerConfig(workers=2, host_arch=arch)
        with DriverServer(Store(fleet.root), ("127.0.0.1", 0), config=config) as server:
            assert fetch(server.url + url_path)[2] == fleet.contents[key]


def test_sha256_sidecar(server: DriverServer, fleet: Fleet) -> None:
    status, headers, body = fetch(f"{server.url}{KMOD.url_path()}.sha256")
    assert status == 200
    assert body.decode() == f"{fleet.sha256(KMOD)}  {KMOD.filename}\n"
    assert headers["Content-Type"].startswith("text/plain")


# -- HEAD, validators, ranges -----------------------------------------------------------


def test_head_has_the_get_headers_and_no_body(server: DriverServer, fleet: Fleet) -> None:
    with conn(server) as c:
        c.request("HEAD", KMOD.url_path())
        reply = c.getresponse()
        assert reply.status == 200
        assert reply.read() == b""
        assert reply.getheader("Content-Length") == str(len(fleet.contents[KMOD]))
        assert reply.getheader("ETag") == f'"{fleet.sha256(KMOD)}"'
        assert reply.getheader("Last-Modified", "").endswith(" GMT")
        assert reply.getheader("Accept-Ranges") == "bytes"
        c.request("GET", KMOD.url_path())  # same connection still works after HEAD
        assert c.getresponse().read() == fleet.contents[KMOD]


def test_etag_is_the_sidecar_sha256_and_if_none_match_gives_304(
    server: DriverServer, fleet: Fleet
) -> None:
    url = server.url + KMOD.url_path()
    _s, headers, _b = fetch(url)
    etag = headers["ETag"]
    assert etag == f'"{fleet.sha256(KMOD)}"'
    status, headers, body = fetch(url, {"If-None-Match": etag})
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    assert fetch(url, {"If-None-Match": f'"other", W/{etag}'})[0] == 304
    assert fetch(url, {"If-None-Match": "*"})[0] == 304
    assert fetch(url, {"If-None-Match": '"0000"'})[0] == 200


def test_if_modified_since(server: DriverServer) -> None:
    url = server.url + KMOD.url_path()
    last_modified = fetch(url, method="HEAD")[1]["Last-Modified"]
    assert fetch(url, {"If-Modified-Since": last_modified})[0] == 304
    assert fetch(url, {"If-Modified-Since": "Thu, 01 Jan 1998 00:00:00 GMT"})[0] == 200
    assert fetch(url, {"If-Modified-Since": "not a date"})[0] == 200


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, None), ("bytes=-500", None, None),
     ("bytes=10-10", 10, 10), ("bytes=299990-999999999", 299990, None)],
)
def test_single_range_gives_206(server: DriverServer, fleet: Fleet, spec: str,
                                first: int | None, last: int | None) -> None:
    data = fleet.contents[KMOD]
    size = len(data)
    if spec.startswith("bytes=-"):
        first, last = size - 500, size - 1
    last = size - 1 if last is None else last
    assert first is not None
    status, headers, body = fetch(server.url + KMOD.url_path(), {"Range": spec})
    assert status == 206
    assert body == data[first:last + 1]
    assert headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert headers["Content-Length"] == str(last - first + 1)


def test_resumed_download_with_curl(server: DriverServer, fleet: Fleet, curl: str,
                                    tmp_path: Path) -> None:
    """curl -C -: half a file on disk, the rest fetched with a Range request."""
    data = fleet.contents[KMOD]
    out = tmp_path / "partial.ko"
    out.write_bytes(data[:123_456])
    subprocess.run([curl, "-fsS", "-C", "-", "-o", str(out), server.url + KMOD.url_path()],
                   check=True, capture_output=True)
    assert out.read_bytes() == data


def test_unsatisfiable_range_gives_416(server: DriverServer, fleet: Fleet) -> None:
    size = len(fleet.contents[KMOD])
    status, headers, _b = fetch(server.url + KMOD.url_path(), {"Range": f"bytes={size}-"})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize("spec", ["bytes=0-1,5-9", "bytes=9-1", "items=0-1", "bytes=x-y"])
def test_several_or_malformed_ranges_give_the_whole_file(
    server: DriverServer, fleet: Fleet, spec: str
) -> None:
    """Documented choice: several ranges are answered with 200 and the whole file."""
    status, _h, body = fetch(server.url + KMOD.url_path(), {"Range": spec})
    assert (status, body) == (200, fleet.contents[KMOD])


def test_if_range(server: DriverServer, fleet: Fleet) -> None:
    url = server.url + KMOD.url_path()
    etag = f'"{fleet.sha256(KMOD)}"'
    assert fetch(url, {"Range": "bytes=0-9", "If-Range": etag})[0] == 206
    stale = fetch(url, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (stale[0], stale[2]) == (200, fleet.contents[KMOD])


# -- index, health, methods --------------------------------------------------------------


def test_index_lists_every_verified_artifact(server: DriverServer, fleet: Fleet) -> None:
    (fleet.root / "2.0.0+driver/x86_64/falco_debian_9.9.9_1.ko").write_bytes(b"no sidecar")
    status, headers, body = fetch(server.url + "/index.json")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    entries = {e["path"]: e for e in json.loads(body)["artifacts"]}
    assert set(entries) == {key.relpath for key in fleet.contents}
    entry = entries[KMOD.relpath]
    assert entry["size"] == len(fleet.contents[KMOD])
    assert entry["sha256"] == fleet.sha256(KMOD)
    assert entry["url"] == KMOD.url_path()
    assert entry["kind"] == "kmod"
    mtime = (fleet.root / KMOD.relpath).stat().st_mtime
    assert entry["buildTime"].endswith("Z")
    assert entry["buildTime"] == dt.datetime.fromtimestamp(int(mtime), dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    # each listed URL really serves the file it describes
    for path, item in entries.items():
        got = fetch(server.url + str(item["url"]))[2]
        assert hashlib.sha256(got).hexdigest() == item["sha256"], path


def test_healthz(server: DriverServer, fleet: Fleet) -> None:
    assert fetch(server.url + "/healthz")[:3:2] == (200, b"ok\n")
    fleet.root.rename(fleet.root.with_name("moved"))
    assert fetch(server.url + "/healthz")[0] == 503
    assert fetch(server.url + KMOD.url_path())[0] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
                                    "PROPFIND", "BREW"])
def test_other_methods_get_405_with_allow(server: DriverServer, method: str) -> None:
    with conn(server) as c:
        c.request(method, KMOD.url_path(), body=b"x" if method in ("POST", "PUT") else None)
        reply = c.getresponse()
        reply.read()
        assert reply.status == 405
        assert reply.getheader("Allow") == "GET, HEAD"


def test_405_with_a_body_closes_the_connection(server: DriverServer) -> None:
    """An unread body must not be parsed as the next request."""
    reply = raw_request(server.address, b"POST /index.json HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 30\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n....")
    assert status_of(reply) == 405
    assert reply.count(b"HTTP/1.1 ") == 1


def test_pipelined_requests_are_all_answered(server: DriverServer) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = raw_request(server.address, request * 5 + last)
    assert reply.count(b"HTTP/1.1 200 OK") == 6


def test_garbage_request_line_gets_400(server: DriverServer) -> None:
    assert status_of(raw_request(server.address, b"HELLO\r\n\r\n")) == 400
    assert status_of(raw_request(server.address, b"GET / HTTP/9.9\r\n\r\n")) == 505


# -- what is never served --------------------------------------------------------------


def _assert_refused(reply: bytes, fleet: Fleet) -> None:
    assert status_of(reply) in (400, 404), reply[:200]
    assert b"TOP-SECRET" not in reply
    assert b"root:" not in reply


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_hostile_target_over_a_raw_socket(server: DriverServer, fleet: Fleet,
                                          target: str) -> None:
    request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    _assert_refused(raw_request(server.address, request), fleet)


def test_hostile_corpus_with_curl_path_as_is(server: DriverServer, fleet: Fleet,
                                             curl: str) -> None:
    """curl --path-as-is sends the dot segments un-normalised."""
    targets = [t for t in HOSTILE_TARGETS if t.startswith("/") and "\\" not in t]
    for target in targets:
        done = subprocess.run(
            [curl, "-sS", "--path-as-is", "-o", "-", "-w", "\n%{http_code}",
             server.url + target], capture_output=True, check=False)
        body, _, code = done.stdout.rpartition(b"\n")
        assert code in (b"400", b"404"), (target, code)
        assert b"TOP-SECRET" not in body


def test_raw_non_ascii_and_nul_bytes_in_the_request_line(server: DriverServer,
                                                         fleet: Fleet) -> None:
    for target in (b"/\xc0\xae\xc0\xae/secret.txt", b"/2.0.0+driver/\x00", b"/\xff"):
        request = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        _assert_refused(raw_request(server.address, request), fleet)


def _plant(fleet: Fleet, relpath: str, *, data: bytes | None = None,
           link_to: Path | None = None) -> str:
    """Put a file (or symlink) in the store with a matching sidecar; returns its URL path."""
    target = fleet.root / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    if link_to is not None:
        target.symlink_to(link_to)
        payload = link_to.read_bytes()
    else:
        assert data is not None
        target.write_bytes(data)
        payload = data
    digest = hashlib.sha256(payload).hexdigest()
    target.with_name(target.name + ".sha256").write_text(f"{digest}  {target.name}\n")
    return "/" + relpath.replace("+", "%2B")


def test_symlink_leaving_the_store_is_not_served(server: DriverServer, fleet: Fleet) -> None:
    url_path = _plant(fleet, "2.0.0+driver/x86_64/falco_evil_1.0_1.ko", link_to=fleet.secret)
    assert fetch(server.url + url_path)[0] == 404


def test_symlinked_folder_leaving_the_store_is_not_followed(server: DriverServer,
                                                            fleet: Fleet) -> None:
    outside = fleet.secret.parent / "outside" / "x86_64"
    outside.mkdir(parents=True)
    (outside / "falco_evil_1.0_1.ko").write_bytes(b"TOP-SECRET module")
    digest = hashlib.sha256(b"TOP-SECRET module").hexdigest()
    (outside / "falco_evil_1.0_1.ko.sha256").write_text(f"{digest}  falco_evil_1.0_1.ko\n")
    (fleet.root / "9.9.9+driver").symlink_to(outside.parent)
    status, _h, body = fetch(server.url + "/9.9.9%2Bdriver/x86_64/falco_evil_1.0_1.ko")
    assert status == 404
    assert b"TOP-SECRET" not in body
    listed = json.loads(fetch(server.url + "/index.json")[2])["artifacts"]
    assert not [e for e in listed if "evil" in e["path"]]


def test_temp_file_of_an_unfinished_publish_is_not_served(server: DriverServer,
                                                          fleet: Fleet) -> None:
    name = f".{KMOD.filename}.partial-0a1b2c3d"
    (fleet.root / "2.0.0+driver/x86_64" / name).write_bytes(b"half")
    assert fetch(f"{server.url}/2.0.0%2Bdriver/x86_64/{name}")[0] == 404


def test_artifact_that_does_not_verify_is_not_served(server: DriverServer,
                                                     fleet: Fleet) -> None:
    corrupt = _plant(fleet, "2.0.0+driver/x86_64/falco_debian_6.1.0-9_1.ko", data=b"good")
    (fleet.root / "2.0.0+driver/x86_64/falco_debian_6.1.0-9_1.ko").write_bytes(b"evil")
    assert fetch(server.url + corrupt)[0] == 404
    (fleet.root / "2.0.0+driver/x86_64/falco_debian_6.1.0-10_1.ko").write_bytes(b"unsigned")
    assert fetch(server.url + "/2.0.0%2Bdriver/x86_64/falco_debian_6.1.0-10_1.ko")[0] == 404


def test_directories_fifos_and_devices_named_like_artifacts(server: DriverServer,
                                                            fleet: Fleet) -> None:
    folder = fleet.root / "2.0.0+driver/x86_64/falco_dir_1.0_1.ko"
    folder.mkdir()
    fifo = fleet.root / "2.0.0+driver/x86_64/falco_fifo_1.0_1.ko"
    os.mkfifo(fifo)
    for name in (folder.name, fifo.name):
        assert fetch(f"{server.url}/2.0.0%2Bdriver/x86_64/{name}")[0] == 404


# -- logs ---------------------------------------------------------------------------------


def test_access_log_is_a_structured_event(server: DriverServer, fleet: Fleet) -> None:
    with logs.captured() as events:
        fetch(server.url + KMOD.url_path())
        fetch(server.url + "/nothing")
        # The worker logs just after the last byte left: wait for it, up to a while.
        for _ in range(500):
            access = [e for e in events if e["event"] == "http.access"]
            if len(access) >= 2:
                break
            time.sleep(0.01)
    assert len(access) == 2
    ok, missing = access
    assert ok["method"] == "GET"
    assert ok["path"] == KMOD.url_path()
    assert ok["status"] == 200
    assert ok["bytes"] == len(fleet.contents[KMOD])
    assert ok["client"] == "127.0.0.1"
    assert isinstance(ok["duration_ms"], float)
    assert (missing["status"], missing["path"]) == (404, "/nothing")
